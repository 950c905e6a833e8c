"""Incident writes: a file staged and mapped by :mod:`crimelens.sources.incidents`, written in one transaction.

:func:`load_incidents` is the whole load of a file: check it, stage and map it (``sources``: counts every
dropped, repaired or replaced row by reason), and then :func:`write_incidents` upserts the canonical rows by
``(source, incident_key)`` with their ``loads`` row, ``load_reasons``, ``load_issues``, ``incident_sources``
and ``offence_map`` rows, and pins the source's grid origin, all in one transaction. Re-loading a file this
source already loaded (same sha256) is a no-op. See ``docs/incidents.md``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from crimelens.errors import ConfigError, SchemaError, SourceError
from crimelens.schema import SIMULATED_COLUMN, SIMULATED_SOURCE
from crimelens.sources.incident_spec import ByteScan, IncidentSpec, scan_file
from crimelens.sources.incidents import (
    AREA_COLUMNS,
    REASONS,
    MappedIncidents,
    Progress,
    drop_staged,
    open_incident_file,
    stage_incident_file,
    timed,
)
from crimelens.warehouse.grid import pin_grid_origin
from crimelens.warehouse.loads import next_load_id
from crimelens.warehouse.transaction import transaction

__all__ = ["IncidentLoadReport", "load_incidents", "write_incident_rows", "write_incidents"]

log = logging.getLogger(__name__)

#: DuckDB's memory cap during a load, so that a large file spills to the temp directory instead of filling memory.
MEMORY_LIMIT = "1500MB"


@dataclass(frozen=True)
class IncidentLoadReport:
    """What one incident load did; ``reasons`` maps each reason to (action, rows)."""

    load_id: int | None
    source: str
    format: str
    file_name: str
    sha256: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_replaced: int
    reasons: dict[str, tuple[str, int]]
    status: str  # 'loaded' | 'unchanged'
    examples: dict[str, tuple[int, ...]] = field(default_factory=dict)
    unmapped_codes: dict[str, int] = field(default_factory=dict)
    taxonomy_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_id": self.load_id,
            "source": self.source,
            "format": self.format,
            "file": self.file_name,
            "sha256": self.sha256,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "rows_replaced": self.rows_replaced,
            "status": self.status,
            "taxonomy_version": self.taxonomy_version,
            "reasons": {
                r: {"action": a, "rows": n, "example_lines": list(self.examples.get(r, ()))}
                for r, (a, n) in self.reasons.items()
            },
            "unmapped_codes": dict(self.unmapped_codes),
        }


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
    replace_period: bool = False,
    append: bool = False,
) -> IncidentLoadReport:
    """Load an incident file atomically: upsert by (source, incident_key), every dropped row counted.

    Parameters
    ----------
    con
        A writable warehouse connection.
    path
        The incident CSV (plain or gzip).
    fmt
        The incident format (see ``crimelens formats``); detected from the header when None.
    source
        The dataset's name; the format's default when None.
    mapping
        The TOML mapping file of format ``mapped-csv``.
    simulated
        Label the dataset as simulated (for good: later real files do not clear the label).
    max_errors
        Most invalid rows allowed (None: no limit).
    progress
        Called with (bytes done, file size) as the load advances.
    replace_period
        First remove the dataset's incidents on the days from the file's first to its last incident (counted
        as ``replaced_period``): for a corrected re-export that should stand in for what the dataset held then.
    append
        Load rows of a source without incident ids even where most of them are new to a period the dataset
        already holds (another offence's file of the same period); without it such a load stops (see
        :func:`write_incidents`).

    Returns
    -------
    IncidentLoadReport
        Status ``'loaded'``, or ``'unchanged'`` when this source already loaded this file (same sha256).

    Raises
    ------
    SourceError, SchemaError
        Structural problems (missing columns, wrong delimiter, invalid UTF-8, truncated gzip, empty file),
        naming file and line; or the warehouse could not be written (disk full). Nothing is written.
    LoadRejected
        More rows are invalid than ``max_errors``; nothing is written.
    ConfigError
        An unknown format, a missing mapping, or a source name that holds jurisdiction-year rows.
    """
    path = Path(path)
    file = open_incident_file(path, fmt, mapping)
    size = path.stat().st_size
    if progress is not None:
        progress(0, size)
    if SIMULATED_COLUMN in file.header:
        simulated = True  # made by `crimelens simulate`: only ever a simulated dataset
    if simulated:
        src = source or (
            SIMULATED_SOURCE if SIMULATED_COLUMN in file.header else f"simulated-{file.spec.default_source}"
        )
        _check_simulated_name(con, src, path.name, marked=SIMULATED_COLUMN in file.header)
    else:
        src = source or file.spec.default_source
    _check_source_kind(con, src)
    # The file's sha256 (one core, about 0.6 s per GB) and a scan of its text for NUL bytes and over-long lines
    # (which DuckDB's reader skips or misreads without a word) run in a thread while DuckDB reads the file. The
    # digest is needed up front only when this source has loads that the file could repeat (status 'unchanged',
    # a no-op); a source's first load only waits for it at commit.
    with ThreadPoolExecutor(max_workers=1) as pool:
        scanning = pool.submit(scan_file, path)
        if _has_loads(con, src) and not replace_period:  # the same file with --replace-period is not a no-op
            done = _unchanged(con, src, scanning.result().sha256, file.spec.format, path)
            if done is not None:
                return done
        old_limit = _limit_memory(con)
        try:
            try:
                mapped = stage_incident_file(con, file, progress=progress)
            except (SourceError, SchemaError) as exc:
                raise _explained(scanning.result(), path.name, exc) from None
            problem = scanning.result().problem(path.name)
            if problem is not None:
                raise problem
            mapped.check_errors(max_errors, path.name)
            if progress is not None:
                progress(size * 3 // 4, size)
            with timed("waiting for sha256", log):
                digest = scanning.result().sha256
            with timed("commit", log):
                report = write_incidents(
                    con, mapped, file.spec, source=src, name=path.name, sha256=digest, simulated=simulated,
                    replace_period=replace_period, append=append,
                )  # fmt: skip
        finally:
            drop_staged(con)
            _restore_memory(con, old_limit)
    if progress is not None:
        progress(size, size)
    return report


def write_incidents(
    con: duckdb.DuckDBPyConnection,
    mapped: MappedIncidents,
    spec: IncidentSpec,
    *,
    source: str,
    name: str,
    sha256: str,
    simulated: bool = False,
    replace_period: bool = False,
    append: bool = False,
) -> IncidentLoadReport:
    """Write mapped incident rows as one load, in one transaction.

    Deletes the source's rows with the same keys, inserts the mapped rows, and records the ``loads`` row
    (``name``, ``sha256``), the reasons, the unmapped codes as warnings, the source's format and taxonomy
    (``incident_sources``, ``offence_map``), and pins the source's grid origin.

    Parameters
    ----------
    con
        A writable warehouse connection holding ``mapped``'s staged rows.
    mapped
        Rows staged by :func:`crimelens.sources.incidents.map_incidents` or ``stage_incident_file``.
    spec
        The format they were mapped with.
    source, name, sha256
        The dataset, and the name and content digest of what was read (a file, a page of a feed).
    simulated
        Label the dataset as simulated.
    replace_period
        First remove the dataset's incidents on the days from the first to the last incident of the rows written.
    append
        Skip the re-export guard below.

    Returns
    -------
    IncidentLoadReport
        Status ``'loaded'``.

    Raises
    ------
    SourceError
        The warehouse could not be written (disk full, I/O error); or, for a source without incident ids
        (keys made from canonical values), more than half of the rows that fall in the period the dataset
        already holds would be new incidents: the file is likely a re-export whose values changed (another
        geocoding, corrected times), and loading it would count those incidents twice. Nothing was written.
    """
    with transaction(con, what=name):
        load_id, counts = _write(
            con, mapped, spec, source, name, sha256, simulated, replace_period=replace_period, guard=not append
        )
    replaced = counts.get("replaced", 0) + counts.get("replaced_period", 0)
    log.info("loaded %s incidents from %s as load %s (%s replaced)", mapped.kept, name, load_id, replaced)
    return IncidentLoadReport(
        load_id, source, spec.format, name, sha256, mapped.rows_read, mapped.kept, mapped.rejected, replaced,
        {r: (REASONS[r], n) for r, n in counts.items()}, "loaded", dict(mapped.examples),
        {c: n for c, n, _ in mapped.unmapped}, spec.taxonomy.version,
    )  # fmt: skip


def write_incident_rows(
    con: duckdb.DuckDBPyConnection,
    mapped: MappedIncidents,
    spec: IncidentSpec,
    *,
    source: str,
    name: str,
    sha256: str,
    simulated: bool = False,
) -> tuple[int, int]:
    """The writes of :func:`write_incidents`, inside a transaction the caller holds: (load id, rows replaced).

    For writers that must commit other rows in the same transaction (a feed page and its watermark,
    :mod:`crimelens.warehouse.feeds`); everyone else calls :func:`write_incidents`. A feed's pages are new
    records by nature, so the re-export guard does not apply (their rows are counted as ``new_in_period`` when
    they have no ids).
    """
    load_id, counts = _write(con, mapped, spec, source, name, sha256, simulated, guard=False)
    return load_id, counts.get("replaced", 0)


def _write(
    con: duckdb.DuckDBPyConnection,
    mapped: MappedIncidents,
    spec: IncidentSpec,
    src: str,
    name: str,
    digest: str,
    simulated: bool,
    *,
    replace_period: bool = False,
    guard: bool = True,
) -> tuple[int, dict[str, int]]:
    """The writes of one load, inside its transaction: the load id and its rows by reason (those of ``mapped``,
    and ``replaced``, ``replaced_period``, ``new_in_period`` where any)."""
    started = dt.datetime.now()
    cols = ", ".join(
        [
            "incident_key", "occurred_at", "?", "offence", "offence_raw", "offence_detail", "latitude", "longitude",
            *AREA_COLUMNS, "arrest", "domestic",
        ]
    )  # fmt: skip
    load_id = next_load_id(con)
    # a first load of a source has nothing to replace: the DELETE (a semi-join of every stored row of the
    # source against every key of the file) is skipped when the source has no rows yet
    stored = con.execute("SELECT count(*) FROM (SELECT 1 FROM incidents WHERE source = ? LIMIT 1)", [src])
    replaced = removed = new_in_period = 0
    has_rows = bool((stored.fetchone() or (0,))[0])
    if has_rows and replace_period:
        # the whole days the file covers: exports are cut by date
        span = con.execute(
            f"SELECT date_trunc('day', min(occurred_at)), date_trunc('day', max(occurred_at)) + INTERVAL 1 DAY "
            f"FROM {mapped.view}"
        ).fetchone()
        if span is not None and span[0] is not None:
            gone = con.execute(
                "DELETE FROM incidents WHERE source = ? AND occurred_at >= ? AND occurred_at < ?",
                [src, span[0], span[1]],
            ).fetchone()
            removed = int(gone[0]) if gone else 0
    elif has_rows and not spec.key:
        new_in_period = _guard_reexport(con, mapped, src, name, stop=guard)
    if has_rows:
        deleted = con.execute(
            f"DELETE FROM incidents WHERE source = ? AND incident_key IN (SELECT incident_key FROM {mapped.view})",
            [src],
        ).fetchone()
        replaced = int(deleted[0]) if deleted else 0
    # no ORDER BY: row order in a table carries no meaning, and a sort of the whole file costs as much as the
    # write (with preserve_insertion_order the rows still go in record order)
    con.execute(f"INSERT INTO incidents SELECT ?, {cols}, ? FROM {mapped.view}", [src, spec.precision, load_id])
    counts = {**mapped.counts, "replaced": replaced} if replaced else dict(mapped.counts)
    if removed:
        counts["replaced_period"] = removed
    if new_in_period:
        counts["new_in_period"] = new_in_period
    for reason, n in counts.items():
        shown = ", ".join(map(str, mapped.examples.get(reason, ())))
        con.execute(
            "INSERT INTO load_reasons VALUES (?, ?, ?, ?, ?)", [load_id, reason, REASONS[reason], n, shown or None]
        )
    warnings = [
        (
            load_id, first, None, "warning", "unmapped_offence",
            f"offence code {code!r} is not in taxonomy {spec.taxonomy.version}: {n:,} rows loaded as 'other'",
        )
        for code, n, first in mapped.unmapped
    ]  # fmt: skip
    if warnings:
        con.executemany("INSERT INTO load_issues VALUES (?, ?, ?, ?, ?, ?)", warnings)
    con.execute(
        "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'loaded', NULL)",
        [
            load_id, src, spec.format, name, digest, mapped.rows_read, mapped.kept, mapped.rejected, len(warnings),
            started, dt.datetime.now(),
        ],
    )  # fmt: skip
    con.execute(
        "INSERT INTO incident_sources VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
        # a dataset that ever held simulated rows stays labelled simulated: never passed off as real
        "format = excluded.format, timezone = excluded.timezone, "
        "simulated = incident_sources.simulated OR excluded.simulated, "
        "taxonomy_version = excluded.taxonomy_version, description = excluded.description",
        [src, spec.format, spec.timezone, simulated, spec.taxonomy.version, spec.description],
    )
    # one statement over two lists, not executemany: 2 ms instead of 150 ms for Chicago's 65 rules (it runs on
    # every load, and a feed loads every page)
    con.execute(
        "INSERT OR REPLACE INTO offence_map SELECT ?, ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
        [
            src, spec.taxonomy.version, [code for code, _ in spec.taxonomy.rules],
            [offence for _, offence in spec.taxonomy.rules],
        ],
    )  # fmt: skip
    pin_grid_origin(con, src)
    return load_id, counts


def _guard_reexport(con: duckdb.DuckDBPyConnection, mapped: MappedIncidents, src: str, name: str, *, stop: bool) -> int:
    """How many id-less rows are new incidents in the period the dataset holds; with ``stop``, raise when that
    is most of the file's rows in that period."""
    held = con.execute(
        "SELECT min(occurred_at), max(occurred_at), count(*) FROM incidents WHERE source = ?", [src]
    ).fetchone()
    if held is None or not held[2]:
        return 0
    lo, hi, n_held = held
    row = con.execute(
        f"""
        SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (
            SELECT 1 FROM incidents i WHERE i.source = $src AND i.incident_key = v.incident_key))
        FROM {mapped.view} v WHERE v.occurred_at BETWEEN $lo AND $hi
        """,
        {"src": src, "lo": lo, "hi": hi},
    ).fetchone()
    in_period, new = (int(row[0]), int(row[1])) if row else (0, 0)
    if stop and in_period and new * 2 > in_period:
        raise SourceError(
            f"{name}: {new:,} of its {in_period:,} incidents from {lo:%Y-%m-%d} to {hi:%Y-%m-%d}, a period dataset "
            f"{src!r} already holds ({n_held:,} incidents), would be new: it looks like a re-export whose values "
            "changed (times, places or offences), and loading it would count those incidents twice. Nothing was "
            "loaded. To replace what the dataset holds over the file's period: add --replace-period; if these "
            "really are other incidents (another offence's file of the same period): add --append"
        )
    return new


