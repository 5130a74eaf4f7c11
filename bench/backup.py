"""Back up a live 1 GiB SQLite database five ways while a writer commits every 10 ms, and compare.

Run ``.venv/bin/python bench/backup.py``; ``--quick`` makes it a 64 MiB sanity run, ``--methods`` picks
a subset. The database is generated once into ``--workdir`` and reused while its size and generator
match: a bot's tables (``member_xp`` with its leaderboard index, ``command_usage``) and a
``message_log`` of chat text (a Zipf-weighted vocabulary of pseudo-words, mentions of random user ids,
some links with random tokens and random attachment hashes), so that compression ratios mean
something. It is in WAL mode, like the bot's.

A writer runs in a separate process (this file with ``--writer-child``) with the bot's connection
pragmas (``botops.db.engine.SQLITE_PRAGMAS``: busy_timeout 5000, WAL, synchronous NORMAL, no automatic
checkpoint) and, as the running bot, a thread checkpointing the WAL every second: every 10 ms
it adds XP to a random member and inserts a row into ``bench_writes``, one transaction each, and times
BEGIN to COMMIT. For each method the bench checkpoints the WAL (``wal_checkpoint(TRUNCATE)``), flushes
the page cache's dirty pages (``sync``), lets the writer go on alone for a moment, then opens the
writer's window, copies, and closes the window. The methods:

* ``cp``: ``cp`` of the main file, the speed of the storage (with a warm cache, of memory: GNU cp uses
  ``copy_file_range``), and unsafe: its copy is checked with ``PRAGMA integrity_check``;
* ``cli-backup``: ``sqlite3 SRC ".backup DST"``, which restarts whenever the writer commits;
* ``vacuum``: ``sqlite3 SRC "VACUUM INTO 'DST'"``;
* ``vacuum-gzip``: the same followed by ``gzip -6`` (the cron recipe in Litestream's documentation);
* ``botops``: ``python -m botops backup create``, the real CLI (online copy in one step, integrity
  check, zstandard, SHA-256, manifest), in its own process with its start-up included.

After the window, each copy (botops' decompressed first, untimed) is opened and checked for the commits
that had finished before the method started (``bench_writes``' last id). The table also shows how much
CPU other work on the machine took during each window (psutil: the machine's busy time less this
process's, its children's and the writer's), since that moves every figure. Nothing runs as root, so
the page cache cannot be dropped: every method reads a warm cache. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import select
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/measure.py, bench/startup.py

from measure import percentile
from startup import clean_environment

from botops.backup.compression import decompress_file
from botops.backup.sqlite import integrity_problem
from botops.db.checkpoint import INTERVAL as CHECKPOINT_INTERVAL
from botops.db.engine import SQLITE_PRAGMAS

#: Goals from the issue.
GOAL_VS_CP = 5.0  # botops takes at most this many times cp's time
GOAL_VS_VACUUM_GZIP = 4.0  # VACUUM INTO + gzip takes at least this many times botops' time
GOAL_WRITER_P99_MS = 5.0
GOAL_WRITER_WORST_MS = 50.0
#: The writer commits once per interval; a commit that ends late skips the ticks it missed.
WRITE_INTERVAL = 0.010
#: The writer runs alone this long after each checkpoint, before a method's window opens.
WARMUP = 0.5
#: Any method other than the sqlite3 CLI's .backup gets this long before the bench gives up on it.
METHOD_TIMEOUT = 900.0
#: Bumped when the generated content changes, so a cached database of the old kind is not reused.
GENERATOR = "2"
MIB = 1 << 20
METHODS = ("cp", "cp-sync", "cli-backup", "vacuum", "vacuum-gzip", "botops")
LABELS = {
    "cp": "cp (unsafe)",
    "cp-sync": "cp + fsync (unsafe)",
    "cli-backup": 'sqlite3 ".backup"',
    "vacuum": "VACUUM INTO",
    "vacuum-gzip": "VACUUM INTO + gzip -6",
    "botops": "botops backup create",
}

SCHEMA = """
CREATE TABLE member_xp (
    guild_id BIGINT NOT NULL, user_id BIGINT NOT NULL, xp BIGINT NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 0, last_awarded_at DATETIME, PRIMARY KEY (guild_id, user_id)
);
CREATE INDEX ix_member_xp_guild_id_xp ON member_xp (guild_id, xp DESC);
CREATE TABLE command_usage (
    hour INTEGER NOT NULL, guild_id BIGINT NOT NULL, command VARCHAR(100) NOT NULL, kind VARCHAR(8) NOT NULL,
    outcome VARCHAR(8) NOT NULL, uses INTEGER NOT NULL, total_seconds FLOAT NOT NULL,
    PRIMARY KEY (hour, guild_id, command, kind, outcome)
);
CREATE TABLE message_log (
    id INTEGER PRIMARY KEY, guild_id BIGINT NOT NULL, channel_id BIGINT NOT NULL, author_id BIGINT NOT NULL,
    created_at DATETIME NOT NULL, content TEXT NOT NULL, attachment_sha256 BLOB
);
CREATE INDEX ix_message_log_guild_id_created_at ON message_log (guild_id, created_at);
CREATE TABLE bench_writes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, written_at REAL NOT NULL, note TEXT NOT NULL
);
CREATE TABLE bench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Sizes:
    """How big a run is; ``--quick`` uses the small set."""

    size_mb: int
    cli_timeout: float
    alone_seconds: float  # the writer with nothing copying, for reference


