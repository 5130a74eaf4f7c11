"""Fixtures of the observability tests: the local Sentry (:mod:`tests.observability.capture`)."""

from tests.observability.capture import capture_server

__all__ = ["capture_server"]
