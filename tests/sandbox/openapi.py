"""Check recorded Discord REST traffic against Discord's own OpenAPI description.

The sandbox answers discord.py's REST calls with hand-built payloads. A payload that misses a key
discord.py needs, or uses the wrong type, breaks the bot only when that code path runs. This module
compares each recorded request/response pair with the official spec
(``shared/reference/discord-api-spec/openapi.json``, OpenAPI 3.1, JSON Schema 2020-12), so such drift
shows up as a readable list of problems in the sandbox's own tests::

    validator = OpenAPIValidator()
    assert validator.problems(Exchange("GET", "/api/v10/users/@me", {}, None, 200, payload)) == []

What is checked, for the operation that the method and path select:

* the route exists (literal segments such as ``@me`` win over ``{parameters}``);
* path parameters and the query parameters the spec documents (query values are strings on the wire,
  so they are also tried as integers, numbers and booleans); required query parameters are present;
  undocumented query parameters are reported;
* the JSON request body against the ``application/json`` request schema (a body the operation does not
  take, or a missing required body, is reported);
* the JSON response body against the response documented for the status, falling back to ``NXX``
  ranges (e.g. ``4XX``) and then ``default``; an undocumented status is reported.

Only JSON is validated: multipart uploads should be recorded with their ``payload_json`` part as the
body, and non-JSON responses (``image/png``, ``text/csv``) are not inspected. Headers are not checked.
Timestamps (``format: date-time``) must parse and carry an offset. Where the spec is wrong about real
Discord traffic the validator follows reality; each such patch is listed in :data:`KNOWN_GAPS`.
"""

import contextlib
import json
import os
import re
import reprlib
from collections.abc import Iterator, Mapping, Sized
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = ["KNOWN_GAPS", "Exchange", "OpenAPIValidator"]

_SPEC_ENV: Final = "BOTOPS_DISCORD_OPENAPI"
# The repo checkout sits next to shared/: <root>/main/tests/sandbox/openapi.py -> <root>/shared/...
_DEFAULT_SPEC: Final = (
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "discord-api-spec" / "openapi.json"
)
# The spec has no $id; every schema is reached through one of these URIs so that the spec's own
# "#/components/schemas/..." references resolve against the whole (patched) document. Requests and
# responses get different patches (see KNOWN_GAPS).
_REQUEST_URI: Final = "urn:botops:discord-openapi:request"
_RESPONSE_URI: Final = "urn:botops:discord-openapi:response"
_HTTP_METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
_API_PREFIX: Final = re.compile(r"^/api(?:/v\d+)?(?=/|$)")
_JSON: Final = "application/json"
_MAX_ERRORS_PER_PART: Final = 10
_MAX_MESSAGE_CHARS: Final = 300
_MAX_INSTANCE_CHARS: Final = 80

#: Where the spec disagrees with what Discord and discord.py really do, and what the validator accepts
#: instead, keyed by spec location. Each entry is applied as a patch by :func:`_patched_spec`, which fails
#: loudly when a newer spec no longer has the shape the patch expects (re-check the gap then).
KNOWN_GAPS: Final[Mapping[str, str]] = {
    "#/components/schemas/SnowflakeType (request bodies only)": (
        "Discord accepts integer snowflakes and discord.py 2.7.1 sends them (message_reference, "
        "allowed_mentions.users/roles, sticker_ids); responses must still use strings."
    ),
    "#/components/schemas/InnerErrors/properties/_errors/items": (
        "field errors carry string codes such as 'BASE_TYPE_MAX_LENGTH' (Discord's error-messages docs); "
        "the spec reuses the top-level Error whose code is an integer."
    ),
}

_formats = FormatChecker(formats=())
# Keeps instance dumps in messages short: a 5000-character content or a whole message object.
_short_repr = reprlib.Repr()  # keyword arguments to Repr() only exist from Python 3.12
_short_repr.maxstring = _short_repr.maxother = _MAX_INSTANCE_CHARS
_short_repr.maxlevel = 2


@_formats.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    # discord.py parses timestamps with datetime.fromisoformat and assumes they are aware; RFC 3339
    # also demands an offset. jsonschema skips "date-time" unless an optional extra is installed.
    if not isinstance(value, str):
        return True
    return datetime.fromisoformat(value).tzinfo is not None


