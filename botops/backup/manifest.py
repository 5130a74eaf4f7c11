"""The manifest written next to each backup: what it holds, where it came from, and how to check it.

A backup is ``<id>.db.zst`` plus ``<id>.json``; the manifest is the JSON file. It is read strictly:
any field missing, of the wrong type or out of range makes :func:`read_manifest` raise
:class:`~botops.errors.BackupCorrupt`, since a backup whose manifest cannot be trusted cannot be verified.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from botops.errors import BackupCorrupt

__all__ = [
    "BACKUP_ID_RE",
    "FORMAT_VERSION",
    "DatabaseKind",
    "Manifest",
    "Reason",
    "manifest_from_json",
    "new_backup_id",
    "read_manifest",
    "write_manifest",
]

log = logging.getLogger(__name__)

#: Bumped when a field changes meaning; a manifest of another format is refused, not guessed at.
FORMAT_VERSION = 1

Reason = Literal["scheduled", "manual", "pre-deploy", "pre-restore"]
DatabaseKind = Literal["sqlite", "postgresql"]

#: ``20261128T174500Z-3fa2c1``: sorts by time, unique within a second, safe in a file name.
BACKUP_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def new_backup_id(created_at: datetime.datetime) -> str:
    """Return a fresh backup id for a backup made at ``created_at`` (UTC)."""
    return f"{created_at.astimezone(datetime.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Manifest:
    """What a backup holds and how to check it; ``sha256`` is of the compressed file."""

    id: str
    created_at: datetime.datetime  # UTC
    database: DatabaseKind
    schema_revision: str | None  # None: the database had no schema
    git_commit: str
    botops_version: str
    reason: Reason
    raw_size: int
    compressed_size: int
    sha256: str
    tables: dict[str, int] = field(default_factory=dict)  # rows per table
    duration_seconds: float | None = None  # how long making it took; None in manifests that predate it
    format: int = FORMAT_VERSION

    def to_json(self) -> str:
        """Return the manifest as JSON text, keys in a stable order."""
        document = asdict(self)
        document["created_at"] = self.created_at.astimezone(datetime.UTC).isoformat()
        return json.dumps(document, indent=2, sort_keys=True) + "\n"


def manifest_from_json(text: str, *, expected_id: str | None = None) -> Manifest:
    """Read a manifest from JSON text, checking every field.

    Raises:
        BackupCorrupt: the text is not JSON, a field is missing or malformed, or the id is not
            ``expected_id``.
    """
    label = expected_id or "(unnamed)"
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BackupCorrupt(label, f"its manifest is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise BackupCorrupt(label, "its manifest is not a JSON object")
    if expected_id is None and isinstance(document.get("id"), str) and BACKUP_ID_RE.match(document["id"]):
        label = document["id"]
    fields = _Fields(label, document)
    if fields.integer("format") != FORMAT_VERSION:
        raise BackupCorrupt(
            label, f"its manifest has format {document['format']}, this botops reads {FORMAT_VERSION}"
        )
    backup_id = fields.string("id")
    if not BACKUP_ID_RE.match(backup_id):
        raise BackupCorrupt(label, f"its manifest has a malformed id {backup_id!r}")
    if expected_id is not None and backup_id != expected_id:
        raise BackupCorrupt(label, f"its manifest belongs to backup {backup_id}")
    manifest = Manifest(
        id=backup_id,
        created_at=fields.timestamp("created_at"),
        database=fields.choice("database", get_args(DatabaseKind)),  # type: ignore[arg-type]
        schema_revision=fields.optional_string("schema_revision"),
        git_commit=fields.string("git_commit"),
        botops_version=fields.string("botops_version"),
        reason=fields.choice("reason", get_args(Reason)),  # type: ignore[arg-type]
        raw_size=fields.integer("raw_size"),
        compressed_size=fields.integer("compressed_size"),
        sha256=fields.sha256("sha256"),
        tables=fields.row_counts("tables"),
        duration_seconds=fields.optional_seconds("duration_seconds"),
    )
    return manifest


def read_manifest(path: Path, *, expected_id: str | None = None) -> Manifest:
    """Read and check the manifest at ``path``.

    Raises:
        BackupCorrupt: the file cannot be read, or :func:`manifest_from_json` refuses it.
    """
    label = expected_id or path.name.removesuffix(".json")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BackupCorrupt(label, f"its manifest {path} cannot be read ({error})") from None
    return manifest_from_json(text, expected_id=expected_id)


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Write ``manifest`` to ``path`` (mode 0600, created anew) and flush it to disk.

    Raises:
        OSError: the file exists already or cannot be written.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(manifest.to_json())
        handle.flush()
        os.fsync(handle.fileno())


class _Fields:
    """Typed access to a manifest's JSON object, raising :class:`BackupCorrupt` for what is wrong."""

    def __init__(self, label: str, document: dict[str, Any]) -> None:
        self._label = label
        self._document = document

    def _get(self, name: str) -> Any:
        if name not in self._document:
            raise BackupCorrupt(self._label, f"its manifest has no {name!r}")
        return self._document[name]

    def _wrong(self, name: str, expected: str) -> BackupCorrupt:
        return BackupCorrupt(self._label, f"its manifest's {name!r} is not {expected}")

    def string(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str) or not value:
            raise self._wrong(name, "a non-empty string")
        return value

    def optional_string(self, name: str) -> str | None:
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self._wrong(name, "a non-empty string or null")
        return value

    def integer(self, name: str) -> int:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._wrong(name, "a whole number of at least 0")
        return value

    def optional_seconds(self, name: str) -> float | None:
        value = self._document.get(name)  # optional: older manifests do not have it
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
            raise self._wrong(name, "a number of seconds of at least 0, or null")
        return float(value)

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self._get(name)
        if value not in allowed:
            raise self._wrong(name, f"one of {', '.join(allowed)}")
        return str(value)

    def sha256(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str) or not _SHA256_RE.match(value):
            raise self._wrong(name, "a SHA-256 in 64 lowercase hex digits")
        return value

    def timestamp(self, name: str) -> datetime.datetime:
        value = self._get(name)
        try:
            parsed = datetime.datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise self._wrong(name, "an ISO 8601 time with its UTC offset")
        return parsed.astimezone(datetime.UTC)

    def row_counts(self, name: str) -> dict[str, int]:
        value = self._get(name)
        if not isinstance(value, dict) or not all(
            isinstance(table, str)
            and table
            and isinstance(rows, int)
            and not isinstance(rows, bool)
            and rows >= 0
            for table, rows in value.items()
        ):
            raise self._wrong(name, "an object of table names and row counts")
        return dict(value)
