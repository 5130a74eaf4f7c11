"""Which code is running: the package version and the git commit of the checkout, for /health and releases."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from botops import __version__

__all__ = ["git_commit", "version_string"]


@functools.cache
def git_commit(directory: Path | None = None) -> str:
    """Return the short commit of the checkout the bot runs from, or ``unknown`` outside a git checkout."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [git, "rev-parse", "--short=12", "HEAD"],
            cwd=directory or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return completed.stdout.strip() if completed.returncode == 0 else "unknown"


def version_string() -> str:
    """Return ``<version> (<commit>)``."""
    return f"{__version__} ({git_commit()})"
