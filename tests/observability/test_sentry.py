"""Sentry: the real sentry-sdk sends command errors to a local capture server, scrubbed of every secret."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sentry_sdk
from hypothesis import given
from hypothesis import strategies as st

from botops.observability.sentry import (
    Scrubber,
    SentryHandle,
    capture_command_error,
    init_sentry,
    start_command_transaction,
)
from botops.redaction import REDACTED
from botops.settings import load_settings
from botops.version import git_commit
from tests.observability.capture import CaptureServer, Event
from tests.test_settings import fake_token

Start = Callable[..., SentryHandle]

CANARY_LOGGER = "tests.observability.canary"


@pytest.fixture
def start_sentry(capture_server: CaptureServer, caplog: pytest.LogCaptureFixture) -> Iterator[Start]:
    """Start Sentry against the capture server; afterwards the SDK is back to its uninitialised state."""
    caplog.set_level(logging.INFO, logger=CANARY_LOGGER)
    handles: list[SentryHandle] = []

    def _start(**overrides: Any) -> SentryHandle:
        handle = init_sentry(load_settings(None, sentry_dsn=capture_server.dsn, **overrides))
        assert handle is not None
        handles.append(handle)
        return handle

    yield _start
    for handle in handles:
        handle.close(timeout=0)  # a test that failed half-way may leave one open
    sentry_sdk.get_global_scope().set_client(None)
    sentry_sdk.get_isolation_scope().clear()
    sentry_sdk.get_current_scope().clear()


async def close(handle: SentryHandle) -> None:
    """Close the client off the loop, so the capture server can take what it flushes."""
    await asyncio.to_thread(handle.close)


def fail_with(message: str) -> None:
    raise RuntimeError(message)


def capture_failure(run: Callable[..., None], /, *args: str, **tags: Any) -> str | None:
    """Call ``run`` and send its error as the funnel does; the test's own locals stay out of it."""
    try:
        run(*args)
    except RuntimeError as error:
        return capture_command_error(error, **tags)
    raise AssertionError("the command did not fail")


def tagged(event_id: str | None) -> Callable[[Event], bool]:
    assert event_id is not None
    return lambda event: event.get("event_id") == event_id


def message_of(event: Event) -> str:
    logentry = event.get("logentry") or {}
    return str(logentry.get("formatted") or logentry.get("message") or event.get("message") or "")


# -- sending ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_command_error_arrives_with_its_tags_release_and_environment(
    capture_server: CaptureServer, start_sentry: Start
) -> None:
    handle = start_sentry(environment="development")
    event_id = capture_failure(
        fail_with, "the database went away", command="xp add", kind="slash", guild_id=42, shard_id=3
    )

    event = await capture_server.wait_for_event(tagged(event_id))
    await close(handle)

    assert event["tags"] == {"command": "xp add", "kind": "slash", "guild": "42", "shard": "3"}
    assert event["release"] == f"botops@{git_commit()}"
    assert event["environment"] == "development"


@pytest.mark.asyncio
async def test_sentry_collects_no_personal_data(start_sentry: Start) -> None:
    handle = start_sentry()

    assert not handle.client.should_send_default_pii()


@pytest.mark.asyncio
async def test_no_secret_or_user_text_reaches_sentry(
    capture_server: CaptureServer, start_sentry: Start
) -> None:
    token, password, http_token = fake_token(), secrets.token_urlsafe(12), secrets.token_urlsafe(16)
    marker = secrets.token_hex(8)
    user_text = f"my secret plan {marker}\nsecond line"
    handle = start_sentry(
        discord_token=token,
        database_url=f"postgresql+asyncpg://bot:{password}@db.example/bot",
        http_token=http_token,
    )
    canaries = {"token": token, "password": password, "http token": http_token}
    canaries |= {"user text": user_text, "its marker": marker}
    logging.getLogger(CANARY_LOGGER).info("handling %s for %s", user_text, token)

    def run_command(content: str) -> None:
        held = {"value": token, "nested": [password, {"deeper": http_token}]}
        fail_with(f"{content} failed at {held!r}")

    event_id = capture_failure(
        run_command, user_text, command="echo", kind="text", guild_id=1, shard_id=0, user_texts=[user_text]
    )
    event = await capture_server.wait_for_event(tagged(event_id))
    await close(handle)

    received = capture_server.received.decode()
    leaked = [name for name, value in canaries.items() if value in received]
    escaped = [name for name, value in canaries.items() if json.dumps(value)[1:-1] in received]
    assert (leaked, escaped) == ([], [])
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert any("held" in frame.get("vars", {}) for frame in frames)  # the locals were sent, scrubbed
    assert REDACTED in event["exception"]["values"][-1]["value"]
    assert any(REDACTED in crumb.get("message", "") for crumb in event["breadcrumbs"]["values"])


