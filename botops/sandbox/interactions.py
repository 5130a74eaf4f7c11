"""Slash-command interactions: what a member's invocation sends the bot and what the bot answers.

:func:`build_invocation` turns ``invoke_slash("xp set", member=..., options={...})`` into the
INTERACTION_CREATE payload Discord would send, checking the options against the command the bot
registered, as Discord's client does before anything reaches the bot. :class:`Interaction` then
records the bot's callback, followups and edits, and :class:`InteractionResult` lets a test wait on
them.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botops.sandbox.commands import OptionType
from botops.sandbox.errors import SandboxError
from botops.sandbox.messages import MessageFlags
from botops.sandbox.world import Channel, Guild, Member, Message, Payload, Role, User, World

__all__ = ["CallbackType", "Interaction", "InteractionResult", "build_invocation"]

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


class CallbackType:
    PONG = 1
    CHANNEL_MESSAGE_WITH_SOURCE = 4
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
    MODAL = 9


class Signal:
    """Wake every waiter when something changed; each waiter re-checks its own condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """Return ``check()`` once it is truthy; raise ``TimeoutError`` naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except TimeoutError:
                continue


@dataclass(eq=False)
class Interaction:
    """One interaction from creation to the bot's last followup."""

    id: int
    token: str
    type: int
    data: Payload
    user: User
    channel: Channel
    guild: Guild | None
    payload: Payload
    created_at: float = field(default_factory=time.monotonic)
    callback: Payload | None = None
    original: Message | None = None
    followups: list[Message] = field(default_factory=list)
    signal: Signal = field(default_factory=Signal)

    @property
    def acknowledged(self) -> bool:
        return self.callback is not None

    @property
    def age(self) -> float:
        """Seconds since the interaction was sent to the bot."""
        return time.monotonic() - self.created_at


@dataclass(frozen=True)
class InteractionResponse:
    """The bot's answer to an interaction: the callback type, its body, and the message it made."""

    type: int
    data: Payload
    message: Message | None

    @property
    def deferred(self) -> bool:
        return self.type == CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.data.get("flags") or 0) & MessageFlags.EPHEMERAL)

    @property
    def content(self) -> str:
        return self.message.content if self.message is not None else str(self.data.get("content") or "")

    @property
    def embeds(self) -> list[Payload]:
        return self.message.embeds if self.message is not None else list(self.data.get("embeds") or [])


class InteractionResult:
    """A handle on an invoked interaction, to await what the bot does with it."""

    def __init__(self, interaction: Interaction) -> None:
        self.interaction = interaction

    @property
    def id(self) -> int:
        return self.interaction.id

    @property
    def message(self) -> Message | None:
        """The original response message as it stands now (after any edits)."""
        return self.interaction.original

    async def response(self, timeout: float = 5.0) -> InteractionResponse:
        """Wait for the bot's callback; raise ``TimeoutError`` if none comes in ``timeout`` seconds."""
        record = self.interaction
        await record.signal.wait_for(
            lambda: record.acknowledged, timeout, f"a response to /{record.data['name']}"
        )
        assert record.callback is not None
        return InteractionResponse(
            record.callback["type"], record.callback.get("data") or {}, record.original
        )

    async def final_message(self, timeout: float = 5.0) -> Message:
        """Wait until the original response exists and is no longer "thinking"; return it."""
        record = self.interaction

        def done() -> Message | None:
            message = record.original
            if message is not None and not message.flags & MessageFlags.LOADING:
                return message
            return None

        result: Message = await record.signal.wait_for(done, timeout, "the final response message")
        return result

    async def followups(self, count: int = 1, timeout: float = 5.0) -> list[Message]:
        """Wait until the bot sent ``count`` followups; return them all."""
        record = self.interaction
        await record.signal.wait_for(lambda: len(record.followups) >= count, timeout, f"{count} followup(s)")
        return list(record.followups)


