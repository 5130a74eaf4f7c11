"""The gateway protocol seen from a raw WebSocket client: handshake, close codes, shards, intents."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import zstandard

from botops.sandbox import DemoWorld, Intents, Sandbox, build_demo_world

DEFAULT_INTENTS = int(Intents.GUILDS | Intents.GUILD_MESSAGES)


class Client:
    """A minimal gateway client that decodes text, zlib-stream and zstd-stream frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, compression: str) -> None:
        self.ws = ws
        self._zlib = zlib.decompressobj()
        self._zstd = zstandard.ZstdDecompressor().decompressobj()
        self.compression = compression

    async def receive(self) -> dict[str, Any]:
        message = await self.ws.receive(timeout=5)
        if message.type == aiohttp.WSMsgType.TEXT:
            payload: dict[str, Any] = json.loads(message.data)
            return payload
        if message.type == aiohttp.WSMsgType.BINARY:
            if self.compression == "zlib-stream":
                assert message.data.endswith(b"\x00\x00\xff\xff")
                return dict(json.loads(self._zlib.decompress(message.data)))
            return dict(json.loads(self._zstd.decompress(message.data)))
        raise ConnectionError(f"closed with {self.ws.close_code}")

    async def send(self, op: int, data: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": data}))

    async def identify(
        self, token: str, intents: int = DEFAULT_INTENTS, shard: list[int] | None = None
    ) -> None:
        data: dict[str, Any] = {"token": token, "intents": intents, "properties": {}, "large_threshold": 250}
        if shard is not None:
            data["shard"] = shard
        await self.send(2, data)

    async def dispatches(self, count: int) -> list[dict[str, Any]]:
        found = []
        while len(found) < count:
            payload = await self.receive()
            if payload["op"] == 0:
                found.append(payload)
        return found

    async def close_code(self) -> int | None:
        message = await self.ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        return self.ws.close_code


@pytest_asyncio.fixture
async def connect(sandbox: Sandbox) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession() as http:
        sockets: list[aiohttp.ClientWebSocketResponse] = []

        async def open_client(compression: str = "", server: Sandbox = sandbox) -> Client:
            query = f"?v=10&encoding=json&compress={compression}" if compression else "?v=10&encoding=json"
            ws = await http.ws_connect(server.gateway_url + query)
            sockets.append(ws)
            client = Client(ws, compression)
            hello = await client.receive()
            assert hello["op"] == 10
            return client

        yield open_client
        for ws in sockets:
            await ws.close()


@pytest.mark.asyncio
async def test_hello_announces_the_heartbeat_interval_and_heartbeats_are_acknowledged(
    sandbox: Sandbox, connect: Any
) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(sandbox.gateway_url + "?v=10") as ws:
        hello = json.loads((await ws.receive(timeout=5)).data)
        await ws.send_str(json.dumps({"op": 1, "d": None}))
        ack = json.loads((await ws.receive(timeout=5)).data)

    assert hello["d"]["heartbeat_interval"] == sandbox.heartbeat_interval_ms
    assert ack["op"] == 11


@pytest.mark.asyncio
async def test_identify_gets_ready_then_one_guild_create_per_guild(
    sandbox: Sandbox, demo: DemoWorld, connect: Any
) -> None:
    client = await connect()
    await client.identify(sandbox.token)
    ready, guild_create = await client.dispatches(2)

    assert ready["t"] == "READY"
    assert ready["s"] == 1
    assert ready["d"]["resume_gateway_url"] == sandbox.gateway_url
    assert ready["d"]["session_id"] in {s.id for s in sandbox.sessions}
    assert ready["d"]["application"]["id"] == str(demo.world.application.id)
    assert ready["d"]["guilds"] == [{"id": str(demo.guild.id), "unavailable": True}]
    assert guild_create["t"] == "GUILD_CREATE"
    assert guild_create["s"] == 2
    assert {c["name"] for c in guild_create["d"]["channels"]} >= {"general", "bot-commands", "announcements"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("first", "code"),
    [
        ({"op": 8, "d": {"guild_id": "1"}}, 4003),
        ({"op": 2, "d": {"token": "wrong", "intents": 1, "properties": {}}}, 4004),
        ({"op": 2, "d": {"token": "TOKEN", "intents": 1, "properties": {}, "shard": [2, 2]}}, 4010),
        ({"op": 2, "d": {"token": "TOKEN", "intents": -1, "properties": {}}}, 4013),
        ({"op": 99, "d": None}, 4003),
    ],
)
async def test_protocol_violations_close_with_discords_code(
    sandbox: Sandbox, connect: Any, first: dict[str, Any], code: int
) -> None:
    client = await connect()
    if first["d"] and first["d"].get("token") == "TOKEN":
        first["d"]["token"] = sandbox.token
    await client.ws.send_str(json.dumps(first))

    assert await client.close_code() == code


@pytest.mark.asyncio
async def test_an_unknown_opcode_after_identify_closes_with_4001(sandbox: Sandbox, connect: Any) -> None:
    client = await connect()
    await client.identify(sandbox.token)
    await client.dispatches(2)
    await client.send(99, None)

    assert await client.close_code() == 4001


@pytest.mark.asyncio
async def test_privileged_intents_not_allowed_close_with_4014(connect: Any) -> None:
    async with Sandbox(allowed_privileged_intents=int(Intents.GUILD_MEMBERS)) as server:
        client = await connect(server=server)
        await client.identify(server.token, intents=int(Intents.GUILDS | Intents.MESSAGE_CONTENT))

        assert await client.close_code() == 4014


@pytest.mark.asyncio
async def test_resuming_an_unknown_session_is_invalidated(sandbox: Sandbox, connect: Any) -> None:
    client = await connect()
    await client.send(6, {"token": sandbox.token, "session_id": "nope", "seq": 3})

    assert await client.receive() == {"op": 9, "d": False}


@pytest.mark.asyncio
async def test_resume_replays_what_was_missed_then_sends_resumed(
    sandbox: Sandbox, demo: DemoWorld, connect: Any
) -> None:
    first = await connect()
    await first.identify(
        sandbox.token, intents=int(Intents.GUILDS | Intents.GUILD_MESSAGES | Intents.MESSAGE_CONTENT)
    )
    ready, _ = await first.dispatches(2)
    await first.ws.close(code=4000)
    await sandbox.send_message(demo.general, demo.admin, "while you were away")

    second = await connect()
    await second.send(6, {"token": sandbox.token, "session_id": ready["d"]["session_id"], "seq": 2})
    missed, resumed = await second.dispatches(2)

    assert (missed["t"], missed["s"], missed["d"]["content"]) == ("MESSAGE_CREATE", 3, "while you were away")
    assert (resumed["t"], resumed["s"]) == ("RESUMED", 4)


@pytest.mark.asyncio
async def test_a_session_closed_with_1000_by_the_client_cannot_resume(sandbox: Sandbox, connect: Any) -> None:
    first = await connect()
    await first.identify(sandbox.token)
    ready, _ = await first.dispatches(2)
    await first.ws.close(code=1000)

    second = await connect()
    await second.send(6, {"token": sandbox.token, "session_id": ready["d"]["session_id"], "seq": 2})

    assert await second.receive() == {"op": 9, "d": False}


@pytest.mark.asyncio
async def test_message_content_is_blank_without_the_intent_unless_the_bot_is_mentioned(
    sandbox: Sandbox, demo: DemoWorld, connect: Any
) -> None:
    client = await connect()
    await client.identify(sandbox.token, intents=DEFAULT_INTENTS)
    await client.dispatches(2)
    await sandbox.send_message(demo.general, demo.admin, "plain")
    await sandbox.send_message(demo.general, demo.admin, f"<@{demo.world.bot.id}> hi")
    plain, mention = await client.dispatches(2)

    assert plain["d"]["content"] == ""
    assert mention["d"]["content"] == f"<@{demo.world.bot.id}> hi"


@pytest.mark.asyncio
async def test_events_need_their_intent(sandbox: Sandbox, demo: DemoWorld, connect: Any) -> None:
    client = await connect()
    await client.identify(sandbox.token, intents=int(Intents.GUILDS))
    await client.dispatches(2)
    await sandbox.send_message(demo.general, demo.admin, "not for you")
    demo.world.add_role(demo.guild, "Regular")

    (event,) = await client.dispatches(1)

    assert event["t"] == "GUILD_ROLE_CREATE"


@pytest.mark.asyncio
@pytest.mark.parametrize("compression", ["zlib-stream", "zstd-stream"])
async def test_compressed_streams_decode_to_the_same_protocol(
    sandbox: Sandbox, connect: Any, compression: str
) -> None:
    client = await connect(compression)
    await client.identify(sandbox.token)
    ready, guild_create = await client.dispatches(2)

    assert (ready["t"], guild_create["t"]) == ("READY", "GUILD_CREATE")
    (connection,) = [c for c in sandbox.gateway.connections if c.session is not None]
    assert connection.compression == compression


@pytest.mark.asyncio
async def test_member_chunks_answer_with_the_nonce_and_every_member(
    sandbox: Sandbox, demo: DemoWorld, connect: Any
) -> None:
    client = await connect()
    await client.identify(sandbox.token, intents=int(Intents.GUILDS | Intents.GUILD_MEMBERS))
    await client.dispatches(2)
    await client.send(8, {"guild_id": str(demo.guild.id), "query": "", "limit": 0, "nonce": "n1"})
    (chunk,) = await client.dispatches(1)

    assert chunk["t"] == "GUILD_MEMBERS_CHUNK"
    assert (chunk["d"]["nonce"], chunk["d"]["chunk_index"], chunk["d"]["chunk_count"]) == ("n1", 0, 1)
    assert {m["user"]["id"] for m in chunk["d"]["members"]} == {str(i) for i in demo.guild.members}


@pytest.mark.asyncio
@pytest.mark.parametrize("as_text", [False, True], ids=["number", "string"])
async def test_member_chunks_accept_a_single_user_id(
    sandbox: Sandbox, demo: DemoWorld, connect: Any, as_text: bool
) -> None:
    member = demo.members[0]
    client = await connect()
    await client.identify(sandbox.token, intents=int(Intents.GUILDS | Intents.GUILD_MEMBERS))
    await client.dispatches(2)
    user_id = str(member.id) if as_text else member.id
    await client.send(8, {"guild_id": str(demo.guild.id), "user_ids": user_id, "nonce": "one"})
    (chunk,) = await client.dispatches(1)

    assert [m["user"]["id"] for m in chunk["d"]["members"]] == [str(member.id)]
    assert chunk["d"]["not_found"] == []


@pytest.mark.asyncio
async def test_member_chunks_ignore_malformed_user_ids_and_limit(
    sandbox: Sandbox, demo: DemoWorld, connect: Any
) -> None:
    client = await connect()
    await client.identify(sandbox.token, intents=int(Intents.GUILDS | Intents.GUILD_MEMBERS))
    await client.dispatches(2)
    request = {"guild_id": str(demo.guild.id), "user_ids": {"x": 1}, "query": "", "limit": "many"}
    await client.send(8, request)
    (chunk,) = await client.dispatches(1)

    assert {m["user"]["id"] for m in chunk["d"]["members"]} == {str(i) for i in demo.guild.members}


@pytest.mark.asyncio
async def test_each_shard_gets_only_its_guilds(connect: Any) -> None:
    world = build_demo_world().world
    for n in range(6):
        world.add_guild(f"extra {n}")
    async with Sandbox(world=world, recommended_shards=2) as server:
        seen: dict[int, set[int]] = {}
        for shard in (0, 1):
            client = await connect(server=server)
            await client.identify(server.token, shard=[shard, 2])
            ready = (await client.dispatches(1))[0]
            seen[shard] = {int(g["id"]) for g in ready["d"]["guilds"]}

    assert seen[0] | seen[1] == set(world.guilds)
    assert not seen[0] & seen[1]
    for shard, guild_ids in seen.items():
        assert all((gid >> 22) % 2 == shard for gid in guild_ids)
