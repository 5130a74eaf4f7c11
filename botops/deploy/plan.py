"""What a deploy must do, decided from the diff as the handbook's "when to hot-reload" table does.

| the change touches                         | mode                                         |
|--------------------------------------------|----------------------------------------------|
| only files of the extensions package       | hot reload of the changed extensions          |
| (``cogs/`` by default)                     | (helpers ``cogs/_x.py`` reload all of them)   |
| migrations                                 | restart, schema upgraded first               |
| dependencies (pyproject.toml, requirements)| restart, dependencies installed first        |
| anything else (botops/, the core)          | restart                                      |
| nothing the bot runs (docs, tests)         | none: the checkout moves, the bot stays      |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

__all__ = ["DeployPlan", "Mode", "plan_deploy"]

Mode = Literal["reload", "restart", "none"]

#: Files whose change means the dependencies must be installed again.
DEPENDENCY_FILES = ("pyproject.toml", "requirements.txt", "requirements.lock", "uv.lock", "poetry.lock")
#: Where botops' own schema migrations live.
MIGRATIONS = "botops/db/migrations/"
#: Changes to these never reach the running bot.
_INERT_PREFIXES = ("docs/", "tests/", "bench/", "features/", ".github/", ".ci/")
_INERT_SUFFIXES = (".md", ".txt", ".rst")


@dataclass(frozen=True)
class DeployPlan:
    """The mode of a deploy and what it changes: extensions to reload, load and unload, helpers to forget."""

    mode: Mode
    changed: tuple[str, ...]
    reasons: tuple[str, ...]  # why the mode, for the report
    dependencies: bool = False
    migrations: bool = False
    reload: tuple[str, ...] = field(default_factory=tuple)
    load: tuple[str, ...] = field(default_factory=tuple)
    unload: tuple[str, ...] = field(default_factory=tuple)
    forget: tuple[str, ...] = field(default_factory=tuple)  # helper modules dropped from sys.modules first
    reload_all: bool = False  # a helper changed: every extension of the package reloads

    @property
    def extensions(self) -> tuple[str, ...]:
        """Every extension the reload touches."""
        return (*self.reload, *self.load, *self.unload)


def plan_deploy(
    changed: Iterable[str], *, package: str, added: Iterable[str] = (), deleted: Iterable[str] = ()
) -> DeployPlan:
    """Decide the mode of a deploy from the changed paths (relative to the checkout, with ``/``).

    ``added`` and ``deleted`` are the subsets of ``changed`` that are new or gone; ``package`` is
    EXTENSIONS_PACKAGE (``cogs``), whose public modules are the extensions.
    """
    paths = sorted(set(changed))
    new, gone = set(added), set(deleted)
    package_prefix = package.replace(".", "/") + "/"
    restart_reasons: list[str] = []
    dependencies = any(PurePosixPath(path).name in DEPENDENCY_FILES for path in paths)
    migrations = any(path.startswith(MIGRATIONS) for path in paths)
    if dependencies:
        restart_reasons.append("dependencies changed")
    if migrations:
        restart_reasons.append("migrations changed")
    reload: list[str] = []
    load: list[str] = []
    unload: list[str] = []
    forget: list[str] = []
    for path in paths:
        if path.startswith(package_prefix):
            module = _module(path)
            if module is None:
                continue  # a data file of the package: nothing to import
            if _is_helper(module, package):
                forget.append(module)
            elif path in new:
                load.append(module)
            elif path in gone:
                unload.append(module)
            else:
                reload.append(module)
        elif path.startswith(_INERT_PREFIXES) or (path.endswith(_INERT_SUFFIXES) and "/" not in path):
            continue
        elif not path.startswith(MIGRATIONS) and PurePosixPath(path).name not in DEPENDENCY_FILES:
            restart_reasons.append(f"{path} is core code")
    if restart_reasons:
        return DeployPlan(
            "restart", tuple(paths), tuple(_deduplicated(restart_reasons)), dependencies, migrations
        )
    if not (reload or load or unload or forget):
        return DeployPlan("none", tuple(paths), ("nothing the bot runs changed",))
    return DeployPlan(
        "reload",
        tuple(paths),
        (f"only {package_prefix} changed",),
        reload=tuple(reload),
        load=tuple(load),
        unload=tuple(unload),
        forget=tuple(forget),
        reload_all=bool(forget),
    )


def _module(path: str) -> str | None:
    pure = PurePosixPath(path)
    if pure.suffix != ".py":
        return None
    parts = list(pure.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_helper(module: str, package: str) -> bool:
    """A module starting with ``_`` (or the package itself, or one deeper) is a helper, not an extension."""
    relative = module.removeprefix(package).lstrip(".")
    return not relative or relative.startswith("_") or "." in relative


def _deduplicated(reasons: list[str]) -> list[str]:
    core = [reason for reason in reasons if reason.endswith("is core code")]
    others = [reason for reason in reasons if not reason.endswith("is core code")]
    if len(core) > 3:
        core = [*core[:3], f"and {len(core) - 3} more core files"]
    return others + core
