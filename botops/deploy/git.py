"""The git operations a deploy needs, run through the ``git`` command in the bot's checkout.

Only what a deploy does by hand, and nothing that could lose work: the checkout must be clean (tracked
files; ``.env`` and other untracked files are left alone) and moves only by fast-forward, or back to a
commit it was at before (a rollback).
"""

from __future__ import annotations

import getpass
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from botops.errors import DeployRefused

__all__ = ["Checkout", "GitFailed"]

log = logging.getLogger(__name__)

_TIMEOUT = 120.0


class GitFailed(DeployRefused):
    """A git command failed; the message has its complaint."""


@dataclass(frozen=True)
class Checkout:
    """The git checkout at ``path``, the bot's code."""

    path: Path

    def run(self, *arguments: str) -> str:
        """Run ``git <arguments>`` in the checkout and return its standard output, stripped.

        Raises:
            GitFailed: git is missing, or the command failed (its last line of stderr is in the message).
        """
        git = shutil.which("git")
        if git is None:
            raise GitFailed(
                "git is not installed: a deploy needs it (apt install git / winget install Git.Git)"
            )
        try:
            completed = subprocess.run(  # noqa: S603 - git with fixed arguments, no shell
                [git, *arguments],
                cwd=self.path,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise GitFailed(f"git {arguments[0]} failed: {error}") from error
        if completed.returncode != 0:
            complaint = (completed.stderr.strip().splitlines() or ["no message"])[-1]
            raise GitFailed(f"git {' '.join(arguments)} failed in {self.path}: {complaint}")
        return completed.stdout.strip()

    def head(self) -> str:
        """Return the full commit the checkout is at."""
        return self.run("rev-parse", "HEAD")

    def resolve(self, ref: str) -> str:
        """Return the full commit ``ref`` names.

        Raises:
            GitFailed: there is no such ref.
        """
        return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    def fetch(self, ref: str) -> None:
        """Fetch the remote of ``ref`` (``origin/main`` fetches origin); a local ref fetches nothing."""
        remote = ref.split("/", 1)[0] if "/" in ref else None
        if remote is not None and remote in self.run("remote").split():
            self.run("fetch", "--quiet", remote)

    def dirty_files(self, *, ignore: tuple[str, ...] = ()) -> list[str]:
        """Return the tracked files with changes not committed (untracked files do not count), except
        those under the ``ignore`` prefixes."""
        status = self.run("status", "--porcelain", "--untracked-files=no")
        paths = [line[3:] for line in status.splitlines() if line.strip()]
        return [path for path in paths if not path.startswith(ignore)]

    def is_ancestor(self, older: str, newer: str) -> bool:
        """Return whether ``older`` is in ``newer``'s history (a fast-forward from one to the other)."""
        try:
            self.run("merge-base", "--is-ancestor", older, newer)
        except GitFailed:
            return False
        return True

    def changes(self, old: str, new: str) -> list[tuple[str, str]]:
        """Return ``(status, path)`` of each path that differs between two commits.

        The status is ``A`` added, ``D`` deleted or ``M`` modified; a rename is a delete and an add.
        """
        changed = []
        for line in self.run("diff", "--name-status", "--no-renames", old, new).splitlines():
            status, _, path = line.partition("\t")
            if path:
                changed.append((status[:1], path))
        return changed

    def log(self, old: str, new: str) -> list[str]:
        """Return the one-line log of the commits from ``old`` (excluded) to ``new``."""
        return self.run("log", "--oneline", "--no-decorate", f"{old}..{new}").splitlines()

    def move_to(self, commit: str) -> None:
        """Put the checkout's tracked files at ``commit``: a fast-forward, or back for a rollback.

        The branch follows, so ``git log`` shows where the bot is. ``--keep`` keeps local changes in
        files the move does not touch (deployment notes) and refuses rather than overwrite others.
        """
        self.run("reset", "--keep", "--quiet", commit)

    def actor(self) -> str:
        """Return who deploys: ``git config user.name``, or the operating-system user."""
        try:
            name = self.run("config", "user.name")
        except GitFailed:
            name = ""
        if name:
            return name
        try:
            return getpass.getuser()
        except (OSError, KeyError):
            return "unknown"
