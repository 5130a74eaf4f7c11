"""Which extensions the bot loads: the built-in cogs, then every public module of the user's package.

A module whose name starts with ``_`` is a helper of its siblings, not an extension (as in
python-discord's bot-core). The user's package is found from the working directory, as ``python -m``
would, so a bot project keeps its features in ``cogs/`` next to its ``.env``.
"""

from __future__ import annotations

import importlib.util
import logging
import pkgutil
import sys
from pathlib import Path

__all__ = ["BUILTIN_EXTENSIONS", "discover_extensions"]

log = logging.getLogger(__name__)

#: The features every botops bot has; a failure to load one of them stops the start.
BUILTIN_EXTENSIONS: tuple[str, ...] = (
    "botops.cogs.health",
    "botops.cogs.admin",
    "botops.cogs.settings",
    "botops.cogs.levels",
    "botops.cogs.stats",
)


def discover_extensions(package: str, root: Path | None = None) -> list[str]:
    """Return the dotted names of the extensions in ``package``, sorted; none if it does not exist.

    ``root`` (default: the working directory) is put on ``sys.path`` first, so ``cogs`` next to the
    bot's ``.env`` is importable however botops was started.
    """
    folder = str((root or Path.cwd()).resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.submodule_search_locations is None:
        log.info("no extensions package %r found from %s; only the built-in features run", package, folder)
        return []
    found = [
        f"{package}.{module.name}"
        for module in pkgutil.iter_modules(spec.submodule_search_locations)
        if not module.name.startswith("_")
    ]
    return sorted(found)
