"""A bot deployed for real: a bare git remote, a developer clone, the bot's checkout under supervisord.

:func:`deployed_bot` copies this botops into a fresh repository (with the user's ``cogs/``), pushes it to a
bare remote, clones the bot's checkout from it, writes its ``.env`` (sandbox, SQLite, a free HTTP port,
``DEPLOY_RESTART=supervisor:botops@...``) and starts ``supervisord`` (from PyPI) running
``python -m botops run`` there. ``python -m`` imports the checkout's own ``botops``, so a commit that changes
the core really changes the bot. The developer clone pushes what a test deploys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

import botops
from botops.sandbox import DemoWorld, Sandbox, build_demo_world
from tests.bot.process import clean_environment, write_extensions, write_greet

__all__ = ["Deployed", "deployed_bot", "git"]

START_TIMEOUT = 60.0
GIT = shutil.which("git") or "git"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def git(folder: Path, *arguments: str) -> str:
    """Run git in ``folder`` and return its output; fail the test with git's complaint."""
    completed = subprocess.run(  # noqa: S603 - git with fixed arguments
        [GIT, *arguments],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, f"git {' '.join(arguments)}: {completed.stderr}"
    return completed.stdout.strip()


@dataclass
class Deployed:
    """The deployed bot, its checkout, the developer clone and the sandbox it talks to."""

    sandbox: Sandbox
    demo: DemoWorld
    root: Path
    checkout: Path
    dev: Path
    environment: dict[str, str]
    supervisor_config: Path

    def details(self) -> dict[str, object]:
        """Return the running bot's ``bot.json`` (pid, control URL)."""
        document = json.loads((self.checkout / "data" / "bot.json").read_text(encoding="utf-8"))
        assert isinstance(document, dict)
        return document

    def head(self) -> str:
        return git(self.checkout, "rev-parse", "HEAD")

    def push(self, message: str) -> str:
        """Commit everything in the developer clone and push it; return the new commit."""
        git(self.dev, "add", "-A")
        git(self.dev, "commit", "-q", "-m", message)
        git(self.dev, "push", "-q", "origin", "HEAD:main")
        return git(self.dev, "rev-parse", "HEAD")

    async def botops(self, *arguments: str, timeout: float = 180.0) -> tuple[int, str]:
        """Run ``python -m botops <arguments>`` in the checkout; return exit code and output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "botops", *arguments,
            cwd=self.checkout, env=self.environment, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
        assert process.returncode is not None
        return process.returncode, output.decode(errors="replace")

    async def readyz(self) -> dict[str, object] | None:
        """Return the bot's /readyz answer, or None when it does not answer."""
        try:
            url = self.details()["control_url"]
        except (OSError, ValueError, KeyError):
            return None
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
                session.get(f"{url}/readyz") as response,
            ):
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    async def wait_ready(self, commit: str, timeout: float = START_TIMEOUT) -> None:
        """Wait until /readyz is ready with ``commit``."""
        async with asyncio.timeout(timeout):
            while True:
                answer = await self.readyz()
                if answer and answer.get("ready") and commit.startswith(str(answer.get("commit"))):
                    return
                await asyncio.sleep(0.1)

    async def greet(self) -> str:
        """Invoke /greet and return the answer's content."""
        result = await self.sandbox.invoke_slash("greet", member=self.demo.admin, channel=self.demo.general)
        return (await result.response(5.0)).content

    def revision(self) -> str:
        connection = sqlite3.connect(self.checkout / "data" / "bot.db")
        try:
            return str(connection.execute("SELECT version_num FROM alembic_version").fetchone()[0])
        finally:
            connection.close()

    def query(self, sql: str) -> list[tuple[object, ...]]:
        connection = sqlite3.connect(self.checkout / "data" / "bot.db")
        try:
            return list(connection.execute(sql).fetchall())
        finally:
            connection.close()


