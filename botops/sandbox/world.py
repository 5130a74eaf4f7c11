"""The sandbox's world: users, guilds, roles, channels, members and messages, with Discord's payloads.

Every entity builds its own payload (``to_payload``) in the exact shape Discord sends, because one
missing key in a gateway dispatch kills discord.py's connection. Changes made while the sandbox runs go
through :class:`World` methods, which emit the matching gateway event (member join and leave, role and
channel changes); the gateway decides which sessions receive it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botops.sandbox.permissions import ALL_PERMISSIONS, DEFAULT_EVERYONE, Intents, Permission
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

Payload = dict[str, Any]
#: ``(event name, payload, guild id or None, intent needed or None)``; the gateway implements it.
EventSink = Callable[[str, Payload, "int | None", "Intents | None"], None]

#: What the sandbox's bot role may do in every guild: what a typical bot invite asks for.
BOT_PERMISSIONS = int(
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.ADD_REACTIONS
    | Permission.MANAGE_MESSAGES
    | Permission.MANAGE_ROLES
    | Permission.USE_APPLICATION_COMMANDS
)


class ChannelType:
    """The channel types the sandbox models."""

    GUILD_TEXT = 0
    DM = 1
    GUILD_CATEGORY = 4


@dataclass(eq=False)
class User:
    """A Discord account: a person or a bot."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def to_payload(self) -> Payload:
        """Return the user object Discord sends."""
        payload: Payload = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
        }
        if self.bot:
            payload["bot"] = True
        return payload


@dataclass(eq=False)
class Application:
    """The bot's application, as ``/oauth2/applications/@me`` returns it."""

    id: int
    name: str
    owner: User
    bot: User
    verify_key: str

    def to_payload(self) -> Payload:
        """Return the application object Discord sends to the bot itself."""
        install = {"scopes": ["bot", "applications.commands"], "permissions": str(BOT_PERMISSIONS)}
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "description": "An application in the botops sandbox",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": self.verify_key,
            "owner": self.owner.to_payload(),
            "team": None,
            "flags": 0,
            "bot": self.bot.to_payload(),
            "rpc_origins": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "install_params": install,
            "integration_types_config": {"0": {"oauth2_install_params": install}},
            "approximate_guild_count": 0,
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "flags_new": "0",
            "explicit_content_filter": 0,
            "eligible_oauth2_scopes": ["bot", "applications.commands"],
        }


@dataclass(eq=False)
class Role:
    """A guild role; the @everyone role has the guild's id."""

    id: int
    guild_id: int
    name: str
    permissions: int
    position: int
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False

    def to_payload(self) -> Payload:
        """Return the role object Discord sends."""
        return {
            "id": str(self.id),
            "name": self.name,
            "description": None,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": self.hoist,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": self.mentionable,
            "flags": 0,
        }


@dataclass(eq=False)
class Message:
    """A message in a channel, with everything needed to render it for REST and the gateway."""

    id: int
    channel_id: int
    guild_id: int | None
    author: User
    content: str = ""
    embeds: list[Payload] = field(default_factory=list)
    components: list[Payload] = field(default_factory=list)
    attachments: list[Payload] = field(default_factory=list)
    mentions: list[User] = field(default_factory=list)
    mention_roles: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    flags: int = 0
    type: int = 0
    tts: bool = False
    nonce: str | int | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_metadata: Payload | None = None
    timestamp: str = field(default_factory=iso_timestamp)
    edited_timestamp: str | None = None
    #: ``message_reference`` of a reply: ``{type, message_id, channel_id, guild_id?}``.
    reference: Payload | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)

    def to_payload(self, world: World, *, gateway: bool = False) -> Payload:
        """Return the message object: the REST shape, or with ``gateway`` the MESSAGE_CREATE shape."""
        guild = world.guilds.get(self.guild_id) if self.guild_id else None
        mentions = []
        for user in self.mentions:
            mentioned = user.to_payload()
            target = guild.members.get(user.id) if guild else None
            if gateway and target is not None:
                mentioned["member"] = target.to_payload(include_user=False)
            mentions.append(mentioned)
        payload: Payload = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.to_payload(),
            "content": self.content,
            "timestamp": self.timestamp,
            "edited_timestamp": self.edited_timestamp,
            "tts": self.tts,
            "mention_everyone": self.mention_everyone,
            "mentions": mentions,
            "mention_roles": [str(r) for r in self.mention_roles],
            "attachments": list(self.attachments),
            "embeds": list(self.embeds),
            "components": list(self.components),
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
        }
        if self.nonce is not None:
            payload["nonce"] = self.nonce
        if self.webhook_id is not None:
            payload["webhook_id"] = str(self.webhook_id)
        if self.application_id is not None:
            payload["application_id"] = str(self.application_id)
        if self.interaction_metadata is not None:
            payload["interaction_metadata"] = self.interaction_metadata
        if self.reference is not None:
            payload["message_reference"] = dict(self.reference)
            try:
                replied_to = world.find_message(int(self.reference["message_id"]))
            except KeyError:
                payload["referenced_message"] = None  # deleted since; discord.py expects null then
            else:
                # Discord resolves one level only: the message replied to comes without its own reply.
                resolved = replied_to.to_payload(world)
                resolved.pop("referenced_message", None)
                payload["referenced_message"] = resolved
        if gateway and guild is not None:
            payload["guild_id"] = str(guild.id)
            author = guild.members.get(self.author.id)
            if author is not None and self.webhook_id is None:
                payload["member"] = author.to_payload(include_user=False)
        return payload


