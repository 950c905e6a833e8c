"""The crimelens command line: the root app with every command registered, and the console-script entry point.

Each command module registers its commands on :data:`crimelens.cli.support.app`: data in and provenance
(:mod:`~crimelens.cli.data`), jurisdiction-year analyses (:mod:`~crimelens.cli.jurisdictions`), incident
analyses (:mod:`~crimelens.cli.incidents`), and findings, report and demo (:mod:`~crimelens.cli.jobs`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from crimelens import __version__
from crimelens.cli import data, jobs, jurisdictions  # noqa: F401  (importing registers their commands)
from crimelens.cli.incidents import incidents_app
from crimelens.cli.support import app

__all__ = ["app", "main"]

app.add_typer(incidents_app, name="incidents")


def _version(value: bool) -> None:
    if value:
        print(f"crimelens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """crimelens command line."""


def main() -> None:
    """Console-script entry point."""
    app()
