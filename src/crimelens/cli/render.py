"""Rendering for the CLI: result tables (rich), the one JSON envelope, CSV, findings and progress bars.

Results go to stdout; progress and notices go to stderr so ``--json`` and ``--csv`` output stays clean.
Every ``--json`` output is one envelope: ``command``, ``title``, ``params``, ``rows``, ``notes``,
``warnings`` and the result's own fields (:meth:`crimelens.analysis.result.Result.to_dict`).
"""

from __future__ import annotations

import contextvars
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:  # pandas and the analyses load only when a command needs them: `--help` stays fast
    import pandas as pd

    from crimelens.analysis.result import Result

__all__ = [
    "busy",
    "emit",
    "envelope",
    "err",
    "out",
    "print_csv",
    "print_json",
    "progress_bar",
    "show_findings",
    "show_result",
    "show_table",
    "terminal_width",
]

#: True while a command prints --json or --csv: progress stays off (set by :func:`crimelens.cli.support.protect`).
MACHINE_OUTPUT: contextvars.ContextVar[bool] = contextvars.ContextVar("crimelens_machine_output", default=False)

out = Console(soft_wrap=False)
err = Console(stderr=True)
if not out.is_terminal and "COLUMNS" not in os.environ:
    out.width = 160  # pipes and files: wide tables rather than truncated cells


def terminal_width(console: Console = out) -> int:
    """The width tables are fitted to: ``COLUMNS`` when set (read now, not at import), else the console's."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else console.width


def _fit_columns(headers: list[str], cells: list[list[str]], width: int, keep: int = 1) -> int:
    """How many leading columns fit in ``width`` characters without cutting any header or cell (at least ``keep``).

    A rich table needs each column's widest text plus 3 characters (padding and border), plus 1 for the edge.
    """
    used = 1
    for i, header in enumerate(headers):
        widest = max([len(header), *(len(row[i]) for row in cells)])
        used += widest + 3
        if used > width and i >= keep:
            return i
    return len(headers)


def show_table(
    frame: pd.DataFrame,
    title: str = "",
    limit: int | None = 25,
    console: Console = out,
    columns: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Print a data frame as a rich table, numbers formatted for reading (optionally only ``columns``; headers
    from ``labels`` where given, e.g. place names that must keep their spelling).

    The table fits the console's width: no name or number is cut; when the columns do not all fit, the ones on
    the right are left out and named below the table (``--json`` and ``--csv`` hold every column).
    """
    import pandas as pd

    from crimelens.formatting import format_value, humanize

    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    shown = frame if limit is None else frame.head(limit)
    headers = [labels[str(c)] if labels and str(c) in labels else humanize(str(c)) for c in frame.columns]
    cells = [
        [format_value(v, str(c)) for v, c in zip(row, frame.columns, strict=True)]
        for row in shown.itertuples(index=False)
    ]
    width = terminal_width(console)
    n_fit = _fit_columns(headers, cells, width)
    table = Table(title=title or None, title_justify="left", header_style="bold")
    for col, header in zip(frame.columns[:n_fit], headers[:n_fit], strict=True):
        numeric = pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col])
        table.add_column(escape(header), justify="right" if numeric else "left", no_wrap=True, overflow="ellipsis")
    for row in cells:
        table.add_row(*[escape(c) for c in row[:n_fit]])
    console.print(table, width=width)
    if n_fit < len(headers):
        left_out = ", ".join(headers[n_fit:])
        console.print(
            f"[dim]Left out to fit the terminal ({width} characters wide): {escape(left_out)}. "
            "Widen the window, or use --json or --csv for every column.[/dim]",
            width=width,
        )
    if limit is not None and len(frame) > limit:
        console.print(
            f"[dim]… {len(frame) - limit:,} more rows (use --limit 0 to show all, or --json)[/dim]", width=width
        )


def show_result(result: Result, limit: int | None = 25, columns: Sequence[str] | None = None) -> None:
    show_table(result.table, result.title, limit, columns=columns)
    for note in result.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]")


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (no colour, no wrapping)."""
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def envelope(command: str, payload: Any, **extra: Any) -> dict[str, Any]:
    """The one JSON shape of every command: a result's ``to_dict()`` (or a report's), under ``command``.

    ``payload``: a :class:`~crimelens.analysis.result.Result`, or any object with ``to_dict()``, or a dict.
    ``extra``: fields this command adds (e.g. ``scope``); the keys every envelope has are filled in when the
    payload lacks them (``rows`` empty, ``params`` empty and so on).
    """
    from crimelens.analysis.result import jsonable

    data = payload.to_dict() if hasattr(payload, "to_dict") else dict(payload)
    base: dict[str, Any] = {"command": command, "title": "", "params": {}, "rows": [], "notes": [], "warnings": []}
    return {**base, **jsonable(data), **{k: jsonable(v) for k, v in extra.items()}, "command": command}


def print_csv(frame: pd.DataFrame) -> None:
    """A table as CSV on stdout (nested values such as evidence as JSON text)."""
    import sys

    def cell(value: Any) -> Any:
        if isinstance(value, dict | list | tuple):
            return json.dumps(value, ensure_ascii=False, default=str)
        return value

    frame.map(cell).to_csv(sys.stdout, index=False)


def emit(
    result: Any,
    *,
    as_json: bool,
    as_csv: bool = False,
    limit: int = 25,
    columns: Sequence[str] | None = None,
    **extra: Any,
) -> None:
    """Render a result: the JSON envelope, its table as CSV, or a terminal table (``columns`` only, if given)."""
    from crimelens.cli.support import command_name

    if as_json:
        print_json(envelope(command_name(), result, **extra))
    elif as_csv:
        print_csv(result.table)
    else:
        show_result(result, None if limit == 0 else limit, columns)


def show_findings(result: Any, limit: int | None) -> None:
    """Findings as a numbered table: headline and detail, with the evidence beside them."""
    from crimelens.formatting import evidence_text, humanize

    table = Table(title=result.title, title_justify="left", header_style="bold", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("Finding")
    table.add_column("Evidence", style="dim")
    for i, f in enumerate(result.findings[:limit] if limit else result.findings, start=1):
        evidence = "\n".join(f"{humanize(str(k))}: {evidence_text(str(k), v)}" for k, v in f.evidence.items())
        table.add_row(str(i), f"[bold]{f.headline}[/bold]\n{f.detail}", evidence)
    out.print(table)
    if not result.findings:
        out.print("No findings: the data loaded support none of the checks (see the notes).")
    for note in result.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]")


@contextmanager
def busy(description: str, *, quiet: bool | None = None) -> Iterator[None]:
    """A spinner with ``description`` and the time taken, on stderr, while a step of more than a second runs.

    Shown only on an interactive terminal and never with ``--json``/``--csv`` (``quiet``; default: whether the
    command prints machine output); results printed after it ends are not disturbed.
    """
    if quiet is None:
        quiet = MACHINE_OUTPUT.get()
    if quiet or not err.is_terminal:
        yield
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:
        bar.add_task(escape(description), total=None)
        yield


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    """A progress display on stderr; shown only on an interactive terminal (never in pipes, CI or JSON)."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not enabled or not err.is_terminal,
    )
    with bar:
        yield bar
