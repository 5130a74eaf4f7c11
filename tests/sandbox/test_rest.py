"""The sandbox's REST layer seen from a plain HTTP client: Discord's limits, errors, auth and headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from botops.sandbox import DemoWorld, DiscordError, Sandbox, build_demo_world
from botops.sandbox.messages import parse_message_body


@pytest_asyncio.fixture
async def http(sandbox: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bot {sandbox.token}"}
    async with aiohttp.ClientSession(base_url=sandbox.url, headers=headers) as session:
        yield session


async def _post(http: aiohttp.ClientSession, path: str, body: Any) -> tuple[int, Any]:
    async with http.post("/api/v10" + path, json=body) as response:
        return response.status, await response.json()


@pytest.mark.asyncio
async def test_message_is_stored_and_answered_with_exact_json_content_type(
    http: aiohttp.ClientSession, demo: DemoWorld
) -> None:
    async with http.post(
        f"/api/v10/channels/{demo.general.id}/messages", json={"content": "hello"}
    ) as response:
        assert response.headers["Content-Type"] == "application/json"
        body = await response.json()

    assert response.status == 200
    assert body["content"] == "hello"
    assert [m.content for m in demo.general.history()] == ["hello"]


@pytest.mark.asyncio
async def test_content_over_2000_characters_is_refused_with_discords_form_error(
    http: aiohttp.ClientSession, demo: DemoWorld
) -> None:
    status, body = await _post(http, f"/channels/{demo.general.id}/messages", {"content": "x" * 2001})

    assert status == 400
    assert body["code"] == 50035
    assert body["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert demo.general.history() == []


@pytest.mark.asyncio
async def test_content_of_exactly_2000_characters_is_accepted(
    http: aiohttp.ClientSession, demo: DemoWorld
) -> None:
    status, _ = await _post(http, f"/channels/{demo.general.id}/messages", {"content": "x" * 2000})

    assert status == 200


@pytest.mark.asyncio
async def test_more_than_ten_embeds_are_refused(http: aiohttp.ClientSession, demo: DemoWorld) -> None:
    embeds = [{"title": str(n)} for n in range(11)]
    status, body = await _post(http, f"/channels/{demo.general.id}/messages", {"embeds": embeds})

    assert status == 400
    assert "embeds" in body["errors"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("embed", "where"),
    [
        ({"title": "t" * 257}, "title"),
        ({"description": "d" * 4097}, "description"),
        ({"title": "x", "fields": [{"name": "n", "value": "v" * 1025}]}, "fields"),
        ({"title": "x", "fields": [{"name": "n", "value": "v"}] * 26}, "fields"),
        ({"title": "x", "footer": {"text": "f" * 2049}}, "footer"),
    ],
)
async def test_embed_limits_are_checked_field_by_field(
    http: aiohttp.ClientSession, demo: DemoWorld, embed: dict[str, Any], where: str
) -> None:
    status, body = await _post(http, f"/channels/{demo.general.id}/messages", {"embeds": [embed]})

    assert status == 400
    assert where in body["errors"]["embeds"]["0"]


@pytest.mark.asyncio
async def test_embeds_adding_up_to_more_than_6000_characters_are_refused(
    http: aiohttp.ClientSession, demo: DemoWorld
) -> None:
    embeds = [{"description": "d" * 4000}, {"description": "d" * 2001}]
    status, body = await _post(http, f"/channels/{demo.general.id}/messages", {"embeds": embeds})

    assert status == 400
    assert "6000" in body["errors"]["embeds"]["_errors"][0]["message"]


@pytest.mark.asyncio
async def test_an_empty_message_is_refused(http: aiohttp.ClientSession, demo: DemoWorld) -> None:
    status, body = await _post(http, f"/channels/{demo.general.id}/messages", {"content": ""})

    assert (status, body["code"]) == (400, 50006)


@pytest.mark.asyncio
async def test_allowed_mentions_parse_and_list_of_the_same_kind_contradict(
    http: aiohttp.ClientSession, demo: DemoWorld
) -> None:
    allowed = {"parse": ["users"], "users": [str(demo.admin.id)]}
    status, body = await _post(
        http, f"/channels/{demo.general.id}/messages", {"content": "hi", "allowed_mentions": allowed}
    )

    assert status == 400
    assert (
        body["errors"]["allowed_mentions"]["_errors"][0]["code"] == "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE"
    )


@pytest.mark.asyncio
async def test_allowed_mentions_decide_who_is_mentioned(http: aiohttp.ClientSession, demo: DemoWorld) -> None:
    alice, bob = demo.admin, demo.moderator
    content = f"{alice.mention} {bob.mention} @everyone"
    allowed = {"parse": [], "users": [str(bob.id)]}
    status, body = await _post(
        http, f"/channels/{demo.general.id}/messages", {"content": content, "allowed_mentions": allowed}
    )

    assert status == 200
    assert [u["id"] for u in body["mentions"]] == [str(bob.id)]
    assert body["mention_everyone"] is False


@pytest.mark.asyncio
async def test_a_wrong_token_gets_401(sandbox: Sandbox) -> None:
    async with (
        aiohttp.ClientSession(base_url=sandbox.url, headers={"Authorization": "Bot not-the-token"}) as http,
        http.get("/api/v10/users/@me") as response,
    ):
        assert response.status == 401
        assert (await response.json())["message"] == "401: Unauthorized"


@pytest.mark.asyncio
async def test_every_answer_carries_rate_limit_headers_and_via(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/v10/users/@me") as response:
        headers = response.headers

    for name in (
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset-After",
        "X-RateLimit-Bucket",
    ):
        assert name in headers
    assert headers["Via"]


@pytest.mark.asyncio
async def test_realistic_rate_limits_refuse_the_sixth_message_in_five_seconds() -> None:
    demo = build_demo_world()
    async with (
        Sandbox(world=demo.world, ratelimits="realistic") as server,
        aiohttp.ClientSession(base_url=server.url, headers={"Authorization": f"Bot {server.token}"}) as http,
    ):
        statuses = [
            (await _post(http, f"/channels/{demo.general.id}/messages", {"content": "x"}))[0]
            for _ in range(6)
        ]
        async with http.post(
            f"/api/v10/channels/{demo.general.id}/messages", json={"content": "x"}
        ) as refused:
            body = await refused.json()

    assert statuses == [200] * 5 + [429]
    assert refused.headers["Via"]
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert body["retry_after"] > 0
    assert body["global"] is False


@pytest.mark.asyncio
async def test_unknown_route_answers_404_and_is_recorded() -> None:
    async with (
        Sandbox() as server,
        aiohttp.ClientSession(base_url=server.url, headers={"Authorization": f"Bot {server.token}"}) as http,
        http.put("/api/v10/channels/1/pins/2") as response,
    ):
        assert response.status == 404
        assert [(r.method, r.path) for r in server.unknown_routes] == [("PUT", "/channels/1/pins/2")]


@pytest.mark.asyncio
async def test_multipart_payload_json_that_is_not_json_is_discords_invalid_form_body(
    http: aiohttp.ClientSession, demo: DemoWorld
) -> None:
    form = aiohttp.FormData()
    form.add_field("payload_json", '{"content": ', content_type="application/json")
    form.add_field("files[0]", b"data", filename="a.txt", content_type="text/plain")
    async with http.post(f"/api/v10/channels/{demo.general.id}/messages", data=form) as response:
        status, kind, body = response.status, response.content_type, await response.json()

    assert (status, kind) == (400, "application/json")
    assert (body["code"], body["message"]) == (50035, "Invalid Form Body")
    assert demo.general.history() == []


@pytest.mark.asyncio
@pytest.mark.parametrize("parameter", ["before", "after", "around"])
async def test_a_message_history_anchor_that_is_not_a_snowflake_is_discords_invalid_form_body(
    parameter: str,
) -> None:
    # A sandbox of its own: the shared fixture checks every query against the spec, and this one is
    # malformed on purpose.
    demo = build_demo_world()
    async with (
        Sandbox(world=demo.world) as server,
        aiohttp.ClientSession(base_url=server.url, headers={"Authorization": f"Bot {server.token}"}) as http,
        http.get(
            f"/api/v10/channels/{demo.general.id}/messages", params={parameter: "yesterday"}
        ) as response,
    ):
        status, body = response.status, await response.json()

    assert (status, body["code"]) == (400, 50035)
    assert body["errors"][parameter]["_errors"][0]["code"] == "NUMBER_TYPE_COERCE"


@pytest.mark.asyncio
async def test_a_failure_inside_a_route_is_discords_json_500_and_is_logged(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    demo: DemoWorld,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(message: Any) -> Any:
        raise RuntimeError("a bug in the sandbox")

    monkeypatch.setattr(sandbox, "store_message", broken)
    async with http.post(f"/api/v10/channels/{demo.general.id}/messages", json={"content": "x"}) as response:
        status, kind, body = response.status, response.content_type, await response.json()

    assert (status, kind) == (500, "application/json")
    assert body == {"message": "500: Internal Server Error", "code": 0}
    assert any("a bug in the sandbox" in r.getMessage() or r.exc_info for r in caplog.records)


@pytest.mark.asyncio
async def test_a_followup_before_the_interaction_is_acknowledged_is_unknown_webhook(
    http: aiohttp.ClientSession, sandbox: Sandbox, demo: DemoWorld
) -> None:
    application = demo.world.application.id
    command = {"name": "ping", "description": "Answer pong", "type": 1}
    async with http.put(
        f"/api/v10/applications/{application}/guilds/{demo.guild.id}/commands", json=[command]
    ) as synced:
        assert synced.status == 200
    async with http.ws_connect(sandbox.gateway_url + "?v=10&encoding=json") as gateway:
        await gateway.receive_json(timeout=5)  # HELLO
        identify = {"token": sandbox.token, "intents": 1, "properties": {}}
        await gateway.send_json({"op": 2, "d": identify})
        await gateway.receive_json(timeout=5)  # READY: a bot is connected, so a command can be invoked
        result = await sandbox.invoke_slash("ping", member=demo.members[0], channel=demo.general)

    status, body = await _post(http, f"/webhooks/{application}/{result.interaction.token}", {"content": "x"})

    assert (status, body["code"]) == (404, 10015)
    assert body["message"] == "Unknown Webhook"


@pytest.mark.asyncio
async def test_unknown_channel_is_discords_10003(http: aiohttp.ClientSession) -> None:
    status, body = await _post(http, "/channels/123456789012345678/messages", {"content": "x"})

    assert (status, body["code"]) == (404, 10003)


@pytest.mark.asyncio
async def test_sending_without_permission_is_refused(
    http: aiohttp.ClientSession, sandbox: Sandbox, demo: DemoWorld
) -> None:
    deny_send = {"id": str(demo.guild.id), "type": 0, "allow": "0", "deny": str(1 << 11)}
    demo.announcements.permission_overwrites.append(deny_send)

    status, body = await _post(http, f"/channels/{demo.announcements.id}/messages", {"content": "x"})

    assert (status, body["code"]) == (403, 50013)


@pytest.mark.asyncio
async def test_editing_someone_elses_message_is_refused(
    http: aiohttp.ClientSession, sandbox: Sandbox, demo: DemoWorld
) -> None:
    message = await sandbox.send_message(demo.general, demo.admin, "mine")
    async with http.patch(
        f"/api/v10/channels/{demo.general.id}/messages/{message.id}", json={"content": "yours"}
    ) as response:
        body = await response.json()

    assert (response.status, body["code"]) == (403, 50005)
    assert message.content == "mine"


@pytest.mark.asyncio
async def test_role_above_the_bots_cannot_be_given(
    http: aiohttp.ClientSession, sandbox: Sandbox, demo: DemoWorld
) -> None:
    member = demo.members[0]
    async with http.put(
        f"/api/v10/guilds/{demo.guild.id}/members/{member.id}/roles/{demo.admin_role.id}"
    ) as response:
        body = await response.json()

    assert (response.status, body["code"]) == (403, 50013)
    assert demo.admin_role.id not in member.roles


@given(content=st.text(min_size=1, max_size=2100).filter(str.strip))
def test_content_is_accepted_exactly_up_to_2000_characters(content: str) -> None:
    if len(content) <= 2000:
        assert parse_message_body({"content": content}).content == content
    else:
        with pytest.raises(DiscordError) as refused:
            parse_message_body({"content": content})
        assert refused.value.code == 50035


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "limit", "maximum"),
    [("/channels/{channel}/messages", "101", 100), ("/guilds/{guild}/members", "0", 1000)],
)
async def test_a_limit_outside_discords_range_is_refused_with_the_range(
    http: aiohttp.ClientSession, demo: DemoWorld, path: str, limit: str, maximum: int
) -> None:
    url = "/api/v10" + path.format(channel=demo.general.id, guild=demo.guild.id)
    async with http.get(url, params={"limit": limit}) as response:
        body = await response.json()

    assert (response.status, body["code"]) == (400, 50035)
    assert body["errors"]["limit"]["_errors"][0]["message"] == f"int value should be between 1 and {maximum}."
