"""Every payload the sandbox builds, read by the discord.py 2.7 parser that reads it in real life.

One missing key in a gateway dispatch kills discord.py's connection, and one in a REST response fails
only the code path that reads it; these tests find both without a bot. Gateway payloads are captured
from a started sandbox by a small client speaking the gateway protocol (IDENTIFY, REQUEST_GUILD_MEMBERS,
RESUME), REST responses by plain aiohttp requests, and each one is fed to the discord.py parser or
model that consumes it, offline: a ``discord.Client``'s ``ConnectionState`` that never connects. The
assertions are on what discord.py made of the payload (ids, names, roles, permissions, flags), because
"it did not raise" would also pass a payload whose keys discord.py silently defaulted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord import app_commands
from discord.channel import _threaded_channel_factory
from discord.state import ChunkRequest

from botops.sandbox import DemoWorld, Sandbox
from botops.sandbox.world import ChannelType, Message, Payload

# The gateway answers within milliseconds on loopback; this only bounds a broken test.
FRAME_TIMEOUT = 5.0
EPHEMERAL = 64


# -- a discord.py state that never connects ---------------------------------------------------------


class RecordingClient(discord.Client):
    """A client whose parsed events are kept, so a test can assert on what a parser dispatched."""

    def __init__(self) -> None:
        # No chunking at startup: nothing here has a websocket to send REQUEST_GUILD_MEMBERS on.
        super().__init__(
            intents=discord.Intents.all(), chunk_guilds_at_startup=False, guild_ready_timeout=0.01
        )
        self.events: list[tuple[str, tuple[Any, ...]]] = []

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        self.events.append((event, args))
        super().dispatch(event, *args, **kwargs)

    def dispatched(self, event: str) -> tuple[Any, ...]:
        """Return the arguments of the last ``event`` dispatched; fail the test if there was none."""
        found = [args for name, args in self.events if name == event]
        assert found, f"no {event!r} was dispatched; got {[name for name, _ in self.events]}"
        return found[-1]

    @property
    def state(self) -> Any:
        return self._connection


# -- a gateway client speaking Discord's protocol -----------------------------------------------------


class GatewayProbe:
    """One gateway connection: identifies like discord.py and hands back each dispatch's ``d``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seq: int | None = None
        self.session_id = ""
        self.frames: list[Payload] = []

    async def frame(self) -> Payload:
        """Return the next gateway payload, skipping heartbeat acks."""
        while True:
            message = await self.ws.receive(timeout=FRAME_TIMEOUT)
            assert message.type == aiohttp.WSMsgType.TEXT, f"expected a text frame, got {message!r}"
            payload: Payload = json.loads(message.data)
            if payload.get("s") is not None:
                self.seq = payload["s"]
            if payload["op"] != 11:
                self.frames.append(payload)
                return payload

    async def dispatch(self, event: str) -> Payload:
        """Return the data of the next ``event`` dispatch, skipping other dispatches."""
        while True:
            payload = await self.frame()
            if payload["op"] == 0 and payload["t"] == event:
                data: Payload = payload["d"]
                return data

    async def send(self, op: int, data: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": data}))

    async def identify(self, token: str) -> Payload:
        """Identify with every intent, as a bot using ``Intents.all()`` does; return READY's data."""
        hello = await self.frame()
        assert hello["op"] == 10
        await self.send(
            2,
            {
                "token": token,
                "properties": {"os": "linux", "browser": "discord.py", "device": "discord.py"},
                "compress": False,
                "large_threshold": 250,
                "intents": discord.Intents.all().value,
            },
        )
        ready = await self.dispatch("READY")
        self.session_id = ready["session_id"]
        return ready


@pytest_asyncio.fixture
async def http(sandbox: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session authorized as the sandbox's bot."""
    headers = {"Authorization": f"Bot {sandbox.token}"}
    async with aiohttp.ClientSession(base_url=sandbox.url, headers=headers) as session:
        yield session


@pytest_asyncio.fixture
async def probe(sandbox: Sandbox, http: aiohttp.ClientSession) -> AsyncIterator[GatewayProbe]:
    """An identified gateway connection to the running sandbox."""
    async with http.ws_connect(sandbox.gateway_url + "?v=10&encoding=json") as ws:
        gateway = GatewayProbe(ws)
        await gateway.identify(sandbox.token)
        yield gateway


@pytest_asyncio.fixture
async def client() -> AsyncIterator[RecordingClient]:
    """A discord.py client that parses payloads and never connects."""
    bot = RecordingClient()
    await bot._async_setup_hook()  # what login() does first: bind the loop, create the ready event
    yield bot
    ready_task = bot.state._ready_task
    if ready_task is not None:
        ready_task.cancel()
        await asyncio.gather(ready_task, return_exceptions=True)
    await bot.close()


@pytest_asyncio.fixture
async def joined(client: RecordingClient, probe: GatewayProbe, demo: DemoWorld) -> discord.Guild:
    """Feed the probe's READY and GUILD_CREATE to ``client``; return the demo guild as discord.py has it."""
    ready = next(f["d"] for f in probe.frames if f.get("t") == "READY")
    client.state.parsers["READY"](ready)
    client.state.parsers["GUILD_CREATE"](await probe.dispatch("GUILD_CREATE"))
    guild = client.get_guild(demo.guild.id)
    assert guild is not None
    return guild


async def rest(http: aiohttp.ClientSession, method: str, path: str, *, body: Any = None, **query: str) -> Any:
    """Call the sandbox's REST API; return the JSON body of a 2xx answer, failing the test otherwise."""
    async with http.request(method, "/api/v10" + path, json=body, params=query) as response:
        text = await response.text()
        assert 200 <= response.status < 300, f"{method} {path} -> {response.status}: {text}"
        assert response.content_type == "application/json"
        return json.loads(text)


# -- application commands as discord.py registers them ------------------------------------------------


def command_payloads() -> tuple[list[Payload], list[Payload]]:
    """Return (guild commands, global commands) exactly as discord.py's ``tree.sync()`` sends them."""
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))

    @app_commands.command(name="probe", description="Takes one option of every type")
    async def probe_command(
        interaction: discord.Interaction,
        text: str,
        count: int,
        flag: bool,
        member: discord.Member,
        channel: discord.TextChannel,
        role: discord.Role,
        ratio: float,
        target: discord.Member | discord.Role,
    ) -> None: ...

    xp = app_commands.Group(name="xp", description="Experience points")

    @xp.command(name="set", description="Set a member's XP")
    async def xp_set(interaction: discord.Interaction, member: discord.Member, amount: int) -> None: ...

    @app_commands.command(name="ping", description="Answers pong")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def ping(interaction: discord.Interaction) -> None: ...

    guild_commands = [probe_command.to_dict(tree), xp.to_dict(tree)]
    return guild_commands, [ping.to_dict(tree)]


