"""Error tracking in Sentry, optional: command errors with their tags, every secret and user text scrubbed.

:func:`init_sentry` sets the SDK up from the settings when ``SENTRY_DSN`` is set, and says in one INFO
line that Sentry is off when it is not. The funnel reports a failed command with
:func:`capture_command_error` (tags ``command``, ``kind``, ``guild``, ``shard``; no user, no message
content) and may time commands with :func:`start_command_transaction`, sampled at
``SENTRY_TRACES_SAMPLE_RATE``. The release is ``botops@<commit>``.

Nothing leaves the process unscrubbed: ``before_send``, ``before_send_transaction`` and
``before_breadcrumb`` pass every string of the event (and every dict key) through a :class:`Scrubber`,
which removes each secret of the settings, anything shaped like a bot or interaction token, the token
segment of interaction and webhook URLs (``/interactions/<id>/<token>/callback``,
``/webhooks/<id>/<token>``), any string under a key named like a secret (a local ``webhook_token``),
and the texts a user typed into the failed command. The hooks see the event after the SDK turned frame
locals into strings, so local variables are scrubbed like everything else; the value of a local that
is a string is withheld whole, since in a bot it usually holds what a user wrote.

Integrations: logging, excepthook, dedupe, atexit and modules, chosen one by one; the SDK's other
defaults are off (stdlib makes a span of every ``http.client`` request, Sentry's own sending of each
sampled transaction included; threading wraps every thread start; argv adds the command line to every
event), and so are the auto-enabled framework integrations. The aiohttp one would trace the bot's own
``/metrics`` scrapes and record every REST call to Discord as a breadcrumb and span whose URL holds an
interaction token; commands are traced by :func:`start_command_transaction` instead, so it adds only
risk. ``send_default_pii`` is left at its default, off: recent SDKs deprecate the option, and setting it
at all warns. ``trace_propagation_targets=[]`` keeps ``sentry-trace``/``baggage`` headers off every request.
Logging: INFO and up become breadcrumbs, ERROR and up events, except the funnel's logger, which
reports its errors itself with tags (recorded twice otherwise) and whose lines name users.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import sentry_sdk
from sentry_sdk.integrations.atexit import AtexitIntegration
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.excepthook import ExcepthookIntegration
from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
from sentry_sdk.integrations.modules import ModulesIntegration
from sentry_sdk.tracing import Transaction
from sentry_sdk.utils import event_from_exception

from botops.redaction import REDACTED, Redactor
from botops.version import git_commit

if TYPE_CHECKING:
    from sentry_sdk.client import BaseClient
    from sentry_sdk.tracing import Span
    from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

    from botops.settings import Settings

__all__ = [
    "FUNNEL_LOGGER",
    "INTERACTION_TOKEN_RE",
    "MAX_DEPTH",
    "SENSITIVE_KEY_RE",
    "TOKEN_PATH_RE",
    "Scrubber",
    "SentryHandle",
    "capture_command_error",
    "init_sentry",
    "start_command_transaction",
]

log = logging.getLogger(__name__)

FUNNEL_LOGGER = "botops.bot.funnel"
"""The command error funnel's logger: never an event, since the funnel captures its errors itself."""

TOKEN_PATH_RE = re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/?#\s'\"\\<>]+")
"""The token segment of an interaction callback or webhook URL (group 1 is what precedes it)."""

INTERACTION_TOKEN_RE = re.compile(r"aW50ZXJhY3Rpb24[A-Za-z0-9_-]{20,}")
"""An interaction token: base64 of ``interaction:<id>:...``, so it always starts the same way."""

SENSITIVE_KEY_RE = re.compile(r"token|passw|secret|dsn|authorization|api_?key|cookie", re.IGNORECASE)
"""A key (a local variable's name, a dict key) whose string value is dropped whatever it holds."""

MAX_DEPTH = 32
"""Containers nested deeper than this are replaced whole by ``[REDACTED]`` rather than walked."""

# Fields Sentry needs as they are; none holds text from a user or a secret.
_STRUCTURAL = frozenset(
    {"event_id", "timestamp", "start_timestamp", "platform", "level", "type", "sdk", "release", "environment"}
    | {"modules"}  # package names and versions; a package named like a secret would lose its version
)
_USER_TEXTS_HINT = "botops_user_texts"
_random = random.Random().random  # noqa: S311 - sampling, not a secret
_DEFAULT_CLOSE_TIMEOUT = 2.0


