"""Control routes for application commands: list them, invoke one as a member, read the bot's answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from botops.sandbox.commands import OptionType
from botops.sandbox.control.base import PREFIX, ControlBase
from botops.sandbox.control.fields import ControlError, Fields, as_int
from botops.sandbox.interactions import Interaction, InteractionResponse, InteractionResult
from botops.sandbox.world import Guild, Member, Payload, User

__all__ = ["InteractionsFeature"]

_LOADING = 1 << 7  # MessageFlags.LOADING: the bot deferred and is "thinking"


class InteractionsFeature(ControlBase):
    """``/commands`` and ``/interactions``."""

    async def get_commands(self, request: web.Request) -> tuple[int, Any]:
        registry = self.sandbox.commands
        return 200, {
            "global": list(registry.global_commands.values()),
            "guilds": {
                str(gid): list(commands.values()) for gid, commands in registry.guild_commands.items()
            },
        }

    async def invoke_slash(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        command = fields.text("command") or ""
        if not command.strip():
            raise ControlError(400, "field 'command' is missing: give the command as typed, e.g. \"xp set\"")
        channel = self._channel(fields.required("channel"), fields.raw("guild_id"))
        who_field = "member" if fields.raw("member") is not None else "user"
        who = fields.required(who_field)
        guild = self.world.guilds.get(channel.guild_id) if channel.guild_id else None
        member = self._member(guild, who, field=who_field) if guild else None
        user = None if guild else self._user(who, field=who_field)
        options = fields.raw("options") or {}
        if not isinstance(options, dict):
            raise ControlError(400, "field 'options' must be a JSON object of option names to values")
        result = await self.sandbox.invoke_slash(
            command,
            member=member,
            user=user,
            channel=channel,
            options=self._slash_options(command, guild, options),
            locale=fields.text("locale", "en-US") or "en-US",
            enforce_permissions=fields.flag("enforce_permissions", True),
        )
        timed_out = await self._await_interaction(result, self._query(request))
        return 201, self._interaction(result.interaction, timed_out=timed_out)

    def _slash_options(self, name: str, guild: Guild | None, given: Mapping[str, Any]) -> dict[str, Any]:
        """Turn ids and names in user, role, channel and mentionable options into the sandbox's objects."""
        root, *path = name.split()
        command = self.sandbox.commands.find(guild.id if guild else None, root)
        declared: list[Payload] = (command.get("options") or []) if command else []
        for sub_name in path:
            sub = next((o for o in declared if o.get("name") == sub_name), None)
            declared = (sub.get("options") or []) if sub else []
        kinds = {option.get("name"): option.get("type") for option in declared}
        options: dict[str, Any] = {}
        for key, value in given.items():
            kind, field = kinds.get(key), f"options.{key}"
            if kind == OptionType.USER:
                options[key] = self._person(guild, value, field)
            elif kind == OptionType.CHANNEL:
                options[key] = self._channel(value, guild.id if guild else None, field=field)
            elif kind == OptionType.ROLE:
                options[key] = self._role(self._guild_of(guild, field), value, field=field)
            elif kind == OptionType.MENTIONABLE:
                try:
                    options[key] = self._person(guild, value, field)
                except ControlError:
                    options[key] = self._role(self._guild_of(guild, field), value, field=field)
            else:
                # Anything else (and an option the command lacks) goes as given: the driver checks it.
                options[key] = value
        return options

    def _person(self, guild: Guild | None, ref: Any, field: str) -> Member | User:
        if guild is not None:
            try:
                return self._member(guild, ref, field=field)
            except ControlError:
                pass
        return self._user(ref, field=field)

    @staticmethod
    def _guild_of(guild: Guild | None, field: str) -> Guild:
        if guild is None:
            raise ControlError(
                400, f"field {field!r} names a role, which only a command in a guild channel can take"
            )
        return guild

    async def _await_interaction(self, result: InteractionResult, query: Fields) -> bool:
        """Wait as ``?wait=<s>&until=response|final|followups&count=<n>`` asks; return True on a timeout."""
        wait = query.wait()
        until = query.text("until", "response")
        count = query.integer("count", 1, low=1, high=100)
        waits: dict[str, Callable[[], Awaitable[object]]] = {
            "response": lambda: result.response(wait),
            "final": lambda: result.final_message(wait),
            "followups": lambda: result.followups(count, wait),
        }
        if until not in waits:
            raise ControlError(
                400, f"query parameter 'until' must be response, final or followups, not {until!r}"
            )
        if wait <= 0:
            return False
        try:
            await self._wait(waits[until]())
        except TimeoutError:
            return True
        return False

    def _find_interaction(self, request: web.Request) -> Interaction:
        ref = request.match_info["interaction_id"]
        interaction = self.sandbox.interactions.get(as_int(ref) or 0)
        if interaction is None:
            raise ControlError(
                404, f"there is no interaction {ref!r}; POST {PREFIX}/interactions returns the ids"
            )
        return interaction

    async def list_interactions(self, request: web.Request) -> tuple[int, Any]:
        return 200, {"interactions": [self._interaction(i) for i in self.sandbox.interactions.values()]}

    async def get_interaction(self, request: web.Request) -> tuple[int, Any]:
        interaction = self._find_interaction(request)
        timed_out = await self._await_interaction(InteractionResult(interaction), self._query(request))
        return 200, self._interaction(interaction, timed_out=timed_out)

    def _interaction(self, interaction: Interaction, *, timed_out: bool = False) -> Payload:
        callback = interaction.callback
        response: Payload | None = None
        if callback is not None:
            answer = InteractionResponse(callback["type"], callback.get("data") or {}, interaction.original)
            response = {
                "type": answer.type,
                "deferred": answer.deferred,
                "ephemeral": answer.ephemeral,
                "content": answer.content,
                "embeds": answer.embeds,
                "flags": answer.message.flags if answer.message else int(answer.data.get("flags") or 0),
                "data": answer.data,
            }
        original = interaction.original
        return {
            "id": str(interaction.id),
            "command": _command_path(interaction.data),
            "user": {"id": str(interaction.user.id), "username": interaction.user.username},
            "channel_id": str(interaction.channel.id),
            "guild_id": str(interaction.guild.id) if interaction.guild else None,
            "acknowledged": interaction.acknowledged,
            "response": response,
            "message": self._message(original) if original else None,
            "final": original is not None and not original.flags & _LOADING,
            "followups": [self._message(m) for m in interaction.followups],
            "timed_out": timed_out,
        }


def _command_path(data: Payload) -> str:
    """Return the invoked command as typed: ``"xp set"`` for a subcommand."""
    names = [str(data.get("name"))]
    options = data.get("options") or []
    while options and options[0].get("type") in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
        names.append(str(options[0]["name"]))
        options = options[0].get("options") or []
    return " ".join(names)