async def sync_commands(http: aiohttp.ClientSession, sandbox: Sandbox, demo: DemoWorld) -> list[Any]:
    """Sync the guild and global commands over REST; return both responses, guild first."""
    guild_commands, global_commands = command_payloads()
    app = sandbox.world.application.id
    guild_synced = await rest(
        http, "PUT", f"/applications/{app}/guilds/{demo.guild.id}/commands", body=guild_commands
    )
    global_synced = await rest(http, "PUT", f"/applications/{app}/commands", body=global_commands)
    return [guild_synced, global_synced]


@dataclass
class Invoked:
    """An interaction the sandbox created and the INTERACTION_CREATE it sent over the gateway."""

    payload: Payload
    interaction: discord.Interaction


async def invoke(
    sandbox: Sandbox, probe: GatewayProbe, client: RecordingClient, name: str, **kwargs: Any
) -> Invoked:
    """Invoke ``/name`` through the sandbox, catch its INTERACTION_CREATE and parse it as discord.py does."""
    await sandbox.invoke_slash(name, **kwargs)
    payload = await probe.dispatch("INTERACTION_CREATE")
    client.state.parsers["INTERACTION_CREATE"](payload)
    (interaction,) = client.dispatched("interaction")
    return Invoked(payload, interaction)


# -- READY, GUILD_CREATE, GUILD_MEMBERS_CHUNK, RESUMED -------------------------------------------------


@pytest.mark.asyncio
async def test_ready_sets_client_user_application_and_unavailable_guilds(
    client: RecordingClient, probe: GatewayProbe, sandbox: Sandbox, demo: DemoWorld
) -> None:
    ready = next(f["d"] for f in probe.frames if f.get("t") == "READY")

    client.state.parsers["READY"](ready)

    me = client.user
    assert me is not None
    assert (me.id, me.name, me.bot) == (sandbox.world.bot.id, sandbox.world.bot.username, True)
    assert client.application_id == sandbox.world.application.id
    guild = client.get_guild(demo.guild.id)
    assert guild is not None
    assert guild.unavailable
    assert client.dispatched("connect") == ()


