"""Backups of the bot's database: a verified, compressed copy plus a manifest, and the way back.

:mod:`botops.backup.store` makes, checks and lists backups (SQLite through the online backup API, in
:mod:`botops.backup.sqlite`); :mod:`botops.backup.restore` puts one back; :mod:`botops.backup.manifest`
describes each one. Nothing here imports discord.py: the CLI and the bot's schedule both call in.
"""
