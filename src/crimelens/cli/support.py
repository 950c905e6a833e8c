"""What every crimelens command shares: one-line errors (exit 1) and statistical caveats on stderr."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from crimelens.cli.render import err
from crimelens.errors import CrimeLensError, CrimeLensWarning

__all__ = ["guarded", "show_warnings"]

F = TypeVar("F", bound=Callable[..., Any])


def show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Statistical caveats become readable notes on stderr; other warnings are passed on unchanged."""
    for w in caught:
        if issubclass(w.category, CrimeLensWarning):
            err.print(f"[yellow]Caveat:[/yellow] {w.message}", highlight=False, soft_wrap=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def guarded(app: typer.Typer, name: str | None = None) -> Callable[[F], F]:
    """Register a command on ``app`` whose CrimeLensError becomes one line on stderr and exit status 1."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", CrimeLensWarning)
                    try:
                        return func(*args, **kwargs)
                    finally:
                        show_warnings(caught)
            except CrimeLensError as exc:
                err.print(f"[bold red]Error:[/bold red] {exc}", markup=True, highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None

        app.command(name)(wrapper)
        return func

    return decorate
