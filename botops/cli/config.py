"""``botops config check|example``: show the effective configuration, or write ``.env.example``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from botops.cli._common import EnvFile, exit_with, load_settings_or_exit, user_errors
from botops.cli.codes import ExitCode
from botops.settings import ENV_FILE, check_env_file_permissions, render_env_example, render_settings_table

__all__ = ["app"]

app = typer.Typer(help="Check the configuration or write .env.example.", no_args_is_help=True)
console = Console(highlight=False)

TABLE_START = "<!-- settings-table:start -->"
TABLE_END = "<!-- settings-table:end -->"


@app.command()
def check(env_file: EnvFile = ENV_FILE) -> None:
    """Print the effective configuration with secrets masked, or each problem in one line (exit 2)."""
    settings = load_settings_or_exit(env_file)
    if settings.is_production:
        with user_errors():
            check_env_file_permissions(env_file)
    table = Table("variable", "value", title="botops configuration", title_justify="left")
    for variable, shown in settings.describe():
        table.add_row(Text(variable), Text(shown))  # values are data: "[/]" is a prefix, not markup
    console.print(table)
    console.print("configuration OK", style="green")


@app.command()
def example(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")] = Path(".env.example"),
    check_only: Annotated[
        bool, typer.Option("--check", help="Do not write; exit 1 if a file differs from the settings model.")
    ] = False,
    readme: Annotated[
        Path | None, typer.Option("--readme", help="Also refresh the configuration table in this README.")
    ] = None,
) -> None:
    """Write .env.example (and the README's table) from the settings model."""
    outputs = {output: render_env_example()}
    if readme is not None:
        current = readme.read_text(encoding="utf-8") if readme.exists() else ""
        outputs[readme] = replace_settings_table(current)
    for path, text in outputs.items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if check_only:
            if current != text:
                exit_with(f"{path} is out of date: run `botops config example`", ExitCode.FAILURE)
            console.print(f"{path} is up to date")
        elif current != text:
            path.write_text(text, encoding="utf-8")
            console.print(f"wrote {path}")


def replace_settings_table(readme: str) -> str:
    """Return ``readme`` with the text between the settings markers replaced by the current table."""
    start = readme.find(TABLE_START)
    end = readme.find(TABLE_END)
    if start == -1 or end < start:
        missing = f"the README has no {TABLE_START} ... {TABLE_END} section"
        raise typer.BadParameter(missing, param_hint="--readme")
    return readme[: start + len(TABLE_START)] + "\n" + render_settings_table() + readme[end:]