def _unchanged(
    con: duckdb.DuckDBPyConnection, src: str, digest: str, fmt: str, path: Path
) -> IncidentLoadReport | None:
    row = con.execute(
        "SELECT load_id, rows_read, rows_loaded, rows_rejected FROM loads "
        "WHERE source = ? AND sha256 = ? AND status = 'loaded' ORDER BY load_id DESC LIMIT 1",
        [src, digest],
    ).fetchone()
    if row is None:
        return None
    reasons = {
        str(r): (str(a), int(n))
        for r, a, n in con.execute(
            "SELECT reason, action, rows FROM load_reasons WHERE load_id = ? ORDER BY reason", [row[0]]
        ).fetchall()
    }
    return IncidentLoadReport(
        int(row[0]), src, fmt, path.name, digest, int(row[1]), 0, int(row[3]), 0, reasons, "unchanged"
    )


def _has_loads(con: duckdb.DuckDBPyConnection, src: str) -> bool:
    row = con.execute("SELECT count(*) FROM loads WHERE source = ? AND status = 'loaded'", [src]).fetchone()
    return bool(row and row[0])


def _explained(scan: ByteScan, name: str, exc: Exception) -> Exception:
    """The reader's error, or the byte scan's more exact one: a NUL byte, an over-long line, or a line ending
    otherwise than the first (mixed CRLF and LF, which the reader reports as an unclosed quote)."""
    problem = scan.problem(name)
    if problem is not None:
        return problem
    if scan.mixed_endings is not None:
        return SourceError(
            f"{name}, line {scan.mixed_endings}, column 1: this line ends with a different line break than line 1 "
            "(mixed Windows CRLF and Unix LF line endings, e.g. two files pasted together); re-save the file with "
            "one kind of line ending; nothing was loaded"
        )
    return exc


