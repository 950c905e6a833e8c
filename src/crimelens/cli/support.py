"""What every crimelens command shares: the root app, one-line errors (exit 1), JSON errors under ``--json``,
statistical caveats on stderr, and the warehouse connection each command opens and closes.

Errors a user can cause print one line and exit 1; usage errors exit 2; anything else is a bug and shows a
traceback. Under ``--json`` both kinds of error are one JSON object on stderr, with the same exit codes.
"""

from __future__ import annotations

import contextvars
import functools
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.markup import escape
from typer._click.exceptions import UsageError  # typer vendors click: its errors, not the click package's
from typer.core import TyperGroup

from crimelens.cli.render import MACHINE_OUTPUT, err
from crimelens.config import get_setting
from crimelens.errors import CrimeLensError, CrimeLensWarning

if TYPE_CHECKING:
    import duckdb

__all__ = ["app", "command", "command_name", "db_path", "guarded", "open_warehouse", "protect", "show_warnings"]

F = TypeVar("F", bound=Callable[..., Any])


_COMMAND: contextvars.ContextVar[str] = contextvars.ContextVar("crimelens_command", default="")


def command_name() -> str:
    """The command being run, without the program name (e.g. ``incidents hotspots``)."""
    return _COMMAND.get()


def _json_error(command: str, kind: str, message: str, exit_code: int) -> None:
    payload = {"command": command, "error": {"type": kind, "message": message}, "exit_code": exit_code}
    sys.stderr.write(json.dumps(payload, ensure_ascii=False) + "\n")


class JsonAwareGroup(TyperGroup):
    """The root command group: with ``--json`` among the arguments, usage errors are JSON on stderr (exit 2)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if "--json" not in argv or not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            rc = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except UsageError as exc:
            name = " ".join(exc.ctx.command_path.split()[1:]) if exc.ctx is not None else ""
            _json_error(name, "UsageError", exc.format_message(), 2)
            sys.exit(2)
        except typer.Abort:
            _json_error("", "Aborted", "interrupted", 1)
            sys.exit(1)
        sys.exit(rc if isinstance(rc, int) else 0)


app = typer.Typer(
    name="crimelens",
    cls=JsonAwareGroup,
    help=(
        "Turn crime records into decisions: load UCR-style jurisdiction-year data or incident records into a "
        "local warehouse, then get crime statistics, rankings, trends, persistent hotspots, key findings and an "
        "HTML report; `crimelens incidents ...` shows when and where incidents concentrate.\n\n"
        "Start with `crimelens demo` (built-in FBI state data, no network), or load your own file with "
        "`crimelens ingest FILE`."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Statistical caveats become readable notes on stderr; other warnings are passed on unchanged."""
    for w in caught:
        if issubclass(w.category, CrimeLensWarning):
            err.print(f"[yellow]Caveat:[/yellow] {escape(str(w.message))}", highlight=False, soft_wrap=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def guarded(target: typer.Typer, name: str | None = None) -> Callable[[F], F]:
    """Register a command on ``target`` whose CrimeLensError becomes one line on stderr (JSON under --json), exit 1."""

    group = target.info.name
    full_name = name or ""
    if group and group != "crimelens":
        full_name = f"{group} {full_name}"

    def decorate(func: F) -> F:
        target.command(name)(protect(func, full_name))
        return func

    return decorate


def protect(func: F, full_name: str = "") -> F:
    """``func`` with the error handling of every command: a CrimeLensError becomes one line on stderr (JSON under
    --json), exit 1; statistical caveats are shown on stderr. For callbacks that act as commands (a group run
    without a subcommand), which :func:`guarded` cannot register."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _COMMAND.set(full_name or func.__name__)
        MACHINE_OUTPUT.set(bool(kwargs.get("as_json") or kwargs.get("as_csv")))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CrimeLensWarning)
                try:
                    return func(*args, **kwargs)
                finally:
                    show_warnings(caught)
        except CrimeLensError as exc:
            if kwargs.get("as_json"):
                _json_error(command_name(), type(exc).__name__, str(exc), 1)
            else:
                err.print(
                    f"[bold red]Error:[/bold red] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True
                )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def command(name: str | None = None) -> Callable[[F], F]:
    """Register a top-level command (see :func:`guarded`)."""
    return guarded(app, name)


def db_path(db: Path | None) -> Path:
    """The warehouse file: ``--db``, else the ``db`` setting."""
    return Path(get_setting("db", str(db) if db is not None else None))


@contextmanager
def open_warehouse(db: Path | None, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse connection of one command, closed when the command is done."""
    from crimelens.warehouse import connect

    con = connect(db_path(db), read_only=read_only)
    try:
        yield con
    finally:
        con.close()
