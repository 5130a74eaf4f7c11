"""The bot as its own process for end-to-end tests: `python -m botops run` against a sandbox in the test.

:func:`running_bot` starts a sandbox on a fresh demo world, spawns the bot in a folder of its own (so no
developer ``.env`` leaks in), waits until the sandbox saw it identify and sync its guild commands, and at
the end stops it with SIGTERM and requires exit code 0 within the issue's five seconds. Whatever goes
wrong, the assertion carries the bot's stderr, which is where its console log goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from botops.sandbox import DemoWorld, Member, Message, Sandbox, build_demo_world
from botops.sandbox.interactions import InteractionResponse
from botops.settings import Settings

__all__ = [
    "READY_LINE",
    "STOP_TIMEOUT",
    "BotProcess",
    "RunningBot",
    "clean_environment",
    "read_logs",
    "running_bot",
    "spawn_bot",
    "write_extensions",
    "write_greet",
]

#: The issue's bound on a SIGTERM'd bot's exit.
STOP_TIMEOUT = 5.0
#: Generous bound on start-up (interpreter, imports, migration, connect) on a busy 2-core machine.
START_TIMEOUT = 30.0
#: What the bot logs (to gateway.log and botops.log) once discord.py called on_ready.
READY_LINE = "botops.gateway: ready as "
#: The line of botops.log that gives the HTTP server's address.
HTTP_LINE_RE = re.compile(r"serving /livez /readyz /status /metrics on (http://\S+)")

_HELPERS = '''\
"""Shared by the extensions of this package; a module starting with _ is a helper, never an extension."""


def greeting(version: str) -> str:
    return f"hello {version}"
'''

# /boom puts the token from the environment into its exception, so the logs must redact it.
_GREET = '''\
"""A user extension: /greet answers with its version, /boom fails on purpose."""

import os

import discord
from discord import app_commands
from discord.ext import commands

from cogs._helpers import greeting

VERSION = "{version}"


class Greet(commands.Cog):
    @app_commands.command(name="greet", description="Say hello")
    async def greet(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(greeting(VERSION))

    @app_commands.command(name="boom", description="Fail on purpose")
    async def boom(self, interaction: discord.Interaction) -> None:
        raise RuntimeError("boom while holding " + os.environ["DISCORD_TOKEN"])


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Greet())
'''


def write_greet(folder: Path, version: str, *, broken: bool = False) -> None:
    """Write ``cogs/greet.py`` answering ``hello <version>``; ``broken`` adds a syntax error."""
    source = _GREET.replace("{version}", version)
    if broken:
        source += "\n\ndef broken(:\n    pass\n"
    (folder / "cogs" / "greet.py").write_text(source, encoding="utf-8")


def write_extensions(folder: Path) -> None:
    """Write the user's extension package ``cogs/``: ``greet`` (v1) and the helper module ``_helpers``."""
    package = folder / "cogs"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('"""The bot\'s own features."""\n', encoding="utf-8")
    (package / "_helpers.py").write_text(_HELPERS, encoding="utf-8")
    write_greet(folder, "v1")


def clean_environment() -> dict[str, str]:
    """Return this process's environment without any botops setting, so only what a test sets counts."""
    settings = {name.upper() for name in Settings.model_fields}
    environment = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    environment["PYTHONIOENCODING"] = "utf-8"
    # A rewritten extension can keep its size and modification second, which a cached .pyc cannot
    # tell apart from the original; without bytecode files every reload compiles the source.
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment


def read_logs(log_dir: Path) -> dict[str, str]:
    """Return the text of every file under ``log_dir`` (rotated ones included), by relative path."""
    if not log_dir.is_dir():
        return {}
    return {
        str(path.relative_to(log_dir)): path.read_text(encoding="utf-8", errors="replace")
        for path in sorted(log_dir.rglob("*"))
        if path.is_file()
    }


@dataclass(eq=False)
class BotProcess:
    """A ``botops run`` process whose stderr goes to a file next to its working folder."""

    process: asyncio.subprocess.Process
    stderr_path: Path

    def stderr(self) -> str:
        """Return what the process wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    async def stop(self, received: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``received`` (unless it already exited) and return the exit code; fail after ``timeout``."""
        if self.process.returncode is None:
            self.process.send_signal(received)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(
                f"the bot did not exit within {timeout:g} s of {received.name}; its stderr:\n{self.stderr()}"
            ) from None


async def spawn_bot(folder: Path, environment: Mapping[str, str], *, name: str = "bot") -> BotProcess:
    """Start ``python -m botops run`` in ``folder``; its stderr goes to ``<folder>/<name>.stderr``."""
    stderr_path = folder / f"{name}.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "botops",
            "run",
            cwd=folder,
            env=dict(environment),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    return BotProcess(process, stderr_path)


