"""``botops health``: ask the running bot's ``/status`` and exit 0 when it is ready, 1 when it is not.

Scripts and deploys use the exit code; people read the table. ``--live`` asks ``/livez`` instead: the
question a supervisor should restart on (the process hangs), where readiness also fails while Discord
or the database is away, which a restart does not cure. The token comes from HTTP_TOKEN in the
settings, the address from HTTP_HOST and HTTP_PORT unless ``--url`` names another bot.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from botops.cli._common import EnvFile, exit_with, load_settings_or_exit
from botops.cli.codes import ExitCode
from botops.instance import find_running_instance
from botops.settings import ENV_FILE, Settings

__all__ = ["health"]


def health(
    url: Annotated[
        str | None,
        typer.Option("--url", help="Base URL of the bot's HTTP server; default: HTTP_HOST and HTTP_PORT."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print /status's JSON instead of a table.")] = False,
    live: Annotated[
        bool,
        typer.Option("--live", help="Only ask /livez: exit 0 while the process answers (for restarts)."),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the bot.")] = 5.0,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Show the running bot's health; exit 0 when it is ready, 1 when it is not or does not answer.

    With ``--live``, exit 0 as long as the process answers ``/livez``, ready or not.
    """
    settings = load_settings_or_exit(env_file)
    base = (url or _default_url(settings)).rstrip("/")
    if not base.startswith(("http://", "https://")):
        exit_with(f"error: --url must start with http:// or https:// (got {base!r})", ExitCode.USAGE)
    token = settings.http_token.get_secret_value() if settings.http_token else None
    if live:
        status, _ = asyncio.run(_fetch(base, "/livez", None, timeout))
        typer.echo(f"{base}/livez: {'alive' if status == 200 else f'HTTP {status}'}")
        raise typer.Exit(ExitCode.OK if status == 200 else ExitCode.FAILURE)
    status, document = asyncio.run(_fetch(base, "/status", token, timeout))
    if status == 401:
        exit_with(
            f"error: {base} refused the token: set HTTP_TOKEN to the bot's (in .env or the environment)",
            ExitCode.FAILURE,
        )
    if status != 200 or document is None:
        exit_with(f"error: {base}/status answered HTTP {status}, not the bot's status", ExitCode.FAILURE)
    if as_json:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        Console(highlight=False).print(_table(base, document))
    raise typer.Exit(ExitCode.OK if document.get("ready") else ExitCode.FAILURE)


def _default_url(settings: Settings) -> str:
    if settings.http_port == 0:
        running = find_running_instance(settings)
        if running is not None and running.control_url is not None:
            return running.control_url  # it published the port it took
        exit_with(
            "error: HTTP_PORT is 0 (the bot takes a free port each start): pass --url with the address "
            "its log announced",
            ExitCode.USAGE,
        )
    url = settings.http_url
    if url is None:
        exit_with("error: HTTP_ENABLED is false, so the bot serves no /status", ExitCode.USAGE)
    return url


async def _fetch(
    base: str, path: str, token: str | None, timeout: float
) -> tuple[int, dict[str, Any] | None]:
    import aiohttp  # only this command needs an HTTP client: the others start without it

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(f"{base}{path}", headers=headers) as response,
        ):
            if response.status != 200:
                return response.status, None
            try:
                return 200, await response.json()
            except (aiohttp.ContentTypeError, json.JSONDecodeError):
                return 200, None
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        reason = _reason(error)
        exit_with(
            f"error: nothing answers at {base} ({reason}): is the bot running (botops run) with "
            "HTTP_ENABLED, and are HTTP_HOST and HTTP_PORT the ones it uses?",
            ExitCode.FAILURE,
        )


def _reason(error: BaseException) -> str:
    import aiohttp

    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "connection refused"
    return str(error) or type(error).__name__


def _table(base: str, status: dict[str, Any]) -> Table:
    ready = bool(status.get("ready"))
    table = Table(title=f"botops at {base}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("ready", "[green]yes[/]" if ready else "[red]no[/]")
    for check, problem in status.get("problems", {}).items():
        table.add_row(f"  {check}", f"[red]{_escape(problem)}[/]")
    table.add_row("version", f"{status.get('version')} ({status.get('commit')})")
    table.add_row("uptime", str(datetime.timedelta(seconds=int(status.get("uptime_seconds", 0)))))
    database = status.get("database", {})
    if database.get("ok"):
        size = database.get("size_bytes")
        shown = f"ok, {database.get('ms', 0):.1f} ms, schema {database.get('schema_revision')}"
        if size is not None:
            shown += f", {size / 2**20:.1f} MiB"
        table.add_row("database", shown)
    else:
        table.add_row("database", f"[red]{_escape(str(database.get('error')))}[/]")
    gateway = status.get("gateway", {})
    shards = gateway.get("shards", {})
    connected = sum(1 for shard in shards.values() if shard.get("connected"))
    latency = gateway.get("latency_ms")
    latency_text = "-" if latency is None else f"{latency:.0f} ms"
    table.add_row(
        "gateway",
        f"{connected}/{len(shards)} shards connected, latency {latency_text}, "
        f"{gateway.get('reconnects', 0)} reconnects",
    )
    table.add_row("guilds", str(status.get("guilds", 0)))
    table.add_row("errors (last hour)", str(status.get("errors_last_hour", 0)))
    table.add_row("memory", f"{status.get('memory_bytes', 0) / 2**20:.1f} MiB")
    extensions = status.get("extensions", {})
    failed = extensions.get("failed", {})
    shown = f"{len(extensions.get('loaded', []))} loaded"
    if failed:
        shown += f", [red]{len(failed)} failed: {_escape(', '.join(failed))}[/]"
    table.add_row("extensions", shown)
    table.add_row("backup", _backup_row(status.get("backup") or {}))
    return table


def _backup_row(backup: dict[str, Any]) -> str:
    newest = backup.get("newest")
    if not newest:
        shown = "[yellow]none in BACKUP_DIR[/]"
    else:
        age = datetime.timedelta(seconds=int(newest.get("age_seconds", 0)))
        checked = "verified" if newest.get("verified") else "[yellow]not verified[/]"
        shown = (
            f"{_escape(str(newest.get('id')))}, {age} ago ({_escape(str(newest.get('reason')))}), {checked}"
        )
    if backup.get("next_scheduled"):
        shown += f"; next {backup['next_scheduled']}"
    return shown


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
