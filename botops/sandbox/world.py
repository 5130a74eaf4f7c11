"""The sandbox's world: everything it knows, and the one place that changes it and emits gateway events.

Changes made while the sandbox runs go through :class:`World` methods, which emit the matching gateway
event (member join and leave, role and channel changes); the gateway decides which sessions receive it.
The entities and their payloads live in :mod:`botops.sandbox.entities` and :mod:`botops.sandbox.guilds`;
they are re-exported here, so ``from botops.sandbox.world import Guild`` keeps working.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator

from botops.sandbox.entities import (
    BOT_PERMISSIONS,
    Application,
    Channel,
    ChannelType,
    Member,
    Message,
    Payload,
    Role,
    User,
)
from botops.sandbox.guilds import Guild
from botops.sandbox.permissions import DEFAULT_EVERYONE, Intents
from botops.sandbox.snowflake import SnowflakeFactory, iso_timestamp

__all__ = [
    "BOT_PERMISSIONS",
    "Application",
    "Channel",
    "ChannelType",
    "Guild",
    "Member",
    "Message",
    "Payload",
    "Role",
    "User",
    "World",
]

log = logging.getLogger(__name__)

#: ``(event name, payload, guild id or None, intent needed or None)``; the gateway implements it.
EventSink = Callable[[str, Payload, "int | None", "Intents | None"], None]


class World:
    """Everything the sandbox knows; the single place that changes it and emits gateway events."""

    def __init__(self, *, bot_name: str = "botops", owner_name: str = "owner") -> None:
        self.snowflakes = SnowflakeFactory()
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.dm_channels: dict[int, Channel] = {}
        self.bot = self.add_user(bot_name, bot=True)
        self.owner = self.add_user(owner_name)
        self.application = Application(
            id=self.bot.id,
            name=bot_name,
            owner=self.owner,
            bot=self.bot,
            verify_key="0" * 64,
        )
        self._sink: EventSink | None = None

    def attach(self, sink: EventSink | None) -> None:
        """Send every runtime change to ``sink`` (the gateway) from now on."""
        self._sink = sink

    def emit(self, event: str, payload: Payload, guild_id: int | None, intent: Intents | None) -> None:
        """Dispatch a gateway event for a change just made."""
        if self._sink is not None:
            self._sink(event, payload, guild_id, intent)

    # -- users and guilds ---------------------------------------------------------------------------

    def add_user(self, username: str, *, bot: bool = False, global_name: str | None = None) -> User:
        """Create an account."""
        user = User(id=self.snowflakes.next(), username=username, bot=bot, global_name=global_name)
        self.users[user.id] = user
        return user

    def add_guild(
        self, name: str, *, owner: User | None = None, bot_permissions: int = BOT_PERMISSIONS
    ) -> Guild:
        """Create a guild that the bot has joined, with @everyone, the bot's role and the bot as member."""
        owner = owner or self.owner
        guild = Guild(id=self.snowflakes.next(), name=name, owner_id=owner.id)
        guild.roles[guild.id] = Role(guild.id, guild.id, "@everyone", int(DEFAULT_EVERYONE), 0)
        bot_role = Role(self.snowflakes.next(), guild.id, self.bot.username, bot_permissions, 1, managed=True)
        guild.roles[bot_role.id] = bot_role
        guild.members[owner.id] = Member(owner, guild.id)
        guild.members[self.bot.id] = Member(self.bot, guild.id, roles=[bot_role.id])
        self.guilds[guild.id] = guild
        joined = guild.to_payload()
        # Discord leaves "unavailable" out when the bot joins a guild; discord.py tells on_guild_join
        # from on_guild_available (startup, end of an outage) by exactly that.
        del joined["unavailable"]
        self.emit("GUILD_CREATE", joined, guild.id, Intents.GUILDS)
        return guild

    def guild(self, guild_id: int) -> Guild:
        """Return the guild with ``guild_id``; raise ``KeyError`` if there is none."""
        return self.guilds[guild_id]

    # -- channels -----------------------------------------------------------------------------------

    def add_text_channel(
        self, guild: Guild, name: str, *, topic: str | None = None, parent: Channel | None = None
    ) -> Channel:
        """Create a text channel at the end of the guild's list."""
        channel = Channel(
            id=self.snowflakes.next(),
            type=ChannelType.GUILD_TEXT,
            name=name,
            guild_id=guild.id,
            position=len(guild.channels),
            topic=topic,
            parent_id=parent.id if parent else None,
        )
        guild.channels[channel.id] = channel
        self.emit("CHANNEL_CREATE", channel.to_payload(), guild.id, Intents.GUILDS)
        return channel

    def add_category(self, guild: Guild, name: str) -> Channel:
        """Create a category channel."""
        channel = Channel(
            id=self.snowflakes.next(),
            type=ChannelType.GUILD_CATEGORY,
            name=name,
            guild_id=guild.id,
            position=len(guild.channels),
        )
        guild.channels[channel.id] = channel
        self.emit("CHANNEL_CREATE", channel.to_payload(), guild.id, Intents.GUILDS)
        return channel

    def dm_channel(self, user: User) -> Channel:
        """Return the DM channel between the bot and ``user``, creating it once."""
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = Channel(id=self.snowflakes.next(), type=ChannelType.DM, name=None, recipients=[user])
            self.dm_channels[user.id] = channel
        return channel

    def channel(self, channel_id: int) -> Channel:
        """Return any channel by id; raise ``KeyError`` if there is none."""
        for guild in self.guilds.values():
            found = guild.channels.get(channel_id)
            if found is not None:
                return found
        for dm in self.dm_channels.values():
            if dm.id == channel_id:
                return dm
        raise KeyError(channel_id)

    def channels(self) -> Iterator[Channel]:
        """Yield every channel in the world."""
        for guild in self.guilds.values():
            yield from guild.channels.values()
        yield from self.dm_channels.values()

    # -- roles --------------------------------------------------------------------------------------

    def add_role(
        self, guild: Guild, name: str, *, permissions: int = 0, color: int = 0, mentionable: bool = False
    ) -> Role:
        """Create a role above the existing ones."""
        role = Role(
            id=self.snowflakes.next(),
            guild_id=guild.id,
            name=name,
            permissions=int(permissions),
            position=len(guild.roles),
            color=color,
            mentionable=mentionable,
        )
        guild.roles[role.id] = role
        self.emit(
            "GUILD_ROLE_CREATE",
            {"guild_id": str(guild.id), "role": role.to_payload()},
            guild.id,
            Intents.GUILDS,
        )
        return role

    def update_role(
        self, guild: Guild, role: Role, *, name: str | None = None, permissions: int | None = None
    ) -> Role:
        """Rename a role or change its permissions."""
        if name is not None:
            role.name = name
        if permissions is not None:
            role.permissions = int(permissions)
        self.emit(
            "GUILD_ROLE_UPDATE",
            {"guild_id": str(guild.id), "role": role.to_payload()},
            guild.id,
            Intents.GUILDS,
        )
        return role

    def delete_role(self, guild: Guild, role: Role) -> None:
        """Delete a role and take it from every member."""
        del guild.roles[role.id]
        for member in guild.members.values():
            if role.id in member.roles:
                member.roles.remove(role.id)
        self.emit(
            "GUILD_ROLE_DELETE",
            {"guild_id": str(guild.id), "role_id": str(role.id)},
            guild.id,
            Intents.GUILDS,
        )

    # -- members ------------------------------------------------------------------------------------

    def add_member(
        self, guild: Guild, user: User | str, *, roles: Iterable[Role] = (), nick: str | None = None
    ) -> Member:
        """Have a user (or a new user called ``user``) join the guild."""
        if isinstance(user, str):
            user = self.add_user(user)
        member = Member(user, guild.id, roles=[r.id for r in roles], nick=nick)
        guild.members[user.id] = member
        payload = member.to_payload()
        payload["guild_id"] = str(guild.id)
        self.emit("GUILD_MEMBER_ADD", payload, guild.id, Intents.GUILD_MEMBERS)
        return member

    def remove_member(self, guild: Guild, member: Member) -> None:
        """Have a member leave the guild."""
        del guild.members[member.id]
        self.emit(
            "GUILD_MEMBER_REMOVE",
            {"guild_id": str(guild.id), "user": member.user.to_payload()},
            guild.id,
            Intents.GUILD_MEMBERS,
        )

    def set_member_roles(self, guild: Guild, member: Member, roles: Iterable[Role]) -> Member:
        """Replace a member's roles."""
        member.roles = [r.id for r in roles if r.id != guild.id]
        self._member_updated(guild, member)
        return member

    def set_nick(self, guild: Guild, member: Member, nick: str | None) -> Member:
        """Change a member's nickname."""
        member.nick = nick
        self._member_updated(guild, member)
        return member

    def _member_updated(self, guild: Guild, member: Member) -> None:
        payload = member.to_payload()
        payload["guild_id"] = str(guild.id)
        self.emit("GUILD_MEMBER_UPDATE", payload, guild.id, Intents.GUILD_MEMBERS)

    # -- messages -----------------------------------------------------------------------------------

    def post_message(self, message: Message) -> Message:
        """Store a new message and dispatch MESSAGE_CREATE."""
        channel = self.channel(message.channel_id)
        channel.messages[message.id] = message
        if not message.ephemeral:
            self.emit(
                "MESSAGE_CREATE",
                message.to_payload(self, gateway=True),
                message.guild_id,
                _message_intent(message),
            )
        return message

    def edit_message(self, message: Message) -> Message:
        """Mark a stored message edited and dispatch MESSAGE_UPDATE."""
        message.edited_timestamp = iso_timestamp()
        if not message.ephemeral:
            self.emit(
                "MESSAGE_UPDATE",
                message.to_payload(self, gateway=True),
                message.guild_id,
                _message_intent(message),
            )
        return message

    def delete_message(self, message: Message) -> None:
        """Remove a message and dispatch MESSAGE_DELETE."""
        channel = self.channel(message.channel_id)
        channel.messages.pop(message.id, None)
        if not message.ephemeral:
            payload: Payload = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id:
                payload["guild_id"] = str(message.guild_id)
            self.emit("MESSAGE_DELETE", payload, message.guild_id, _message_intent(message))

    def find_message(self, message_id: int) -> Message:
        """Return a stored message by id from any channel; raise ``KeyError`` if there is none."""
        for channel in self.channels():
            found = channel.messages.get(message_id)
            if found is not None:
                return found
        raise KeyError(message_id)

    def resolve_mentions(self, guild: Guild | None, content: str) -> tuple[list[User], list[int], bool]:
        """Return the users, role ids and @everyone that ``content`` mentions, as Discord parses them."""
        users: list[User] = []
        for match in _USER_MENTION.finditer(content):
            user = self.users.get(int(match.group(1)))
            if user is not None and user not in users:
                users.append(user)
        roles: list[int] = []
        if guild is not None:
            for match in _ROLE_MENTION.finditer(content):
                role_id = int(match.group(1))
                if role_id in guild.roles and role_id not in roles:
                    roles.append(role_id)
        return users, roles, "@everyone" in content or "@here" in content


_USER_MENTION = re.compile(r"<@!?(\d{15,20})>")
_ROLE_MENTION = re.compile(r"<@&(\d{15,20})>")


def _message_intent(message: Message) -> Intents:
    return Intents.GUILD_MESSAGES if message.guild_id else Intents.DIRECT_MESSAGES
