"""Parameterised read queries over the load tables: what is loaded, what went wrong, which dataset to use."""

from __future__ import annotations

import duckdb
import pandas as pd

from crimelens.errors import DataError

__all__ = [
    "list_incident_sources",
    "list_issues",
    "list_loads",
    "list_sources",
    "resolve_incident_source",
    "resolve_source",
]


def list_loads(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every load, newest first."""
    return con.execute(
        "SELECT load_id, source, format, file_name, sha256, rows_read, rows_loaded, rows_rejected, warnings, "
        "started_at, finished_at, status, replaced_by FROM loads ORDER BY load_id DESC"
    ).df()


def list_issues(con: duckdb.DuckDBPyConnection, load_id: int | None = None, code: str | None = None) -> pd.DataFrame:
    """Problems recorded at load time (rejected rows, warnings such as partial years), oldest load first."""
    return con.execute(
        "SELECT i.load_id, l.file_name, i.line, i.column_name, i.severity, i.code, i.message "
        "FROM load_issues i JOIN loads l USING (load_id) "
        "WHERE (? IS NULL OR i.load_id = ?) AND (? IS NULL OR i.code = ?) ORDER BY i.load_id, i.line",
        [load_id, load_id, code, code],
    ).df()


def list_sources(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Sources (datasets) with jurisdiction-year rows, in load order (incident sources and area sets excluded)."""
    rows = con.execute(
        "SELECT source FROM loads WHERE status = 'loaded' "
        "AND source IN (SELECT DISTINCT source FROM jurisdiction_year) GROUP BY source ORDER BY min(load_id)"
    ).fetchall()
    return [str(r[0]) for r in rows]


def list_incident_sources(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Incident sources (datasets loaded with an incident format), in load order."""
    rows = con.execute(
        "SELECT s.source FROM incident_sources s LEFT JOIN loads l ON l.source = s.source "
        "GROUP BY s.source ORDER BY min(l.load_id), s.source"
    ).fetchall()
    return [str(r[0]) for r in rows]


def resolve_incident_source(con: duckdb.DuckDBPyConnection, source: str | None) -> str:
    """The incident dataset an analysis runs on: ``source`` if given and loaded, else the only one loaded."""
    sources = list_incident_sources(con)
    if source is not None:
        if source not in sources:
            allowed = ", ".join(sources) if sources else "none loaded yet"
            raise DataError(f"incident dataset {source!r} is not in the warehouse; loaded incident datasets: {allowed}")
        return source
    if not sources:
        raise DataError(
            "the warehouse holds no incident data yet; load a file with `crimelens ingest PATH --format chicago` "
            "(or another incident format, see `crimelens formats`)"
        )
    if len(sources) > 1:
        raise DataError(
            f"the warehouse holds several incident datasets ({', '.join(sources)}); choose one with --source"
        )
    return sources[0]


def resolve_source(con: duckdb.DuckDBPyConnection, source: str | None) -> str:
    """The dataset an analysis runs on: ``source`` if given and loaded, else the only one loaded."""
    sources = list_sources(con)
    if source is not None:
        if source not in sources:
            allowed = ", ".join(sources) if sources else "none loaded yet"
            incident = con.execute("SELECT count(*) FROM incident_sources WHERE source = ?", [source]).fetchone()
            if incident and incident[0]:
                raise DataError(
                    f"dataset {source!r} holds incident records, not yearly counts per jurisdiction; for it use "
                    f"`crimelens incidents ... --source {source}` (counts, when, areas, concentration, density, "
                    f"hotspots, persistent, near-repeat), `crimelens report --source {source}` (with --since/--until), "
                    "`crimelens findings`, `crimelens alerts` or "
                    f"`crimelens forecast`; jurisdiction-year datasets here: {allowed}"
                )
            raise DataError(f"dataset {source!r} is not in the warehouse; loaded datasets: {allowed}")
        return source
    if not sources:
        raise DataError("the warehouse holds no crime data yet; load a file with `crimelens ingest PATH`")
    if len(sources) > 1:
        raise DataError(f"the warehouse holds several datasets ({', '.join(sources)}); choose one with --source")
    return sources[0]