def build_invocation(
    world: World,
    command: Payload,
    path: list[str],
    *,
    user: User,
    member: Member | None,
    channel: Channel,
    guild: Guild | None,
    options: Mapping[str, Any],
    locale: str,
) -> tuple[Interaction, Payload]:
    """Return a new interaction and its INTERACTION_CREATE payload; raise ``SandboxError`` on bad options."""
    declared = command.get("options") or []
    wrapped: list[Payload]
    resolved: Payload = {}
    for name in path:
        sub = next((o for o in declared if o.get("name") == name), None)
        if sub is None or sub.get("type") not in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
            raise SandboxError(f"/{command['name']} has no subcommand {name!r}")
        declared = sub.get("options") or []
    leaf = _convert_options(
        world, guild, declared, options, resolved, f"/{' '.join([command['name'], *path])}"
    )
    wrapped = leaf
    for name in reversed(path):
        sub_type = OptionType.SUB_COMMAND if wrapped is leaf else OptionType.SUB_COMMAND_GROUP
        wrapped = [{"name": name, "type": sub_type, "options": wrapped}]
    data: Payload = {"id": command["id"], "name": command["name"], "type": command.get("type", 1)}
    if wrapped:
        data["options"] = wrapped
    if resolved:
        data["resolved"] = resolved
    if "guild_id" in command:
        data["guild_id"] = command["guild_id"]
    interaction_id = world.snowflakes.next()
    token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
    bot_member = guild.members.get(world.bot.id) if guild else None
    payload: Payload = {
        "id": str(interaction_id),
        "application_id": str(world.application.id),
        "type": 2,
        "data": data,
        "channel": channel.to_payload(),
        "channel_id": str(channel.id),
        "token": token,
        "version": 1,
        "locale": locale,
        "entitlements": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        # InteractionContextType: 0 GUILD, 1 BOT_DM (a DM with the bot), 2 PRIVATE_CHANNEL (other DMs).
        "context": 0 if guild else 1 if channel.type == 1 else 2,
        "authorizing_integration_owners": {"0": str(guild.id)} if guild else {"1": str(user.id)},
        "app_permissions": str(guild.permissions_in(bot_member, channel)) if guild and bot_member else "0",
    }
    if guild is not None and member is not None:
        payload["guild_id"] = str(guild.id)
        payload["guild_locale"] = guild.locale
        payload["guild"] = {"id": str(guild.id), "locale": guild.locale, "features": []}
        payload["member"] = member.to_payload(permissions=guild.permissions_in(member, channel))
        payload["channel"]["permissions"] = payload["member"]["permissions"]
    else:
        payload["user"] = user.to_payload()
    interaction = Interaction(
        id=interaction_id,
        token=token,
        type=2,
        data=data,
        user=user,
        channel=channel,
        guild=guild,
        payload=payload,
    )
    return interaction, payload


def _convert_options(
    world: World,
    guild: Guild | None,
    declared: list[Payload],
    given: Mapping[str, Any],
    resolved: Payload,
    where: str,
) -> list[Payload]:
    by_name = {o["name"]: o for o in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise SandboxError(f"{where} has no option {unknown[0]!r} (it has: {', '.join(by_name) or 'none'})")
    out: list[Payload] = []
    for option in declared:
        name = option["name"]
        if name not in given:
            if option.get("required"):
                raise SandboxError(
                    f"{where} needs option {name!r}: Discord's client will not send it without"
                )
            continue
        out.append(
            {
                "name": name,
                "type": option["type"],
                "value": _option_value(world, guild, option, given[name], resolved, where),
            }
        )
    return out


def _option_value(
    world: World, guild: Guild | None, option: Payload, value: Any, resolved: Payload, where: str
) -> Any:
    kind = option["type"]
    label = f"{where} option {option['name']!r}"
    if kind == OptionType.STRING:
        value = str(value)
        if not option.get("min_length", 0) <= len(value) <= option.get("max_length", 6000):
            raise SandboxError(
                f"{label} must be {option.get('min_length', 0)} to {option.get('max_length', 6000)} "
                "characters long; Discord's client refuses anything else"
            )
    elif kind in (OptionType.INTEGER, OptionType.NUMBER):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SandboxError(f"{label} takes a number, not {value!r}")
        if kind == OptionType.INTEGER and int(value) != value:
            raise SandboxError(f"{label} takes a whole number, not {value!r}")
        low, high = option.get("min_value"), option.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise SandboxError(f"{label} must be between {low} and {high}; Discord's client refuses {value}")
    elif kind == OptionType.BOOLEAN:
        value = bool(value)
    elif kind in (OptionType.USER, OptionType.MENTIONABLE) and isinstance(value, (User, Member)):
        user = value.user if isinstance(value, Member) else value
        resolved.setdefault("users", {})[str(user.id)] = user.to_payload()
        target = guild.members.get(user.id) if guild else None
        if target is not None and guild is not None:
            resolved.setdefault("members", {})[str(user.id)] = target.to_payload(
                include_user=False, permissions=guild.base_permissions(target)
            )
        return str(user.id)
    elif kind in (OptionType.ROLE, OptionType.MENTIONABLE) and isinstance(value, Role):
        resolved.setdefault("roles", {})[str(value.id)] = value.to_payload()
        return str(value.id)
    elif kind == OptionType.CHANNEL and isinstance(value, Channel):
        channel_payload = value.to_payload()
        channel_payload["permissions"] = str(
            guild.permissions_in(guild.members[world.bot.id], value)
            if guild and world.bot.id in guild.members
            else 0
        )
        resolved.setdefault("channels", {})[str(value.id)] = channel_payload
        return str(value.id)
    else:
        raise SandboxError(f"{label} cannot take {value!r}; pass a sandbox User, Member, Role or Channel")
    choices = option.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise SandboxError(f"{label} must be one of {[c['value'] for c in choices]}")
    return value