FULL = Sizes(size_mb=1024, cli_timeout=60.0, alone_seconds=5.0)
QUICK = Sizes(size_mb=64, cli_timeout=5.0, alone_seconds=2.0)


# -- the database --------------------------------------------------------------------------------------


def _vocabulary(rng: random.Random) -> list[str]:
    """Return a bag of words to draw from uniformly: 3000 pseudo-words, repeated by Zipf weight."""
    syllables = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"] + ["xp", "gg", "lol", "ok", "pls"]
    words = sorted(
        {"".join(rng.choices(syllables, k=rng.choice((1, 1, 2, 2, 2, 3, 4)))) for _ in range(3600)}
    )
    rng.shuffle(words)
    words = words[:3000]
    return rng.choices(words, weights=[1 / (rank + 1) for rank in range(len(words))], k=100_000)


def _snowflake(rng: random.Random) -> int:
    # Discord ids: milliseconds since 2015 in the high bits, worker and sequence below.
    return (rng.randrange(200_000_000_000, 380_000_000_000) << 22) | rng.getrandbits(22)


class Generator:
    """Rows of a bot's database, drawn from one seeded random source."""

    def __init__(self, seed: int = 20261128) -> None:
        self.rng = random.Random(seed)
        self.bag = _vocabulary(self.rng)
        self.guilds = [_snowflake(self.rng) for _ in range(40)]
        self.channels = {guild: [_snowflake(self.rng) for _ in range(12)] for guild in self.guilds}
        self.commands = [
            "rank", "top", "xp", "help", "ping", "stats", "health", "play", "skip", "ban", "warn",
        ]  # fmt: skip
        self.hour = 480_000  # hours since 1970: mid-2024
        self.clock = 1_717_000_000.0  # the message log's time, moving forward

    def members(self, count: int) -> list[tuple[Any, ...]]:
        rng = self.rng
        return [
            (
                rng.choice(self.guilds),
                _snowflake(rng),
                int(rng.paretovariate(1.2) * 50),
                rng.randrange(1, 5000),
                _timestamp(self.clock - rng.uniform(0, 3e7)),
            )
            for _ in range(count)
        ]

    def usage(self, count: int) -> list[tuple[Any, ...]]:
        rng, rows = self.rng, []
        for _ in range(count):
            self.hour += rng.random() < 0.02
            uses = rng.randrange(1, 300)
            rows.append(
                (
                    self.hour,
                    rng.choice(self.guilds),
                    rng.choice(self.commands),
                    rng.choice(("slash", "slash", "text")),
                    rng.choice(("success",) * 8 + ("refused", "error")),
                    uses,
                    uses * rng.uniform(0.002, 0.4),
                )
            )
        return rows

    def messages(self, count: int) -> list[tuple[Any, ...]]:
        rng = self.rng
        lengths = [min(250, int(rng.expovariate(1 / 26)) + 1) for _ in range(count)]
        words = rng.choices(self.bag, k=sum(lengths))
        rows, start = [], 0
        for length in lengths:
            text = " ".join(words[start : start + length])
            start += length
            roll = rng.random()
            attachment = None
            if roll < 0.10:
                text = f"<@{_snowflake(rng)}> {text}"
            elif roll < 0.25:
                attachment = rng.randbytes(32)
                text += (
                    f" https://cdn.discordapp.com/attachments/{_snowflake(rng)}/{rng.randbytes(9).hex()}.png"
                )
            self.clock += rng.expovariate(1 / 2.0)
            guild = rng.choice(self.guilds)
            rows.append(
                (
                    guild,
                    rng.choice(self.channels[guild]),
                    _snowflake(rng),
                    _timestamp(self.clock),
                    text,
                    attachment,
                )
            )
        return rows