@pytest.mark.asyncio
async def test_guild_create_builds_roles_channels_and_members(
    client: RecordingClient, joined: discord.Guild, demo: DemoWorld, sandbox: Sandbox
) -> None:
    guild = joined

    assert guild.name == demo.guild.name
    assert not guild.unavailable
    assert guild.owner_id == demo.guild.owner_id
    assert guild.member_count == len(demo.guild.members)
    assert {r.name for r in guild.roles} == {r.name for r in demo.guild.roles.values()}
    assert guild.default_role.id == demo.guild.id
    admin_role = guild.get_role(demo.admin_role.id)
    assert admin_role is not None
    assert admin_role.permissions.administrator
    general = guild.get_channel(demo.general.id)
    assert isinstance(general, discord.TextChannel)
    assert general.topic == "Say hello"
    assert general.category is not None
    assert general.category.name == "Text Channels"
    assert guild.me is not None
    assert guild.me.id == sandbox.world.bot.id
    assert [r.name for r in guild.me.roles if not r.is_default()] == [sandbox.world.bot.username]
    alice = guild.get_member(demo.admin.id)
    assert alice is not None
    assert alice.guild_permissions.administrator


@pytest.mark.asyncio
async def test_members_chunk_caches_every_member_with_roles(
    client: RecordingClient, joined: discord.Guild, probe: GatewayProbe, demo: DemoWorld
) -> None:
    guild = joined
    guild._members.clear()
    # What Guild.chunk() does: register a request under a nonce, send op 8, wait for the last chunk.
    request = ChunkRequest(guild.id, 0, asyncio.get_running_loop(), client.get_guild, cache=True)
    client.state._chunk_requests[request.nonce] = request
    future = request.get_future()
    await probe.send(
        8, {"guild_id": str(guild.id), "query": "", "limit": 0, "presences": True, "nonce": request.nonce}
    )

    client.state.parsers["GUILD_MEMBERS_CHUNK"](await probe.dispatch("GUILD_MEMBERS_CHUNK"))

    assert future.done(), "the last chunk must complete the request"
    members = future.result()
    assert {m.id for m in members} == {m.id for m in guild.members} == set(demo.guild.members)
    bob = guild.get_member(demo.moderator.id)
    assert bob is not None
    assert [r.id for r in bob.roles if not r.is_default()] == [demo.moderator_role.id]
    assert bob.guild_permissions.manage_messages
    assert not bob.guild_permissions.administrator


@pytest.mark.asyncio
async def test_ready_and_guild_create_complete_startup(
    client: RecordingClient, joined: discord.Guild
) -> None:
    await asyncio.wait_for(client.wait_until_ready(), FRAME_TIMEOUT)

    assert client.is_ready()
    assert client.dispatched("guild_available") == (joined,)


@pytest.mark.asyncio
async def test_guild_created_at_runtime_is_a_guild_join(
    client: RecordingClient, joined: discord.Guild, probe: GatewayProbe, sandbox: Sandbox
) -> None:
    await asyncio.wait_for(client.wait_until_ready(), FRAME_TIMEOUT)
    made = sandbox.world.add_guild("second home")

    client.state.parsers["GUILD_CREATE"](await probe.dispatch("GUILD_CREATE"))

    (guild,) = client.dispatched("guild_join")
    assert (guild.id, guild.name, guild.unavailable) == (made.id, "second home", False)
    assert guild.me is not None
    assert guild.me.guild_permissions.manage_roles


@pytest.mark.asyncio
async def test_resumed_after_a_drop_is_an_object_discord_py_tags_and_parses(
    client: RecordingClient, sandbox: Sandbox, http: aiohttp.ClientSession, probe: GatewayProbe
) -> None:
    await probe.ws.close(code=4000)  # not 1000: the session stays resumable
    async with http.ws_connect(sandbox.gateway_url + "?v=10&encoding=json") as ws:
        again = GatewayProbe(ws)
        assert (await again.frame())["op"] == 10
        await again.send(6, {"token": sandbox.token, "session_id": probe.session_id, "seq": probe.seq})

        resumed = await again.dispatch("RESUMED")

    resumed["__shard_id__"] = 0  # what DiscordWebSocket does to it before parsing
    client.state.parsers["RESUMED"](resumed)
    assert client.dispatched("resumed") == ()


# -- runtime changes: members, roles, channels --------------------------------------------------------


@pytest.mark.asyncio
async def test_member_add_caches_the_member_with_roles(
    client: RecordingClient, joined: discord.Guild, probe: GatewayProbe, sandbox: Sandbox, demo: DemoWorld
) -> None:
    newcomer = sandbox.world.add_member(demo.guild, "frank", roles=[demo.moderator_role], nick="Frankie")

    client.state.parsers["GUILD_MEMBER_ADD"](await probe.dispatch("GUILD_MEMBER_ADD"))

    (member,) = client.dispatched("member_join")
    assert joined.get_member(newcomer.id) is member
    assert (member.name, member.nick, member.display_name) == ("frank", "Frankie", "Frankie")
    assert demo.moderator_role.id in [r.id for r in member.roles]
    assert member.joined_at is not None
    assert member.joined_at.tzinfo is not None


