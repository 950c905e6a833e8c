"""The DuckDB warehouse: open/create, migrations, atomic and idempotent loads, provenance.

A load runs in one transaction: either every row of a file is in the warehouse, with its ``loads`` row
and recorded issues, or nothing is. Re-loading a file whose sha256 is already loaded for the same source
is a no-op; a different file for the same source replaces that source's rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from crimelens.errors import DataError, LoadRejected, SourceError
from crimelens.schema import MIGRATIONS
from crimelens.sources.base import JY_COLUMNS, Issue, ParsedFile, file_sha256
from crimelens.sources.incidents import IncidentLoadReport, Progress, load_incident_file

__all__ = [
    "IncidentLoadReport",
    "LoadReport",
    "connect",
    "list_incident_sources",
    "list_issues",
    "list_loads",
    "list_sources",
    "load_incidents",
    "load_parsed",
    "resolve_incident_source",
    "resolve_source",
]

log = logging.getLogger(__name__)


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse at ``path`` and bring its schema up to date."""
    p = Path(path)
    if read_only and not p.exists():
        raise SourceError(f"warehouse {p}: not found; load data first with `crimelens ingest` or run `crimelens demo`")
    if not read_only and not p.parent.exists():
        raise SourceError(f"warehouse {p}: folder {p.parent} does not exist")
    try:
        con = duckdb.connect(str(p), read_only=read_only)
    except duckdb.IOException as exc:
        raise SourceError(f"warehouse {p}: cannot be opened ({exc})") from exc
    except duckdb.Error as exc:
        raise SourceError(f"warehouse {p}: not a crimelens DuckDB warehouse ({exc})") from exc
    # DuckDB's own progress bar writes to the terminal from inside the library; the CLI owns progress display
    con.execute("SET enable_progress_bar = false")
    if not read_only:
        migrate(con)
    else:
        _check_version(con, p)
    return con


def _applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()
    if not exists or not exists[0]:
        return set()
    return {int(r[0]) for r in con.execute("SELECT version FROM schema_migrations").fetchall()}


def _check_version(con: duckdb.DuckDBPyConnection, p: Path) -> None:
    applied = _applied_versions(con)
    latest = max(m.version for m in MIGRATIONS)
    if latest not in applied:
        raise SourceError(f"warehouse {p}: schema is not up to date; open it once without read-only mode")


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply pending migrations, each in its own transaction; return the versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    done = _applied_versions(con)
    applied = []
    for m in MIGRATIONS:
        if m.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(m.sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [m.version, m.name, dt.datetime.now()])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(m.version)
    return applied


@dataclass(frozen=True)
class LoadReport:
    """What one ingest did."""

    load_id: int | None
    source: str
    format: str
    file_name: str
    sha256: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    status: str  # 'loaded' | 'unchanged'
    replaced_load_ids: tuple[int, ...] = ()
    issues: tuple[Issue, ...] = field(default=(), repr=False)

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for i in self.issues:
            counts[f"{i.severity}:{i.code}"] = counts.get(f"{i.severity}:{i.code}", 0) + 1
        return {
            "load_id": self.load_id,
            "source": self.source,
            "format": self.format,
            "file": self.file_name,
            "sha256": self.sha256,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "status": self.status,
            "replaced_load_ids": list(self.replaced_load_ids),
            "issue_counts": counts,
        }


