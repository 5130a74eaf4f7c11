"""Rate-limit buckets and the headers Discord sends with every REST response.

discord.py only learns a bucket's size from ``X-RateLimit-*`` headers and only retries a 429 that
carries a ``Via`` header, so every answer gets both. In ``generous`` mode the buckets are large enough
that no test meets them; in ``realistic`` mode they have Discord's sizes and are enforced.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

__all__ = ["Bucket", "Decision", "RateLimiter"]

VIA = "1.1 google"

#: (requests, seconds) per route template in realistic mode; everything else gets the default.
_REALISTIC = {
    ("POST", "/channels/{channel_id}/messages"): (5, 5.0),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"): (5, 5.0),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}"): (5, 1.0),
    ("PUT", "/applications/{application_id}/commands"): (2, 60.0),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"): (2, 60.0),
}
_REALISTIC_DEFAULT = (50, 1.0)
_GENEROUS = (10_000, 1.0)
#: Discord's global limit for a bot: 50 requests per second, interactions excluded.
GLOBAL_LIMIT = 50


@dataclass
class Bucket:
    """One bucket's window."""

    key: str
    limit: int
    window: float
    remaining: int
    reset_at: float

    def take(self, now: float) -> bool:
        """Spend one request; return ``False`` when the window has none left."""
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = now + self.window
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


@dataclass(frozen=True)
class Decision:
    """What the limiter says about one request: its headers and, if limited, how long to wait."""

    headers: dict[str, str]
    retry_after: float | None = None
    is_global: bool = False


class RateLimiter:
    """Count requests per bucket (route template plus its major parameter) and say when to wait."""

    def __init__(self, mode: str = "generous") -> None:
        if mode not in ("generous", "realistic"):
            raise ValueError(f"ratelimits must be 'generous' or 'realistic', not {mode!r}")
        self.mode = mode
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._global_window = (0.0, 0)

    def check(self, method: str, template: str, major: str, *, exempt_global: bool = False) -> Decision:
        """Account one request and return its headers; ``retry_after`` is set when it must be refused."""
        now = time.time()
        limit, window = self._size(method, template)
        bucket_hash = hashlib.blake2s(f"{method} {template}".encode(), digest_size=8).hexdigest()
        bucket = self._buckets.get((bucket_hash, major))
        if bucket is None:
            bucket = Bucket(bucket_hash, limit, window, limit, now + window)
            self._buckets[(bucket_hash, major)] = bucket
        allowed = bucket.take(now)
        headers = self.headers_for(bucket, now)
        if not allowed:
            return Decision(headers, retry_after=max(bucket.reset_at - now, 0.001))
        if self.mode == "realistic" and not exempt_global:
            started, count = self._global_window
            if now - started >= 1.0:
                started, count = now, 0
            if count >= GLOBAL_LIMIT:
                return Decision(headers, retry_after=max(started + 1.0 - now, 0.001), is_global=True)
            self._global_window = (started, count + 1)
        return Decision(headers)

    def _size(self, method: str, template: str) -> tuple[int, float]:
        if self.mode == "generous":
            return _GENEROUS
        return _REALISTIC.get((method, template), _REALISTIC_DEFAULT)

    @staticmethod
    def headers_for(bucket: Bucket, now: float) -> dict[str, str]:
        """Return the ``X-RateLimit-*`` headers describing ``bucket`` now."""
        reset_after = max(bucket.reset_at - now, 0.0)
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(max(bucket.remaining, 0)),
            "X-RateLimit-Reset": f"{bucket.reset_at:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket.key,
            "Via": VIA,
        }


def too_many_requests(
    retry_after: float, *, is_global: bool, scope: str | None = None
) -> tuple[dict[str, str], dict[str, object]]:
    """Return the headers and body of a 429 as Discord sends it."""
    headers = {
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Scope": scope or ("global" if is_global else "user"),
        "Via": VIA,
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    body: dict[str, object] = {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": is_global,
        "code": 0,
    }
    return headers, body