@pytest.mark.asyncio
async def test_member_remove_uncaches_the_member(
    client: RecordingClient, joined: discord.Guild, probe: GatewayProbe, sandbox: Sandbox, demo: DemoWorld
) -> None:
    leaver = demo.members[0]
    sandbox.world.remove_member(demo.guild, leaver)

    client.state.parsers["GUILD_MEMBER_REMOVE"](await probe.dispatch("GUILD_MEMBER_REMOVE"))

    (member,) = client.dispatched("member_remove")
    assert member.id == leaver.id
    assert joined.get_member(leaver.id) is None


@pytest.mark.asyncio
async def test_member_update_changes_roles_and_nick(
    client: RecordingClient, joined: discord.Guild, probe: GatewayProbe, sandbox: Sandbox, demo: DemoWorld
) -> None:
    carol = demo.members[0]
    sandbox.world.set_member_roles(demo.guild, carol, [demo.moderator_role])
    client.state.parsers["GUILD_MEMBER_UPDATE"](await probe.dispatch("GUILD_MEMBER_UPDATE"))
    sandbox.world.set_nick(demo.guild, carol, "Caz")
    client.state.parsers["GUILD_MEMBER_UPDATE"](await probe.dispatch("GUILD_MEMBER_UPDATE"))

    before, after = client.dispatched("member_update")
    assert before.nick is None
    assert after.nick == "Caz"
    member = joined.get_member(carol.id)
    assert member is not None
    assert member.nick == "Caz"
    assert [r.id for r in member.roles if not r.is_default()] == [demo.moderator_role.id]


@pytest.mark.asyncio
async def test_role_create_update_and_delete_follow_the_world(
    client: RecordingClient, joined: discord.Guild, probe: GatewayProbe, sandbox: Sandbox, demo: DemoWorld
) -> None:
    world = sandbox.world
    role = world.add_role(demo.guild, "Helper", permissions=discord.Permissions(kick_members=True).value)
    client.state.parsers["GUILD_ROLE_CREATE"](await probe.dispatch("GUILD_ROLE_CREATE"))
    (created,) = client.dispatched("guild_role_create")
    assert (created.id, created.name, created.permissions.kick_members) == (role.id, "Helper", True)

    world.update_role(
        demo.guild, role, name="Helpers", permissions=discord.Permissions(ban_members=True).value
    )
    client.state.parsers["GUILD_ROLE_UPDATE"](await probe.dispatch("GUILD_ROLE_UPDATE"))
    updated = joined.get_role(role.id)
    assert updated is not None
    assert updated.name == "Helpers"
    assert updated.permissions.ban_members
    assert not updated.permissions.kick_members

    world.delete_role(demo.guild, role)
    client.state.parsers["GUILD_ROLE_DELETE"](await probe.dispatch("GUILD_ROLE_DELETE"))
    assert joined.get_role(role.id) is None
    (deleted,) = client.dispatched("guild_role_delete")
    assert deleted.id == role.id


@pytest.mark.asyncio
async def test_channel_create_adds_a_text_channel_in_its_category(
    client: RecordingClient, joined: discord.Guild, probe: GatewayProbe, sandbox: Sandbox, demo: DemoWorld
) -> None:
    category = demo.guild.channel_named("Text Channels")
    made = sandbox.world.add_text_channel(demo.guild, "memes", topic="Only memes", parent=category)

    client.state.parsers["CHANNEL_CREATE"](await probe.dispatch("CHANNEL_CREATE"))

    channel = joined.get_channel(made.id)
    assert isinstance(channel, discord.TextChannel)
    assert (channel.name, channel.topic, channel.category_id) == ("memes", "Only memes", category.id)


# -- messages over the gateway -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_message_create_from_a_member_has_author_roles_and_mentions(
    client: RecordingClient, joined: discord.Guild, probe: GatewayProbe, sandbox: Sandbox, demo: DemoWorld
) -> None:
    sent = await sandbox.send_message(
        demo.general, demo.admin, f"hi {demo.moderator.mention} and <@&{demo.moderator_role.id}>"
    )

    client.state.parsers["MESSAGE_CREATE"](await probe.dispatch("MESSAGE_CREATE"))

    (message,) = client.dispatched("message")
    assert message.id == sent.id
    assert message.content == sent.content
    assert message.channel.id == demo.general.id
    assert message.guild.id == demo.guild.id
    assert isinstance(message.author, discord.Member)
    assert demo.admin_role.id in [r.id for r in message.author.roles]
    assert [m.id for m in message.mentions] == [demo.moderator.id]
    assert [r.id for r in message.role_mentions] == [demo.moderator_role.id]
    assert message.created_at.tzinfo is not None


