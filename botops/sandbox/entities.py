"""The sandbox's entities: users, the application, roles, channels, members and messages.

Every entity builds its own payload (``to_payload``) in the exact shape Discord sends, because one
missing key in a gateway dispatch kills discord.py's connection. Entities are plain data: changes made
while the sandbox runs go through :class:`~botops.sandbox.world.World`, which emits the gateway events.
The guild, which holds roles, channels and members, is in :mod:`botops.sandbox.guilds`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botops.sandbox.permissions import Permission
from botops.sandbox.snowflake import iso_timestamp

if TYPE_CHECKING:
    from botops.sandbox.world import World

__all__ = [
    "BOT_PERMISSIONS",
    "Application",
    "Channel",
    "ChannelType",
    "Member",
    "Message",
    "Payload",
    "Role",
    "User",
]

log = logging.getLogger(__name__)

Payload = dict[str, Any]

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
