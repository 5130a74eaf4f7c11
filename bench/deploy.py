"""Deploys under load: ``botops deploy`` by hot reload and by restart, against stopping and starting by hand.

Run ``.venv/bin/python bench/deploy.py`` (``--rounds N``, default 3). Everything is made in a temporary
folder, as a real deployment has it: this botops copied into a git repository with a ``cogs/greet.py``
answering ``/greet``, a bare remote, a developer clone that pushes, and the bot's checkout (``.env``:
the sandbox, SQLite in ``data/``, a free HTTP port, ``DEPLOY_RESTART=supervisor:botops@...``,
``DEPLOY_WATCH_SECONDS=0``) run by ``supervisord`` as ``python -m botops run``. The sandbox lives in this
process with Discord's 3 s deadline for an answer.

Two streams of ``/greet`` run the whole time: one back to back (one in flight; after a failure it waits
0.1 s), one paced (a new command every 50 ms, not waiting for the previous one, so a lost command does not
hide when the bot is back). A command fails when the sandbox has no bot connected to send it to, when no
answer comes within 3 s, or when the answer is not ``hello ...``. Each round measures:

* **hot reload**: a changed ``cogs/greet.py`` pushed, then ``python -m botops deploy --yes``;
* **restart**: a comment added to ``botops/bot/core.py`` (the plan says restart), then the same deploy;
* **by hand**: the handbook's "kill and start again", ``supervisorctl stop`` then ``supervisorctl start``.

For each: seconds from launching the command to its exit and to ``/readyz`` answering ready with the
commit (from a new process, for the two restarts), commands sent and failed from launch until a second
after both, and the longest gap between two successful answers (the unavailable window). For restarts the
phases come from the bot's log, supervisord's log and the sandbox's request log. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/startup.py, when run from elsewhere

from startup import clean_environment

import botops
from botops.sandbox import DemoWorld, Sandbox, SandboxError, build_demo_world

#: Discord's deadline for an interaction's answer; the sandbox refuses later callbacks.
ANSWER_DEADLINE = 3.0
#: The back-to-back stream waits this long after a failure; the paced stream sends this often.
RETRY_PAUSE = 0.1
PACE = 0.05
#: Traffic is counted until this long after the command exited and the bot was ready.
TAIL = 1.0
RESTART_WINDOW_GOAL = 3.0
READY_TIMEOUT = 60.0
GIT = shutil.which("git") or "git"
VENV_BIN = Path(sys.executable).parent
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")
_SUPERVISOR_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ (.*)$")
#: What the deploy process (not the bot) writes to the same log file.
_DEPLOY_LOGGERS = ("botops.deploy", "botops.instance", "botops.backup.store", "botops.cli")
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+) \w+ +(\S+): (.*)$")

GREET = '''"""/greet answers with the version of this file."""

import discord
from discord import app_commands
from discord.ext import commands

VERSION = "{version}"


class Greet(commands.Cog):
    @app_commands.command(name="greet", description="Say hello")
    async def greet(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"hello {{VERSION}}")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Greet())
'''

# Looked up here, not in the forked child, where loading a library could wait on a lock of another thread.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    if _PRCTL is not None:  # if the bench is killed, supervisord gets SIGTERM and stops the bot
        _PRCTL(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def git(folder: Path, *arguments: str) -> str:
    """Run git in ``folder``; return its output, raise ``RuntimeError`` with its complaint."""
    done = subprocess.run([GIT, *arguments], cwd=folder, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(arguments)}: {done.stderr.strip()}")
    return done.stdout.strip()


# -- the deployment ---------------------------------------------------------------------------------


@dataclass
class Deployment:
    """The bot's checkout under supervisord, the developer clone that pushes, and the sandbox."""

    sandbox: Sandbox
    demo: DemoWorld
    root: Path
    environment: dict[str, str]
    changes: int = 0

    @property
    def checkout(self) -> Path:
        return self.root / "bot"

    @property
    def dev(self) -> Path:
        return self.root / "dev"

    @property
    def config(self) -> Path:
        return self.root / "supervisord.conf"

    def push_greet(self) -> str:
        """Push a new ``cogs/greet.py`` (a hot reload); return the commit."""
        self.changes += 1
        # The size changes each time, so a cached .pyc with the same modification second is never reused.
        source = GREET.format(version=f"v{self.changes + 1}") + "#" * self.changes + "\n"
        (self.dev / "cogs" / "greet.py").write_text(source, encoding="utf-8")
        return self._push(f"greet v{self.changes + 1}")

    def push_core_comment(self) -> str:
        """Push a harmless comment in ``botops/bot/core.py`` (a restart); return the commit."""
        self.changes += 1
        with (self.dev / "botops" / "bot" / "core.py").open("a", encoding="utf-8") as core:
            core.write(f"# bench/deploy.py change {self.changes}\n")
        return self._push(f"core comment {self.changes}")

    def _push(self, message: str) -> str:
        git(self.dev, "commit", "-qam", message)
        git(self.dev, "push", "-q", "origin", "HEAD:main")
        return git(self.dev, "rev-parse", "HEAD")

    def pid(self) -> int | None:
        try:
            return int(json.loads((self.checkout / "data" / "bot.json").read_text(encoding="utf-8"))["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def ready_commit(self, session: aiohttp.ClientSession) -> tuple[int | None, str | None]:
        """Return the running bot's pid and the commit ``/readyz`` reports when ready (else ``None``)."""
        try:
            details = json.loads((self.checkout / "data" / "bot.json").read_text(encoding="utf-8"))
            async with session.get(f"{details['control_url']}/readyz") as response:
                answer = await response.json(content_type=None)
        except (OSError, ValueError, KeyError, TypeError, aiohttp.ClientError, TimeoutError):
            return None, None
        return int(details["pid"]), str(answer.get("commit")) if answer.get("ready") else None

    async def command(self, *argv: str, output: Path) -> int:
        """Run ``argv`` in the checkout with the bot's environment, output to ``output``; return its code."""
        with output.open("ab") as sink:
            process = await asyncio.create_subprocess_exec(
                *argv, cwd=self.checkout, env=self.environment,
                stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink,
            )  # fmt: skip
        return await asyncio.wait_for(process.wait(), 180.0)


def _seed(root: Path, sandbox: Sandbox, demo: DemoWorld) -> None:
    origin = root / "origin"
    shutil.copytree(Path(botops.__file__).parent, origin / "botops", ignore=_IGNORE)
    (origin / "cogs").mkdir()
    (origin / "cogs" / "__init__.py").write_text('"""The bot\'s own features."""\n', encoding="utf-8")
    (origin / "cogs" / "greet.py").write_text(GREET.format(version="v1"), encoding="utf-8")
    (origin / ".gitignore").write_text(".env\ndata/\nlogs/\nbackups/\n__pycache__/\n", encoding="utf-8")
    git(origin, "init", "-q", "-b", "main")
    for folder in (root / "remote.git", root / "bot", root / "dev"):
        if folder.name == "remote.git":
            git(origin, "add", "-A")
            git(origin, "-c", "user.name=Dev", "-c", "user.email=dev@example.invalid", "commit", "-qm", "bot")
            git(root, "clone", "-q", "--bare", str(origin), str(folder))
        else:
            git(root, "clone", "-q", str(root / "remote.git"), str(folder))
            git(folder, "config", "user.name", "Ops Person")
            git(folder, "config", "user.email", "ops@example.invalid")
    settings = {
        **sandbox.environment(),
        "DISCORD_DEV_GUILD_ID": str(demo.guild.id),
        "OWNER_IDS": str(demo.world.owner.id),
        "DATABASE_URL": "sqlite+aiosqlite:///data/bot.db",
        "LOG_LEVEL": "INFO",
        "GUILD_READY_TIMEOUT": "0.1",
        "HTTP_PORT": "0",
        "BACKUP_TIME": "",
        "DEPLOY_RESTART": f"supervisor:botops@{root / 'supervisord.conf'}",
        "DEPLOY_READY_TIMEOUT": str(READY_TIMEOUT),
        "DEPLOY_WATCH_SECONDS": "0",
        "DEPLOY_TEST_COMMAND": "",
    }
    env_file = root / "bot" / ".env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()), encoding="utf-8")
    env_file.chmod(0o600)
    (root / "supervisord.conf").write_text(
        textwrap.dedent(
            f"""\
            [unix_http_server]
            file={root / "supervisor.sock"}
            [supervisord]
            logfile={root / "supervisord.log"}
            pidfile={root / "supervisord.pid"}
            childlogdir={root}
            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
            [supervisorctl]
            serverurl=unix://{root / "supervisor.sock"}
            [program:botops]
            command={sys.executable} -m botops run
            directory={root / "bot"}
            autorestart=unexpected
            exitcodes=0,2
            startsecs=1
            stopsignal=TERM
            stopwaitsecs=10
            stdout_logfile={root / "bot.stdout"}
            stderr_logfile={root / "bot.stderr"}
            """
        ),
        encoding="utf-8",
    )


@contextlib.asynccontextmanager
async def deployment(root: Path) -> AsyncIterator[Deployment]:
    """Set up the repository, the checkout and supervisord with a sandbox; stop it all afterwards."""
    demo = build_demo_world()
    async with Sandbox(world=demo.world, ack_deadline=ANSWER_DEADLINE) as sandbox:
        _seed(root, sandbox, demo)
        environment = clean_environment()
        environment.pop("PYTHONDONTWRITEBYTECODE", None)  # a deployed bot starts from cached bytecode
        environment["PATH"] = f"{VENV_BIN}{os.pathsep}{environment.get('PATH', '')}"
        deployed = Deployment(sandbox, demo, root, environment)
        supervisord = await asyncio.create_subprocess_exec(
            str(VENV_BIN / "supervisord"), "-n", "-c", str(deployed.config), env=environment,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )  # fmt: skip
        try:
            head = git(deployed.checkout, "rev-parse", "HEAD")
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
                await wait_ready(deployed, session, head, old_pid=None)
            yield deployed
        finally:
            supervisord.terminate()  # supervisord stops the bot (SIGTERM), then itself
            try:
                await asyncio.wait_for(supervisord.wait(), 30)
            except TimeoutError:
                supervisord.kill()
                await supervisord.wait()


async def wait_ready(
    deployed: Deployment, session: aiohttp.ClientSession, commit: str, *, old_pid: int | None
) -> float:
    """Poll ``/readyz`` every 50 ms until it is ready with ``commit`` (not from ``old_pid``); return when.

    Raises:
        RuntimeError: not ready within READY_TIMEOUT; the end of the bot's stderr is in the message.
    """
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        pid, reported = await deployed.ready_commit(session)
        if reported and commit.startswith(reported) and pid != old_pid:
            return time.monotonic()
        await asyncio.sleep(0.05)
    stderr = (deployed.root / "bot.stderr").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the bot was not ready with {commit[:12]} in {READY_TIMEOUT:.0f} s:\n{stderr}")


# -- the traffic --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One /greet: when it was sent, when it was answered or given up, and how it ended."""

    sent: float
    ended: float
    failure: str | None  # None: answered "hello ..."


@dataclass
class Traffic:
    """Two streams of /greet through the sandbox; every command is kept."""

    deployed: Deployment
    commands: list[Command] = field(default_factory=list)
    stopping: bool = False

    async def greet(self) -> Command:
        sandbox, demo, sent = self.deployed.sandbox, self.deployed.demo, time.monotonic()
        failure: str | None = None
        try:
            result = await sandbox.invoke_slash("greet", member=demo.admin, channel=demo.general)
            answer = await result.response(ANSWER_DEADLINE + 0.5)
            if not answer.content.startswith("hello "):
                failure = "wrong answer"
        except SandboxError as error:
            failure = "no bot connected" if "no bot is connected" in str(error) else f"refused: {error}"
        except TimeoutError:
            failure = "not answered in 3 s"
        command = Command(sent, time.monotonic(), failure)
        self.commands.append(command)
        return command

    async def back_to_back(self) -> None:
        while not self.stopping:
            if (await self.greet()).failure is not None:
                await asyncio.sleep(RETRY_PAUSE)

    async def paced(self) -> None:
        pending: set[asyncio.Task[Command]] = set()
        while not self.stopping:
            task = asyncio.create_task(self.greet())
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(PACE)
        await asyncio.gather(*pending)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Traffic]:
        tasks = [asyncio.create_task(self.back_to_back()), asyncio.create_task(self.paced())]
        try:
            yield self
        finally:
            self.stopping = True
            await asyncio.gather(*tasks)


# -- one measurement ----------------------------------------------------------------------------------


@dataclass
class Trial:
    """What one deploy (or stop and start) showed."""

    kind: str
    exited: float  # seconds from launch
    ready: float
    sent: int
    failures: dict[str, int]
    gap: float
    phases: list[tuple[str, float]] = field(default_factory=list)  # seconds from the gap's start

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


async def measure(
    deployed: Deployment,
    traffic: Traffic,
    kind: str,
    commit: str,
    action: Callable[[], Awaitable[int]],
    *,
    new_process: bool,
) -> Trial:
    """Run ``action`` under traffic; time its exit and readiness; count the traffic around it."""
    old_pid = deployed.pid() if new_process else None
    log_start = _sizes(deployed.checkout / "logs" / "botops.log", deployed.root / "supervisord.log")
    requests_start = len(deployed.sandbox.requests)
    wall, launched = time.time(), time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        ready_task = asyncio.create_task(wait_ready(deployed, session, commit, old_pid=old_pid))
        code = await action()
        exited = time.monotonic()
        ready = await ready_task
    if code != 0:
        raise RuntimeError(f"{kind}: the command exited with {code}; see {deployed.root / 'commands.out'}")
    end = max(exited, ready) + TAIL
    await asyncio.sleep(max(0.0, end - time.monotonic()) + ANSWER_DEADLINE + 0.6)  # the last ones settle
    during = [c for c in traffic.commands if launched <= c.sent <= end]
    failures: dict[str, int] = {}
    for command in during:
        if command.failure is not None:
            failures[command.failure] = failures.get(command.failure, 0) + 1
    answers = sorted(c.ended for c in traffic.commands if c.failure is None and c.ended <= end)
    before = [t for t in answers if t < launched][-1:]
    answered = before + [t for t in answers if t >= launched]
    gaps = [(later - earlier, earlier) for earlier, later in itertools.pairwise(answered)]
    gap, gap_start = max(gaps) if gaps else (end - launched, launched)
    trial = Trial(kind, exited - launched, ready - launched, len(during), failures, gap)
    if new_process:
        trial.phases = phases(deployed, log_start, requests_start, wall, launched, gap_start, gap, ready)
    return trial


def _sizes(*paths: Path) -> tuple[int, ...]:
    return tuple(path.stat().st_size if path.exists() else 0 for path in paths)


def phases(
    deployed: Deployment,
    log_start: tuple[int, ...],
    requests_start: int,
    wall: float,
    launched: float,
    gap_start: float,
    gap: float,
    ready: float,
) -> list[tuple[str, float]]:
    """Return the restart's steps from the logs, in seconds from the last answer before the gap."""

    def at(stamp: float) -> float:  # a wall-clock time from a log, on the monotonic clock
        return stamp - wall + launched - gap_start

    marks: list[tuple[str, float]] = [("command launched", launched - gap_start)]
    with (deployed.root / "supervisord.log").open(encoding="utf-8", errors="replace") as text:
        text.seek(log_start[1])
        for line in text:
            found = _SUPERVISOR_LINE.match(line)
            if found and found.group(2).startswith(("stopped:", "spawned:", "success:")):
                stamp = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                what = found.group(2).split(" with ")[0].split(",")[0]
                marks.append((f"supervisord: {what}", at(stamp)))
    wanted = {
        "SIGTERM received": "bot: SIGTERM received",
        "the bot stopped": "bot: closed (the bot stopped)",
        "serving /livez": "new bot: HTTP server up (schema checked)",
        "in the last 24 h": "new bot: start guard read",
        "extensions loaded": "new bot: extensions loaded",
        "synced ": "new bot: commands synced",
        "shard 0 connected": "new bot: shard connected (READY)",
        "ready as": "new bot: on_ready",
    }
    first_line, stopped = "new bot: first log line (interpreter, imports, settings)", False
    with (deployed.checkout / "logs" / "botops.log").open(encoding="utf-8", errors="replace") as text:
        text.seek(log_start[0])
        for line in text:
            found = _LOG_LINE.match(line)
            if found is None or found.group(2).startswith(_DEPLOY_LOGGERS):
                continue
            stamp, seen = at(datetime.fromisoformat(found.group(1)).timestamp()), {m for m, _ in marks}
            label = next((v for k, v in wanted.items() if k in found.group(3)), None)
            for name in (first_line if stopped else None, label):
                if name is not None and name not in seen:
                    marks.append((name, stamp))
            stopped = stopped or "the bot stopped" in found.group(3)
    logins = [r for r in deployed.sandbox.requests[requests_start:] if r.path.endswith("/users/@me")]
    if logins:
        marks.append(("new bot: login (GET /users/@me)", logins[-1].at - gap_start))
    marks += [
        ("last answer before the gap", 0.0),
        ("first answer after the gap", gap),
        ("/readyz ready with the commit", ready - gap_start),
    ]
    return sorted(marks, key=lambda mark: mark[1])


# -- the run ----------------------------------------------------------------------------------------


async def bench(rounds: int, *, keep: bool = False) -> list[Trial]:
    """Run ``rounds`` of hot reload, restart deploy and stop and start by hand; return every trial."""
    trials: list[Trial] = []
    with contextlib.ExitStack() as stack:
        prefix = "botops-bench-deploy-"
        folder = (
            tempfile.mkdtemp(prefix=prefix)
            if keep
            else stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix))
        )
        if keep:
            print(f"working folder, kept: {folder}", flush=True)
        async with deployment(Path(folder)) as deployed:
            out = deployed.root / "commands.out"
            deploy = (sys.executable, "-m", "botops", "deploy", "--yes")
            supervisorctl = (str(VENV_BIN / "supervisorctl"), "-c", str(deployed.config))
            await deployed.command(sys.executable, "-m", "botops", "deploy", "--dry-run", output=out)  # warm

            async def by_hand() -> int:
                stopped = await deployed.command(*supervisorctl, "stop", "botops", output=out)
                return stopped or await deployed.command(*supervisorctl, "start", "botops", output=out)

            async def deploying() -> int:
                return await deployed.command(*deploy, output=out)

            async with Traffic(deployed).running() as traffic:
                await asyncio.sleep(2.0)
                for number in range(1, rounds + 1):
                    print(f"round {number} of {rounds}: hot reload, restart, stop and start ...", flush=True)
                    commit = deployed.push_greet()
                    trials.append(
                        await measure(deployed, traffic, "hot reload", commit, deploying, new_process=False)
                    )
                    commit = deployed.push_core_comment()
                    trials.append(
                        await measure(deployed, traffic, "restart", commit, deploying, new_process=True)
                    )
                    trials.append(
                        await measure(deployed, traffic, "by hand", commit, by_hand, new_process=True)
                    )
    return trials


