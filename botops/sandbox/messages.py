"""Check a message body against Discord's limits and turn it into a :class:`Message`.

The limits are Discord's: content up to 2000 characters, up to 10 embeds whose text adds up to at
most 6000 characters, field-by-field embed limits, allowed mentions that do not contradict each
other, and no empty message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botops.sandbox.errors import DiscordError, FormErrors
from botops.sandbox.world import Guild, Message, Payload, User, World

__all__ = ["MessageFlags", "MessageParts", "apply_parts", "parse_message_body"]

CONTENT_LIMIT = 2000
EMBEDS_LIMIT = 10
EMBED_TOTAL_LIMIT = 6000
_EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
_FIELD_LIMITS = {"name": 256, "value": 1024}
FIELDS_LIMIT = 25
COMPONENT_ROWS_LIMIT = 5


class MessageFlags:
    SUPPRESS_EMBEDS = 1 << 2
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_NOTIFICATIONS = 1 << 12
    IS_COMPONENTS_V2 = 1 << 15

    #: Flags a bot may set when sending; the rest are Discord's to set.
    SENDABLE = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
    SENDABLE_BY_INTERACTION = SENDABLE | EPHEMERAL


@dataclass
class MessageParts:
    """The checked parts of a message body; a field left ``None`` was not in the body."""

    content: str | None = None
    embeds: list[Payload] | None = None
    components: list[Payload] | None = None
    attachments: list[Payload] | None = None
    allowed_mentions: Payload | None = None
    flags: int | None = None
    tts: bool = False
    nonce: str | int | None = None
    message_reference: Payload | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (self.content or self.embeds or self.components or self.attachments)


def parse_message_body(
    body: Any, *, interaction: bool = False, edit: bool = False, files: list[Payload] | None = None
) -> MessageParts:
    """Check a create or edit body; raise ``DiscordError`` 50035 (or 50006 when empty) as Discord does."""
    if not isinstance(body, dict):
        raise DiscordError(400, 50109, "The request body contains invalid JSON.")
    errors = FormErrors()
    parts = MessageParts(attachments=list(files) if files else None)
    content = body.get("content")
    if content is not None:
        if not isinstance(content, str):
            errors.add("content", "BASE_TYPE_STRING", "Must be a string.")
        elif len(content) > CONTENT_LIMIT:
            errors.add("content", "BASE_TYPE_MAX_LENGTH", f"Must be {CONTENT_LIMIT} or fewer in length.")
        else:
            parts.content = content
    embeds = body.get("embeds")
    if embeds is None and isinstance(body.get("embed"), dict):
        embeds = [body["embed"]]
    if embeds is not None:
        parts.embeds = _check_embeds(embeds, errors)
    components = body.get("components")
    if components is not None:
        if not isinstance(components, list) or len(components) > COMPONENT_ROWS_LIMIT:
            errors.add(
                "components", "BASE_TYPE_MAX_LENGTH", f"Must be {COMPONENT_ROWS_LIMIT} or fewer in length."
            )
        else:
            parts.components = components
    if "attachments" in body and body["attachments"] is not None and parts.attachments is None:
        parts.attachments = [a for a in body["attachments"] if isinstance(a, dict) and "url" in a]
    allowed = body.get("allowed_mentions")
    if allowed is not None:
        parts.allowed_mentions = _check_allowed_mentions(allowed, errors)
    flags = body.get("flags")
    if flags is not None:
        sendable = MessageFlags.SENDABLE_BY_INTERACTION if interaction else MessageFlags.SENDABLE
        if not isinstance(flags, int) or flags & ~sendable:
            errors.add("flags", "MESSAGE_FLAGS_INVALID", "Invalid flags.")
        else:
            parts.flags = flags
    parts.tts = bool(body.get("tts", False))
    nonce = body.get("nonce")
    if nonce is not None:
        if not isinstance(nonce, (str, int)) or len(str(nonce)) > 25:
            errors.add("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        else:
            parts.nonce = nonce
    reference = body.get("message_reference")
    if isinstance(reference, dict):
        parts.message_reference = reference
    errors.raise_if_any()
    if not edit and parts.is_empty:
        raise DiscordError(400, 50006, "Cannot send an empty message")
    return parts


def _check_embeds(embeds: Any, errors: FormErrors) -> list[Payload]:
    if not isinstance(embeds, list):
        errors.add("embeds", "BASE_TYPE_ARRAY", "Must be an array.")
        return []
    if len(embeds) > EMBEDS_LIMIT:
        errors.add("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {EMBEDS_LIMIT} or fewer in length.")
        return []
    total = 0
    for index, embed in enumerate(embeds):
        where = f"embeds.{index}"
        if not isinstance(embed, dict):
            errors.add(where, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        for key, limit in _EMBED_TEXT_LIMITS.items():
            total += _check_text(errors, f"{where}.{key}", embed.get(key), limit)
        total += _check_text(errors, f"{where}.footer.text", (embed.get("footer") or {}).get("text"), 2048)
        total += _check_text(errors, f"{where}.author.name", (embed.get("author") or {}).get("name"), 256)
        fields = embed.get("fields") or []
        if len(fields) > FIELDS_LIMIT:
            errors.add(
                f"{where}.fields", "BASE_TYPE_MAX_LENGTH", f"Must be {FIELDS_LIMIT} or fewer in length."
            )
            continue
        for number, item in enumerate(fields):
            for key, limit in _FIELD_LIMITS.items():
                value = item.get(key) if isinstance(item, dict) else None
                if value is None or value == "":
                    errors.add(
                        f"{where}.fields.{number}.{key}", "BASE_TYPE_REQUIRED", "This field is required"
                    )
                total += _check_text(errors, f"{where}.fields.{number}.{key}", value, limit)
    if total > EMBED_TOTAL_LIMIT:
        errors.add(
            "embeds", "BASE_TYPE_MAX_LENGTH", f"Embed size exceeds maximum size of {EMBED_TOTAL_LIMIT}"
        )
    return [dict(embed, type=embed.get("type", "rich")) for embed in embeds if isinstance(embed, dict)]


def _check_text(errors: FormErrors, path: str, value: Any, limit: int) -> int:
    if value is None:
        return 0
    if not isinstance(value, str):
        errors.add(path, "BASE_TYPE_STRING", "Must be a string.")
        return 0
    if len(value) > limit:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return len(value)


def _check_allowed_mentions(allowed: Any, errors: FormErrors) -> Payload:
    if not isinstance(allowed, dict):
        errors.add("allowed_mentions", "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        return {}
    parse = allowed.get("parse", [])
    if not isinstance(parse, list) or any(p not in ("roles", "users", "everyone") for p in parse):
        errors.add(
            "allowed_mentions.parse",
            "BASE_TYPE_CHOICES",
            "Value must be one of ('roles', 'users', 'everyone').",
        )
        parse = []
    for kind in ("users", "roles"):
        ids = allowed.get(kind)
        if ids is None:
            continue
        if kind in parse and ids:
            errors.add(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )
        if not isinstance(ids, list) or len(ids) > 100:
            errors.add(f"allowed_mentions.{kind}", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    return allowed


def apply_parts(world: World, guild: Guild | None, message: Message, parts: MessageParts) -> Message:
    """Write checked parts into ``message`` and resolve who it mentions under its allowed mentions."""
    if parts.content is not None:
        message.content = parts.content
    if parts.embeds is not None:
        message.embeds = parts.embeds
    if parts.components is not None:
        message.components = parts.components
    if parts.attachments is not None:
        message.attachments = parts.attachments
    if parts.flags is not None:
        keep = message.flags & (MessageFlags.EPHEMERAL | MessageFlags.LOADING)
        message.flags = keep | parts.flags
    if parts.nonce is not None:
        message.nonce = parts.nonce
    message.tts = parts.tts
    users, roles, everyone = world.resolve_mentions(guild, message.content)
    message.mentions, message.mention_roles, message.mention_everyone = _allowed(
        parts.allowed_mentions, users, roles, everyone
    )
    return message


def _allowed(
    allowed: Payload | None, users: list[User], roles: list[int], everyone: bool
) -> tuple[list[User], list[int], bool]:
    if allowed is None:
        return users, roles, everyone
    parse = allowed.get("parse", [])
    allowed_users = {int(u) for u in allowed.get("users") or []}
    allowed_roles = {int(r) for r in allowed.get("roles") or []}
    kept_users = [u for u in users if "users" in parse or u.id in allowed_users]
    kept_roles = [r for r in roles if "roles" in parse or r in allowed_roles]
    return kept_users, kept_roles, everyone and "everyone" in parse
