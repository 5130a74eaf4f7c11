"""The one error tree of botops; every error carries its facts and a message a user can act on.

The hierarchy::

    BotopsError
    ├── ConfigurationError          a setting is missing, malformed or not allowed here
    │   └── EndpointRedirectRefused     DISCORD_API_BASE/DISCORD_GATEWAY_URL given in production
    └── IncompatibleDiscordPy       discord.py no longer has an attribute botops relies on
"""

from __future__ import annotations

__all__ = [
    "BotopsError",
    "ConfigurationError",
    "EndpointRedirectRefused",
    "IncompatibleDiscordPy",
]


class BotopsError(Exception):
    """Base of every error botops raises on purpose."""


class ConfigurationError(BotopsError):
    """A setting is missing, malformed or not allowed in this environment.

    ``variable`` names the environment variable, so the message can say what to change.
    """

    def __init__(self, variable: str, message: str) -> None:
        self.variable = variable
        super().__init__(message)


class EndpointRedirectRefused(ConfigurationError):
    """The Discord endpoints were redirected while ``ENVIRONMENT=production``."""

    def __init__(self, variable: str) -> None:
        super().__init__(
            variable,
            f"{variable} is set but ENVIRONMENT=production: a production bot talks to Discord itself; "
            f"unset {variable} (it is for the sandbox and tests only)",
        )


class IncompatibleDiscordPy(BotopsError):
    """The installed discord.py lacks an attribute that botops sets to reach the sandbox."""

    def __init__(self, attribute: str, discord_version: str) -> None:
        self.attribute = attribute
        self.discord_version = discord_version
        super().__init__(
            f"discord.py {discord_version} has no {attribute}: botops cannot point it at the sandbox; "
            "install the discord.py version pinned in pyproject.toml"
        )