@dataclass(frozen=True)
class Exchange:
    """One recorded REST request and the response the sandbox gave to it."""

    method: str
    """HTTP method, any case: ``"GET"``, ``"POST"``..."""
    path: str
    """Request path, e.g. ``"/api/v10/channels/123/messages"``; the ``/api/vN`` prefix is optional."""
    query: Mapping[str, str]
    """Query parameters as sent (strings)."""
    body: Any | None
    """Parsed JSON request body, or None when the request had none."""
    status: int
    """HTTP status of the response."""
    response: Any | None
    """Parsed JSON response body, or None when there was none (e.g. 204)."""


@dataclass(frozen=True)
class _Template:
    template: str
    segments: tuple[str | None, ...]  # None stands for a {parameter} segment
    params: tuple[str, ...]  # parameter names, in the order of the None segments
    item: Mapping[str, Any]  # the spec's path item

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.segments):
            return None
        values: list[str] = []
        for want, got in zip(self.segments, segments, strict=True):
            if want is None:
                if not got:
                    return None
                values.append(unquote(got))
            elif want != got:
                return None
        return dict(zip(self.params, values, strict=True))


@dataclass(frozen=True)
class _Match:
    template: _Template
    method: str
    operation: Mapping[str, Any]
    path_params: Mapping[str, str]

    @property
    def where(self) -> str:
        return f"{self.method} {self.template.template}"

    @property
    def pointer(self) -> str:
        return f"/paths/{_esc(self.template.template)}/{self.method.lower()}"


