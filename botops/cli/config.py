"""``botops config check|example``: show the effective configuration, or write ``.env.example``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from botops.cli._common import exit_with, load_settings_or_exit, user_errors
from botops.cli.codes import ExitCode
from botops.settings import ENV_FILE, check_env_file_permissions, render_env_example

__all__ = ["app"]

app = typer.Typer(help="Check the configuration or write .env.example.", no_args_is_help=True)
console = Console(highlight=False)

EnvFile = Annotated[Path, typer.Option("--env-file", help="The .env file to read besides the environment.")]


@app.command()
def check(env_file: EnvFile = ENV_FILE) -> None:
    """Print the effective configuration with secrets masked, or each problem in one line (exit 2)."""
    settings = load_settings_or_exit(env_file)
    if settings.is_production:
        with user_errors():
            check_env_file_permissions(env_file)
    table = Table("variable", "value", title="botops configuration", title_justify="left")
    for variable, shown in settings.describe():
        table.add_row(variable, shown)
    console.print(table)
    console.print("configuration OK", style="green")


@app.command()
def example(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")] = Path(".env.example"),
    check_only: Annotated[
        bool,
        typer.Option("--check", help="Do not write; exit 1 if the file differs from the settings model."),
    ] = False,
) -> None:
    """Write .env.example from the settings model (every variable, its description and default)."""
    text = render_env_example()
    if check_only:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            exit_with(f"{output} is out of date: run `botops config example`", ExitCode.FAILURE)
        console.print(f"{output} is up to date")
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}")
