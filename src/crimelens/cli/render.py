"""Terminal rendering for the CLI: result tables, load reports and progress bars (rich).

Results go to stdout; progress and notices go to stderr so ``--json`` output stays clean.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:  # pandas and the analyses load only when a command needs them: `--help` stays fast
    import pandas as pd

    from crimelens.analysis.result import Result

__all__ = ["err", "out", "print_json", "progress_bar", "show_result", "show_table"]

out = Console(soft_wrap=False)
err = Console(stderr=True)
if not out.is_terminal and "COLUMNS" not in os.environ:
    out.width = 160  # pipes and files: wide tables rather than truncated cells


def show_table(
    frame: pd.DataFrame,
    title: str = "",
    limit: int | None = 25,
    console: Console = out,
    columns: Sequence[str] | None = None,
) -> None:
    """Print a data frame as a rich table, numbers formatted for reading (optionally only ``columns``)."""
    import pandas as pd

    from crimelens.formatting import format_value, humanize

    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    table = Table(title=title or None, title_justify="left", header_style="bold")
    for col in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col])
        table.add_column(humanize(str(col)), justify="right" if numeric else "left")
    shown = frame if limit is None else frame.head(limit)
    for row in shown.itertuples(index=False):
        table.add_row(*[format_value(v, str(c)) for v, c in zip(row, frame.columns, strict=True)])
    console.print(table)
    if limit is not None and len(frame) > limit:
        console.print(f"[dim]… {len(frame) - limit:,} more rows (use --limit 0 to show all, or --json)[/dim]")


def show_result(result: Result, limit: int | None = 25, columns: Sequence[str] | None = None) -> None:
    show_table(result.table, result.title, limit, columns=columns)
    for note in result.notes:
        out.print(f"[dim]Note: {note}[/dim]")


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (no colour, no wrapping)."""
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


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
