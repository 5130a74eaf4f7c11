"""botops: a production-ready discord.py bot and the operations toolkit that runs it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("botops")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
