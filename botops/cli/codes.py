"""The exit codes of the ``botops`` command line, which scripts and process managers rely on."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """Every exit status the CLI uses."""

    OK = 0
    FAILURE = 1  # the command ran and something is wrong (a check failed, the bot is not ready)
    USAGE = 2  # the configuration or the command line is wrong; the message says what to change
    #: ``botops run`` refused to log in: Discord allows fewer session starts than SESSION_START_RESERVE
    #: until its daily reset. Restarting cannot help before then, so supervisors must not restart on it
    #: (deploy/botops.service, deploy/supervisord.conf). 75 is sysexits' EX_TEMPFAIL: try again later.
    SESSION_START_RESERVE = 75
