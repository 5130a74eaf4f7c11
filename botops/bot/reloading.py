"""Apply a deploy's extension changes to the running bot: forget changed helpers, unload, load, reload.

``POST /control/reload`` calls :func:`apply_extension_changes` for ``botops deploy``. Each step uses
discord.py's own ``load_extension``/``reload_extension``, which is atomic for one extension (a failing
reload puts the previous module back); the steps stop at the first failure and say which were done, so
the deploy can make the whole change all-or-nothing: it puts the previous files back and asks for the
done ones again. Helper modules (``cogs/_x.py``) are dropped from ``sys.modules`` first: reloading an
extension does not re-import the helpers it imports.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from discord.ext import commands

from botops.redaction import Redactor
from botops.version import git_commit

if TYPE_CHECKING:
    from botops.bot.core import Bot

__all__ = ["ExtensionChanges", "ExtensionOutcome", "apply_extension_changes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtensionChanges:
    """What a deploy changes in the extensions package."""

    reload: tuple[str, ...] = ()
    load: tuple[str, ...] = ()
    unload: tuple[str, ...] = ()
    forget: tuple[str, ...] = ()
    reload_all: bool = False  # a helper changed: every loaded extension of the package reloads
    package: str = "cogs"


@dataclass
class ExtensionOutcome:
    """Which steps were done (``"reload cogs.greet"``) and the one that failed, with its cause."""

    done: list[str] = field(default_factory=list)
    failed: str | None = None
    cause: str | None = None
    synced: bool = False

    @property
    def ok(self) -> bool:
        return self.failed is None


async def apply_extension_changes(bot: Bot, changes: ExtensionChanges) -> ExtensionOutcome:
    """Apply ``changes`` in order (unload, load, reload) and stop at the first failure; then sync commands."""
    outcome = ExtensionOutcome()
    redact = Redactor(bot.settings.secret_values())
    for module in changes.forget:
        sys.modules.pop(module, None)
    reload = list(changes.reload)
    if changes.reload_all:
        prefix = changes.package + "."
        reload = sorted({*reload, *(name for name in bot.extensions if name.startswith(prefix))})
    steps = [
        *(("unload", name) for name in changes.unload if name in bot.extensions),
        *(("load", name) for name in changes.load if name not in bot.extensions),
        *(("reload", name) for name in reload if name in bot.extensions and name not in changes.unload),
    ]
    for action, name in steps:
        try:
            if action == "unload":
                await bot.unload_extension(name)
            elif action == "load":
                await bot.load_extension(name)
            else:
                await bot.reload_extension(name)
        except commands.ExtensionError as error:
            cause = error.__cause__ or error
            outcome.failed = f"{action} {name}"
            outcome.cause = redact(f"{type(cause).__name__}: {cause}".splitlines()[0])[:300]
            log.error("deploy: %s %s failed; stopping here", action, name, exc_info=cause)
            break
        outcome.done.append(f"{action} {name}")
        log.info("deploy: %s %s", action, name)
    bot.required_extensions = tuple(sorted(bot.extensions))
    git_commit.cache_clear()  # the checkout moved: /readyz reports the commit the code now comes from
    if outcome.done:
        outcome.synced = await bot.sync_commands(only_if_changed=True)
    return outcome
