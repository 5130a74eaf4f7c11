"""The demo guild that ``botops sandbox`` and ``make run`` start with: channels, roles, people."""

from __future__ import annotations

from dataclasses import dataclass

from botops.sandbox.permissions import Permission
from botops.sandbox.world import Channel, Guild, Member, Role, World

__all__ = ["DemoWorld", "build_demo_world"]


@dataclass(frozen=True)
class DemoWorld:
    """The demo world and handles on what tests and demos use most."""

    world: World
    guild: Guild
    general: Channel
    bot_commands: Channel
    announcements: Channel
    admin_role: Role
    moderator_role: Role
    admin: Member
    moderator: Member
    members: tuple[Member, ...]


def build_demo_world(world: World | None = None) -> DemoWorld:
    """Build a guild with three text channels, an administrator, a moderator and three members."""
    world = world or World(owner_name="ada")
    guild = world.add_guild("botops sandbox")
    text = world.add_category(guild, "Text Channels")
    general = world.add_text_channel(guild, "general", topic="Say hello", parent=text)
    bot_commands = world.add_text_channel(guild, "bot-commands", topic="Talk to the bot here", parent=text)
    announcements = world.add_text_channel(guild, "announcements", topic="Level-ups and news", parent=text)
    admin_role = world.add_role(guild, "Admin", permissions=Permission.ADMINISTRATOR, color=0xE74C3C)
    moderator_role = world.add_role(
        guild,
        "Moderator",
        permissions=Permission.MANAGE_MESSAGES | Permission.KICK_MEMBERS | Permission.MODERATE_MEMBERS,
        color=0x3498DB,
    )
    admin = world.add_member(guild, "alice", roles=[admin_role])
    moderator = world.add_member(guild, "bob", roles=[moderator_role])
    members = tuple(world.add_member(guild, name) for name in ("carol", "dave", "erin"))
    return DemoWorld(
        world,
        guild,
        general,
        bot_commands,
        announcements,
        admin_role,
        moderator_role,
        admin,
        moderator,
        members,
    )