def load_parsed(
    con: duckdb.DuckDBPyConnection,
    parsed: ParsedFile,
    *,
    source: str | None = None,
    max_errors: int = 0,
    sha256: str | None = None,
) -> LoadReport:
    """Load a parsed file atomically. Raises :class:`LoadRejected` (nothing loaded) over ``max_errors``."""
    src = source or parsed.default_source
    digest = sha256 or parsed.sha256 or file_sha256(parsed.path)
    errors = parsed.errors
    if len(errors) > max_errors:
        more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise LoadRejected(f"{errors[0]}{more}; nothing was loaded", list(parsed.issues))
    existing = con.execute(
        "SELECT load_id FROM loads WHERE source = ? AND sha256 = ? AND status = 'loaded'", [src, digest]
    ).fetchone()
    if existing:
        return LoadReport(
            int(existing[0]), src, parsed.format, parsed.path.name, digest, parsed.rows_read, 0,
            len(parsed.rejected_lines), "unchanged", (), tuple(parsed.issues),
        )  # fmt: skip
    clash = con.execute("SELECT count(*) FROM incident_sources WHERE source = ?", [src]).fetchone()
    if clash and clash[0]:
        raise DataError(
            f"dataset {src!r} already holds incidents; jurisdiction-year rows need their own name: pass --source"
        )
    rows = parsed.rows
    started = dt.datetime.now()
    con.execute("BEGIN TRANSACTION")
    try:
        fetched = con.execute("SELECT nextval('load_id_seq')").fetchone()
        assert fetched is not None
        load_id = int(fetched[0])
        previous = [
            int(r[0])
            for r in con.execute("SELECT load_id FROM loads WHERE source = ? AND status = 'loaded'", [src]).fetchall()
        ]
        con.execute("DELETE FROM jurisdiction_year WHERE source = ?", [src])
        if previous:
            con.execute(
                "UPDATE loads SET status = 'replaced', replaced_by = ? WHERE source = ? AND status = 'loaded'",
                [load_id, src],
            )
        jur = parsed.jurisdictions
        con.register("incoming_jurisdictions", jur)
        # ids are shared across sources; the newest load's name wins (a corrected file may fix a name), while
        # the kind stays as first loaded so that one file cannot turn, say, the nation into an agency
        con.execute(
            "INSERT INTO jurisdictions SELECT jurisdiction_id, name, kind, state, ori FROM incoming_jurisdictions "
            "ON CONFLICT (jurisdiction_id) DO UPDATE SET name = excluded.name, "
            "state = coalesce(excluded.state, jurisdictions.state), ori = coalesce(excluded.ori, jurisdictions.ori)"
        )
        con.unregister("incoming_jurisdictions")
        con.register("incoming_rows", rows)
        cols = ", ".join(JY_COLUMNS)
        con.execute(
            f"INSERT INTO jurisdiction_year (source, {cols}, load_id) SELECT ?, {cols}, ? FROM incoming_rows",
            [src, load_id],
        )
        con.unregister("incoming_rows")
        if parsed.issues:
            issues = pd.DataFrame(
                [(load_id, i.line, i.column, i.severity, i.code, i.message) for i in parsed.issues],
                columns=["load_id", "line", "column_name", "severity", "code", "message"],
            )
            con.register("incoming_issues", issues)
            con.execute("INSERT INTO load_issues SELECT * FROM incoming_issues")
            con.unregister("incoming_issues")
        con.execute(
            "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'loaded', NULL)",
            [
                load_id, src, parsed.format, parsed.path.name, digest, parsed.rows_read, len(rows),
                len(parsed.rejected_lines), len(parsed.warnings), started, dt.datetime.now(),
            ],
        )  # fmt: skip
        con.execute("COMMIT")
    except duckdb.ConstraintException as exc:
        con.execute("ROLLBACK")
        raise DataError(f"{parsed.path.name}: rows break a warehouse rule ({exc}); nothing was loaded") from exc
    except BaseException:
        con.execute("ROLLBACK")
        raise
    log.info("loaded %s rows from %s as load %s", len(rows), parsed.path.name, load_id)
    return LoadReport(
        load_id, src, parsed.format, parsed.path.name, digest, parsed.rows_read, len(rows),
        len(parsed.rejected_lines), "loaded", tuple(previous), tuple(parsed.issues),
    )  # fmt: skip


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


def load_incidents(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    fmt: str | None = None,
    *,
    source: str | None = None,
    mapping: Path | None = None,
    simulated: bool = False,
    max_errors: int | None = None,
    progress: Progress | None = None,
) -> IncidentLoadReport:
    """Load an incident file (see :func:`crimelens.sources.incidents.load_incident_file`): atomic upsert by key."""
    return load_incident_file(
        con,
        Path(path),
        fmt,
        source=source,
        mapping=mapping,
        simulated=simulated,
        max_errors=max_errors,
        progress=progress,
    )


def resolve_source(con: duckdb.DuckDBPyConnection, source: str | None) -> str:
    """The dataset an analysis runs on: ``source`` if given and loaded, else the only one loaded."""
    sources = list_sources(con)
    if source is not None:
        if source not in sources:
            allowed = ", ".join(sources) if sources else "none loaded yet"
            raise DataError(f"dataset {source!r} is not in the warehouse; loaded datasets: {allowed}")
        return source
    if not sources:
        raise DataError("the warehouse holds no crime data yet; load a file with `crimelens ingest PATH`")
    if len(sources) > 1:
        raise DataError(f"the warehouse holds several datasets ({', '.join(sources)}); choose one with --source")
    return sources[0]
