"""Tests of botops.observability: metrics, the HTTP server, Sentry."""
