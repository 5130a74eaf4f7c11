"""``botops sandbox``: run the offline Discord with its demo guild until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from botops.cli._common import err_console, exit_with
from botops.cli.codes import ExitCode

if TYPE_CHECKING:
    from botops.sandbox import Sandbox
    from botops.sandbox.demo import DemoWorld

__all__ = ["ENV_FILE_MARKER", "sandbox"]

console = Console()

#: The first line of every env file ``--env-file`` writes; only a file starting with it is overwritten.
ENV_FILE_MARKER = "# written by botops sandbox; safe to delete"


def sandbox(
    host: Annotated[str, typer.Option(help="Address to listen on; keep it on loopback.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free one.")] = 0,
    ratelimits: Annotated[
        str,
        typer.Option(
            help="'generous' (never limits a normal test) or 'realistic' (Discord's sizes, enforced)."
        ),
    ] = "generous",
    env_file: Annotated[
        Path | None,
        typer.Option(
            help="Also write the bot's settings to this file (mode 0600), for a bot in another process; "
            "a file this command did not write is never overwritten."
        ),
    ] = None,
) -> None:
    """Start the offline Discord with a demo guild and print the settings a bot needs to use it."""
    if ratelimits not in ("generous", "realistic"):
        raise typer.BadParameter("must be 'generous' or 'realistic'", param_hint="--ratelimits")
    if env_file is not None:
        _refuse_foreign_env_file(env_file)
    if not _is_loopback(host):
        err_console.print(
            f"warning: --host {host} makes the sandbox reachable from other machines, and its control "
            "plane (/_sandbox/) has no authentication: anyone who reaches it can post as any member and "
            "drive the bot. Keep --host 127.0.0.1 unless the network is yours alone.",
            markup=False,
        )
    # A Ctrl-C before the loop's own handlers are in place (while importing) still ends quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(host, port, ratelimits, env_file))


async def _serve(host: str, port: int, ratelimits: str, env_file: Path | None) -> None:
    # Imported here, so that every other command (`botops run` above all) starts without the server code.
    from botops.sandbox import Sandbox, build_demo_world

    stopping = asyncio.Event()
    handled = _stop_on_signals(stopping)
    try:
        demo = build_demo_world()
        async with Sandbox(world=demo.world, host=host, port=port, ratelimits=ratelimits) as server:
            settings = {**server.environment(), "DISCORD_DEV_GUILD_ID": str(demo.guild.id)}
            if env_file is not None:
                _write_env_file(env_file, settings)
            _print_banner(server, demo, settings)
            await stopping.wait()
    finally:
        loop = asyncio.get_running_loop()
        for signum in handled:
            loop.remove_signal_handler(signum)


def _stop_on_signals(stopping: asyncio.Event) -> list[signal.Signals]:
    """Set ``stopping`` on SIGINT and SIGTERM, so a process manager's stop closes as cleanly as Ctrl-C.

    Return the signals handled; where the loop cannot handle signals (Windows), none, and Ctrl-C ends
    the command through KeyboardInterrupt as before.
    """
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stopping.set)
        except NotImplementedError:
            break
        handled.append(signum)
    return handled


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def _refuse_foreign_env_file(path: Path) -> None:
    """Exit 2 unless ``path`` is missing or was written by this command, so no real .env is lost."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first_line = handle.readline().rstrip("\r\n")
    except FileNotFoundError:
        return
    except OSError as error:
        exit_with(f"error: --env-file {path} cannot be read: {error.strerror or error}", ExitCode.USAGE)
    if first_line != ENV_FILE_MARKER:
        exit_with(
            f"error: --env-file {path} exists and was not written by botops sandbox, so it is left as it "
            "is: give another path, such as sandbox.env",
            ExitCode.USAGE,
        )


def _write_env_file(path: Path, settings: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # O_CREAT's mode applies to a new file only; one written by an earlier run may have been loosened.
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(ENV_FILE_MARKER + "\n")
        handle.writelines(f"{key}={value}\n" for key, value in settings.items())


def _print_banner(server: Sandbox, demo: DemoWorld, settings: dict[str, str]) -> None:
    # Names are data, not markup: each one goes in as Text, so brackets in it are shown as they are.
    console.print(
        Text.assemble(("botops sandbox", "bold green"), f" listening on {server.url}  (Ctrl-C stops it)")
    )
    console.print("Point a bot at it with these settings:")
    for key, value in settings.items():
        console.print(Text(f"  {key}={value}"), highlight=False, soft_wrap=True)
    console.print(Text.assemble("Demo guild ", (demo.guild.name, "bold"), f" ({demo.guild.id}):"))
    channels = ", ".join(f"#{c.name} ({c.id})" for c in demo.guild.text_channels())
    console.print(Text(f"  channels: {channels}"), highlight=False)
    people = [demo.admin, demo.moderator, *demo.members]
    members = ", ".join(f"{m.user.username} ({m.id})" for m in people)
    console.print(Text(f"  members: {members}"), highlight=False)
    console.print(Text(f"Drive it over HTTP: {server.url}/_sandbox/ (see docs/sandbox.md)"))
