"""The sandbox's guilds: a guild's roles, channels and members, its permission arithmetic and payloads."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from botops.sandbox.entities import Channel, ChannelType, Member, Payload, Role
from botops.sandbox.permissions import ALL_PERMISSIONS, Permission
from botops.sandbox.snowflake import iso_timestamp

__all__ = ["Guild"]

log = logging.getLogger(__name__)


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
