"""The running bot's claim on its state folder: one bot at a time, and how commands on this machine reach it.

A bot process holds ``STATE_DIR/bot.lock`` (an OS file lock, released by the kernel when the process
dies, so a crash never leaves a stale claim) for as long as it runs; a second bot with the same settings
refuses to start instead of writing into the same database. Once its HTTP server listens, it writes
``STATE_DIR/bot.json`` (mode 0600): its process id, the server's address and a control token made anew at
each start. Commands run by the same user read that file to reach the bot's control routes
(``/control/flush``, ``/control/stop``), which answer only to loopback and that token: being able to read
a 0600 file of the bot's user is the authentication, as with an SSH agent's socket.

``botops backup create`` asks a running bot to flush its batched writes first; ``botops backup restore``
refuses while the lock is held.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from botops.errors import BotAlreadyRunning, ConfigurationError
from botops.settings import Settings

__all__ = [
    "CONTROL_PREFIX",
    "DETAILS_NAME",
    "LOCK_NAME",
    "ControlFailed",
    "RunningInstance",
    "claim_instance",
    "control",
    "find_running_instance",
    "flush_running_bot",
    "new_control_token",
]

log = logging.getLogger(__name__)

LOCK_NAME = "bot.lock"
DETAILS_NAME = "bot.json"
#: The HTTP server's routes under this prefix are the control routes.
CONTROL_PREFIX = "/control/"
#: Seconds a control request may take; a flush writes what a few seconds of traffic left pending.
CONTROL_TIMEOUT = 60.0


@dataclass(frozen=True)
class RunningInstance:
    """A bot holding the lock of a state folder, and what its ``bot.json`` says (when it wrote one yet)."""

    state_dir: Path
    pid: int | None
    control_url: str | None
    token: str | None
    started_at: datetime.datetime | None

    def describe(self) -> str:
        """Say which process it is, for messages such as "the bot is running (...)"."""
        return f"process {self.pid}" if self.pid is not None else f"it holds {self.state_dir / LOCK_NAME}"


class ControlFailed(Exception):
    """A control request to the running bot got no good answer; the message says what happened."""


def new_control_token() -> str:
    """Return a fresh control token."""
    return secrets.token_urlsafe(32)


def _lock(state_dir: Path) -> FileLock:
    # No soft fallback: a lock that outlives a crashed process would keep the bot from ever starting again.
    return FileLock(state_dir / LOCK_NAME, thread_local=False, fallback_to_soft=False)


@contextlib.contextmanager
def claim_instance(settings: Settings) -> Iterator[_Claim]:
    """Hold ``STATE_DIR/bot.lock`` for the block; remove ``bot.json`` when it ends.

    Raises:
        BotAlreadyRunning: another process holds the lock.
        ConfigurationError: STATE_DIR cannot be created or written.
    """
    state_dir = settings.state_dir
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        lock = _lock(state_dir)
        lock.acquire(blocking=False)
    except Timeout:
        running = find_running_instance(settings)
        raise BotAlreadyRunning(state_dir, running.pid if running else None) from None
    except OSError as error:
        raise ConfigurationError(
            "STATE_DIR",
            f"cannot use {state_dir} as the state folder ({error.strerror or error}): "
            "point STATE_DIR at a folder this user may write to",
        ) from error
    claim = _Claim(state_dir)
    try:
        yield claim
    finally:
        claim.forget()
        lock.release()


class _Claim:
    """The lock held by this process; :meth:`publish` writes the control details next to it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._published = False

    def publish(self, control_url: str | None, token: str) -> None:
        """Write ``bot.json`` (mode 0600, atomically) with this process's id, address and control token."""
        details = {
            "pid": os.getpid(),
            "control_url": control_url,
            "token": token,
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(),
        }
        path = self.state_dir / DETAILS_NAME
        temporary = path.with_name(f".{DETAILS_NAME}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(details, handle)
        os.replace(temporary, path)
        self._published = True

    def forget(self) -> None:
        """Remove ``bot.json`` if this process wrote it."""
        if self._published:
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / DETAILS_NAME).unlink()
            self._published = False


def find_running_instance(settings: Settings) -> RunningInstance | None:
    """Return the bot holding ``STATE_DIR``'s lock, or ``None`` when no process holds it."""
    state_dir = settings.state_dir
    if not (state_dir / LOCK_NAME).exists():
        return None
    lock = _lock(state_dir)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        pass
    except OSError:  # cannot even open the lock file: nothing of ours is there to ask
        return None
    else:
        lock.release()
        return None
    return _read_details(state_dir)


def _read_details(state_dir: Path) -> RunningInstance:
    try:
        document: Any = json.loads((state_dir / DETAILS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        document = {}  # it holds the lock but has not written its details yet (or cannot be read by us)
    if not isinstance(document, dict):
        document = {}

    def text(name: str) -> str | None:
        value = document.get(name)
        return value if isinstance(value, str) and value else None

    pid = document.get("pid")
    started = text("started_at")
    try:
        started_at = datetime.datetime.fromisoformat(started) if started else None
    except ValueError:
        started_at = None
    return RunningInstance(
        state_dir=state_dir,
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        control_url=text("control_url"),
        token=text("token"),
        started_at=started_at,
    )


async def control(
    instance: RunningInstance,
    action: str,
    *,
    timeout: float = CONTROL_TIMEOUT,
    json: dict[str, Any] | None = None,
    accept: tuple[int, ...] = (200,),
) -> dict[str, Any]:
    """POST ``/control/<action>`` (with ``json`` as its body) to the running bot and return its JSON answer.

    An answer with a status outside ``accept`` is a failure.

    Raises:
        ControlFailed: the bot published no control address, did not answer, or refused.
    """
    import aiohttp  # commands that never talk to the bot start without the HTTP client

    if instance.control_url is None or instance.token is None:
        raise ControlFailed(
            f"the running bot ({instance.describe()}) publishes no control address; "
            "its HTTP server is off (HTTP_ENABLED=false)"
        )
    url = f"{instance.control_url}{CONTROL_PREFIX}{action}"
    headers = {"Authorization": f"Bearer {instance.token}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(url, headers=headers, json=json) as response,
        ):
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise ControlFailed(
            f"the running bot did not answer {url}: {error or type(error).__name__}"
        ) from error
    if response.status not in accept or not isinstance(body, dict):
        detail = body.get("error") if isinstance(body, dict) else None
        raise ControlFailed(f"the running bot answered {url} with {response.status}: {detail or body}")
    return body


async def flush_running_bot(settings: Settings) -> int | None:
    """Ask the bot running with ``settings`` to write its pending batched rows; return how many it wrote.

    ``None`` when no bot runs. A bot that cannot be asked is logged as a warning: what it committed is in
    the database all the same, only rows still batched in its memory are not.
    """
    instance = await asyncio.to_thread(find_running_instance, settings)
    if instance is None:
        return None
    try:
        answer = await control(instance, "flush")
    except ControlFailed as error:
        log.warning(
            "Could not flush the running bot's pending writes (%s); backing up what it committed", error
        )
        return None
    rows = answer.get("rows")
    written = rows if isinstance(rows, int) else 0
    log.info("The running bot (%s) flushed %d pending rows", instance.describe(), written)
    return written
