"""Reaching the bot during a deploy: restart it through its process manager, reload it, wait until ready.

Restarts go through the process manager that runs the bot, never by killing processes by name
(``DEPLOY_RESTART``): ``systemd:<unit>`` runs ``systemctl restart <unit>``, ``supervisor:<program>``
(optionally ``@<supervisord.conf>``) runs ``supervisorctl restart``, and ``command:<command line>`` runs
that command (without a shell). Hot reloads go to the bot's ``/control/reload``; readiness is its
``/readyz`` reporting the commit the deploy put in place.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from botops.bot.reloading import ExtensionChanges
from botops.errors import DeployRefused
from botops.instance import ControlFailed, RunningInstance, control, find_running_instance
from botops.settings import Settings

__all__ = ["ReadyState", "Restarter", "error_count", "reload_extensions", "restarter", "wait_until_ready"]

log = logging.getLogger(__name__)

#: Seconds between two questions to /readyz while waiting.
POLL_INTERVAL = 0.25
_RESTART_TIMEOUT = 120.0


@dataclass(frozen=True)
class Restarter:
    """How this bot is restarted: the command line that asks its process manager."""

    description: str
    argv: tuple[str, ...]

    async def restart(self) -> None:
        """Run the restart command.

        Raises:
            DeployRefused: the command is missing or failed (its output is in the message).
        """
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            output, _ = await asyncio.wait_for(process.communicate(), _RESTART_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise DeployRefused(f"restarting the bot with {self.description} failed: {error}") from error
        if process.returncode != 0:
            last = (output.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise DeployRefused(f"{self.description} failed (exit {process.returncode}): {last}")
        log.info("restarted the bot with %s", self.description)


def restarter(settings: Settings) -> Restarter | None:
    """Return how DEPLOY_RESTART restarts the bot, ``None`` when it is not set.

    Raises:
        DeployRefused: DEPLOY_RESTART is malformed or names a tool that is not installed.
    """
    value = settings.deploy_restart.strip()
    if not value:
        return None
    kind, _, target = value.partition(":")
    target = target.strip()
    if kind == "systemd" and target:
        return Restarter(f"systemctl restart {target}", (_tool("systemctl"), "restart", target))
    if kind == "supervisor" and target:
        program, _, config = target.partition("@")
        argv = (_tool("supervisorctl"), *(("-c", config) if config else ()), "restart", program)
        return Restarter(f"supervisorctl restart {program}", argv)
    if kind == "command" and target:
        argv = tuple(shlex.split(target))
        return Restarter(f"the command {argv[0]}", argv)
    raise DeployRefused(
        f"DEPLOY_RESTART={value!r} is not one of systemd:<unit>, supervisor:<program>[@<config>] or "
        "command:<command line>"
    )


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DeployRefused(f"DEPLOY_RESTART needs {name}, which is not installed here")
    return path


@dataclass(frozen=True)
class ReadyState:
    """What waiting for readiness found: ready with the expected commit, or the last answer seen."""

    ready: bool
    commit: str | None
    problems: dict[str, str]
    seconds: float
    pid: int | None = None

    def describe(self) -> str:
        """Say in one line why the bot is not ready."""
        if self.ready:
            return f"ready at {self.commit}"
        if self.commit is None and not self.problems:
            return "the bot never answered /readyz"
        problems = "; ".join(f"{name}: {problem}" for name, problem in self.problems.items())
        return f"/readyz reports commit {self.commit}, not ready: {problems or 'wrong commit'}"


async def wait_until_ready(
    settings: Settings, commit: str, *, timeout: float, old_pid: int | None = None
) -> ReadyState:
    """Ask the bot's ``/readyz`` until it is ready with ``commit`` (a full or short id), for ``timeout`` s.

    With ``old_pid`` a bot process of that id does not count: a restart must bring a new one.
    """
    started = time.monotonic()
    last: dict[str, Any] = {}
    pid: int | None = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() - started < timeout:
            instance = await asyncio.to_thread(find_running_instance, settings)
            if instance is not None and instance.control_url and instance.pid != old_pid:
                pid = instance.pid
                answer = await _get_json(session, f"{instance.control_url}/readyz", settings)
                if answer is not None:
                    last = answer
                    reported = str(answer.get("commit") or "")
                    if answer.get("ready") and reported and commit.startswith(reported):
                        return ReadyState(True, reported, {}, time.monotonic() - started, pid)
            await asyncio.sleep(POLL_INTERVAL)
    problems = last.get("problems") if isinstance(last.get("problems"), dict) else {}
    return ReadyState(False, last.get("commit"), dict(problems or {}), time.monotonic() - started, pid)


async def error_count(settings: Settings) -> int | None:
    """Return the running bot's ``errors_last_hour`` from ``/status``, ``None`` when it does not answer."""
    instance = await asyncio.to_thread(find_running_instance, settings)
    if instance is None or instance.control_url is None:
        return None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        answer = await _get_json(session, f"{instance.control_url}/status", settings)
    if answer is None or not isinstance(answer.get("errors_last_hour"), int):
        return None
    return int(answer["errors_last_hour"])


async def reload_extensions(instance: RunningInstance, changes: ExtensionChanges) -> dict[str, Any]:
    """Ask the running bot to apply ``changes``; return its answer (``ok``, ``done``, ``failed``, ``cause``).

    Raises:
        ControlFailed: the bot did not answer or refused the request.
    """
    body = {
        "reload": list(changes.reload),
        "load": list(changes.load),
        "unload": list(changes.unload),
        "forget": list(changes.forget),
        "reload_all": changes.reload_all,
    }
    try:
        return await control(instance, "reload", json=body, accept=(200, 409))
    except ControlFailed:
        raise


async def _get_json(session: aiohttp.ClientSession, url: str, settings: Settings) -> dict[str, Any] | None:
    token = settings.http_token.get_secret_value() if settings.http_token else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with session.get(url, headers=headers) as response:
            document = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return document if isinstance(document, dict) else None