@dataclass(eq=False)
class RunningBot:
    """A bot process connected to its own sandbox and demo world."""

    sandbox: Sandbox
    demo: DemoWorld
    folder: Path
    log_dir: Path
    bot: BotProcess
    #: The environment the bot runs with; ``botops`` commands run with it reach this bot.
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> Member:
        """The demo's owner "ada" as a member of the demo guild (guild and application owner)."""
        return self.demo.guild.members[self.demo.world.owner.id]

    async def slash(
        self,
        name: str,
        member: Member,
        *,
        options: Mapping[str, object] | None = None,
        locale: str = "en-US",
        enforce_permissions: bool = True,
        timeout: float = 10.0,
    ) -> InteractionResponse:
        """Invoke ``/name`` in #general and return the bot's first answer."""
        result = await self.sandbox.invoke_slash(
            name,
            member=member,
            channel=self.demo.general,
            options=options,
            locale=locale,
            enforce_permissions=enforce_permissions,
        )
        return await result.response(timeout)

    async def slash_final(
        self, name: str, member: Member, *, options: Mapping[str, object] | None = None
    ) -> Message:
        """Invoke ``/name`` in #general and return its final (possibly deferred) answer."""
        result = await self.sandbox.invoke_slash(
            name, member=member, channel=self.demo.general, options=options
        )
        return await result.final_message(timeout=15.0)

    async def slash_final_text(self, name: str, member: Member, *, options: Mapping[str, object]) -> str:
        """Invoke ``/name`` in #general and return its final (possibly deferred) answer's content."""
        return (await self.slash_final(name, member, options=options)).content

    async def cli(self, *arguments: str, timeout: float = 60.0) -> tuple[int, str]:
        """Run ``botops <arguments>`` in the bot's folder with its environment; return exit code, output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "botops",
            *arguments,
            cwd=self.folder,
            env=dict(self.environment),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
        assert process.returncode is not None
        return process.returncode, output.decode("utf-8", errors="replace")

    def logs(self) -> dict[str, str]:
        """Return every log file's text, by path relative to LOG_DIR."""
        return read_logs(self.log_dir)

    @property
    def http_url(self) -> str:
        """Return the base URL of the bot's HTTP server, as its log announced it."""
        found = HTTP_LINE_RE.search(self.logs().get("botops.log", ""))
        assert found, f"the bot announced no HTTP server; its stderr:\n{self.bot.stderr()}"
        return found.group(1)


def bot_environment(
    sandbox: Sandbox, demo: DemoWorld, folder: Path, log_dir: Path, extra: Mapping[str, str]
) -> dict[str, str]:
    """Return the environment that points a bot in ``folder`` at ``sandbox`` (``extra`` wins)."""
    environment = clean_environment()
    environment.update(
        DISCORD_API_BASE=sandbox.api_base,
        DISCORD_GATEWAY_URL=sandbox.gateway_url,
        DISCORD_TOKEN=sandbox.token,
        DISCORD_DEV_GUILD_ID=str(demo.guild.id),
        OWNER_IDS=str(demo.world.owner.id),
        DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'bot.db'}",
        LOG_DIR=str(log_dir),
        GUILD_READY_TIMEOUT="0.1",
        HTTP_PORT="0",  # a free port each: bots of parallel tests never compete for 8080
        BACKUP_TIME="",  # no nightly backup in a test started at 03:00; the schedule's tests set one
    )
    environment.update(extra)
    return environment


async def _wait_until_started(running: RunningBot) -> None:
    sandbox, bot = running.sandbox, running.bot

    async def started() -> None:
        await sandbox.wait_for_request(
            "PUT", rf"/applications/\d+/guilds/{running.demo.guild.id}/commands", timeout=START_TIMEOUT
        )
        await sandbox.wait_until_ready(timeout=START_TIMEOUT)
        # discord.py's on_ready comes after the guilds arrived; only the bot's log can tell.
        async with asyncio.timeout(START_TIMEOUT):
            while not any(READY_LINE in text for text in running.logs().values()):  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # a file offers nothing to await

    waiting = asyncio.create_task(started())
    exited = asyncio.create_task(bot.process.wait())
    done, _ = await asyncio.wait({waiting, exited}, return_when=asyncio.FIRST_COMPLETED)
    if exited in done:
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        raise AssertionError(f"the bot exited with {exited.result()} before it was ready:\n{bot.stderr()}")
    exited.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await exited
    try:
        waiting.result()
    except TimeoutError as error:
        bot.process.kill()
        await bot.process.wait()
        raise AssertionError(f"the bot was not ready: {error}; its stderr:\n{bot.stderr()}") from None


@contextlib.asynccontextmanager
async def running_bot(
    folder: Path, *, extra: Mapping[str, str] | None = None, log_dir: Path | None = None, name: str = "bot"
) -> AsyncIterator[RunningBot]:
    """Run a bot in ``folder`` against a fresh sandbox; at the end SIGTERM it and require exit 0 in 5 s.

    Raises:
        AssertionError: the bot exited or stalled before it was ready, did not exit 0 within 5 s of
            SIGTERM, called a route the sandbox does not know, or wrote the token to a log or stderr;
            the message carries its stderr.
    """
    demo = build_demo_world()
    log_dir = log_dir or folder / "logs"
    async with Sandbox(world=demo.world) as sandbox:
        environment = bot_environment(sandbox, demo, folder, log_dir, extra or {})
        bot = await spawn_bot(folder, environment, name=name)
        running = RunningBot(sandbox, demo, folder, log_dir, bot, environment)
        try:
            await _wait_until_started(running)
            yield running
        finally:
            code = await bot.stop()
        assert code == 0, f"the bot exited with {code} after SIGTERM; its stderr:\n{bot.stderr()}"
        unknown = [f"{r.method} {r.path}" for r in sandbox.unknown_routes]
        assert not unknown, f"the bot called routes the sandbox does not know: {unknown}"
        # Over the whole run, shutdown included, the token must reach no log file and not the console.
        leaked = [path for path, text in running.logs().items() if sandbox.token in text]
        assert not leaked, f"the token is in {leaked}"
        assert sandbox.token not in bot.stderr(), "the token is on the bot's stderr"
