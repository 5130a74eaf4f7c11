"""Shared test setup: the sandbox fixtures from botops.testing."""

pytest_plugins = ["botops.testing"]
