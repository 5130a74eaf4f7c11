"""Reading a control request: its JSON body or query string, field by field, and the error it answers.

A field that is missing or malformed raises :class:`ControlError`, whose status and sentence become the
answer, so each handler reads its fields in one line each and never builds an error response itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ControlError", "Fields", "as_int", "unknown"]

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "*")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class ControlError(Exception):
    """A request the control plane refuses; ``status`` and the sentence become the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Fields:
    """A JSON object or a query string, read field by field; a wrong field is a 400 that names it."""

    def __init__(self, data: Mapping[str, Any], kind: str = "field", *, max_wait: float) -> None:
        self._data = data
        self._kind = kind
        self._max_wait = max_wait

    def label(self, name: str) -> str:
        return f"{self._kind} {name!r}"

    def raw(self, name: str) -> Any:
        return self._data.get(name)

    def given(self, name: str) -> bool:
        """Tell whether ``name`` is present at all, even as ``null``."""
        return name in self._data

    def required(self, name: str) -> Any:
        value = self._data.get(name)
        if value is None or value == "":
            raise ControlError(400, f"{self.label(name)} is missing")
        return value

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._data.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ControlError(400, f"{self.label(name)} must be a string, not {value!r}")
        return value

    def number(self, name: str, default: float, *, low: float = 0.0, high: float = math.inf) -> float:
        value = self._data.get(name)
        if value is None or value == "":
            return default
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not low <= number <= high:
            bounds = f"from {low:g} to {high:g}" if high < math.inf else f"of at least {low:g}"
            raise ControlError(400, f"{self.label(name)} must be a number {bounds}, not {value!r}")
        return number

    def integer(self, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        value = self._data.get(name)
        if value is None or value == "":
            return default
        number = as_int(value)
        if number is None or number < low or (high is not None and number > high):
            bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise ControlError(400, f"{self.label(name)} must be a whole number {bounds}, not {value!r}")
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self._data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if str(value).lower() in _TRUE + _FALSE:
            return str(value).lower() in _TRUE
        raise ControlError(400, f"{self.label(name)} must be true or false, not {value!r}")

    def array(self, name: str) -> list[Any] | None:
        value = self._data.get(name)
        if value is not None and not isinstance(value, list):
            raise ControlError(400, f"{self.label(name)} must be a JSON array, not {value!r}")
        return value

    def method(self, name: str = "method") -> str:
        value = str(self.required(name)).upper()
        if value not in _METHODS:
            raise ControlError(400, f"{self.label(name)} must be one of {', '.join(_METHODS)}, not {value!r}")
        return value

    def pattern(self, name: str = "path") -> str:
        value = self.required(name)
        if not isinstance(value, str):
            raise ControlError(400, f"{self.label(name)} must be a regular expression string, not {value!r}")
        try:
            re.compile(value)
        except re.error as error:
            raise ControlError(
                400, f"{self.label(name)} is not a valid regular expression: {error}"
            ) from None
        return value

    def wait(self, name: str = "wait", default: float = 0.0) -> float:
        """Return a wait in seconds, cut to the longest any request may wait."""
        return min(self.number(name, default), self._max_wait)


def unknown(status: int, field: str, ref: Any, what: str) -> ControlError:
    """Return the error for a reference to nothing: 400 naming the body field, or 404 for the path."""
    where = f"field {field!r}: " if status == 400 else ""
    return ControlError(status, f"{where}{ref!r} is not {what}")


def as_int(value: Any) -> int | None:
    """Return ``value`` as a non-negative int if it is one or a string of digits, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return int(value)
    return None
