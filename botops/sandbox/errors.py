"""Discord's error responses, and the sandbox's own errors for misuse of its driver API.

Discord answers a bad request with JSON ``{"code", "message", "errors"?}``; :class:`DiscordError`
carries exactly that and becomes the HTTP response. :class:`SandboxError` is raised to the test or
script that drives the sandbox wrongly (a command that was never synced, a member not in the guild).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DiscordError", "FormErrors", "SandboxError"]


class SandboxError(Exception):
    """The sandbox was asked for something Discord would not let a user do."""


class DiscordError(Exception):
    """An error response in Discord's shape; the REST layer turns it into the HTTP answer."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        super().__init__(f"{status} {code}: {message}")

    def to_payload(self) -> dict[str, Any]:
        """Return the JSON body Discord sends."""
        payload: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            payload["errors"] = self.errors
        return payload

    @classmethod
    def not_found(cls, code: int, what: str) -> DiscordError:
        """Return the 404 Discord gives for an unknown entity, e.g. ``not_found(10003, "Channel")``."""
        return cls(404, code, f"Unknown {what}")

    @classmethod
    def missing_permissions(cls) -> DiscordError:
        return cls(403, 50013, "Missing Permissions")

    @classmethod
    def missing_access(cls) -> DiscordError:
        return cls(403, 50001, "Missing Access")


class FormErrors:
    """Collect field errors of one request body, then raise them together as Discord's 50035."""

    def __init__(self) -> None:
        self._errors: dict[str, Any] = {}

    def add(self, path: str, code: str, message: str) -> None:
        """Record an error at a dotted path such as ``embeds.0.title``."""
        node = self._errors
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def __bool__(self) -> bool:
        return bool(self._errors)

    def raise_if_any(self) -> None:
        """Raise ``DiscordError`` 400/50035 if anything was recorded."""
        if self._errors:
            raise DiscordError(400, 50035, "Invalid Form Body", self._errors)