def _check_simulated_name(con: duckdb.DuckDBPyConnection, src: str, name: str, *, marked: bool) -> None:
    """Simulated rows never join a real dataset: refuse a dataset that holds real incidents or a format's name."""
    from crimelens.sources.registry import REGISTRY

    why = f"{name} was made by `crimelens simulate` (column {SIMULATED_COLUMN})" if marked else f"{name} is simulated"
    row = con.execute("SELECT simulated FROM incident_sources WHERE source = ?", [src]).fetchone()
    # each format's default dataset name is the format's own name (chicago, toronto-mci, houston, ...)
    if (row is not None and not row[0]) or (row is None and src in REGISTRY):
        held = "holds real incidents" if row is not None else "is the name of a real data format"
        raise ConfigError(
            f"{why}: it loads only as a simulated dataset, and {src!r} {held}; load it under another name "
            f"(the default is {SIMULATED_SOURCE!r}): crimelens ingest {name} --source {SIMULATED_SOURCE}"
        )


def _check_source_kind(con: duckdb.DuckDBPyConnection, src: str) -> None:
    row = con.execute("SELECT count(*) FROM jurisdiction_year WHERE source = ?", [src]).fetchone()
    if row and row[0]:
        raise ConfigError(
            f"dataset {src!r} already holds jurisdiction-year rows; incidents need their own name: pass --source"
        )


def _limit_memory(con: duckdb.DuckDBPyConnection) -> str:
    """Cap DuckDB's memory so that a large file spills to the temp directory instead of filling memory."""
    row = con.execute("SELECT current_setting('memory_limit')").fetchone()
    old = str(row[0]) if row else ""
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    return old


def _restore_memory(con: duckdb.DuckDBPyConnection, old: str) -> None:
    if old and re.fullmatch(r"[0-9.]+ ?[KMGT]?i?B", old):
        con.execute(f"SET memory_limit = '{old}'")
