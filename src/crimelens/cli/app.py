"""The crimelens command line: the root app with every command registered, and the console-script entry point.

Each command module registers its commands on :data:`crimelens.cli.support.app`: data in and provenance
(:mod:`~crimelens.cli.data`), jurisdiction-year analyses (:mod:`~crimelens.cli.jurisdictions`), incident
analyses (:mod:`~crimelens.cli.incidents`), and findings, report and demo (:mod:`~crimelens.cli.jobs`).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

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


def main() -> None:
    """Console-script entry point.

    When the command is done, the process ends without tearing down the libraries it imported (pandas and Ibis
    take 0.2–0.6 s to unload, longer than many commands): output is flushed and connections are
    already closed. A Spark session, which has a JVM to stop, gets the normal exit.
    """
    try:
        app()
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