@dataclass(eq=False)
class Channel:
    """A text channel, category or DM, with its messages in order."""

    id: int
    type: int
    name: str | None
    guild_id: int | None = None
    position: int = 0
    topic: str | None = None
    parent_id: int | None = None
    permission_overwrites: list[Payload] = field(default_factory=list)
    recipients: list[User] = field(default_factory=list)
    messages: dict[int, Message] = field(default_factory=dict, repr=False)

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    @property
    def last_message_id(self) -> int | None:
        return next(reversed(self.messages), None)

    def history(self) -> list[Message]:
        """Return the channel's messages, oldest first."""
        return list(self.messages.values())

    def to_payload(self) -> Payload:
        """Return the channel object Discord sends."""
        last = self.last_message_id
        payload: Payload = {
            "id": str(self.id),
            "type": self.type,
            "last_message_id": str(last) if last else None,
            "flags": 0,
        }
        if self.type == ChannelType.DM:
            payload["recipients"] = [user.to_payload() for user in self.recipients]
            return payload
        payload.update(
            {
                "guild_id": str(self.guild_id),
                "name": self.name,
                "position": self.position,
                "permission_overwrites": list(self.permission_overwrites),
                "parent_id": str(self.parent_id) if self.parent_id else None,
                "nsfw": False,
            }
        )
        if self.type == ChannelType.GUILD_TEXT:
            payload.update({"topic": self.topic, "rate_limit_per_user": 0, "last_pin_timestamp": None})
        return payload


@dataclass(eq=False)
class Member:
    """A user's membership of a guild."""

    user: User
    guild_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_timestamp)

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def mention(self) -> str:
        return self.user.mention

    def to_payload(self, *, include_user: bool = True, permissions: int | None = None) -> Payload:
        """Return the guild member object; ``permissions`` is added as interactions carry it."""
        payload: Payload = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if include_user:
            payload["user"] = self.user.to_payload()
        if permissions is not None:
            payload["permissions"] = str(permissions)
        return payload


@dataclass(eq=False)
class Guild:
    """A guild with its roles, channels and members; changes go through :class:`World` methods."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    locale: str = "en-US"

    @property
    def default_role(self) -> Role:
        return self.roles[self.id]

    def text_channels(self) -> list[Channel]:
        """Return the guild's text channels by position."""
        found = [c for c in self.channels.values() if c.type == ChannelType.GUILD_TEXT]
        return sorted(found, key=lambda c: c.position)

    def channel_named(self, name: str) -> Channel:
        """Return the channel called ``name``; raise ``KeyError`` if there is none."""
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise KeyError(f"guild {self.name!r} has no channel {name!r}")

    def member_named(self, name: str) -> Member:
        """Return the member whose username is ``name``; raise ``KeyError`` if there is none."""
        for member in self.members.values():
            if member.user.username == name:
                return member
        raise KeyError(f"guild {self.name!r} has no member {name!r}")

    def role_named(self, name: str) -> Role:
        """Return the role called ``name``; raise ``KeyError`` if there is none."""
        for role in self.roles.values():
            if role.name == name:
                return role
        raise KeyError(f"guild {self.name!r} has no role {name!r}")

    def base_permissions(self, member: Member) -> int:
        """Return the member's guild-wide permissions, as Discord computes them."""
        if member.id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.default_role.permissions
        for role_id in member.roles:
            role = self.roles.get(role_id)
            if role is not None:
                value |= role.permissions
        if value & Permission.ADMINISTRATOR:
            return ALL_PERMISSIONS
        return value

    def permissions_in(self, member: Member, channel: Channel | None) -> int:
        """Return the member's permissions in ``channel``, applying its overwrites in Discord's order."""
        value = self.base_permissions(member)
        if channel is None or value == ALL_PERMISSIONS:
            return value
        overwrites = {int(o["id"]): o for o in channel.permission_overwrites}
        everyone = overwrites.get(self.id)
        if everyone is not None:
            value = (value & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for role_id in member.roles:
            overwrite = overwrites.get(role_id)
            if overwrite is not None and role_id != self.id:
                allow |= int(overwrite["allow"])
                deny |= int(overwrite["deny"])
        value = (value & ~deny) | allow
        personal = overwrites.get(member.id)
        if personal is not None:
            value = (value & ~int(personal["deny"])) | int(personal["allow"])
        return value

    def to_payload(self, *, members: Iterable[Member] | None = None) -> Payload:
        """Return the full guild object of GUILD_CREATE, with ``members`` (default all)."""
        listed = list(self.members.values() if members is None else members)
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "region": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.locale,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "roles": [role.to_payload() for role in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "soundboard_sounds": [],
            "joined_at": iso_timestamp(),
            "large": len(self.members) >= 250,
            "unavailable": False,
            "member_count": len(self.members),
            "voice_states": [],
            "members": [member.to_payload() for member in listed],
            "channels": [channel.to_payload() for channel in self.channels.values()],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "embedded_activities": [],
            "activity_instances": [],
            "lazy": True,
            "incidents_data": None,
        }

    def to_rest_payload(self, *, with_counts: bool = False) -> Payload:
        """Return the guild object of ``GET /guilds/{id}``: no members, channels or gateway fields."""
        payload = self.to_payload(members=())
        for key in (
            "members",
            "channels",
            "threads",
            "presences",
            "voice_states",
            "joined_at",
            "large",
            "unavailable",
            "member_count",
            "stage_instances",
            "guild_scheduled_events",
            "embedded_activities",
            "activity_instances",
            "lazy",
            "soundboard_sounds",
        ):
            payload.pop(key, None)
        # REST-only fields; "region" is a string Discord still sends, frozen at "deprecated".
        payload.update(
            {
                "region": "deprecated",
                "home_header": None,
                "widget_enabled": False,
                "widget_channel_id": None,
                "max_presences": None,
                "nsfw": False,
            }
        )
        if with_counts:
            payload["approximate_member_count"] = len(self.members)
            payload["approximate_presence_count"] = 0
        return payload


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