# -- the report -------------------------------------------------------------------------------------

LABELS = {
    "hot reload": "hot reload (botops deploy)",
    "restart": "restart (botops deploy)",
    "by hand": "supervisorctl stop + start",
}


def _span(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f}"


def print_report(trials: list[Trial], rounds: int) -> None:
    """Print the table, the goal lines and the restart's phases."""
    by_kind = {kind: [t for t in trials if t.kind == kind] for kind in LABELS}
    print(f"\n{rounds} rounds; deploy and ready in seconds from launch, p50 / max; DEPLOY_WATCH_SECONDS=0")
    header = (
        f"{'kind':<28} | {'exit s':>11} | {'ready s':>11} | {'sent':>5} | {'failed':>6} | "
        f"{'longest gap s':>13}"
    )
    print(header)
    print("-" * len(header))
    for kind, label in LABELS.items():
        rows = by_kind[kind]
        print(
            f"{label:<28} | {_span([t.exited for t in rows]):>11} | {_span([t.ready for t in rows]):>11} | "
            f"{sum(t.sent for t in rows):>5} | {sum(t.failed for t in rows):>6} | "
            f"{_span([t.gap for t in rows]):>13}"
        )
    for kind, label in LABELS.items():
        causes: dict[str, int] = {}
        for trial in by_kind[kind]:
            for cause, count in trial.failures.items():
                causes[cause] = causes.get(cause, 0) + count
        if causes:
            print(f"  failed, {label}: " + ", ".join(f"{n} {cause}" for cause, n in sorted(causes.items())))
    hot = sum(t.failed for t in by_kind["hot reload"])
    window = max(t.gap for t in by_kind["restart"])
    restart, manual = (statistics.median(t.gap for t in by_kind[k]) for k in ("restart", "by hand"))
    reload_gap = statistics.median(t.gap for t in by_kind["hot reload"])
    print(f"\nhot reload failed commands: {hot} (goal 0) {'met' if hot == 0 else 'MISSED'}")
    print(
        f"restart unavailable window: {window:.2f} s, the worst of {rounds} (p50 {restart:.2f} s) "
        f"(goal < {RESTART_WINDOW_GOAL:g} s) {'met' if window < RESTART_WINDOW_GOAL else 'MISSED'}"
    )
    print(f"restart window ÷ stop + start by hand: {restart / manual:.2f} (p50s)")
    print(f"hot reload longest gap ÷ restart window: {reload_gap / restart:.3f} (p50s)")
    for kind in ("restart", "by hand"):
        print(f"\nphases of each {LABELS[kind]}, seconds from the last answer before the gap:")
        columns = [dict(t.phases) for t in by_kind[kind]]
        names = sorted({n for c in columns for n in c}, key=lambda n: statistics.median(
            c[n] for c in columns if n in c))  # fmt: skip
        for name in names:
            cells = "".join(f"{c[name]:>9.3f}" if name in c else f"{'-':>9}" for c in columns)
            print(f"  {name:<66}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="deploys of each kind (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (logs) afterwards")
    args = parser.parse_args()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs", flush=True)
    print_report(asyncio.run(bench(args.rounds, keep=args.keep)), args.rounds)


if __name__ == "__main__":
    main()
