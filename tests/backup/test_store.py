"""SQLite backups: online under a writer, permissions, verification that trusts nothing, and restore."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import http.server
import random
import resource
import signal
import socket
import sqlite3
import stat
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
import zstandard

from botops.backup import restore as restoring
from botops.backup import store
from botops.backup.manifest import Manifest, read_manifest
from botops.backup.retention import RetentionPolicy
from botops.db import migrate
from botops.errors import BackupCorrupt, BackupFailed, BackupNotFound, RestoreRefused
from tests.backup.sqlite_databases import add_members, dump, make_database, settings_for

T = TypeVar("T")


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return make_database(tmp_path / "data" / "bot.db")


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def _backup(database: Path, backup_dir: Path) -> Manifest:
    return _run(
        store.create_backup(settings_for(database, backup_dir), reason="manual", backup_dir=backup_dir)
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _run(work: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(work)


def _data(backup_dir: Path, manifest: Manifest) -> Path:
    return backup_dir / f"{manifest.id}{store.DATA_SUFFIX}"


def _rewrite_manifest_to_match(backup_dir: Path, manifest: Manifest, *, raw_size: int | None = None) -> None:
    """Make the manifest agree with whatever the data file now holds, so deeper checks must catch it."""
    data = _data(backup_dir, manifest).read_bytes()
    matching = replace(
        manifest,
        compressed_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        raw_size=manifest.raw_size if raw_size is None else raw_size,
    )
    (backup_dir / f"{manifest.id}.json").write_text(matching.to_json(), encoding="utf-8")


# -- create ----------------------------------------------------------------------------------------------


def test_a_backup_holds_every_commit_made_before_it_started_including_the_wal(
    tmp_path: Path, backup_dir: Path
) -> None:
    database = make_database(tmp_path / "data" / "bot.db", members=0)
    writer = sqlite3.connect(database, check_same_thread=False)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA synchronous=NORMAL")  # as the bot writes
    writer.execute("PRAGMA wal_autocheckpoint=0")  # every commit stays in the -wal
    committed_before = 500
    for user_id in range(committed_before):
        with writer:
            writer.execute("INSERT INTO member_xp (guild_id, user_id, xp) VALUES (1, ?, 1)", (user_id,))
    assert Path(f"{database}-wal").stat().st_size > 0
    stop = threading.Event()

    def keep_committing() -> None:
        user_id = committed_before
        while not stop.is_set():
            with writer:
                writer.execute("INSERT INTO member_xp (guild_id, user_id, xp) VALUES (1, ?, 1)", (user_id,))
            user_id += 1

    thread = threading.Thread(target=keep_committing)
    thread.start()
    try:
        manifest = _backup(database, backup_dir)
    finally:
        stop.set()
        thread.join()
        writer.close()

    restored = tmp_path / "restored.db"
    restored.write_bytes(zstandard.decompress(_data(backup_dir, manifest).read_bytes()))
    connection = sqlite3.connect(restored)
    user_ids = [row[0] for row in connection.execute("SELECT user_id FROM member_xp ORDER BY user_id")]
    connection.close()
    assert len(user_ids) >= committed_before
    assert user_ids == list(range(len(user_ids)))  # a consistent snapshot: a prefix of the commits
    assert manifest.tables["member_xp"] == len(user_ids)


def test_a_backup_records_its_revision_rows_sizes_and_reason(database: Path, backup_dir: Path) -> None:
    manifest = _run(
        store.create_backup(settings_for(database, backup_dir), reason="pre-deploy", backup_dir=backup_dir)
    )

    assert manifest.schema_revision == migrate.head_revision()
    assert manifest.tables["member_xp"] == 200
    assert manifest.reason == "pre-deploy"
    assert manifest.database == "sqlite"
    assert manifest.raw_size == len(zstandard.decompress(_data(backup_dir, manifest).read_bytes()))
    assert manifest.compressed_size == _data(backup_dir, manifest).stat().st_size
    assert read_manifest(backup_dir / f"{manifest.id}.json") == manifest


def test_backup_files_are_0600_in_a_0700_folder(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)

    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700
    for path in (_data(backup_dir, manifest), backup_dir / f"{manifest.id}.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_backup_leaves_only_its_two_files(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)

    assert sorted(p.name for p in backup_dir.iterdir()) == [f"{manifest.id}.db.zst", f"{manifest.id}.json"]


def test_a_backup_of_a_missing_database_fails_and_leaves_nothing(tmp_path: Path, backup_dir: Path) -> None:
    with pytest.raises(BackupFailed, match="no database at"):
        _backup(tmp_path / "data" / "absent.db", backup_dir)

    assert not backup_dir.exists() or not list(backup_dir.iterdir())


def test_a_backup_of_a_corrupt_database_fails_its_integrity_check_and_leaves_no_file(
    tmp_path: Path, backup_dir: Path
) -> None:
    database = make_database(tmp_path / "data" / "bot.db", members=5000)
    with open(database, "r+b") as handle:  # zero every page after the first few: b-trees point at garbage
        handle.seek(4096 * 4)
        handle.write(bytes(database.stat().st_size - 4096 * 4))

    with pytest.raises(BackupFailed, match="integrity check failed"):
        _backup(database, backup_dir)

    assert list(backup_dir.iterdir()) == []


@contextlib.contextmanager
def _file_size_limit(size: int) -> Iterator[None]:
    """Cap the size of files this process writes, as a full disk would, inside the block."""
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, limits[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)


def test_a_full_disk_fails_the_backup_loudly_and_leaves_earlier_backups_alone(
    tmp_path: Path, backup_dir: Path
) -> None:
    database = make_database(tmp_path / "data" / "bot.db", members=5000)
    earlier = _backup(database, backup_dir)
    _run(store.verify_backup(backup_dir, earlier.id))
    before = {p.name: p.read_bytes() for p in backup_dir.iterdir()}
    plan_before = store.prune_backups(backup_dir, RetentionPolicy(), now=_now(), dry_run=True)

    with (
        _file_size_limit(database.stat().st_size // 2),
        pytest.raises(BackupFailed, match=r"disk I/O error .*MiB free on the disk of"),
    ):
        _backup(database, backup_dir)

    assert {p.name: p.read_bytes() for p in backup_dir.iterdir()} == before  # no file under a backup's name
    assert store.list_backups(backup_dir)[0].verified
    assert store.prune_backups(backup_dir, RetentionPolicy(), now=_now(), dry_run=True) == plan_before
    assert _run(store.verify_backup(backup_dir, earlier.id)) == earlier


# -- verify ----------------------------------------------------------------------------------------------


def test_a_fresh_backup_verifies(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)

    assert _run(store.verify_backup(backup_dir, manifest.id)) == manifest
    assert not list(backup_dir.glob("*.tmp"))  # the decompressed scratch copy is gone


def test_a_verified_backup_is_listed_as_verified(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)
    assert not store.list_backups(backup_dir)[0].verified

    _run(store.verify_backup(backup_dir, manifest.id))

    assert store.list_backups(backup_dir)[0].verified


def test_a_failed_verification_takes_back_the_verified_mark(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)
    _run(store.verify_backup(backup_dir, manifest.id))
    data = _data(backup_dir, manifest)
    data.write_bytes(data.read_bytes()[:-1])

    with pytest.raises(BackupCorrupt):
        _run(store.verify_backup(backup_dir, manifest.id))

    assert not store.list_backups(backup_dir)[0].verified


def test_verify_rejects_a_truncated_file(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)
    data = _data(backup_dir, manifest)
    data.write_bytes(data.read_bytes()[: manifest.compressed_size // 2])

    with pytest.raises(BackupCorrupt):
        _run(store.verify_backup(backup_dir, manifest.id))


def test_verify_rejects_a_truncated_file_even_when_its_manifest_matches_it(
    database: Path, backup_dir: Path
) -> None:
    manifest = _backup(database, backup_dir)
    data = _data(backup_dir, manifest)
    data.write_bytes(data.read_bytes()[: manifest.compressed_size // 2])
    _rewrite_manifest_to_match(backup_dir, manifest)

    with pytest.raises(BackupCorrupt):
        _run(store.verify_backup(backup_dir, manifest.id))


def test_verify_rejects_every_single_bit_flip(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)
    data = _data(backup_dir, manifest)
    original = data.read_bytes()
    chooser = random.Random(6)

    for _ in range(50):
        offset = chooser.randrange(len(original))
        flipped = bytearray(original)
        flipped[offset] ^= 1 << chooser.randrange(8)
        data.write_bytes(bytes(flipped))
        with pytest.raises(BackupCorrupt):
            _run(store.verify_backup(backup_dir, manifest.id))


def test_verify_rejects_every_truncation_even_when_its_manifest_matches_it(
    database: Path, backup_dir: Path
) -> None:
    manifest = _backup(database, backup_dir)
    data = _data(backup_dir, manifest)
    original = data.read_bytes()
    chooser = random.Random(7)

    for _ in range(20):
        data.write_bytes(original[: chooser.randrange(len(original))])
        _rewrite_manifest_to_match(backup_dir, manifest)
        with pytest.raises(BackupCorrupt):
            _run(store.verify_backup(backup_dir, manifest.id))


def test_verify_rejects_an_empty_but_valid_zstd_file(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)
    _data(backup_dir, manifest).write_bytes(zstandard.ZstdCompressor().compress(b""))
    _rewrite_manifest_to_match(backup_dir, manifest, raw_size=0)

    with pytest.raises(BackupCorrupt, match="not a SQLite database"):
        _run(store.verify_backup(backup_dir, manifest.id))


def test_verify_rejects_row_counts_that_differ_from_the_manifest(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)
    wrong = replace(manifest, tables={**manifest.tables, "member_xp": 199})
    (backup_dir / f"{manifest.id}.json").write_text(wrong.to_json(), encoding="utf-8")

    with pytest.raises(BackupCorrupt, match=r"row counts differ .* member_xp"):
        _run(store.verify_backup(backup_dir, manifest.id))


def test_verify_rejects_a_backup_whose_data_file_is_missing(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)
    _data(backup_dir, manifest).unlink()

    with pytest.raises(BackupCorrupt, match="missing"):
        _run(store.verify_backup(backup_dir, manifest.id))


def test_verify_of_an_unknown_id_says_it_is_not_there(backup_dir: Path) -> None:
    with pytest.raises(BackupNotFound):
        _run(store.verify_backup(backup_dir, "20260101T000000Z-abcdef"))


# -- list ------------------------------------------------------------------------------------------------


def test_list_shows_backups_oldest_first_and_names_an_unreadable_manifest(
    database: Path, backup_dir: Path
) -> None:
    first = _backup(database, backup_dir)
    second = _backup(database, backup_dir)
    (backup_dir / "20200101T000000Z-000000.json").write_text("{", encoding="utf-8")

    listed = store.list_backups(backup_dir)

    assert listed[0].id == "20200101T000000Z-000000"
    assert listed[0].manifest is None
    assert listed[0].problem is not None
    assert {entry.id for entry in listed[1:]} == {first.id, second.id}


def test_list_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert store.list_backups(tmp_path / "nothing") == []


# -- restore ---------------------------------------------------------------------------------------------


def test_restore_brings_back_the_rows_and_data_of_the_backup(database: Path, backup_dir: Path) -> None:
    before = dump(database)
    manifest = _backup(database, backup_dir)
    add_members(database, range(1000, 1100))

    result = _run(
        restoring.restore_backup(settings_for(database, backup_dir), manifest.id, backup_dir=backup_dir)
    )

    assert dump(database) == before
    assert result.schema_is_current
    assert result.restored == manifest


def test_restore_takes_a_safety_backup_of_the_database_it_replaces(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)
    add_members(database, range(1000, 1100))
    replaced = dump(database)

    result = _run(
        restoring.restore_backup(settings_for(database, backup_dir), manifest.id, backup_dir=backup_dir)
    )

    assert result.safety_backup is not None
    assert result.safety_backup.reason == "pre-restore"
    assert result.safety_backup.tables["member_xp"] == 300
    _run(
        restoring.restore_backup(
            settings_for(database, backup_dir), result.safety_backup.id, backup_dir=backup_dir
        )
    )
    assert dump(database) == replaced


def test_restore_removes_a_stale_wal_so_it_is_not_applied_to_the_restored_file(
    database: Path, backup_dir: Path
) -> None:
    manifest = _backup(database, backup_dir)
    Path(f"{database}-wal").write_bytes(b"stale")

    _run(restoring.restore_backup(settings_for(database, backup_dir), manifest.id, backup_dir=backup_dir))

    assert not Path(f"{database}-wal").exists()


def test_restore_of_a_corrupt_backup_leaves_the_database_byte_for_byte(
    database: Path, backup_dir: Path
) -> None:
    manifest = _backup(database, backup_dir)
    data = _data(backup_dir, manifest)
    flipped = bytearray(data.read_bytes())
    flipped[len(flipped) // 2] ^= 0x10
    data.write_bytes(bytes(flipped))
    add_members(database, range(1000, 1010))
    files_before = {p.name: p.read_bytes() for p in database.parent.iterdir()}

    with pytest.raises(BackupCorrupt):
        _run(restoring.restore_backup(settings_for(database, backup_dir), manifest.id, backup_dir=backup_dir))

    assert {p.name: p.read_bytes() for p in database.parent.iterdir()} == files_before
    assert len(list(backup_dir.iterdir())) == 2  # no safety backup was taken


def test_restore_says_to_upgrade_a_backup_taken_before_the_newest_migration(
    tmp_path: Path, backup_dir: Path
) -> None:
    database = make_database(tmp_path / "data" / "bot.db", members=0)
    connection = sqlite3.connect(database)
    with connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (migrate.history()[1].id,))
    connection.close()
    manifest = _backup(database, backup_dir)

    result = _run(
        restoring.restore_backup(settings_for(database, backup_dir), manifest.id, backup_dir=backup_dir)
    )

    assert not result.schema_is_current
    assert "run `botops db upgrade`" in result.advice()


@pytest.fixture
def answering_livez() -> Iterator[int]:
    """A server on a free loopback port that answers every GET, as a running bot's /livez does."""

    class Alive(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Alive)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_restore_is_refused_while_the_bot_answers_livez(
    database: Path, backup_dir: Path, answering_livez: int
) -> None:
    manifest = _backup(database, backup_dir)
    before = database.read_bytes()
    settings = settings_for(database, backup_dir, http_enabled=True, http_port=answering_livez)

    with pytest.raises(RestoreRefused, match="stop it first"):
        _run(restoring.restore_backup(settings, manifest.id, backup_dir=backup_dir))

    assert database.read_bytes() == before


