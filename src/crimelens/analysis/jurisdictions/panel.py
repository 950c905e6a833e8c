"""The jurisdiction-year panel every jurisdiction analysis starts from (one query, parameters bound).

An analysis that knows which offences and years it reads asks for only those (:func:`panel` with ``offences``,
``start``, ``end``): the filter runs in DuckDB, so a large dataset is never fetched whole to keep a year of it.
:func:`offence_years` gives the years an offence has counts in, which the period is resolved against first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import duckdb
import numpy as np
import pandas as pd

from crimelens.errors import DataError
from crimelens.schema import COUNT_COLUMNS, PARTIAL_YEAR_SQL
from crimelens.warehouse import resolve_source

__all__ = ["check_offence", "offence_years", "offences_present", "panel", "shared_panels"]

T = TypeVar("T")

#: The panels read so far in a :func:`shared_panels` block (None outside one).
_SHARED: ContextVar[dict[Any, Any] | None] = ContextVar("crimelens_shared_panels", default=None)


@contextmanager
def shared_panels() -> Iterator[None]:
    """Within this block, :func:`panel` reads each panel (connection, dataset, offences, years) once, and
    :func:`offence_years` each offence's years.

    For a job that runs many analyses on a warehouse that does not change meanwhile (the findings, the report):
    each analysis asks for its own slice, and the same slice is asked for by several of them. Every call still
    gets its own copy of the rows.
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _once(key: Any, compute: Callable[[], T]) -> T:
    """``compute()``, once per ``key`` in a :func:`shared_panels` block (each call then gets its own copy of a
    frame or array); every time outside one."""
    shared = _SHARED.get()
    if shared is None:
        return compute()
    if key not in shared:
        shared[key] = compute()
    value: T = shared[key]
    return value.copy() if isinstance(value, pd.DataFrame | np.ndarray) else value  # type: ignore[return-value]


_FROM = "FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)"
_HEAD = (
    "jy.jurisdiction_id, j.name, j.kind, j.state, jy.year, jy.population, jy.months_reported, "
    + PARTIAL_YEAR_SQL.replace("months_reported", "jy.months_reported")
    + " AS partial"
)
_TAIL = "jy.rape_definition, jy.rape_legacy, jy.load_id"


def check_offence(offence: str) -> str:
    if offence not in COUNT_COLUMNS:
        import difflib

        close = difflib.get_close_matches(str(offence).casefold().replace(" ", "_"), COUNT_COLUMNS, n=3, cutoff=0.6)
        hint = f"close matches: {', '.join(close)}; " if close else ""
        raise DataError(f"offence {offence!r} is not known; {hint}allowed: {', '.join(COUNT_COLUMNS)}")
    return offence


def panel(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    offences: Sequence[str] | None = None,
    start: int | None = None,
    end: int | None = None,
) -> tuple[str, pd.DataFrame]:
    """(resolved source, its jurisdiction-year rows with names and kinds), ordered by jurisdiction and year.

    ``offences``: only these count columns (default: every one); ``start``/``end``: only the years from
    ``start`` to ``end`` (inclusive; None leaves that side open). The rows and values are those of the whole
    panel filtered the same way. ``kind == 'nation'`` rows are national totals: analyses that compare
    jurisdictions leave them out. Count columns are nullable integers (missing stays missing, never zero).
    """
    src = _resolve(con, source)
    wanted = set(COUNT_COLUMNS) if offences is None else {check_offence(o) for o in offences}
    counts = [c for c in COUNT_COLUMNS if c in wanted]  # names from the schema's list, never from the caller
    return src, _once((id(con), src, tuple(counts), start, end), lambda: _read(con, src, counts, start, end))


def _read(
    con: duckdb.DuckDBPyConnection, src: str, counts: list[str], start: int | None, end: int | None
) -> pd.DataFrame:
    where: list[str] = ["jy.source = ?"]
    params: list[object] = [src]
    for bound, op in ((start, ">="), (end, "<=")):
        if bound is not None:
            where.append(f"jy.year {op} ?")
            params.append(int(bound))
    select = ", ".join([_HEAD, *(f"jy.{c}" for c in counts), _TAIL])
    sql = f"SELECT {select} {_FROM} WHERE {' AND '.join(where)} ORDER BY jy.jurisdiction_id, jy.year"
    frame = con.execute(sql, params).df()
    for col in ("population", "months_reported", *counts, "rape_legacy", "year"):
        frame[col] = frame[col].astype("Int64")
    return frame


def _resolve(con: duckdb.DuckDBPyConnection, source: str | None) -> str:
    """:func:`~crimelens.warehouse.resolve_source`, once per source in a :func:`shared_panels` block."""
    return _once((id(con), "source", source), lambda: resolve_source(con, source))


def offence_years(con: duckdb.DuckDBPyConnection, source: str | None, offence: str) -> tuple[str, np.ndarray]:
    """(resolved source, the sorted years in which any row of it, the nation's included, has an ``offence``
    count): the years a period is resolved against (:func:`~.statistics.resolve_years`)."""
    src = _resolve(con, source)
    column = check_offence(offence)  # a name from the schema's list
    return src, _once((id(con), "years", src, column), lambda: _years(con, src, offence, column))


def _years(con: duckdb.DuckDBPyConnection, src: str, offence: str, column: str) -> np.ndarray:
    rows = con.execute(
        f"SELECT DISTINCT jy.year {_FROM} WHERE jy.source = ? AND jy.{column} IS NOT NULL ORDER BY 1", [src]
    ).fetchall()
    if not rows:
        present = offences_present(con, src)
        raise DataError(
            f"offence {offence!r}: dataset {src!r} has no {offence} counts; offences it holds: "
            f"{', '.join(present) or 'none'}"
        )
    return np.array([int(r[0]) for r in rows], dtype=np.int64)


def offences_present(con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    """The count columns (offences) with at least one count in dataset ``source``, in the schema's order."""
    counts = ", ".join(f"count({c})" for c in COUNT_COLUMNS)  # names from the schema's list, never from the caller
    row = con.execute(f"SELECT {counts} FROM jurisdiction_year WHERE source = ?", [source]).fetchone()
    return [c for c, n in zip(COUNT_COLUMNS, row or (), strict=False) if n]
