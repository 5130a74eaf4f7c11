"""The bot: its class, extension discovery, the error funnel and user-facing text."""

from botops.bot.core import Bot, build_intents

__all__ = ["Bot", "build_intents"]