@pytest.mark.asyncio
async def test_message_create_in_a_dm_has_a_user_author_and_a_dm_channel(
    client: RecordingClient, joined: discord.Guild, probe: GatewayProbe, sandbox: Sandbox, demo: DemoWorld
) -> None:
    erin = demo.members[2].user
    sent = await sandbox.send_message(sandbox.world.dm_channel(erin), erin, "psst")

    client.state.parsers["MESSAGE_CREATE"](await probe.dispatch("MESSAGE_CREATE"))

    (message,) = client.dispatched("message")
    assert (message.id, message.content, message.guild) == (sent.id, "psst", None)
    assert isinstance(message.channel, discord.DMChannel)
    assert type(message.author) is discord.User
    assert message.author.id == erin.id


@pytest.mark.asyncio
async def test_message_update_and_delete_change_the_cached_message(
    client: RecordingClient,
    joined: discord.Guild,
    probe: GatewayProbe,
    http: aiohttp.ClientSession,
    demo: DemoWorld,
) -> None:
    path = f"/channels/{demo.general.id}/messages"
    created = await rest(http, "POST", path, body={"content": "first"})
    client.state.parsers["MESSAGE_CREATE"](await probe.dispatch("MESSAGE_CREATE"))

    await rest(http, "PATCH", f"{path}/{created['id']}", body={"content": "second"})
    client.state.parsers["MESSAGE_UPDATE"](await probe.dispatch("MESSAGE_UPDATE"))
    before, after = client.dispatched("message_edit")
    assert (before.content, after.content) == ("first", "second")
    assert after.edited_at is not None

    async with http.delete(f"/api/v10{path}/{created['id']}") as response:
        assert response.status == 204
    client.state.parsers["MESSAGE_DELETE"](await probe.dispatch("MESSAGE_DELETE"))
    (deleted,) = client.dispatched("message_delete")
    assert deleted.id == int(created["id"])
    assert client.get_partial_messageable(demo.general.id) is not None
    assert all(m.id != deleted.id for m in client.cached_messages)


# -- INTERACTION_CREATE ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_interaction_with_every_option_type_resolves_member_channel_and_role(
    client: RecordingClient,
    joined: discord.Guild,
    probe: GatewayProbe,
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    demo: DemoWorld,
) -> None:
    await sync_commands(http, sandbox, demo)
    options = {
        "text": "hello",
        "count": 3,
        "flag": True,
        "member": demo.moderator,
        "channel": demo.announcements,
        "role": demo.admin_role,
        "ratio": 0.5,
        "target": demo.members[1],
    }

    invoked = await invoke(
        sandbox, probe, client, "probe", member=demo.admin, channel=demo.general, options=options
    )

    interaction = invoked.interaction
    assert interaction.type is discord.InteractionType.application_command
    assert interaction.guild_id == demo.guild.id
    assert interaction.channel_id == demo.general.id
    assert isinstance(interaction.user, discord.Member)
    assert interaction.user.id == demo.admin.id
    assert interaction.permissions.administrator
    assert interaction.app_permissions.send_messages
    assert interaction.filesize_limit > 0
    assert interaction.locale is discord.Locale.american_english
    values = {o["name"]: o["value"] for o in invoked.payload["data"]["options"]}
    assert values == {
        "text": "hello",
        "count": 3,
        "flag": True,
        "member": str(demo.moderator.id),
        "channel": str(demo.announcements.id),
        "role": str(demo.admin_role.id),
        "ratio": 0.5,
        "target": str(demo.members[1].id),
    }
    namespace = app_commands.Namespace(
        interaction, invoked.payload["data"].get("resolved", {}), invoked.payload["data"]["options"]
    )
    assert isinstance(namespace.member, discord.Member)
    assert demo.moderator_role.id in [r.id for r in namespace.member.roles]
    assert namespace.member.guild_permissions.manage_messages
    assert isinstance(namespace.channel, app_commands.AppCommandChannel)
    assert (namespace.channel.id, namespace.channel.name) == (demo.announcements.id, "announcements")
    assert isinstance(namespace.role, discord.Role)
    assert namespace.role.permissions.administrator
    assert isinstance(namespace.target, discord.Member)
    assert namespace.target.id == demo.members[1].id


@pytest.mark.asyncio
async def test_interaction_for_a_subcommand_nests_its_options(
    client: RecordingClient,
    joined: discord.Guild,
    probe: GatewayProbe,
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    demo: DemoWorld,
) -> None:
    await sync_commands(http, sandbox, demo)

    invoked = await invoke(
        sandbox,
        probe,
        client,
        "xp set",
        member=demo.admin,
        channel=demo.bot_commands,
        options={"member": demo.members[2], "amount": 40},
    )

    data = invoked.interaction.data
    assert data is not None
    assert data["name"] == "xp"
    (sub,) = data["options"]
    assert (sub["name"], sub["type"]) == ("set", discord.AppCommandOptionType.subcommand.value)
    namespace = app_commands.Namespace(invoked.interaction, data.get("resolved", {}), sub["options"])
    assert namespace.amount == 40
    assert isinstance(namespace.member, discord.Member)
    assert namespace.member.id == demo.members[2].id