class OpenAPIValidator:
    """Validates :class:`Exchange` objects against Discord's OpenAPI description.

    Loading the spec takes tens of milliseconds; a JSON Schema validator is built the first time a given
    operation part is checked and then cached, so share one instance (e.g. a session-scoped fixture).
    """

    def __init__(self, spec_path: Path | None = None) -> None:
        self.spec_path = _locate_spec(spec_path)
        with self.spec_path.open("rb") as fh:
            self._spec: dict[str, Any] = json.load(fh)
        request_view, response_view = _patched_spec(self._spec)
        self._registry: Registry[Any] = Registry().with_resources(
            [
                (_REQUEST_URI, DRAFT202012.create_resource(request_view)),
                (_RESPONSE_URI, DRAFT202012.create_resource(response_view)),
            ]
        )
        self._by_length: dict[int, list[_Template]] = {}
        for template, item in self._spec["paths"].items():
            segments = _segments(template)
            entry = _Template(
                template,
                tuple(None if _is_param(s) else s for s in segments),
                tuple(s[1:-1] for s in segments if _is_param(s)),
                item,
            )
            self._by_length.setdefault(len(segments), []).append(entry)
        for entries in self._by_length.values():
            # An earlier literal segment beats a parameter in the same place (/users/@me over
            # /users/{user_id}, /guilds/templates/{code} over /guilds/{guild_id}/...), as in Discord.
            entries.sort(key=lambda t: (tuple(s is None for s in t.segments), t.template))
        self._validators: dict[tuple[str, str, str, str], Draft202012Validator] = {}

    def operation_for(self, method: str, path: str) -> str | None:
        """Return the spec's path template for this request, or None if the spec has no such operation."""
        found = self._match(method, _split(path)[0])
        return found.template.template if isinstance(found, _Match) else None

    def problems(self, exchange: Exchange) -> list[str]:
        """Describe every way the exchange departs from the spec; an empty list means it conforms."""
        path, query_in_path = _split(exchange.path)
        found = self._match(exchange.method, path)
        if not isinstance(found, _Match):
            return [found]
        return [
            *self._parameter_problems(found, {**query_in_path, **exchange.query}),
            *self._request_problems(found, exchange.body),
            *self._response_problems(found, exchange.status, exchange.response),
        ]

    def _match(self, method: str, path: str) -> "_Match | str":
        """The operation for method and path, or a message saying why there is none."""
        method = method.upper()
        segments = _segments(path)
        allowed: set[str] = set()
        for entry in self._by_length.get(len(segments), ()):
            params = entry.match(segments)
            if params is None:
                continue
            operation = entry.item.get(method.lower())
            if operation is not None:
                return _Match(entry, method, operation, params)
            allowed.update(m.upper() for m in entry.item if m in _HTTP_METHODS)
        if allowed:
            return (
                f"{method} {path}: the spec has no {method} on this route (only {', '.join(sorted(allowed))})"
            )
        return f"{method} {path}: no operation in the Discord OpenAPI spec matches this route"

    def _parameter_problems(self, found: _Match, query: Mapping[str, str]) -> list[str]:
        out: list[str] = []
        documented: set[str] = set()
        for pointer, param in self._parameters(found):
            name, location = param["name"], param["in"]
            if location == "path":
                value: str | None = found.path_params.get(name)
            elif location == "query":
                documented.add(name)
                value = query.get(name)
            else:
                continue  # headers and cookies are not recorded
            if value is None:
                if param.get("required", False):
                    out.append(f"{found.where}: required {location} parameter {name!r} is missing")
                continue
            validator = self._validator(found, f"{location}:{name}", "", f"{pointer}/schema")
            if not any(validator.is_valid(candidate) for candidate in _wire_values(value)):
                detail = _describe(next(iter(validator.iter_errors(value)), None))
                out.append(f"{found.where}: {location} parameter {name}={value!r} is invalid: {detail}")
        out.extend(
            f"{found.where}: query parameter {name!r} is not documented"
            for name in query
            if name not in documented
        )
        return out

    def _request_problems(self, found: _Match, body: Any | None) -> list[str]:
        request = found.operation.get("requestBody")
        if request is None:
            return (
                [] if body is None else [f"{found.where}: sends a request body but the operation takes none"]
            )
        if body is None:
            required = request.get("required", False)
            return [f"{found.where}: request body is required but none was sent"] if required else []
        pointer = _json_schema_pointer(request, f"{found.pointer}/requestBody")
        if pointer is None:
            return []  # multipart-only uploads: no JSON schema to hold the body to
        return self._schema_problems(found, "request", "", pointer, body, f"{found.where} request body")

    def _response_problems(self, found: _Match, status: int, body: Any | None) -> list[str]:
        responses: Mapping[str, Any] = found.operation.get("responses", {})
        key = next((k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None)
        if key is None:
            return [f"{found.where}: status {status} is not documented (only {', '.join(responses)})"]
        response, base = self._deref(responses[key], f"{found.pointer}/responses/{_esc(key)}")
        if not response.get("content"):
            if body is None:
                return []
            return [f"{found.where}: status {status} has no body in the spec, but one was sent"]
        pointer = _json_schema_pointer(response, base)
        if pointer is None:
            return []  # image/png, text/csv: nothing JSON to check
        if body is None:
            return [f"{found.where}: status {status} should carry a JSON body, but none was sent"]
        return self._schema_problems(
            found, "response", key, pointer, body, f"{found.where} response {status}"
        )

    def _parameters(self, found: _Match) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """(pointer, parameter) pairs; operation-level parameters override path-item ones."""
        merged: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
        for base, params in (
            (f"/paths/{_esc(found.template.template)}/parameters", found.template.item.get("parameters", [])),
            (f"{found.pointer}/parameters", found.operation.get("parameters", [])),
        ):
            for index, raw in enumerate(params):
                param, pointer = self._deref(raw, f"{base}/{index}")
                merged[(param["name"], param["in"])] = (pointer, param)
        return iter(merged.values())

    def _deref(self, obj: Mapping[str, Any], pointer: str) -> tuple[Mapping[str, Any], str]:
        """Follow local OpenAPI ``$ref`` objects (components/responses, parameters) to their target."""
        while "$ref" in obj:
            ref: str = obj["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local references are supported, got {ref!r} at {pointer}")
            pointer = ref[1:]
            target: Any = self._spec
            for token in pointer[1:].split("/"):
                target = target[token.replace("~1", "/").replace("~0", "~")]
            obj = target
        return obj, pointer

    def _validator(self, found: _Match, part: str, status: str, pointer: str) -> Draft202012Validator:
        key = (found.template.template, found.method, part, status)
        validator = self._validators.get(key)
        if validator is None:
            base = _REQUEST_URI if part == "request" else _RESPONSE_URI
            # Referencing the schema in place (rather than copying it out) keeps its relative $refs
            # resolvable against the whole spec.
            validator = Draft202012Validator(
                {"$ref": f"{base}#{quote(pointer, safe='/~')}"},
                registry=self._registry,
                format_checker=_formats,
            )
            self._validators[key] = validator
        return validator

    def _schema_problems(
        self, found: _Match, part: str, status: str, pointer: str, instance: Any, where: str
    ) -> list[str]:
        validator = self._validator(found, part, status, pointer)
        errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
        out = [f"{where}: {_describe(_explain(error))}" for error in errors[:_MAX_ERRORS_PER_PART]]
        if len(errors) > _MAX_ERRORS_PER_PART:
            out.append(f"{where}: ... and {len(errors) - _MAX_ERRORS_PER_PART} more schema errors")
        return out


def _locate_spec(spec_path: Path | None) -> Path:
    if spec_path is not None:
        if not spec_path.is_file():
            raise FileNotFoundError(f"Discord OpenAPI spec not found at {spec_path}")
        return spec_path
    override = os.environ.get(_SPEC_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"{_SPEC_ENV}={override!r} does not name a file (expected openapi.json)")
        return path
    if not _DEFAULT_SPEC.is_file():
        raise FileNotFoundError(
            f"Discord OpenAPI spec not found at {_DEFAULT_SPEC}; set {_SPEC_ENV} to the path of openapi.json"
        )
    return _DEFAULT_SPEC


def _patched_spec(spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Views of the spec for requests and for responses with the KNOWN_GAPS patches applied.

    Only the touched dicts are copied, so the views share (and never mutate) the rest of the document.
    """
    schemas: Mapping[str, Any] = spec["components"]["schemas"]
    try:
        snowflake = schemas["SnowflakeType"]
        inner = schemas["InnerErrors"]
        errors = inner["properties"]["_errors"]
        if snowflake.get("type") != "string" or errors["items"] != {"$ref": "#/components/schemas/Error"}:
            raise KeyError("shape")
    except KeyError as exc:
        raise RuntimeError(
            "openapi.json no longer has the shape a KNOWN_GAPS patch expects; re-check KNOWN_GAPS"
        ) from exc
    field_error = {
        "type": "object",
        "properties": {"code": {"type": ["string", "integer"]}, "message": {"type": "string"}},
        "required": ["code", "message"],
    }
    inner_patched = {
        **inner,
        "properties": {**inner["properties"], "_errors": {**errors, "items": field_error}},
    }
    both = {"InnerErrors": inner_patched}
    request_only = {"SnowflakeType": {"anyOf": [snowflake, {"type": "integer", "minimum": 0}]}}

    def view(overrides: Mapping[str, Any]) -> dict[str, Any]:
        components = {**spec["components"], "schemas": {**schemas, **overrides}}
        return {**spec, "components": components}

    return view({**both, **request_only}), view(both)


def _split(path: str) -> tuple[str, dict[str, str]]:
    """Normalise a recorded path (or full URL) to a spec path plus any query string it carried."""
    parts = urlsplit(path)
    bare = _API_PREFIX.sub("", parts.path) or "/"
    if len(bare) > 1:
        bare = bare.rstrip("/")
    return bare, dict(parse_qsl(parts.query, keep_blank_values=True))


def _segments(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _esc(token: str) -> str:
    """Escape one JSON-pointer token."""
    return token.replace("~", "~0").replace("/", "~1")


def _json_schema_pointer(holder: Mapping[str, Any], base: str) -> str | None:
    content: Mapping[str, Any] = holder.get("content", {})
    return f"{base}/content/{_esc(_JSON)}/schema" if "schema" in content.get(_JSON, {}) else None


def _wire_values(value: str) -> Iterator[Any]:
    """The values a query or path string may stand for: itself, then as integer, number or boolean."""
    scalars: list[Any] = [value]
    for convert in (int, float):
        with contextlib.suppress(ValueError):
            scalars.append(convert(value))
    # aiohttp refuses bool query values, so discord.py sends 1/0 (e.g. ?with_response=1, ?wait=1)
    lowered = value.lower()
    if lowered in ("true", "1"):
        scalars.append(True)
    elif lowered in ("false", "0"):
        scalars.append(False)
    yield from scalars
    yield from ([s] for s in scalars)  # a single value of a repeated (array) parameter


def _explain(error: ValidationError) -> ValidationError:
    """Descend from a failed oneOf/anyOf to the branch that got furthest into the instance.

    jsonschema's best_match gives up when branches tie; with Discord's unions (callback types,
    component types) the branch whose errors reach deepest is almost always the one that was meant,
    while the others fail on their ``type`` discriminator.
    """
    while error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
        branch = max(branches.values(), key=lambda errs: (max(map(_depth, errs)), -len(errs)))
        if len(branches) > 1 and max(map(_depth, branch)) <= len(error.absolute_path):
            break  # every branch fails right here: the union itself is the clearest message
        error = max(branch, key=_depth)
    return error


def _depth(error: ValidationError) -> int:
    """How far into the instance the error, or any error nested in its context, reaches."""
    return max([len(error.absolute_path), *map(_depth, error.context)])


def _describe(error: ValidationError | None) -> str:
    if error is None:
        return "invalid"
    message = error.message
    shown = repr(error.instance)
    if len(shown) > _MAX_INSTANCE_CHARS:
        message = message.replace(shown, _short_repr.repr(error.instance))
    instance = error.instance
    if isinstance(instance, Sized) and error.validator in ("maxLength", "minLength", "maxItems", "minItems"):
        message += f" (length {len(instance)}, {error.validator} {error.validator_value})"
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 3] + "..."
    return f"{error.json_path}: {message}"