@pytest.mark.asyncio
async def test_an_interaction_token_in_a_logged_url_is_scrubbed_from_breadcrumbs(
    capture_server: CaptureServer, start_sentry: Start
) -> None:
    interaction_token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
    handle = start_sentry()
    logging.getLogger(CANARY_LOGGER).warning(
        "We are being rate limited. POST https://discord.com/api/v10/interactions/1234/%s/callback "
        "responded with 429.",
        interaction_token,
    )
    event_id = capture_failure(fail_with, "boom", command="rank", kind="slash", guild_id=None, shard_id=None)
    event = await capture_server.wait_for_event(tagged(event_id))
    await close(handle)

    assert interaction_token not in capture_server.received.decode()
    messages = [crumb.get("message", "") for crumb in event["breadcrumbs"]["values"]]
    assert any(f"/interactions/1234/{REDACTED}/callback" in message for message in messages)


@pytest.mark.asyncio
async def test_the_funnel_logger_creates_no_event_while_other_loggers_do(
    capture_server: CaptureServer, start_sentry: Start
) -> None:
    funnel_marker, other_marker = secrets.token_hex(8), secrets.token_hex(8)
    handle = start_sentry()
    logging.getLogger("botops.bot.funnel").error("/xp failed (reference %s)", funnel_marker)
    logging.getLogger(CANARY_LOGGER).error("something else failed (reference %s)", other_marker)

    # One background thread sends the events in order: once the second is here, the first would be.
    await capture_server.wait_for_event(lambda event: other_marker in json.dumps(event))
    await close(handle)

    assert funnel_marker not in capture_server.received.decode()


@pytest.mark.asyncio
async def test_a_sampled_command_transaction_arrives_named_for_its_command(
    capture_server: CaptureServer, start_sentry: Start
) -> None:
    handle = start_sentry(sentry_traces_sample_rate=1.0)
    transaction = start_command_transaction("xp add")
    assert transaction is not None
    transaction.finish()

    found = await capture_server.wait_for_transaction(lambda event: event.get("transaction") == "xp add")
    await close(handle)

    assert found["contexts"]["trace"]["op"] == "botops.command"


# -- off -------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_without_a_dsn_sentry_stays_off_and_sends_nothing(capture_server: CaptureServer) -> None:
    handle = init_sentry(load_settings(None, sentry_dsn=None))
    logging.getLogger(CANARY_LOGGER).error("nobody hears this")
    event_id = capture_failure(fail_with, "boom", command="rank", kind="slash", guild_id=1, shard_id=0)
    await asyncio.to_thread(sentry_sdk.flush)

    assert (handle, event_id, start_command_transaction("rank")) == (None, None, None)
    assert not sentry_sdk.get_client().is_active()
    assert capture_server.bodies == []


def test_without_a_dsn_one_info_line_says_how_to_turn_sentry_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="botops.observability.sentry")

    init_sentry(load_settings(None, sentry_dsn=None))

    (record,) = [r for r in caplog.records if r.name == "botops.observability.sentry"]
    assert record.levelno == logging.INFO
    assert "SENTRY_DSN" in record.getMessage()


# -- the scrubber ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v10/interactions/1234/{token}/callback",
        "/api/v10/webhooks/5678/{token}",
        "/api/v10/webhooks/5678/{token}/messages/@original",
    ],
)
def test_the_scrubber_removes_the_token_segment_of_interaction_and_webhook_urls(path: str) -> None:
    token = secrets.token_urlsafe(40)

    scrubbed = Scrubber().text("PATCH https://discord.com" + path.format(token=token) + "?wait=true")

    assert scrubbed == "PATCH https://discord.com" + path.format(token=REDACTED) + "?wait=true"


def test_the_scrubber_removes_a_short_user_text_only_where_it_is_the_whole_value() -> None:
    scrubber = Scrubber(user_texts=["hi"])

    scrubbed = scrubber.data({"content": "'hi'", "raw": "hi", "word": "this"})

    assert scrubbed == {"content": REDACTED, "raw": REDACTED, "word": "this"}


def test_the_scrubber_cuts_off_data_nested_deeper_than_its_limit() -> None:
    token = fake_token()
    nested: Any = [token]
    for _ in range(10_000):
        nested = {"inner": [nested]}

    scrubbed = Scrubber().data(nested)

    assert token not in json.dumps(scrubbed)


_SECRET = secrets.token_urlsafe(12)
_HOLDING_THE_SECRET = st.builds("{}{}{}".format, st.text(max_size=5), st.just(_SECRET), st.text(max_size=5))


@given(
    st.recursive(
        st.none() | st.integers() | st.text() | _HOLDING_THE_SECRET,
        lambda children: (
            st.lists(children, max_size=4)
            | st.tuples(children, children)
            | st.dictionaries(st.text(max_size=8) | _HOLDING_THE_SECRET, children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_the_scrubber_leaves_no_secret_anywhere_in_event_data(data: Any) -> None:
    scrubbed = Scrubber([_SECRET]).data(data)

    assert _SECRET not in json.dumps(scrubbed)
