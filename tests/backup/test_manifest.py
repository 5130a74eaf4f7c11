"""Backup manifests: a round trip through JSON, and a clear refusal of anything malformed."""

from __future__ import annotations

import contextlib
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botops.backup.manifest import (
    BACKUP_ID_RE,
    Manifest,
    manifest_from_json,
    new_backup_id,
    read_manifest,
    write_manifest,
)
from botops.errors import BackupCorrupt

CREATED_AT = datetime.datetime(2026, 11, 28, 3, 0, 5, tzinfo=datetime.UTC)


def _manifest(**changes: Any) -> Manifest:
    values: dict[str, Any] = {
        "id": "20261128T030005Z-a1b2c3",
        "created_at": CREATED_AT,
        "database": "sqlite",
        "schema_revision": "0003",
        "git_commit": "0123456789ab",
        "botops_version": "0.1.0",
        "reason": "scheduled",
        "raw_size": 4096,
        "compressed_size": 512,
        "sha256": "ab" * 32,
        "tables": {"member_xp": 12, "alembic_version": 1},
    }
    values.update(changes)
    return Manifest(**values)


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_manifest().to_json())
    document.update(changes)
    return document


manifests = st.builds(
    _manifest,
    created_at=st.datetimes(
        min_value=datetime.datetime(2000, 1, 1),
        max_value=datetime.datetime(2100, 1, 1),
        timezones=st.just(datetime.UTC),
    ),
    schema_revision=st.none() | st.text(min_size=1, max_size=20),
    reason=st.sampled_from(["scheduled", "manual", "pre-deploy", "pre-restore"]),
    raw_size=st.integers(min_value=0, max_value=2**50),
    tables=st.dictionaries(st.text(min_size=1, max_size=30), st.integers(min_value=0, max_value=2**40)),
)


@given(manifests)
def test_a_manifest_survives_a_round_trip_through_json(manifest: Manifest) -> None:
    assert manifest_from_json(manifest.to_json()) == manifest


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=8,
)


@given(st.sampled_from(sorted(_document())), json_values)
def test_any_value_in_any_field_gives_a_manifest_or_a_clear_refusal(field: str, value: object) -> None:
    # Anything but BackupCorrupt (a TypeError, a KeyError) would escape as a traceback.
    with contextlib.suppress(BackupCorrupt):
        manifest_from_json(json.dumps(_document(**{field: value})))


@given(json_values)
def test_any_json_document_gives_a_manifest_or_a_clear_refusal(document: object) -> None:
    with contextlib.suppress(BackupCorrupt):
        manifest_from_json(json.dumps(document))


def test_a_backup_id_names_its_time_in_utc() -> None:
    backup_id = new_backup_id(CREATED_AT)

    assert BACKUP_ID_RE.match(backup_id)
    assert backup_id.startswith("20261128T030005Z-")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sha256", "not-a-checksum"),
        ("raw_size", -1),
        ("raw_size", True),
        ("reason", "whenever"),
        ("database", "mysql"),
        ("created_at", "2026-11-28T03:00:05"),  # no offset: which zone?
        ("tables", {"member_xp": "12"}),
        ("id", "../../etc/passwd"),
        ("format", 2),
    ],
)
def test_a_malformed_field_is_refused_naming_it(field: str, value: object) -> None:
    with pytest.raises(BackupCorrupt, match=field):
        manifest_from_json(json.dumps(_document(**{field: value})))


def test_a_missing_field_is_refused_naming_it() -> None:
    document = _document()
    del document["sha256"]

    with pytest.raises(BackupCorrupt, match="has no 'sha256'"):
        manifest_from_json(json.dumps(document))


def test_a_manifest_of_another_backup_is_refused() -> None:
    with pytest.raises(BackupCorrupt, match="belongs to backup"):
        manifest_from_json(_manifest().to_json(), expected_id="20261128T030005Z-ffffff")


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(BackupCorrupt, match="not JSON"):
        manifest_from_json("{")


def test_a_written_manifest_reads_back_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "m.json"

    write_manifest(_manifest(), path)

    assert read_manifest(path) == _manifest()
    assert path.stat().st_mode & 0o777 == 0o600
