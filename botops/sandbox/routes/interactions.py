"""REST routes for interactions: the callback, followups, and the interaction webhook's messages."""

from __future__ import annotations

from typing import Any

from botops.sandbox.errors import DiscordError
from botops.sandbox.interactions import CallbackType, Interaction
from botops.sandbox.messages import MessageFlags, MessageParts, apply_parts, parse_message_body
from botops.sandbox.rest import Call
from botops.sandbox.routes.base import UNKNOWN_INTERACTION, UNKNOWN_MESSAGE, UNKNOWN_WEBHOOK, RouteBase
from botops.sandbox.world import Message, Payload

__all__ = ["InteractionRoutes"]


class InteractionRoutes(RouteBase):
    """``/interactions/{id}/{token}/callback`` and ``/webhooks/{application_id}/{token}/...``."""

    async def interaction_callback(self, call: Call) -> tuple[int, Any]:
        interaction = self.sandbox.interactions.get(call.snowflake("interaction_id", UNKNOWN_INTERACTION))
        if interaction is None or interaction.token != call.params["interaction_token"]:
            raise DiscordError.not_found(*UNKNOWN_INTERACTION)
        deadline = self.sandbox.ack_deadline
        if deadline is not None and interaction.age > deadline:
            raise DiscordError.not_found(*UNKNOWN_INTERACTION)
        if interaction.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body = call.body if isinstance(call.body, dict) else {}
        kind = body.get("type")
        raw_data = body.get("data")
        data: Payload = raw_data if isinstance(raw_data, dict) else {}
        message: Message | None = None
        if kind == CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            parts = parse_message_body(data, interaction=True, files=call.files or None)
            message = self._interaction_message(interaction, parts, loading=False)
        elif kind == CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            ephemeral = int(data.get("flags") or 0) & MessageFlags.EPHEMERAL
            message = self._interaction_message(interaction, MessageParts(flags=ephemeral), loading=True)
        elif kind == CallbackType.MODAL:
            if not data.get("custom_id") or not data.get("title") or not data.get("components"):
                raise DiscordError(400, 50035, "Invalid Form Body")
        else:
            raise DiscordError(
                400, 40043, f"Interaction callback type {kind} is not valid for a slash command"
            )
        interaction.callback = {"type": kind, "data": data}
        interaction.original = message
        self.sandbox.interaction_changed(interaction)
        if call.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
        response: Payload = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "activity_instance_id": None,
                "response_message_id": str(message.id) if message else None,
                "response_message_loading": bool(message and message.flags & MessageFlags.LOADING),
                "response_message_ephemeral": bool(message and message.ephemeral),
            }
        }
        # Discord describes a resource only for a callback that made a message (type 4); a deferral's
        # loading message is known by response_message_id alone.
        if message is not None and kind == CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            response["resource"] = {"type": kind, "message": message.to_payload(self.world)}
        return 200, response

    def _interaction_message(
        self, interaction: Interaction, parts: MessageParts, *, loading: bool
    ) -> Message:
        world = self.world
        message = Message(
            id=world.snowflakes.next(),
            channel_id=interaction.channel.id,
            guild_id=interaction.guild.id if interaction.guild else None,
            author=world.bot,
            type=20,
            webhook_id=world.application.id,
            application_id=world.application.id,
            interaction_metadata={
                "id": str(interaction.id),
                "type": interaction.type,
                "name": interaction.data.get("name"),
                "command_type": 1,
                "user": interaction.user.to_payload(),
                "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
            },
            flags=(parts.flags or 0) & MessageFlags.EPHEMERAL | (MessageFlags.LOADING if loading else 0),
        )
        apply_parts(world, interaction.guild, message, parts)
        return self.sandbox.store_message(message)

    def _interaction_by_token(self, call: Call) -> Interaction:
        interaction = self.sandbox.interactions_by_token.get(call.params["webhook_token"])
        if interaction is None or call.params["webhook_id"] != str(self.world.application.id):
            raise DiscordError.not_found(*UNKNOWN_WEBHOOK)
        return interaction

    def _webhook_message(self, call: Call) -> tuple[Interaction, Message]:
        interaction = self._interaction_by_token(call)
        wanted = call.params["message_id"]
        if wanted == "@original":
            if interaction.original is None:
                raise DiscordError.not_found(*UNKNOWN_MESSAGE)
            return interaction, interaction.original
        for message in [interaction.original, *interaction.followups]:
            if message is not None and str(message.id) == wanted:
                return interaction, message
        raise DiscordError.not_found(*UNKNOWN_MESSAGE)

    async def create_followup(self, call: Call) -> tuple[int, Any]:
        interaction = self._interaction_by_token(call)
        if not interaction.acknowledged:
            # Discord creates an interaction's webhook only when the interaction is acknowledged.
            raise DiscordError.not_found(*UNKNOWN_WEBHOOK)
        parts = parse_message_body(call.body, interaction=True, files=call.files or None)
        original = interaction.original
        if original is not None and original.flags & MessageFlags.LOADING:
            # Discord turns the first followup after a deferral into the original response.
            original.flags &= ~MessageFlags.LOADING
            apply_parts(self.world, interaction.guild, original, parts)
            self.sandbox.update_message(original)
            message = original
        else:
            message = self._interaction_message(interaction, parts, loading=False)
            interaction.followups.append(message)
        self.sandbox.interaction_changed(interaction)
        if call.query.get("wait", "").lower() not in ("1", "true"):
            return 204, None
        return 200, message.to_payload(self.world)

    async def get_webhook_message(self, call: Call) -> tuple[int, Any]:
        _, message = self._webhook_message(call)
        return 200, message.to_payload(self.world)

    async def edit_webhook_message(self, call: Call) -> tuple[int, Any]:
        interaction, message = self._webhook_message(call)
        parts = parse_message_body(call.body, interaction=True, edit=True, files=call.files or None)
        message.flags &= ~MessageFlags.LOADING
        apply_parts(self.world, interaction.guild, message, parts)
        self.sandbox.update_message(message)
        self.sandbox.interaction_changed(interaction)
        return 200, message.to_payload(self.world)

    async def delete_webhook_message(self, call: Call) -> tuple[int, Any]:
        interaction, message = self._webhook_message(call)
        self.sandbox.remove_message(message)
        if message is interaction.original:
            interaction.original = None
        elif message in interaction.followups:
            interaction.followups.remove(message)
        self.sandbox.interaction_changed(interaction)
        return 204, None