def _timestamp(seconds: float) -> str:
    # How SQLAlchemy's DateTime stores a time in SQLite.
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e6):06d}"


def cached_database(workdir: Path, size_mb: int) -> tuple[Path, float | None]:
    """Return the database of ``size_mb`` MiB in ``workdir``, generating it unless a matching one is there.

    The second value is how long generating took, ``None`` when the cached file was reused.
    """
    path = workdir / f"bot-{size_mb}mib.db"
    if path.exists() and _meta(path) == {"generator": GENERATOR, "size_mb": str(size_mb)}:
        return path, None
    partial = path.with_name(path.name + ".partial")
    for stale in (path, partial, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    generate(partial, size_mb * MIB)
    partial.rename(path)
    return path, time.perf_counter() - started


def _meta(path: Path) -> dict[str, str]:
    try:
        connection = sqlite3.connect(path)
        try:
            return dict(connection.execute("SELECT key, value FROM bench_meta").fetchall())
        finally:
            connection.close()
    except sqlite3.Error:
        return {}


def generate(path: Path, size: int) -> None:
    """Fill a new database at ``path`` until it has ``size`` bytes, then switch it to WAL mode."""
    generator = Generator()
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -1048576"):
            connection.execute(f"PRAGMA {pragma}")
        connection.executescript(SCHEMA)
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        print(f"generating {size // MIB} MiB into {path} ...", flush=True)
        while connection.execute("PRAGMA page_count").fetchone()[0] * page_size < size:
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT OR IGNORE INTO member_xp VALUES (?, ?, ?, ?, ?)", generator.members(15_000)
            )
            connection.executemany(
                "INSERT OR IGNORE INTO command_usage VALUES (?, ?, ?, ?, ?, ?, ?)", generator.usage(5_000)
            )
            connection.executemany(
                "INSERT INTO message_log (guild_id, channel_id, author_id, created_at, content, "
                "attachment_sha256) VALUES (?, ?, ?, ?, ?, ?)",
                generator.messages(20_000),
            )
            connection.execute("COMMIT")
        connection.executemany(
            "INSERT INTO bench_meta VALUES (?, ?)", [("generator", GENERATOR), ("size_mb", str(size // MIB))]
        )
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()


def checkpoint(path: Path) -> None:
    """Fold the WAL into the database file and truncate it; the writer waits meanwhile."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    try:
        for _ in range(20):
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the WAL of {path} could not be checkpointed: it stayed busy")
    finally:
        connection.close()


def table_rows(path: Path) -> dict[str, int]:
    """Return the row count of each of the generated tables."""
    connection = sqlite3.connect(path)
    try:
        return {
            name: connection.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608
            for name in ("member_xp", "command_usage", "message_log")
        }
    finally:
        connection.close()


# -- the writer (this file with --writer-child) ----------------------------------------------------------


def _checkpoint_forever(database: Path) -> None:
    connection = sqlite3.connect(database, timeout=5)
    while True:
        time.sleep(CHECKPOINT_INTERVAL)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            continue


def run_writer(database: Path) -> None:
    """Commit every WRITE_INTERVAL; answer ``start`` and ``stop`` on stdin with JSON lines on stdout.

    ``start`` opens a window and answers the last committed id; ``stop`` closes it and answers the
    window's commit latencies. End of input ends the writer.
    """
    connection = sqlite3.connect(database, isolation_level=None)
    for name, value in SQLITE_PRAGMAS:
        connection.execute(f"PRAGMA {name} = {value}")
    # As the running bot does (botops.db.checkpoint): commits never checkpoint (wal_autocheckpoint=0 in
    # SQLITE_PRAGMAS); a thread of its own checkpoints PASSIVE every CHECKPOINT_INTERVAL.
    threading.Thread(target=_checkpoint_forever, args=(database,), daemon=True).start()
    rng = random.Random()
    highest = connection.execute("SELECT max(rowid) FROM member_xp").fetchone()[0]
    picks = json.dumps([rng.randrange(1, highest + 1) for _ in range(2000)])
    members = connection.execute(
        "SELECT guild_id, user_id FROM member_xp WHERE rowid IN (SELECT value FROM json_each(?))", (picks,)
    ).fetchall()
    latencies: list[float] = []
    last_id, errors, window = 0, 0, False

    def commit() -> None:
        nonlocal last_id, errors
        guild_id, user_id = rng.choice(members)
        started = time.perf_counter()
        try:
            connection.execute("BEGIN")
            connection.execute(
                "UPDATE member_xp SET xp = xp + ?, messages = messages + 1, last_awarded_at = ? "
                "WHERE guild_id = ? AND user_id = ?",
                (rng.randrange(15, 26), _timestamp(time.time()), guild_id, user_id),
            )
            cursor = connection.execute(
                "INSERT INTO bench_writes (written_at, note) VALUES (?, ?)",
                (time.time(), f"xp for {user_id}"),
            )
            connection.execute("COMMIT")
            last_id = cursor.lastrowid or last_id
        except sqlite3.Error:
            errors += 1
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        if window:
            latencies.append((time.perf_counter() - started) * 1000)

    def answer(reply: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    commit()
    answer({"ready": True})
    buffered, next_tick = b"", time.monotonic() + WRITE_INTERVAL
    while True:
        readable, _, _ = select.select([0], [], [], max(0.0, next_tick - time.monotonic()))
        if readable:
            data = os.read(0, 4096)
            if not data:
                return
            buffered += data
            while b"\n" in buffered:
                line, _, buffered = buffered.partition(b"\n")
                if line == b"start":
                    window, latencies, errors = True, [], 0
                    answer({"last_id": last_id})
                elif line == b"stop":
                    window = False
                    answer({"latencies_ms": latencies, "errors": errors})
            continue
        commit()
        next_tick = max(next_tick + WRITE_INTERVAL, time.monotonic())


class Writer:
    """The writer child process, driven over its stdin and stdout."""

    def __init__(self, database: Path) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, this file
            [sys.executable, __file__, "--writer-child", str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the writer exited with code {self.process.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def window(self, work: Callable[[], Copy | None]) -> tuple[Copy | None, float, dict[str, Any], float]:
        """Run ``work`` in a window; return its copy, seconds, the writer's answer and others' CPU in cores.

        Others' CPU is the machine's busy time over the window less this process's, its reaped children's
        and the writer's: the share of the two cores that other work on the machine took.
        """
        writer = psutil.Process(self.process.pid)
        me = psutil.Process()

        def ours() -> float:
            mine, its = me.cpu_times(), writer.cpu_times()
            return mine.user + mine.system + mine.children_user + mine.children_system + its.user + its.system

        def busy() -> float:
            times = psutil.cpu_times()
            return float(times.user + times.nice + times.system + times.irq + times.softirq)

        last_id = self.ask("start")["last_id"]
        busy_before, ours_before, started = busy(), ours(), time.perf_counter()
        copy = work()
        seconds = time.perf_counter() - started
        others = (busy() - busy_before - (ours() - ours_before)) / seconds
        answer = self.ask("stop")
        answer["last_id"] = last_id
        return copy, seconds, answer, max(0.0, others)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the methods ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    """What a method left: the file it produced, and how to get the uncompressed copy to check."""

    output: Path | None  # None: it produced nothing
    database: Path | None = None  # the uncompressed copy, if not the output itself
    unpack: Callable[[], Path] | None = None  # makes the uncompressed copy, after the timed window
    note: str = ""

    def checkable(self) -> Path | None:
        """Return the uncompressed copy, unpacking it first if need be; ``None`` without one."""
        if self.unpack is not None:
            return self.unpack()
        return self.database or self.output


def _run(
    command: list[str], *, timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None
) -> None:
    result = subprocess.run(  # noqa: S603 - fixed programs, paths of this bench
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {result.returncode}: {result.stderr.strip()}")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} is not installed: install it (apt-get install {name}) or leave its method out"
        )
    return found


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def copy_with_cp(source: Path, out: Path, sizes: Sizes) -> Copy:
    target = out / "cp.db"
    _run([_tool("cp"), str(source), str(target)], timeout=METHOD_TIMEOUT)
    return Copy(target)


def copy_with_cp_sync(source: Path, out: Path, sizes: Sizes) -> Copy:
    """cp, then the copy flushed to disk: the disk's speed, which cp alone (into the page cache) is not."""
    target = out / "cp-sync.db"
    _run([_tool("cp"), str(source), str(target)], timeout=METHOD_TIMEOUT)
    descriptor = os.open(target, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return Copy(target)


def copy_with_cli_backup(source: Path, out: Path, sizes: Sizes) -> Copy:
    target = out / "cli-backup.db"
    try:
        _run([_tool("sqlite3"), str(source), f".backup {target}"], timeout=sizes.cli_timeout)
    except subprocess.TimeoutExpired:
        target.unlink(missing_ok=True)
        return Copy(None, note=f"did not finish in {sizes.cli_timeout:.0f} s")
    return Copy(target)


def copy_with_vacuum(source: Path, out: Path, sizes: Sizes) -> Copy:
    target = out / "vacuum.db"
    _run(
        [_tool("sqlite3"), str(source), ".timeout 5000", f"VACUUM INTO {_sql_string(target)}"],
        timeout=METHOD_TIMEOUT,
    )
    return Copy(target)


def copy_with_vacuum_gzip(source: Path, out: Path, sizes: Sizes) -> Copy:
    copy = copy_with_vacuum(source, out, sizes)
    assert copy.output is not None
    # -k keeps the uncompressed copy for the check afterwards; the work is the recipe's.
    _run([_tool("gzip"), "-6", "-k", str(copy.output)], timeout=METHOD_TIMEOUT)
    return Copy(Path(f"{copy.output}.gz"), database=copy.output)


def copy_with_botops(source: Path, out: Path, sizes: Sizes) -> Copy:
    backups = out / "botops-backups"
    _botops_backup(source, backups, out)
    (manifest_path,) = backups.glob("*.json")
    manifest = json.loads(manifest_path.read_text())
    data = backups / f"{manifest['id']}.db.zst"
    database = out / "botops.db"

    def unpack() -> Path:
        decompress_file(data, database, limit=int(manifest["raw_size"]))
        return database

    return Copy(data, unpack=unpack)


def _botops_backup(database: Path, backups: Path, folder: Path) -> None:
    env = {
        **clean_environment(),
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "BACKUP_DIR": str(backups),
        "LOG_DIR": str(folder / "logs"),
        "STATE_DIR": str(folder / "state"),  # no bot runs there, so there is none to flush
        "HTTP_ENABLED": "false",
    }
    command = [sys.executable, "-m", "botops", "backup", "create", "--env-file", str(folder / "no.env")]
    _run(command, timeout=METHOD_TIMEOUT, env=env, cwd=folder)


COPIERS: dict[str, Callable[[Path, Path, Sizes], Copy]] = {
    "cp": copy_with_cp,
    "cp-sync": copy_with_cp_sync,
    "cli-backup": copy_with_cli_backup,
    "vacuum": copy_with_vacuum,
    "vacuum-gzip": copy_with_vacuum_gzip,
    "botops": copy_with_botops,
}


# -- one measurement ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One method's figures: its time, its output, what the writer saw meanwhile, and its copy's state."""

    method: str
    seconds: float
    output_size: int | None
    latencies_ms: list[float]
    writer_errors: int
    copy_state: str
    finished: bool
    others_cores: float  # CPU that other work on the machine took meanwhile, in cores

    @property
    def expected_commits(self) -> int:
        return round(self.seconds / WRITE_INTERVAL)


def copy_state(copy: Copy, last_id: int, *, integrity: bool) -> str:
    """Describe the copy: integrity (if asked) and whether the commits finished before the start are in it."""
    database = copy.checkable()
    if database is None:
        return "no copy"
    parts = []
    if integrity:
        problem = integrity_problem(database)
        parts.append("integrity ok" if problem is None else f"CORRUPT ({problem[:60]})")
    try:
        connection = sqlite3.connect(database)
        try:
            newest = connection.execute("SELECT max(id) FROM bench_writes").fetchone()[0] or 0
        finally:
            connection.close()
    except sqlite3.Error as error:
        return ", ".join([*parts, f"unreadable ({error})"])
    missing = last_id - newest
    parts.append("all earlier commits" if missing <= 0 else f"{missing} earlier commits MISSING")
    return ", ".join(parts)


def measure_method(method: str, database: Path, out: Path, writer: Writer, sizes: Sizes) -> Result:
    """Checkpoint, sync, let the writer run alone, then time ``method`` in a writer window; check its copy."""
    checkpoint(database)
    os.sync()
    time.sleep(WARMUP)
    copy, seconds, window, others = writer.window(lambda: COPIERS[method](database, out, sizes))
    assert copy is not None
    state = copy_state(copy, window["last_id"], integrity=method in ("cp", "cp-sync"))
    if copy.note:
        state = f"{copy.note}; {state}"
    output_size = copy.output.stat().st_size if copy.output is not None else None
    return Result(
        method,
        seconds,
        output_size,
        window["latencies_ms"],
        window["errors"],
        state,
        copy.output is not None,
        others,
    )


def writer_alone(database: Path, writer: Writer, seconds: float) -> Result:
    """The writer's latencies with nothing copying, for reference."""
    checkpoint(database)
    os.sync()
    time.sleep(WARMUP)
    _, seconds, window, others = writer.window(lambda: time.sleep(seconds))
    return Result("(writer alone)", seconds, None, window["latencies_ms"], window["errors"], "", True, others)


def botops_fixed_cost(workdir: Path) -> float:
    """Time ``botops backup create`` of a one-row database, best of three: start-up and fixed steps."""
    times = []
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        folder = Path(scratch)
        database = folder / "tiny.db"
        connection = sqlite3.connect(database, isolation_level=None)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")
        connection.close()
        for run in range(3):
            started = time.perf_counter()
            _botops_backup(database, folder / f"backups-{run}", folder)
            times.append(time.perf_counter() - started)
    return min(times)


@dataclass
class Clean:
    """Empties the output folder of a method."""

    folder: Path

    def __enter__(self) -> Path:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        return self.folder

    def __exit__(self, *_: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def bench(database: Path, workdir: Path, methods: list[str], sizes: Sizes) -> Iterator[Result]:
    """Start the writer, measure it alone, then each method in turn; yield each result as it comes."""
    connection = sqlite3.connect(database, isolation_level=None, timeout=5.0)
    connection.execute("DELETE FROM bench_writes")  # a reused database does not grow from run to run
    connection.close()
    writer = Writer(database)
    try:
        yield writer_alone(database, writer, sizes.alone_seconds)
        for method in methods:
            print(f"{LABELS[method]} ...", flush=True)
            with Clean(workdir / "out") as out:
                yield measure_method(method, database, out, writer, sizes)
    finally:
        writer.close()


# -- the report ----------------------------------------------------------------------------------------


def _latency(values: list[float], fraction: float | None) -> str:
    if not values:
        return "-"
    value = max(values) if fraction is None else percentile(values, fraction)
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def print_table(results: list[Result], db_size: int) -> None:
    """Print one row per method."""
    header = (
        f"{'method':<22} | {'seconds':>7} | {'MiB/s':>6} | {'output MiB':>10} | {'ratio':>5} | "
        f"{'w p50 ms':>8} | {'w p99 ms':>8} | {'w worst':>7} | {'commits':>13} | {'others':>6} | copy"
    )
    print()
    print(header)
    print("-" * len(header) + "-" * 30)
    for result in results:
        label = LABELS.get(result.method, result.method)
        if result.method == "(writer alone)":
            speed, output, ratio = "", "", ""
            seconds = f"{result.seconds:7.2f}"
        elif not result.finished:
            speed, output, ratio = "-", "-", "-"
            seconds = f"> {result.seconds:5.0f}"
        else:
            speed = f"{db_size / MIB / result.seconds:6.0f}"
            assert result.output_size is not None
            output = f"{result.output_size / MIB:10.1f}"
            ratio = f"{db_size / result.output_size:5.2f}"
            seconds = f"{result.seconds:7.2f}"
        commits = f"{len(result.latencies_ms)} of {result.expected_commits}"
        if result.writer_errors:
            commits += f" ({result.writer_errors} failed)"
        print(
            f"{label:<22} | {seconds:>7} | {speed:>6} | {output:>10} | {ratio:>5} | "
            f"{_latency(result.latencies_ms, 0.50):>8} | {_latency(result.latencies_ms, 0.99):>8} | "
            f"{_latency(result.latencies_ms, None):>7} | {commits:>13} | {result.others_cores:6.2f} | "
            f"{result.copy_state}"
        )
    print(
        "\nratio = database ÷ output (the compression ratio); w = the writer's BEGIN → COMMIT; commits = "
        "made in the window of the\nexpected one per 10 ms; others = the CPU other work on the machine took "
        "meanwhile, in cores (of 2); copy: the\ncommits that had finished before the method started, "
        "looked up in its copy."
    )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_goals(results: dict[str, Result]) -> None:
    """Print the ratios and writer figures the issue's goals name, for the methods that ran."""
    print()
    botops = results.get("botops")
    cp, cp_sync, recipe = results.get("cp"), results.get("cp-sync"), results.get("vacuum-gzip")
    if botops is None:
        print("botops did not run: no goals to compare.")
        return
    if cp is not None:
        ratio = botops.seconds / cp.seconds
        print(
            f"botops ÷ cp:                   {ratio:6.2f}x   goal ≤ {GOAL_VS_CP:.0f}x  "
            f"{_verdict(ratio <= GOAL_VS_CP)}"
        )
    if cp_sync is not None:
        ratio = botops.seconds / cp_sync.seconds
        print(
            f"botops ÷ (cp + fsync):         {ratio:6.2f}x   goal ≤ {GOAL_VS_CP:.0f}x  "
            f"{_verdict(ratio <= GOAL_VS_CP)}  (cp's copy on disk, as botops' backup is)"
        )
    if recipe is not None:
        ratio = recipe.seconds / botops.seconds
        print(
            f"(VACUUM INTO + gzip) ÷ botops: {ratio:6.2f}x   goal ≥ {GOAL_VS_VACUUM_GZIP:.0f}x  "
            f"{_verdict(ratio >= GOAL_VS_VACUUM_GZIP)}"
        )
    if botops.latencies_ms:
        p99, worst = percentile(botops.latencies_ms, 0.99), max(botops.latencies_ms)
        print(
            f"writer p99 during botops:      {p99:6.2f} ms  goal < {GOAL_WRITER_P99_MS:.0f} ms  "
            f"{_verdict(p99 < GOAL_WRITER_P99_MS)}"
        )
        print(
            f"writer worst during botops:    {worst:6.2f} ms  goal < {GOAL_WRITER_WORST_MS:.0f} ms "
            f"{_verdict(worst < GOAL_WRITER_WORST_MS)}"
        )


def _version(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        return f"no {program}"
    answer = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return answer.stdout.split("\n")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 64 MiB database and a 5 s .backup limit")
    parser.add_argument(
        "--size-mb", type=int, help="the database's size in MiB (default 1024, 64 with --quick)"
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to run")
    parser.add_argument("--cli-timeout", type=float, help="seconds sqlite3 .backup gets (default 60)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "botops-bench-backup",
        help="where the generated database is cached and the copies are made",
    )
    parser.add_argument("--writer-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer_child is not None:
        run_writer(args.writer_child)
        return
    sizes = QUICK if args.quick else FULL
    sizes = Sizes(
        size_mb=args.size_mb or sizes.size_mb,
        cli_timeout=args.cli_timeout or sizes.cli_timeout,
        alone_seconds=sizes.alone_seconds,
    )
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    database, generated = cached_database(workdir, sizes.size_mb)
    if generated is None:
        print(f"reusing {database}")
    else:
        print(f"generated {database} in {generated:.1f} s")
    rows = table_rows(database)
    checkpoint(database)
    db_size = database.stat().st_size
    print(
        f"database: {db_size / MIB:,.0f} MiB, WAL mode; rows: "
        + ", ".join(f"{name} {count:,}" for name, count in rows.items())
    )
    overhead = botops_fixed_cost(workdir) if "botops" in args.methods else None
    results = list(bench(database, workdir, args.methods, sizes))
    print_table(results, db_size)
    print_goals({result.method: result for result in results})
    print(
        f"\nmachine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version} (Python), {_version('sqlite3').split(' ')[0]} (CLI), "
        f"{_version('gzip')}, zstd {'.'.join(map(str, zstandard.ZSTD_VERSION))} "
        f"(python-zstandard {zstandard.__version__})"
    )
    print(
        "The page cache is warm for every method (dropping it needs root): cp (copy_file_range) runs at "
        "memory speed.\nEach method starts after wal_checkpoint(TRUNCATE) and sync. Only botops and "
        "cp + fsync flush their output. botops' time includes\nstarting the CLI (Python, imports, settings)"
        + ("." if overhead is None else f": {overhead:.2f} s for a one-row database.")
    )


if __name__ == "__main__":
    main()
