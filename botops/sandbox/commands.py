"""Application commands as Discord stores them: bulk overwrite, stable ids, global and per guild."""

from __future__ import annotations

import re
from typing import Any

from botops.sandbox.errors import DiscordError, FormErrors
from botops.sandbox.snowflake import SnowflakeFactory
from botops.sandbox.world import Payload

__all__ = ["CommandRegistry", "OptionType"]

_NAME = re.compile(r"^[-_'\w]{1,32}$", re.UNICODE)


class OptionType:
    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


class CommandRegistry:
    """The commands an application registered, globally and per guild."""

    def __init__(self, application_id: int, snowflakes: SnowflakeFactory) -> None:
        self.application_id = application_id
        self._snowflakes = snowflakes
        self.global_commands: dict[str, Payload] = {}
        self.guild_commands: dict[int, dict[str, Payload]] = {}
        self.syncs = 0

    def scope(self, guild_id: int | None) -> dict[str, Payload]:
        """Return the commands of one scope: global when ``guild_id`` is ``None``."""
        if guild_id is None:
            return self.global_commands
        return self.guild_commands.setdefault(guild_id, {})

    def overwrite(self, guild_id: int | None, body: Any) -> list[Payload]:
        """Replace a scope's commands with ``body``, keeping the id of every command whose name stays."""
        if not isinstance(body, list):
            raise DiscordError(
                400,
                50035,
                "Invalid Form Body",
                {"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Must be an array."}]},
            )
        if len(body) > 100:
            raise DiscordError(400, 30032, "Maximum number of application commands reached (100)")
        errors = FormErrors()
        seen: set[tuple[int, str]] = set()
        for index, command in enumerate(body):
            _check_command(errors, str(index), command)
            if isinstance(command, dict):
                key = (int(command.get("type", 1)), str(command.get("name")))
                if key in seen:
                    errors.add(
                        str(index),
                        "APPLICATION_COMMANDS_DUPLICATE_NAME",
                        "Application command names must be unique",
                    )
                seen.add(key)
        errors.raise_if_any()
        old = self.scope(guild_id)
        new = {command["name"]: self._stored(guild_id, command, old.get(command["name"])) for command in body}
        old.clear()
        old.update(new)
        self.syncs += 1
        return list(new.values())

    def upsert(self, guild_id: int | None, command: Any) -> Payload:
        """Create or update one command by name."""
        errors = FormErrors()
        _check_command(errors, "", command)
        errors.raise_if_any()
        scope = self.scope(guild_id)
        stored = self._stored(guild_id, command, scope.get(command["name"]))
        scope[command["name"]] = stored
        return stored

    def find(self, guild_id: int | None, name: str) -> Payload | None:
        """Return the command a user in ``guild_id`` sees as ``/name``: the guild's first, then global."""
        if guild_id is not None:
            found = self.guild_commands.get(guild_id, {}).get(name)
            if found is not None:
                return found
        return self.global_commands.get(name)

    def by_id(self, guild_id: int | None, command_id: int) -> Payload:
        """Return a command by id; raise ``DiscordError`` 10063 if there is none."""
        for command in self.scope(guild_id).values():
            if int(command["id"]) == command_id:
                return command
        raise DiscordError.not_found(10063, "application command")

    def delete(self, guild_id: int | None, command_id: int) -> None:
        """Delete a command by id."""
        command = self.by_id(guild_id, command_id)
        del self.scope(guild_id)[command["name"]]

    def _stored(self, guild_id: int | None, command: Payload, previous: Payload | None) -> Payload:
        stored: Payload = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "dm_permission": True,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            "name_localizations": None,
            "description_localizations": None,
        }
        stored.update(command)
        if stored["integration_types"] is None:
            # discord.py sends null when a command does not restrict installs; Discord stores its default.
            stored["integration_types"] = [0]
        stored["id"] = previous["id"] if previous else str(self._snowflakes.next())
        stored["application_id"] = str(self.application_id)
        stored["version"] = str(self._snowflakes.next())
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        return stored


def _check_command(errors: FormErrors, where: str, command: Any) -> None:
    prefix = f"{where}." if where else ""
    if not isinstance(command, dict):
        errors.add(where or "_", "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        return
    kind = int(command.get("type", 1))
    name = command.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        errors.add(f"{prefix}name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    elif kind == 1 and (not _NAME.match(name) or name != name.lower()):
        errors.add(f"{prefix}name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    if kind == 1:
        description = command.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            errors.add(f"{prefix}description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    _check_options(errors, f"{prefix}options", command.get("options") or [])


def _check_options(errors: FormErrors, where: str, options: Any) -> None:
    if not isinstance(options, list) or len(options) > 25:
        errors.add(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        return
    optional_seen = False
    names: set[str] = set()
    for index, option in enumerate(options):
        path = f"{where}.{index}"
        if not isinstance(option, dict):
            errors.add(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        name = option.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or name != name.lower():
            errors.add(f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        elif name in names:
            errors.add(
                f"{path}.name",
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            )
        names.add(str(name))
        description = option.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            errors.add(f"{path}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if option.get("type") in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
            _check_options(errors, f"{path}.options", option.get("options") or [])
            continue
        if option.get("required"):
            if optional_seen:
                errors.add(
                    path,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        if len(option.get("choices") or []) > 25:
            errors.add(f"{path}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
