"""The crimelens command line: the root app with every command registered, and the console-script entry point.

Each command module registers its commands on :data:`crimelens.cli.support.app`: data in and provenance
(:mod:`~crimelens.cli.data`), jurisdiction-year analyses (:mod:`~crimelens.cli.jurisdictions`), incident
analyses (:mod:`~crimelens.cli.incidents`), and findings, report and demo (:mod:`~crimelens.cli.jobs`).
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from typing import Annotated

import typer
from typer.main import get_command_name
from typer.models import CommandInfo

from crimelens import __version__
from crimelens.cli import alerts, data, feeds, jobs, jurisdictions  # noqa: F401  (importing registers their commands)
from crimelens.cli.covariates import covariates_app
from crimelens.cli.forecast import forecast_app
from crimelens.cli.incidents import incidents_app
from crimelens.cli.models import model_app
from crimelens.cli.support import app

__all__ = ["app", "main"]

app.add_typer(incidents_app, name="incidents")
app.add_typer(model_app, name="model")
app.add_typer(covariates_app, name="covariates")
app.add_typer(forecast_app, name="forecast")


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


def _name(info: CommandInfo) -> str | None:
    if info.name:
        return info.name
    return get_command_name(info.callback.__name__) if info.callback is not None else None


def _lean(argv: list[str]) -> typer.Typer:
    """The root app with only the command ``argv`` runs (typer builds the options of every command it holds, 35 ms
    for all of them); the whole app when ``argv`` names no command of it (``--help``, a typo: its usage error
    lists them all). The root takes no option with a value, so the first argument not starting with ``-`` is
    the command."""
    name = next((a for a in argv if not a.startswith("-")), None)
    commands = [c for c in app.registered_commands if _name(c) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if name is None or not (commands or groups):
        return app
    lean = copy.copy(app)
    lean.registered_commands, lean.registered_groups = commands, groups
    return lean


def main() -> None:
    """Console-script entry point.

    When the command is done, the process ends without tearing down the libraries it imported (pandas and Ibis
    take 0.2–0.6 s to unload, longer than many commands): output is flushed and connections are
    already closed. A Spark session, which has a JVM to stop, gets the normal exit.
    """
    try:
        _lean(sys.argv[1:])()
        code: int = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = int(exc.code or 0)
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    if "pyspark" in sys.modules:
        sys.exit(code)
    os._exit(code)
