"""Measuring helpers the benchmarks share: CPU shares of two processes, and callback times from the log."""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Iterator

import psutil

from botops.sandbox import Sandbox

__all__ = ["CpuMeter", "callback_times", "percentile"]

_CALLBACK_PATH = re.compile(r"^/interactions/(\d+)/[^/]+/callback$")


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values`` (``fraction`` 0.99 for p99)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]


class CpuMeter:
    """CPU time of this process (the sandbox) and of the bot child over one phase, as shares of a core."""

    def __init__(self, child: psutil.Process | None) -> None:
        self.me = psutil.Process()
        self.child = child
        self.shares = (0.0, 0.0)

    @staticmethod
    def _busy(process: psutil.Process | None) -> float:
        if process is None:
            return 0.0
        times = process.cpu_times()
        return float(times.user + times.system)

    @contextlib.contextmanager
    def measure(self) -> Iterator[CpuMeter]:
        wall, mine, bots = time.perf_counter(), self._busy(self.me), self._busy(self.child)
        yield self
        elapsed = time.perf_counter() - wall
        self.shares = ((self._busy(self.me) - mine) / elapsed, (self._busy(self.child) - bots) / elapsed)


def callback_times(sandbox: Sandbox, since: int) -> dict[int, float]:
    """Map interaction id to when its callback reached the sandbox, from the request log."""
    times: dict[int, float] = {}
    for exchange in sandbox.requests[since:]:
        match = _CALLBACK_PATH.match(exchange.path)
        if match and exchange.status < 300:
            times.setdefault(int(match.group(1)), exchange.at)
    return times