def _seed_repository(folder: Path) -> None:
    """Make the bot project: this botops, the user's cogs, a .gitignore for what the bot writes."""
    shutil.copytree(Path(botops.__file__).parent, folder / "botops", ignore=_IGNORE)
    write_extensions(folder)
    (folder / ".gitignore").write_text(".env\ndata/\nlogs/\nbackups/\n", encoding="utf-8")
    git(folder, "init", "-q", "-b", "main")
    git(folder, "config", "user.email", "dev@example.invalid")
    git(folder, "config", "user.name", "Dev Eloper")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "the bot")


def _supervisor_config(root: Path, checkout: Path) -> Path:
    config = root / "supervisord.conf"
    config.write_text(
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
            directory={checkout}
            autorestart=unexpected
            exitcodes=0,2
            startsecs=1
            startretries=3
            stopsignal=TERM
            stopwaitsecs=10
            stdout_logfile={root / "bot.stdout"}
            stderr_logfile={root / "bot.stderr"}
            """
        ),
        encoding="utf-8",
    )
    return config


@contextlib.asynccontextmanager
async def deployed_bot(root: Path, *, ready_timeout: float = 20.0) -> AsyncIterator[Deployed]:
    """Run the bot from a fresh checkout under supervisord against a new sandbox; stop it all after."""
    demo = build_demo_world()
    origin, remote, checkout, dev = root / "origin", root / "remote.git", root / "bot", root / "dev"
    origin.mkdir()
    _seed_repository(origin)
    git(root, "clone", "-q", "--bare", str(origin), str(remote))
    git(root, "clone", "-q", str(remote), str(checkout))
    git(root, "clone", "-q", str(remote), str(dev))
    for clone in (checkout, dev):
        git(clone, "config", "user.email", "ops@example.invalid")
        git(clone, "config", "user.name", "Ops Person")
    config = _supervisor_config(root, checkout)
    environment = clean_environment()
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    environment["COLUMNS"] = "200"  # rich's tables at full width in the captured output
    async with Sandbox(world=demo.world) as sandbox:
        env_file = checkout / ".env"
        env_file.write_text(
            "\n".join(
                [
                    f"DISCORD_API_BASE={sandbox.api_base}",
                    f"DISCORD_GATEWAY_URL={sandbox.gateway_url}",
                    f"DISCORD_TOKEN={sandbox.token}",
                    f"DISCORD_DEV_GUILD_ID={demo.guild.id}",
                    f"OWNER_IDS={demo.world.owner.id}",
                    "DATABASE_URL=sqlite+aiosqlite:///data/bot.db",
                    "GUILD_READY_TIMEOUT=0.1",
                    "HTTP_PORT=0",
                    "BACKUP_TIME=",
                    f"DEPLOY_RESTART=supervisor:botops@{config}",
                    f"DEPLOY_READY_TIMEOUT={ready_timeout}",
                    "DEPLOY_WATCH_SECONDS=1",
                    "DEPLOY_TEST_COMMAND=",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        env_file.chmod(0o600)
        supervisord = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "supervisord"), "-n", "-c", str(config),
            env=environment, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        deployed = Deployed(sandbox, demo, root, checkout, dev, environment, config)
        try:
            try:
                await deployed.wait_ready(deployed.head())
            except TimeoutError:
                stderr = (
                    (root / "bot.stderr").read_text(errors="replace")
                    if (root / "bot.stderr").exists()
                    else ""
                )
                raise AssertionError(f"the supervised bot did not become ready:\n{stderr[-3000:]}") from None
            yield deployed
        finally:
            supervisord.terminate()  # supervisord stops the bot (SIGTERM) and then itself
            try:
                await asyncio.wait_for(supervisord.wait(), 30)
            except TimeoutError:
                supervisord.kill()
                await supervisord.wait()


def write_greet_version(deployed: Deployed, version: str, *, broken: bool = False) -> None:
    """Change the developer clone's /greet to answer ``hello <version>``."""
    write_greet(deployed.dev, version, broken=broken)
