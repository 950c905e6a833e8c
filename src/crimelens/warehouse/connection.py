"""Opening the warehouse: connect (creating the file if needed), migrations, and the schema version check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from crimelens.errors import SourceError
from crimelens.schema import MIGRATIONS
from crimelens.warehouse.transaction import transaction

__all__ = ["connect", "migrate"]


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
        with transaction(con, what=f"schema migration {m.version} ({m.name})", undone="the schema was not changed"):
            con.execute(m.sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [m.version, m.name, dt.datetime.now()])
        applied.append(m.version)
    return applied
