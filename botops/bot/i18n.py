"""User-facing text in English and German, chosen by the guild's language or the user's Discord locale.

Every sentence a user sees is a key here; :func:`text` formats it in one language. Adding a language is
one more catalog with the same keys (a test checks that every catalog has every key).
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "language_for_locale", "text"]

DEFAULT_LANGUAGE: Final = "en"

_EN: Final[dict[str, str]] = {
    "levels.levelup": "{member} reached level {level}!",
    "levels.rank.title": "Rank of {member}",
    "levels.rank.level": "Level",
    "levels.rank.xp": "XP",
    "levels.rank.progress": "Next level",
    "levels.rank.progress_value": "{into} / {needed} XP ({percent}%)",
    "levels.rank.position": "Rank",
    "levels.rank.none": "{member} has no XP yet.",
    "levels.leaderboard.title": "Leaderboard of {guild}, page {page}",
    "levels.leaderboard.entry": "**{rank}.** {member}: level {level}, {xp} XP",
    "levels.leaderboard.empty": "Nobody is on page {page} yet.",
    "levels.xp.too_much": "You can change XP by at most {maximum} at once.",
    "levels.xp.negative": "The amount must be 0 or more.",
    "levels.xp.done": "{member} now has {xp} XP (level {level}).",
    "levels.xp.bot": "Bots do not collect XP.",
    "error.not_allowed": "You are not allowed to use this command.",
    "error.admin_only": "Only administrators can use this command.",
    "error.owner_only": "Only the bot's owner can use this command.",
    "error.guild_only": "This command works in a server only.",
    "error.cooldown": "Slow down: try again in {seconds} s.",
    "error.bad_input": "That input is not valid: {detail}",
    "error.bot_permissions": "I need these permissions for that: {permissions}.",
    "error.unexpected": (
        "Something went wrong on our side. It is logged with reference {reference}. "
        "Try again; if it keeps failing, give the bot's operator this reference."
    ),
    "health.title": "Bot health",
    "health.database": "Database",
    "health.latency": "Gateway latency",
    "health.extensions": "Extensions",
    "health.uptime": "Uptime",
    "health.version": "Version",
    "health.memory": "Memory",
    "health.ok": "OK",
    "health.high": "HIGH",
    "health.not_connected": "not connected",
    "health.error": "ERROR",
    "health.behind": "schema behind: run `botops db upgrade`",
    "health.failed": "{count} failed: {names}",
    # /stats
    "stats.title": "Command statistics",
    "stats.scope.guild": "Commands used on this server; every use counts, whatever its outcome.",
    "stats.scope.bot": (
        "Commands used on every server and in direct messages; every use counts, whatever its outcome."
    ),
    "stats.window.day": "Last 24 hours: {uses} uses",
    "stats.window.week": "Last 7 days: {uses} uses",
    "stats.window.all": "All time: {uses} uses",
    "stats.none": "No commands yet.",
    "stats.errors": "Errors per hour, last 24 hours",
    "stats.errors.value": "`{sparkline}` {total} in total, hourly from {since} UTC",
    "stats.database_size": "Database size",
    "reload.done": "Reloaded {names}.",
    "reload.failed": "{name} did not reload and its previous version keeps running: {cause}",
    "reload.not_loaded": "{name} is not loaded. Loaded: {loaded}.",
    "reload.synced": "Slash commands changed and were synced again.",
    # /settings
    "language.self": "English",
    "settings.title": "Settings of {guild}",
    "settings.language": "Language",
    "settings.language.members": "each member's Discord language",
    "settings.xp": "XP for messages",
    "settings.on": "on",
    "settings.off": "off",
    "settings.xp_range": "XP per message",
    "settings.xp_range.value": "{minimum} to {maximum}",
    "settings.cooldown": "XP at most every",
    "settings.cooldown.value": "{seconds} s",
    "settings.levelup_channel": "Level-up announcements",
    "settings.levelup_channel.message": "in the channel of the message",
    "settings.rewards": "Role rewards",
    "settings.rewards.none": "none",
    "settings.rewards.item": "Level {level}: {role}",
    "settings.rewards.more": "… and {count} more",
    "settings.done.language": "This server's language is now {name}.",
    "settings.done.xp_on": "Members now earn XP for their messages.",
    "settings.done.xp_off": "Members no longer earn XP for their messages.",
    "settings.done.xp_range": "A message now earns {minimum} to {maximum} XP.",
    "settings.done.cooldown": "A member now earns XP at most once every {seconds} s.",
    "settings.done.levelup_channel": "Level-ups are now announced in {channel}.",
    "settings.done.levelup_channel_message": "Level-ups are now announced in the channel of the message.",
    "settings.done.reward": "Members who reach level {level} now get {role}.",
    "settings.done.reward_removed": "Level {level} no longer gives a role.",
    "settings.error.xp_range_inverted": (
        "The minimum XP per message ({minimum}) cannot be more than the maximum ({maximum}), "
        "so nothing was changed."
    ),
    "settings.error.xp_out_of_range": (
        "XP per message must be from {minimum} to {maximum}, so nothing was changed."
    ),
    "settings.error.cooldown_out_of_range": (
        "The cooldown must be from {minimum} to {maximum} seconds, so nothing was changed."
    ),
    "settings.error.level_out_of_range": (
        "The level must be from {minimum} to {maximum}, so nothing was changed."
    ),
    "settings.error.invalid": "{setting} cannot be {value}, so nothing was changed.",
    "settings.error.role": (
        "I cannot give {role}: it must be below my highest role and not managed by an integration, "
        "so nothing was changed."
    ),
    "settings.error.channel": (
        "I cannot post in {channel}: I need to see it and send messages there, so nothing was changed."
    ),
}

_DE: Final[dict[str, str]] = {
    "levels.levelup": "{member} hat Level {level} erreicht!",
    "levels.rank.title": "Rang von {member}",
    "levels.rank.level": "Level",
    "levels.rank.xp": "XP",
    "levels.rank.progress": "Nächstes Level",
    "levels.rank.progress_value": "{into} / {needed} XP ({percent} %)",
    "levels.rank.position": "Rang",
    "levels.rank.none": "{member} hat noch keine XP.",
    "levels.leaderboard.title": "Bestenliste von {guild}, Seite {page}",
    "levels.leaderboard.entry": "**{rank}.** {member}: Level {level}, {xp} XP",
    "levels.leaderboard.empty": "Auf Seite {page} steht noch niemand.",
    "levels.xp.too_much": "Du kannst XP um höchstens {maximum} auf einmal ändern.",
    "levels.xp.negative": "Der Betrag muss 0 oder mehr sein.",
    "levels.xp.done": "{member} hat jetzt {xp} XP (Level {level}).",
    "levels.xp.bot": "Bots sammeln keine XP.",
    "error.not_allowed": "Du darfst diesen Befehl nicht benutzen.",
    "error.admin_only": "Nur Administratoren können diesen Befehl benutzen.",
    "error.owner_only": "Nur der Besitzer des Bots kann diesen Befehl benutzen.",
    "error.guild_only": "Dieser Befehl funktioniert nur auf einem Server.",
    "error.cooldown": "Langsam: versuche es in {seconds} s erneut.",
    "error.bad_input": "Diese Eingabe ist ungültig: {detail}",
    "error.bot_permissions": "Dafür brauche ich diese Berechtigungen: {permissions}.",
    "error.unexpected": (
        "Bei uns ist etwas schiefgelaufen. Es ist unter Referenz {reference} protokolliert. "
        "Versuche es noch einmal; wenn es weiterhin fehlschlägt, gib dem Betreiber des Bots diese Referenz."
    ),
    "health.title": "Bot-Zustand",
    "health.database": "Datenbank",
    "health.latency": "Gateway-Latenz",
    "health.extensions": "Erweiterungen",
    "health.uptime": "Laufzeit",
    "health.version": "Version",
    "health.memory": "Speicher",
    "health.ok": "OK",
    "health.high": "HOCH",
    "health.not_connected": "nicht verbunden",
    "health.error": "FEHLER",
    "health.behind": "Schema veraltet: `botops db upgrade` ausführen",
    "health.failed": "{count} fehlgeschlagen: {names}",
    # /stats
    "stats.title": "Befehlsstatistik",
    "stats.scope.guild": "Befehle auf diesem Server; jeder Aufruf zählt, wie auch immer er ausging.",
    "stats.scope.bot": (
        "Befehle auf allen Servern und in Direktnachrichten; jeder Aufruf zählt, wie auch immer er ausging."
    ),
    "stats.window.day": "Letzte 24 Stunden: {uses} Aufrufe",
    "stats.window.week": "Letzte 7 Tage: {uses} Aufrufe",
    "stats.window.all": "Insgesamt: {uses} Aufrufe",
    "stats.none": "Noch keine Befehle.",
    "stats.errors": "Fehler pro Stunde, letzte 24 Stunden",
    "stats.errors.value": "`{sparkline}` {total} insgesamt, stündlich ab {since} UTC",
    "stats.database_size": "Datenbankgröße",
    "reload.done": "{names} neu geladen.",
    "reload.failed": "{name} wurde nicht neu geladen, die vorherige Version läuft weiter: {cause}",
    "reload.not_loaded": "{name} ist nicht geladen. Geladen: {loaded}.",
    "reload.synced": "Die Slash-Befehle haben sich geändert und wurden neu synchronisiert.",
    # /settings
    "language.self": "Deutsch",
    "settings.title": "Einstellungen von {guild}",
    "settings.language": "Sprache",
    "settings.language.members": "die Discord-Sprache jedes Mitglieds",
    "settings.xp": "XP für Nachrichten",
    "settings.on": "an",
    "settings.off": "aus",
    "settings.xp_range": "XP pro Nachricht",
    "settings.xp_range.value": "{minimum} bis {maximum}",
    "settings.cooldown": "XP höchstens alle",
    "settings.cooldown.value": "{seconds} s",
    "settings.levelup_channel": "Level-up-Ankündigungen",
    "settings.levelup_channel.message": "im Kanal der Nachricht",
    "settings.rewards": "Rollen als Belohnung",
    "settings.rewards.none": "keine",
    "settings.rewards.item": "Level {level}: {role}",
    "settings.rewards.more": "… und {count} weitere",
    "settings.done.language": "Die Sprache dieses Servers ist jetzt {name}.",
    "settings.done.xp_on": "Mitglieder bekommen jetzt XP für ihre Nachrichten.",
    "settings.done.xp_off": "Mitglieder bekommen keine XP mehr für ihre Nachrichten.",
    "settings.done.xp_range": "Eine Nachricht bringt jetzt {minimum} bis {maximum} XP.",
    "settings.done.cooldown": "Ein Mitglied bekommt jetzt höchstens alle {seconds} s XP.",
    "settings.done.levelup_channel": "Level-ups werden jetzt in {channel} angekündigt.",
    "settings.done.levelup_channel_message": "Level-ups werden jetzt im Kanal der Nachricht angekündigt.",
    "settings.done.reward": "Wer Level {level} erreicht, bekommt jetzt {role}.",
    "settings.done.reward_removed": "Level {level} gibt keine Rolle mehr.",
    "settings.error.xp_range_inverted": (
        "Die minimale XP pro Nachricht ({minimum}) darf nicht größer sein als die maximale ({maximum}), "
        "also wurde nichts geändert."
    ),
    "settings.error.xp_out_of_range": (
        "XP pro Nachricht muss zwischen {minimum} und {maximum} liegen, also wurde nichts geändert."
    ),
    "settings.error.cooldown_out_of_range": (
        "Die Wartezeit muss zwischen {minimum} und {maximum} Sekunden liegen, also wurde nichts geändert."
    ),
    "settings.error.level_out_of_range": (
        "Das Level muss zwischen {minimum} und {maximum} liegen, also wurde nichts geändert."
    ),
    "settings.error.invalid": "{setting} kann nicht {value} sein, also wurde nichts geändert.",
    "settings.error.role": (
        "Ich kann {role} nicht vergeben: Die Rolle muss unter meiner höchsten Rolle liegen und darf nicht "
        "von einer Integration verwaltet werden, also wurde nichts geändert."
    ),
    "settings.error.channel": (
        "Ich kann in {channel} nicht schreiben: Ich muss den Kanal sehen und dort Nachrichten senden "
        "dürfen, also wurde nichts geändert."
    ),
}

#: Every language botops speaks, by its code as stored in guild settings.
LANGUAGES: Final[dict[str, dict[str, str]]] = {"en": _EN, "de": _DE}


def language_for_locale(locale: str | None) -> str:
    """Return the language for a Discord locale such as ``de`` or ``en-GB``; English when not spoken."""
    if not locale:
        return DEFAULT_LANGUAGE
    code = locale.split("-", 1)[0].lower()
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def text(key: str, language: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """Return the sentence ``key`` in ``language`` (English if unknown), formatted with ``values``."""
    catalog = LANGUAGES.get(language, _EN)
    return catalog.get(key, _EN[key]).format(**values)
