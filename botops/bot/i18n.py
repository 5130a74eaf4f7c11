"""User-facing text in English and German, chosen by the guild's language or the user's Discord locale.

Every sentence a user sees is a key here; :func:`text` formats it in one language. Adding a language is
one more catalog with the same keys (a test checks that every catalog has every key).
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "language_for_locale", "text"]

DEFAULT_LANGUAGE: Final = "en"

_EN: Final[dict[str, str]] = {
    "error.not_allowed": "You are not allowed to use this command.",
    "error.admin_only": "Only administrators can use this command.",
    "error.owner_only": "Only the bot's owner can use this command.",
    "error.guild_only": "This command works in a server only.",
    "error.cooldown": "Slow down: try again in {seconds} s.",
    "error.bad_input": "That input is not valid: {detail}",
    "error.bot_permissions": "I need these permissions for that: {permissions}.",
    "error.unexpected": "Something went wrong on our side. It is logged with reference {reference}.",
    "health.title": "Bot health",
    "health.database": "Database",
    "health.latency": "Gateway latency",
    "health.extensions": "Extensions",
    "health.uptime": "Uptime",
    "health.version": "Version",
    "health.memory": "Memory",
    "health.ok": "OK",
    "health.high": "HIGH",
    "health.error": "ERROR",
    "health.behind": "schema behind: run `botops db upgrade`",
    "health.failed": "{count} failed: {names}",
    "reload.done": "Reloaded {names}.",
    "reload.failed": "{name} did not reload and its previous version keeps running: {cause}",
    "reload.not_loaded": "{name} is not loaded. Loaded: {loaded}.",
    "reload.synced": "Slash commands changed and were synced again.",
}

_DE: Final[dict[str, str]] = {
    "error.not_allowed": "Du darfst diesen Befehl nicht benutzen.",
    "error.admin_only": "Nur Administratoren können diesen Befehl benutzen.",
    "error.owner_only": "Nur der Besitzer des Bots kann diesen Befehl benutzen.",
    "error.guild_only": "Dieser Befehl funktioniert nur auf einem Server.",
    "error.cooldown": "Langsam: versuche es in {seconds} s erneut.",
    "error.bad_input": "Diese Eingabe ist ungültig: {detail}",
    "error.bot_permissions": "Dafür brauche ich diese Berechtigungen: {permissions}.",
    "error.unexpected": "Bei uns ist etwas schiefgelaufen. Es ist unter Referenz {reference} protokolliert.",
    "health.title": "Bot-Zustand",
    "health.database": "Datenbank",
    "health.latency": "Gateway-Latenz",
    "health.extensions": "Erweiterungen",
    "health.uptime": "Laufzeit",
    "health.version": "Version",
    "health.memory": "Speicher",
    "health.ok": "OK",
    "health.high": "HOCH",
    "health.error": "FEHLER",
    "health.behind": "Schema veraltet: `botops db upgrade` ausführen",
    "health.failed": "{count} fehlgeschlagen: {names}",
    "reload.done": "{names} neu geladen.",
    "reload.failed": "{name} wurde nicht neu geladen, die vorherige Version läuft weiter: {cause}",
    "reload.not_loaded": "{name} ist nicht geladen. Geladen: {loaded}.",
    "reload.synced": "Die Slash-Befehle haben sich geändert und wurden neu synchronisiert.",
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