class Scrubber:
    """Remove secrets, token-shaped text, interaction tokens in URLs and user texts from event data.

    A user text is removed wherever it occurs when it has at least 6 characters (as secrets are); a
    shorter one only where it is a whole value, such as a local variable holding just that text.
    """

    def __init__(self, secrets: Iterable[str] = (), user_texts: Iterable[str] = ()) -> None:
        self._secrets = tuple(secrets)
        texts = [text for text in user_texts if text]
        # Frame locals arrive as repr(): quoted, with newlines and backslashes escaped.
        self._whole = frozenset(form for text in texts for form in (text, repr(text)))
        escaped = (repr(text)[1:-1] for text in texts)
        self._redact = Redactor([*self._secrets, *texts, *escaped])

    def with_user_texts(self, user_texts: Iterable[str]) -> Scrubber:
        """Return a scrubber that also removes ``user_texts``."""
        return Scrubber(self._secrets, user_texts)

    def text(self, value: str) -> str:
        """Return ``value`` scrubbed."""
        if value in self._whole:
            return REDACTED
        value = TOKEN_PATH_RE.sub(lambda match: match.group(1) + REDACTED, self._redact(value))
        return INTERACTION_TOKEN_RE.sub(REDACTED, value)

    def data(self, value: Any, depth: int = 0) -> Any:
        """Return a scrubbed copy of ``value``: strings and dict keys scrubbed, containers walked.

        A string under a key named like a secret (``interaction_token``, ``password``) is dropped whole.

        Tuples come back as lists (the event is JSON). Values that are neither strings nor containers
        are kept: the SDK turns them into strings only after ``before_breadcrumb``, and ``before_send``
        sees those strings.
        """
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping | list | tuple) and depth >= MAX_DEPTH:
            return REDACTED
        if isinstance(value, Mapping):
            return {
                (self.text(key) if isinstance(key, str) else key): (
                    REDACTED
                    if isinstance(item, str) and isinstance(key, str) and SENSITIVE_KEY_RE.search(key)
                    else self.data(item, depth + 1)
                )
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.data(item, depth + 1) for item in value]
        return value

    def event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Return a scrubbed copy of a whole event, its structural fields (ids, times, SDK) kept."""
        return {key: value if key in _STRUCTURAL else self.data(value, 1) for key, value in event.items()}

    # -- the SDK's hooks -----------------------------------------------------------------------------------

    def before_send(self, event: Event, hint: Hint) -> Event | None:
        """Scrub an error event, including the user texts :func:`capture_command_error` put in ``hint``.

        String values of local variables are withheld whole: in a bot most of them hold what a user
        wrote (a message's content, a modal's input), which no list of known texts can catch in all
        its derived forms. Their names, types and every other value stay.
        """
        texts = hint.get(_USER_TEXTS_HINT) if hint else None
        scrubber = self.with_user_texts(texts) if texts else self
        scrubbed = scrubber.event(event)
        for container in ("exception", "threads"):
            for value in (scrubbed.get(container) or {}).get("values") or ():
                for frame in (value.get("stacktrace") or {}).get("frames") or ():
                    if "vars" in frame:
                        frame["vars"] = _without_strings(frame["vars"])
        return cast("Event", scrubbed)

    def before_send_transaction(self, event: Event, hint: Hint) -> Event | None:
        """Scrub a transaction (its spans, tags and data)."""
        return cast("Event", self.event(event))

    def before_breadcrumb(self, crumb: Breadcrumb, hint: BreadcrumbHint) -> Breadcrumb | None:
        """Scrub a breadcrumb as it is recorded (events scrub it again when they carry it)."""
        return self.event(crumb)


# How the SDK writes a str (or bytes) local: its repr, quoted, with an optional prefix.
_STRING_REPR_RE = re.compile(r"""^[bBrRuU]{0,2}(?:'.*'|".*")$""", re.DOTALL)


def _without_strings(value: Any) -> Any:
    """Return serialized local variables with every string value withheld (containers walked)."""
    if isinstance(value, str):
        return "[string withheld]" if _STRING_REPR_RE.match(value) else value
    if isinstance(value, Mapping):
        return {key: _without_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_strings(item) for item in value]
    return value


@dataclass(frozen=True)
class SentryHandle:
    """The Sentry client :func:`init_sentry` started; close it at shutdown."""

    client: BaseClient
    release: str
    traces_sample_rate: float

    def close(self, timeout: float = _DEFAULT_CLOSE_TIMEOUT) -> None:
        """Send what is queued (waiting at most ``timeout`` seconds), shut the client down, turn Sentry off.

        It blocks: from the event loop, call it through ``asyncio.to_thread``. Closing twice is harmless.
        """
        global _active
        self.client.close(timeout=timeout)
        scope = sentry_sdk.get_global_scope()
        if scope.client is self.client:
            scope.set_client(None)
        if _active is self:
            _active = None


_active: SentryHandle | None = None


def init_sentry(settings: Settings) -> SentryHandle | None:
    """Start Sentry when ``SENTRY_DSN`` is set, scrubbing everything it sends; return ``None`` if it is not.

    A handle from an earlier call that was not closed is closed first.
    """
    global _active
    if settings.sentry_dsn is None:
        log.info("Sentry is off: set SENTRY_DSN to send errors and command traces to Sentry")
        return None
    if _active is not None:
        _active.close()
    scrubber = Scrubber(settings.secret_values())
    release = f"botops@{git_commit()}"
    ignore_logger(FUNNEL_LOGGER)
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment,
        release=release,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        include_local_variables=True,
        include_source_context=True,
        trace_propagation_targets=[],
        # Chosen one by one, not the SDK's defaults: its stdlib integration traces every http.client
        # request (Sentry's own sending included) and its threading one wraps every thread start.
        default_integrations=False,
        integrations=[
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
            ExcepthookIntegration(),
            DedupeIntegration(),
            AtexitIntegration(),
            ModulesIntegration(),
        ],
        before_send=scrubber.before_send,
        before_send_transaction=scrubber.before_send_transaction,
        before_breadcrumb=scrubber.before_breadcrumb,
    )
    # The SDK sets its own logger to DEBUG and filters afterwards: every record it would log (one per
    # transaction and more) is built first. Without SENTRY's debug option none of them is shown.
    logging.getLogger("sentry_sdk.errors").setLevel(logging.WARNING)
    _active = SentryHandle(sentry_sdk.get_client(), release, settings.sentry_traces_sample_rate)
    log.info(
        "Sentry is on: environment %s, release %s, traces sample rate %s",
        settings.environment,
        release,
        settings.sentry_traces_sample_rate,
    )
    return _active


def capture_command_error(
    error: BaseException,
    *,
    command: str,
    kind: Literal["slash", "text"],
    guild_id: int | None,
    shard_id: int | None,
    user_texts: Iterable[str] = (),
    reference: str | None = None,
) -> str | None:
    """Send a command's error to Sentry with its tags and without ``user_texts``; return the event id.

    ``user_texts`` are what the user typed (message content, option values): they are removed from
    the whole event, local variables included. ``reference`` is the code the user's reply quoted,
    tagged so an operator finds the event a user reports. Returns ``None`` when Sentry is off or the
    event was dropped.
    """
    if _active is None:
        return None
    event, hint = event_from_exception(
        error, client_options=_active.client.options, mechanism={"type": "botops.command", "handled": True}
    )
    hint[_USER_TEXTS_HINT] = tuple(user_texts)
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("command", command)
        scope.set_tag("kind", kind)
        scope.set_tag("guild", "dm" if guild_id is None else str(guild_id))
        scope.set_tag("shard", "none" if shard_id is None else str(shard_id))
        if reference is not None:
            scope.set_tag("reference", reference)
        return scope.capture_event(event, hint=hint)


def start_command_transaction(name: str) -> Span | None:
    """Start timing a command in Sentry if it is sampled; call ``finish()`` on it when the command ends.

    The sampling decision comes first, here, at ``SENTRY_TRACES_SAMPLE_RATE``: the SDK would build a
    transaction for every command and drop most of them, which costs more than the command itself
    spends in the bot. Returns ``None`` when Sentry is off or the command is not sampled.
    """
    if _active is None or _random() >= _active.traces_sample_rate:
        return None
    transaction = sentry_sdk.start_transaction(op="botops.command", name=name, sampled=True)
    if isinstance(transaction, Transaction):
        transaction.sample_rate = _active.traces_sample_rate  # what Sentry extrapolates from
    return transaction