def test_restore_goes_ahead_when_nothing_answers_at_the_bot_address(database: Path, backup_dir: Path) -> None:
    manifest = _backup(database, backup_dir)
    settings = settings_for(database, backup_dir, http_enabled=True, http_port=_free_port())

    result = _run(restoring.restore_backup(settings, manifest.id, backup_dir=backup_dir))

    assert result.restored.id == manifest.id


def _free_port() -> int:
    """Return a loopback port that nothing listens on (bound to learn a free one, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- damage: 200 random byte flips and truncations -------------------------------------------------------


def test_two_hundred_random_flips_and_truncations_are_each_refused_by_verify_and_by_restore(
    database: Path, backup_dir: Path
) -> None:
    manifest = _backup(database, backup_dir)
    data = _data(backup_dir, manifest)
    original = data.read_bytes()
    manifest_text = (backup_dir / f"{manifest.id}.json").read_text(encoding="utf-8")
    settings = settings_for(database, backup_dir)
    database_before = database.read_bytes()
    chooser = random.Random(200)

    for attempt in range(200):
        damaged = bytearray(original)
        if attempt % 2:
            offset = chooser.randrange(len(damaged))
            damaged[offset] ^= chooser.randrange(1, 256)
        else:
            del damaged[chooser.randrange(len(damaged)) :]
        data.write_bytes(bytes(damaged))
        (backup_dir / f"{manifest.id}.json").write_text(manifest_text, encoding="utf-8")
        if attempt % 4 >= 2:  # half of each kind with a manifest that agrees with the damaged file
            _rewrite_manifest_to_match(backup_dir, manifest)

        with pytest.raises(BackupCorrupt):
            _run(store.verify_backup(backup_dir, manifest.id))
        with pytest.raises(BackupCorrupt):
            _run(restoring.restore_backup(settings, manifest.id, backup_dir=backup_dir))
        assert database.read_bytes() == database_before, f"attempt {attempt} changed the database"

    assert sorted(path.name for path in backup_dir.iterdir()) == sorted([data.name, f"{manifest.id}.json"]), (
        "a refused restore took a safety backup or left a file"
    )
