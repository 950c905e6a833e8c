"""Jurisdiction-year loads: one parsed file in one transaction, with its ``loads`` row and recorded issues.

Either every row of a file is in the warehouse, with its ``loads`` row and issues, or nothing is. Re-loading
a file whose sha256 is already loaded for the same source is a no-op; a different file for the same source
replaces that source's rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from crimelens.errors import DataError, LoadRejected
from crimelens.sources.base import JY_COLUMNS, Issue, ParsedFile, file_sha256
from crimelens.warehouse.loads import next_load_id, supersede_loads
from crimelens.warehouse.transaction import transaction

__all__ = ["LoadReport", "load_parsed"]

log = logging.getLogger(__name__)


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
    try:
        with transaction(con, what=parsed.path.name):
            load_id, previous = _write(con, parsed, src, digest)
    except duckdb.ConstraintException as exc:
        raise DataError(f"{parsed.path.name}: rows break a warehouse rule ({exc}); nothing was loaded") from exc
    log.info("loaded %s rows from %s as load %s", len(parsed.rows), parsed.path.name, load_id)
    return LoadReport(
        load_id, src, parsed.format, parsed.path.name, digest, parsed.rows_read, len(parsed.rows),
        len(parsed.rejected_lines), "loaded", previous, tuple(parsed.issues),
    )  # fmt: skip


def _write(con: duckdb.DuckDBPyConnection, parsed: ParsedFile, src: str, digest: str) -> tuple[int, tuple[int, ...]]:
    """The writes of one load, inside its transaction: (the new load id, the load ids it replaced)."""
    rows = parsed.rows
    started = dt.datetime.now()
    load_id = next_load_id(con)
    previous = supersede_loads(con, src, load_id)
    con.execute("DELETE FROM jurisdiction_year WHERE source = ?", [src])
    con.register("incoming_jurisdictions", parsed.jurisdictions)
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
    return load_id, previous