@pytest.mark.asyncio
async def test_interaction_in_a_dm_has_a_user_and_a_dm_channel(
    client: RecordingClient,
    joined: discord.Guild,
    probe: GatewayProbe,
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    demo: DemoWorld,
) -> None:
    await sync_commands(http, sandbox, demo)
    dave = demo.members[1].user

    invoked = await invoke(sandbox, probe, client, "ping", user=dave, channel=sandbox.world.dm_channel(dave))

    interaction = invoked.interaction
    assert interaction.guild is None
    assert interaction.guild_id is None
    assert type(interaction.user) is discord.User
    assert interaction.user.id == dave.id
    assert isinstance(interaction.channel, discord.DMChannel)
    assert interaction.channel.recipient is not None
    assert interaction.channel.recipient.id == dave.id
    assert interaction.context.dm_channel


# -- REST responses ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_current_user_response_is_a_client_user(
    client: RecordingClient, http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    me = discord.ClientUser(state=client.state, data=await rest(http, "GET", "/users/@me"))

    assert (me.id, me.name, me.bot, me.mfa_enabled) == (
        sandbox.world.bot.id,
        sandbox.world.bot.username,
        True,
        False,
    )
    assert me.locale == discord.Locale.american_english.value


@pytest.mark.asyncio
async def test_application_response_is_app_info_with_owner(
    client: RecordingClient, http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    info = discord.AppInfo(client.state, await rest(http, "GET", "/oauth2/applications/@me"))

    application = sandbox.world.application
    assert (info.id, info.name, info.bot_public, info.bot_require_code_grant) == (
        application.id,
        application.name,
        True,
        False,
    )
    assert info.owner.id == sandbox.world.owner.id
    assert info.team is None
    assert info.interactions_endpoint_url is None
    assert info.verify_key == application.verify_key


@pytest.mark.asyncio
async def test_command_sync_responses_are_app_commands_with_ids(
    client: RecordingClient, http: aiohttp.ClientSession, sandbox: Sandbox, demo: DemoWorld
) -> None:
    guild_synced, global_synced = await sync_commands(http, sandbox, demo)

    guild_commands = [discord.app_commands.AppCommand(data=c, state=client.state) for c in guild_synced]
    (ping,) = [discord.app_commands.AppCommand(data=c, state=client.state) for c in global_synced]
    assert [(c.name, c.guild_id) for c in guild_commands] == [("probe", demo.guild.id), ("xp", demo.guild.id)]
    assert all(c.application_id == sandbox.world.application.id and c.id > 0 for c in guild_commands)
    probe_command, xp = guild_commands
    assert [o.name for o in probe_command.options] == [
        "text",
        "count",
        "flag",
        "member",
        "channel",
        "role",
        "ratio",
        "target",
    ]
    (xp_set,) = xp.options
    assert isinstance(xp_set, app_commands.AppCommandGroup)
    assert xp_set.name == "set"
    assert ping.guild_id is None
    assert ping.allowed_contexts is not None
    assert ping.allowed_contexts.dm_channel
    assert ping.default_member_permissions is None


async def _answer(
    client: RecordingClient,
    probe: GatewayProbe,
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    demo: DemoWorld,
    body: Payload,
) -> tuple[Invoked, discord.InteractionCallbackResponse[RecordingClient]]:
    await sync_commands(http, sandbox, demo)
    invoked = await invoke(
        sandbox,
        probe,
        client,
        "xp set",
        member=demo.admin,
        channel=demo.general,
        options={"member": demo.admin, "amount": 1},
    )
    interaction = invoked.interaction
    data = await rest(
        http,
        "POST",
        f"/interactions/{interaction.id}/{interaction.token}/callback",
        body=body,
        with_response="1",
    )
    kind = discord.InteractionResponseType(body["type"])
    response = discord.InteractionCallbackResponse(
        data=data, parent=interaction, state=client.state, type=kind
    )
    return invoked, response


@pytest.mark.asyncio
async def test_callback_with_response_is_an_interaction_message(
    client: RecordingClient,
    joined: discord.Guild,
    probe: GatewayProbe,
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    demo: DemoWorld,
) -> None:
    embed = discord.Embed(title="Level up", description="alice reached 2").to_dict()
    body = {"type": 4, "data": {"content": "done", "embeds": [embed], "tts": False}}

    invoked, response = await _answer(client, probe, sandbox, http, demo, body)

    assert response.id == invoked.interaction.id
    assert response.type is discord.InteractionResponseType.channel_message
    assert not response.is_thinking()
    assert not response.is_ephemeral()
    message = response.resource
    assert isinstance(message, discord.InteractionMessage)
    assert message.id == response.message_id
    assert message.content == "done"
    assert [e.title for e in message.embeds] == ["Level up"]
    assert message.author.id == sandbox.world.bot.id
    assert message.interaction_metadata is not None
    assert message.interaction_metadata.user.id == demo.admin.id


@pytest.mark.asyncio
async def test_ephemeral_callback_is_flagged_ephemeral(
    client: RecordingClient,
    joined: discord.Guild,
    probe: GatewayProbe,
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    demo: DemoWorld,
) -> None:
    body = {"type": 4, "data": {"content": "only you", "flags": EPHEMERAL}}

    _, response = await _answer(client, probe, sandbox, http, demo, body)

    assert response.is_ephemeral()
    assert isinstance(response.resource, discord.InteractionMessage)
    assert response.resource.flags.ephemeral


@pytest.mark.asyncio
async def test_deferred_callback_is_thinking_and_the_followup_becomes_a_message(
    client: RecordingClient,
    joined: discord.Guild,
    probe: GatewayProbe,
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    demo: DemoWorld,
) -> None:
    invoked, response = await _answer(client, probe, sandbox, http, demo, {"type": 5, "data": {}})
    assert response.is_thinking()
    assert response.type is discord.InteractionResponseType.deferred_channel_message
    assert response.resource is None
    assert response.message_id is not None

    app = sandbox.world.application.id
    data = await rest(
        http, "POST", f"/webhooks/{app}/{invoked.interaction.token}", body={"content": "later"}, wait="1"
    )

    followup = discord.Message(state=client.state, channel=invoked.interaction.channel, data=data)
    assert followup.id == response.message_id
    assert followup.content == "later"
    assert followup.webhook_id == app
    assert followup.application_id == app
    assert not followup.flags.loading


@pytest.mark.asyncio
async def test_edited_and_fetched_original_response_are_interaction_messages(
    client: RecordingClient,
    joined: discord.Guild,
    probe: GatewayProbe,
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    demo: DemoWorld,
) -> None:
    invoked, _ = await _answer(client, probe, sandbox, http, demo, {"type": 4, "data": {"content": "draft"}})
    original = f"/webhooks/{sandbox.world.application.id}/{invoked.interaction.token}/messages/@original"

    edited = await rest(http, "PATCH", original, body={"content": "final"})
    fetched = await rest(http, "GET", original)

    for data in (edited, fetched):
        message = discord.InteractionMessage(
            state=client.state, channel=invoked.interaction.channel, data=data
        )
        assert message.content == "final"
        assert message.edited_at is not None
        assert message.type is discord.MessageType.chat_input_command


@pytest.mark.asyncio
async def test_created_message_with_embed_and_reply_is_a_message(
    client: RecordingClient,
    joined: discord.Guild,
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    demo: DemoWorld,
) -> None:
    asked = await sandbox.send_message(demo.general, demo.admin, "question")
    body = {
        "content": f"answer for {demo.admin.mention}",
        "embeds": [discord.Embed(title="Answer", colour=0x2ECC71).add_field(name="a", value="b").to_dict()],
        "allowed_mentions": {"parse": ["users"], "replied_user": True},
        "message_reference": {
            "message_id": asked.id,
            "channel_id": demo.general.id,
            "fail_if_not_exists": True,
        },
        "tts": False,
    }

    data = await rest(http, "POST", f"/channels/{demo.general.id}/messages", body=body)

    channel = joined.get_channel(demo.general.id)
    message = discord.Message(state=client.state, channel=channel, data=data)
    assert message.type is discord.MessageType.reply
    assert message.content == body["content"]
    assert message.author.id == sandbox.world.bot.id
    assert [(e.title, e.colour, [f.name for f in e.fields]) for e in message.embeds] == [
        ("Answer", discord.Colour(0x2ECC71), ["a"])
    ]
    assert [m.id for m in message.mentions] == [demo.admin.id]
    assert message.guild is not None
    assert message.guild.id == demo.guild.id


@pytest.mark.asyncio
async def test_fetched_channel_guild_roles_member_and_user_parse(
    client: RecordingClient, joined: discord.Guild, http: aiohttp.ClientSession, demo: DemoWorld
) -> None:
    channel_data = await rest(http, "GET", f"/channels/{demo.general.id}")
    factory, _ = _threaded_channel_factory(channel_data["type"])
    assert factory is not None
    channel = factory(guild=joined, state=client.state, data=channel_data)
    guild = discord.Guild(
        data=await rest(http, "GET", f"/guilds/{demo.guild.id}", with_counts="true"), state=client.state
    )
    roles = [
        discord.Role(guild=joined, state=client.state, data=r)
        for r in await rest(http, "GET", f"/guilds/{demo.guild.id}/roles")
    ]
    member = discord.Member(
        data=await rest(http, "GET", f"/guilds/{demo.guild.id}/members/{demo.moderator.id}"),
        guild=joined,
        state=client.state,
    )
    user = discord.User(state=client.state, data=await rest(http, "GET", f"/users/{demo.admin.id}"))

    assert isinstance(channel, discord.TextChannel)
    assert channel.name == "general"
    assert guild.name == demo.guild.name
    assert guild.approximate_member_count == len(demo.guild.members)
    assert {r.id: r.name for r in roles} == {r.id: r.name for r in demo.guild.roles.values()}
    assert member.id == demo.moderator.id
    assert demo.moderator_role.id in [r.id for r in member.roles]
    assert (user.id, user.name, user.bot) == (demo.admin.id, "alice", False)


@pytest.mark.asyncio
async def test_history_and_member_list_parse_newest_first_and_by_id(
    client: RecordingClient,
    joined: discord.Guild,
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    demo: DemoWorld,
) -> None:
    first = await sandbox.send_message(demo.general, demo.admin, "one")
    second = await sandbox.send_message(demo.general, demo.moderator, "two")
    channel = joined.get_channel(demo.general.id)

    history = await rest(http, "GET", f"/channels/{demo.general.id}/messages", limit="10")
    listed = await rest(http, "GET", f"/guilds/{demo.guild.id}/members", limit="1000")

    messages = [discord.Message(state=client.state, channel=channel, data=m) for m in history]
    assert [(m.id, m.content) for m in messages] == [(second.id, "two"), (first.id, "one")]
    members = [discord.Member(data=m, guild=joined, state=client.state) for m in listed]
    assert sorted(m.id for m in members) == sorted(demo.guild.members)


@pytest.mark.asyncio
async def test_bot_gateway_response_gives_a_sharded_client_its_limits(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    data = await rest(http, "GET", "/gateway/bot")

    limits = discord.SessionStartLimits(**data["session_start_limit"])
    assert (data["url"], data["shards"]) == (sandbox.gateway_url, 1)
    assert limits.total >= limits.remaining > 0
    assert limits.max_concurrency == 1


@pytest.mark.asyncio
async def test_created_dm_channel_parses_with_its_recipient(
    client: RecordingClient, joined: discord.Guild, http: aiohttp.ClientSession, demo: DemoWorld
) -> None:
    data = await rest(http, "POST", "/users/@me/channels", body={"recipient_id": demo.members[0].id})

    channel = discord.DMChannel(me=client.user, state=client.state, data=data)

    assert channel.type is discord.ChannelType.private
    assert channel.recipient is not None
    assert channel.recipient.id == demo.members[0].id


# -- world entities' own payloads ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_entity_payloads_parse_as_discord_py_models(
    client: RecordingClient, joined: discord.Guild, sandbox: Sandbox, demo: DemoWorld
) -> None:
    world = sandbox.world
    state = client.state
    message = Message(
        id=world.snowflakes.next(),
        channel_id=demo.general.id,
        guild_id=demo.guild.id,
        author=demo.admin.user,
        content="x",
    )

    user = discord.User(state=state, data=demo.admin.user.to_payload())
    role = discord.Role(guild=joined, state=state, data=demo.moderator_role.to_payload())
    member = discord.Member(data=demo.moderator.to_payload(), guild=joined, state=state)
    factory, _ = _threaded_channel_factory(demo.general.type)
    channel = factory(guild=joined, state=state, data=demo.general.to_payload())
    category_factory, _ = _threaded_channel_factory(ChannelType.GUILD_CATEGORY)
    category = category_factory(
        guild=joined, state=state, data=demo.guild.channel_named("Text Channels").to_payload()
    )
    parsed = discord.Message(state=state, channel=channel, data=message.to_payload(world, gateway=True))

    assert (user.id, user.name, user.global_name) == (demo.admin.id, "alice", None)
    assert (role.name, role.colour, role.permissions.kick_members) == (
        "Moderator",
        discord.Colour(0x3498DB),
        True,
    )
    assert [r.id for r in member.roles if not r.is_default()] == [demo.moderator_role.id]
    assert isinstance(channel, discord.TextChannel)
    assert channel.topic == "Say hello"
    assert isinstance(category, discord.CategoryChannel)
    assert category.name == "Text Channels"
    assert parsed.content == "x"
    assert isinstance(parsed.author, discord.Member)
