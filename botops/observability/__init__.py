"""See inside the running bot: Prometheus metrics, the HTTP server (/livez /readyz /status /metrics), Sentry.

Nothing here is required for the bot to run: metrics cost a few counters on the hot path, the HTTP server
can be turned off (``HTTP_ENABLED=false``), and Sentry is only set up when ``SENTRY_DSN`` is set.
"""
