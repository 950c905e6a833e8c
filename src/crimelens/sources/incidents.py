"""Incident-level loads, DuckDB-native: one SQL pass per step, no Python loop over rows.

A load reads the CSV (plain or gzip) with DuckDB's ``read_csv`` into a temporary staging table (file order
kept: the record number is the staging row id + 1), maps it into the canonical ``incidents`` columns with
the adapter's SQL expressions, counts every dropped, repaired or replaced row by reason, and then upserts by
``(source, incident_key)`` in one transaction. Each adapter (``chicago``, ``toronto``, ``houston``,
``nij_portland``, ``mapped_csv``) only supplies an :class:`IncidentSpec`. See ``docs/incidents.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from crimelens.errors import ConfigError, LoadRejected, SchemaError, SourceError
from crimelens.sources.incident_spec import (
    Extent,
    IncidentSpec,
    Taxonomy,
    check_file,
    file_sha256,
    is_gzip,
    normalise_area_id,
    open_binary,
    q,
    read_error,
    read_header,
    read_taxonomy,
    require_columns,
    sql_area_id,
)

__all__ = [
    "INCIDENT_FORMATS",
    "REASONS",
    "Extent",
    "IncidentLoadReport",
    "IncidentSpec",
    "Taxonomy",
    "detect_incident_format",
    "file_sha256",
    "load_incident_file",
    "normalise_area_id",
    "q",
    "read_header",
    "read_taxonomy",
    "require_columns",
    "sql_area_id",
]

log = logging.getLogger(__name__)

#: Called with (work done, total) while a file is loaded; the unit is bytes of the input file.
Progress = Callable[[int, int], None]

INCIDENT_FORMATS: dict[str, str] = {
    "chicago": "City of Chicago 'Crimes - 2001 to present' export (full schema with ID, or the slim extract)",
    "toronto-mci": "Toronto Police Service Major Crime Indicators (MCI) table",
    "houston": "Houston Police Department crime incidents (ggmap `crime` data, 2010)",
    "nij-portland": "Portland Police Bureau calls for service, NIJ Real-Time Crime Forecasting Challenge format",
    "mapped-csv": "any incident CSV described by a TOML mapping file with [options] grain = 'incidents'",
}

#: Every reason a row can be dropped, repaired, kept with a note, or replaced, with its action.
REASONS: dict[str, str] = {
    "missing_offence": "dropped",
    "missing_key": "dropped",
    "bad_date": "dropped",
    "date_out_of_range": "dropped",
    "duplicate_in_file": "dropped",
    "no_coordinates": "kept",
    "outside_extent": "repaired",
    "unmapped_offence": "kept",
    "timezone_converted": "repaired",
    "replaced": "replaced",
}
#: Reasons that count as errors against ``max_errors`` (a duplicate is an update, not an error).
_ERROR_REASONS = ("missing_offence", "missing_key", "bad_date", "date_out_of_range")
MIN_DATE = dt.datetime(1960, 1, 1)
MEMORY_LIMIT = "1500MB"
_EXAMPLES = 5
#: Exact line numbers of examples are found by re-reading the file with the csv module up to this record.
_EXACT_LINE_SCAN = 2_000_000


_AREA_COLUMNS = ("district", "beat", "community_area", "neighbourhood", "census_tract", "premise")


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


@contextmanager
def _timed(step: str) -> Iterator[None]:
    """Log how long one step of a load took, wall clock and CPU of all threads (DEBUG: a load's profile)."""
    started, cpu = time.perf_counter(), time.process_time()
    yield
    log.debug("%s: %.2f s (CPU %.2f s)", step, time.perf_counter() - started, time.process_time() - cpu)


def _stage(con: duckdb.DuckDBPyConnection, path: Path, header: list[str], spec: IncidentSpec) -> None:
    """``_inc``: every record's canonical columns and why it is dropped (``bad``), in file order.

    One pass over the file: ``read_csv`` feeds the adapter's expressions directly, so the raw text is never
    materialised (the text-only staging table that preceded the mapping cost a second full copy of the file).
    The table's rowid + 1 is the record number (``preserve_insertion_order`` keeps file order). Columns are
    read as text, not typed by the reader: a value the reader could not convert would fail the whole read,
    whereas ``TRY_CAST`` turns it into a counted reason (``bad_date``, ``no_coordinates``); and typed reading
    is no faster (10 million rows: 2.2 s typed, 2.0 s as text, measured with ``count(*)``).
    """
    ext = spec.extent
    if ext is None:
        inside = "lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 AND NOT (lat = 0 AND lon = 0)"
    else:
        inside = f"lat BETWEEN {ext.lat_min!r} AND {ext.lat_max!r} AND lon BETWEEN {ext.lon_min!r} AND {ext.lon_max!r}"
    used = _used_columns(spec, header)
    select = ", ".join(q(c) for c in used)
    if spec.key:
        key = f"nullif(trim({spec.key}), '')"
        key_column = "id_key AS incident_key"
    else:
        # sources without ids: the md5 of every raw field is the key's stem (the ``#n`` suffix is added later);
        # formats with a real id skip this md5 of every field of every row (and read only the columns they map)
        key = "md5(concat_ws(chr(31), " + ", ".join(f"coalesce({q(c)}, '')" for c in header) + "))"
        key_column = "id_key AS _hash"
    areas = ", ".join(f"{spec.areas.get(a, 'NULL')} AS {a}" for a in _AREA_COLUMNS)
    coordinates = "lat IS NOT NULL AND lon IS NOT NULL AND " + inside
    # columns the format leaves constant (no such area, no time zone conversion) are not staged: the view
    # _inc_rows supplies them (a smaller table is cheaper to write, keep in memory and read back)
    constant = _constant_columns(spec)
    varying = [f"nullif(trim({a}), '') AS {a}" for a in _AREA_COLUMNS if a not in constant]
    varying += [c for c in ("arrest", "domestic", "tzc") if c not in constant]
    sql = f"""
        CREATE OR REPLACE TEMP TABLE _inc AS
        WITH raw AS (
            SELECT {select}
            FROM read_csv($path, header = true, auto_detect = false, columns = $columns, delim = $delim,
                          quote = '"', escape = '"', nullstr = $na, strict_mode = true,
                          compression = $compression, encoding = $encoding)
        ), b AS (
            SELECT {key} AS id_key, {spec.occurred_at} AS ts, nullif(trim({spec.code}), '') AS code,
                   {spec.offence_raw} AS offence_raw, {spec.offence_detail} AS offence_detail,
                   TRY_CAST({spec.latitude} AS DOUBLE) AS lat, TRY_CAST({spec.longitude} AS DOUBLE) AS lon,
                   {areas}, TRY_CAST({spec.arrest} AS BOOLEAN) AS arrest,
                   TRY_CAST({spec.domestic} AS BOOLEAN) AS domestic, coalesce({spec.timezone_converted}, false) AS tzc
            FROM raw
        )
        SELECT {key_column}, ts AS occurred_at,
               CASE WHEN code IS NULL THEN 'missing_offence'
                    WHEN {"id_key IS NULL" if spec.key else "false"} THEN 'missing_key'
                    WHEN ts IS NULL THEN 'bad_date'
                    WHEN ts < $min_date OR ts > $max_date THEN 'date_out_of_range' END::{_BAD} AS bad,
               code, coalesce(nullif(trim(offence_raw), ''), code) AS offence_raw,
               nullif(trim(offence_detail), '') AS offence_detail,
               CASE WHEN lat IS NULL OR lon IS NULL THEN 'no_coordinates'
                    WHEN NOT ({inside}) THEN 'outside_extent' END::{_COORD} AS coord_reason,
               CASE WHEN {coordinates} THEN lat END AS latitude, CASE WHEN {coordinates} THEN lon END AS longitude,
               {", ".join(varying)}
        FROM b
    """
    encoding = "utf-8" if spec.encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig") else spec.encoding
    params = {
        "path": str(path),
        "columns": {c: "VARCHAR" for c in header},
        "delim": spec.delimiter,
        "na": list(spec.na_values),
        "compression": "gzip" if is_gzip(path) else "none",
        "encoding": encoding,
        "min_date": MIN_DATE,
        "max_date": dt.datetime.now() + dt.timedelta(days=1),
    }
    try:
        con.execute(sql, params)
    except duckdb.Error as exc:
        raise read_error(path, exc, "utf-8" if encoding == "utf-8" else encoding) from None


#: The drop and coordinate reasons are staged as ENUMs: one byte per row instead of a 16-byte string slot.
_BAD = "ENUM('missing_offence', 'missing_key', 'bad_date', 'date_out_of_range')"
_COORD = "ENUM('no_coordinates', 'outside_extent')"


def _constant_columns(spec: IncidentSpec) -> dict[str, str]:
    """The staged columns that this format leaves constant, with their SQL value."""
    constant = {a: "NULL::VARCHAR" for a in _AREA_COLUMNS if spec.areas.get(a, "NULL") == "NULL"}
    constant |= {c: "NULL::BOOLEAN" for c, e in (("arrest", spec.arrest), ("domestic", spec.domestic)) if e == "NULL"}
    if spec.timezone_converted == "false":
        constant["tzc"] = "false"
    return constant


def _used_columns(spec: IncidentSpec, header: list[str]) -> list[str]:
    exprs = " ".join(
        [
            spec.occurred_at, spec.code, spec.offence_raw, spec.offence_detail, spec.latitude, spec.longitude,
            spec.arrest, spec.domestic, spec.timezone_converted, spec.key or "", *spec.areas.values(),
        ]
    )  # fmt: skip
    if spec.key is None:
        return list(header)  # the content hash reads every field
    return [c for c in header if q(c) in exprs]


def _mark_keys(con: duckdb.DuckDBPyConnection, spec: IncidentSpec) -> None:
    """The view ``_inc_rows``: ``_inc`` with ``rec``, ``incident_key`` and the final ``drop_reason``.

    Sources with ids: the same id again among valid rows keeps the last one; the earlier ones are listed in
    ``_inc_dups``. A GROUP BY on the 64-bit hash of the id finds candidate repeats (grouping integers is cheaper
    than grouping the id text: 0.7 s instead of 0.9 s for 10 million ids; the window over the whole file it
    replaces partitioned and sorted every row);
    the exact GROUP BY on the id text then only runs over those candidates (hash collisions drop out there),
    and the join that lists the earlier records only touches the repeated ids. Sources
    without ids: the key is ``<hash>#<n>``, n numbering identical rows in file order; the window runs only over
    rows whose hash repeats (``_inc_repeats``), every other row is ``#1``. Both side tables are usually tiny or
    empty, and when empty they are left out of the view altogether.
    """
    if spec.key:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _inc_dups AS
            WITH candidates AS (
                SELECT hash(incident_key) AS h FROM _inc WHERE bad IS NULL GROUP BY h HAVING count(*) > 1
            ), repeated AS (
                SELECT incident_key, max(rowid) AS last FROM _inc
                WHERE bad IS NULL AND hash(incident_key) IN (SELECT h FROM candidates)
                GROUP BY incident_key HAVING count(*) > 1
            )
            SELECT i.rowid + 1 AS rec FROM _inc i JOIN repeated r USING (incident_key)
            WHERE i.bad IS NULL AND i.rowid < r.last
            """
        )
        side, key, stored = "_inc_dups", "i.incident_key", "incident_key"
        reason = "coalesce(i.bad::VARCHAR, CASE WHEN s.rec IS NOT NULL THEN 'duplicate_in_file' END)"
    else:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _inc_repeats AS
            SELECT rowid + 1 AS rec, row_number() OVER (PARTITION BY _hash ORDER BY rowid) AS n FROM _inc
            WHERE _hash IN (SELECT _hash FROM _inc GROUP BY _hash HAVING count(*) > 1)
            """
        )
        side, key, stored, reason = "_inc_repeats", "i._hash || '#' || coalesce(s.n, 1)", "_hash", "i.bad"
    constant = "".join(f", {v} AS {c}" for c, v in _constant_columns(spec).items())
    found = con.execute(f"SELECT count(*) FROM {side}").fetchone()
    join = f"LEFT JOIN {side} s ON s.rec = i.rowid + 1" if found and found[0] else ""
    if not join:
        key = key.replace("s.n", "NULL")
        reason = "i.bad"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW _inc_rows AS
        SELECT i.rowid + 1 AS rec, {key} AS incident_key, {reason} AS drop_reason, i.* EXCLUDE ({stored}){constant}
        FROM _inc i {join}
        """
    )


# reason -> SQL condition over _inc_rows (unmapped offences are counted per code, see _code_counts)
_CONDITIONS: dict[str, str] = {
    **{r: f"drop_reason = '{r}'" for r in (*_ERROR_REASONS, "duplicate_in_file")},
    "no_coordinates": "drop_reason IS NULL AND coord_reason = 'no_coordinates'",
    "outside_extent": "drop_reason IS NULL AND coord_reason = 'outside_extent'",
    "timezone_converted": "drop_reason IS NULL AND tzc",
}
_REASON_ORDER = (*_ERROR_REASONS, "duplicate_in_file", "no_coordinates", "outside_extent", "unmapped_offence",
                 "timezone_converted")  # fmt: skip


def _count_reasons(con: duckdb.DuckDBPyConnection) -> tuple[int, dict[str, int], dict[str, list[int]]]:
    """(records read, rows per reason, first record numbers per reason) over ``_inc_rows``, in one scan.

    ``min(rec, n)`` keeps the n smallest record numbers per reason while counting, instead of one
    ``ORDER BY rec LIMIT n`` query over the whole file per reason.
    """
    aggregates = ", ".join(
        f"count(*) FILTER (WHERE {cond}), min(rec, {_EXAMPLES}) FILTER (WHERE {cond})" for cond in _CONDITIONS.values()
    )
    row = con.execute(f"SELECT count(*), {aggregates} FROM _inc_rows").fetchone()
    assert row is not None
    counts: dict[str, int] = {}
    examples: dict[str, list[int]] = {}
    for i, reason in enumerate(_CONDITIONS):
        n, first = row[1 + 2 * i], row[2 + 2 * i]
        if n:
            counts[reason], examples[reason] = int(n), [int(x) for x in first]
    return int(row[0]), counts, examples


def _code_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, list[int]]]:
    """Every offence code with its kept rows and their first record numbers, in one GROUP BY over ``_inc_rows``.

    The codes of dropped rows are listed too (with 0 rows): the taxonomy is looked up once per distinct code.
    """
    rows = con.execute(
        f"SELECT code, count(*) FILTER (WHERE drop_reason IS NULL), "
        f"min(rec, {_EXAMPLES}) FILTER (WHERE drop_reason IS NULL) FROM _inc_rows WHERE code IS NOT NULL GROUP BY code"
    ).fetchall()
    return [(str(code), int(n), [int(x) for x in first or []]) for code, n, first in rows]


def _record_lines(path: Path, spec: IncidentSpec, records: set[int]) -> dict[int, int]:
    """Exact file line of each data record number, re-reading the file with the csv module."""
    wanted = {r for r in records if r <= _EXACT_LINE_SCAN}
    out = {r: r + 1 for r in records}  # exact when no quoted value holds a line break and no blank lines
    if not wanted:
        return out
    last = max(wanted)
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")  # type: ignore[type-var]
        reader = csv.reader(text, delimiter=spec.delimiter)
        start = 1
        n = -1  # the header is record 0
        for fields in reader:
            if fields:
                n += 1
                if n in wanted:
                    out[n] = start
                if n >= last:
                    break
            start = reader.line_num + 1
    return out


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


def _spec_for(path: Path, fmt: str | None, header: list[str], mapping: Path | None) -> IncidentSpec:
    from crimelens.sources import chicago, houston, mapped_csv, nij_portland, toronto

    if fmt is None:
        fmt = "mapped-csv" if mapping is not None else detect_incident_format(path, header)
    if fmt == "mapped-csv":
        if mapping is None:
            raise ConfigError("format mapped-csv needs a mapping file: pass --mapping FILE.toml")
        return mapped_csv.incident_spec(mapped_csv.read_incident_mapping(mapping), header)
    if mapping is not None:
        raise ConfigError(f"--mapping is only used with --format mapped-csv, not {fmt}")
    adapters = {
        chicago.FORMAT: chicago.spec,
        toronto.FORMAT: toronto.spec,
        houston.FORMAT: houston.spec,
        nij_portland.FORMAT: nij_portland.spec,
    }
    if fmt not in adapters:
        raise ConfigError(f"unknown incident format {fmt!r}; allowed: {', '.join(INCIDENT_FORMATS)}")
    return adapters[fmt](header)


def detect_incident_format(path: Path, header: list[str] | None = None) -> str:
    """The incident format whose header signature matches ``path``'s header (SourceError when none does)."""
    from crimelens.sources import chicago, houston, nij_portland, toronto

    cols = set(header if header is not None else read_header(path))
    matches = [str(m.FORMAT) for m in (chicago, toronto, houston, nij_portland) if m.matches(cols)]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(sorted(cols)[:8])
    raise SourceError(
        f"{path.name}, line 1, column 1: cannot tell the incident format from the header ({shown}, ...); "
        f"pass --format, one of: {', '.join(INCIDENT_FORMATS)}"
    )


def load_incident_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str | None,
    *,
    source: str | None = None,
    mapping: Path | None = None,
    simulated: bool = False,
    max_errors: int | None = None,
    progress: Progress | None = None,
) -> IncidentLoadReport:
    """Load an incident file atomically: upsert by (source, incident_key), every dropped row counted.

    Structural problems (missing columns, wrong delimiter, invalid UTF-8, truncated gzip, empty file) raise
    :class:`SourceError`/:class:`SchemaError` naming file and line, and nothing is written. More rows dropped
    as invalid than ``max_errors`` (None: no limit) raises :class:`LoadRejected`, nothing written. Loading a
    file whose sha256 this source already loaded is a no-op (status 'unchanged').
    """
    path = Path(path)
    check_file(path)
    size = path.stat().st_size
    if progress is not None:
        progress(0, size)
    first = read_header(path)
    spec = _spec_for(path, fmt, first, mapping)
    header = (
        first
        if (spec.delimiter, spec.encoding) == (",", "utf-8")
        else read_header(path, delimiter=spec.delimiter, encoding=spec.encoding)
    )
    require_columns(path, header, spec.required, spec.format, spec.delimiter)
    src = source or spec.default_source
    _check_source_kind(con, src)
    # The file's sha256 (one core, about 0.6 s per GB) is computed in a thread while DuckDB reads the file.
    # It is needed up front only when this source has loads that the file could repeat (status 'unchanged',
    # a no-op); a source's first load only waits for it at commit.
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = pool.submit(file_sha256, path)
        if _has_loads(con, src):
            done = _unchanged(con, src, hashing.result(), spec.format, path)
            if done is not None:
                return done
        report = _load(con, path, header, spec, src, hashing, simulated, max_errors, progress)
    if progress is not None:
        progress(size, size)
    return report


def _load(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    header: list[str],
    spec: IncidentSpec,
    src: str,
    hashing: Future[str],
    simulated: bool,
    max_errors: int | None,
    progress: Progress | None,
) -> IncidentLoadReport:
    """Stage, check and commit one file (see :func:`load_incident_file`); temporary tables are always dropped."""
    size = path.stat().st_size
    old_limit = _limit_memory(con)
    try:
        with _timed("stage"):
            _stage(con, path, header, spec)
        if progress is not None:
            progress(size // 2, size)
        with _timed("keys and duplicates"):
            _mark_keys(con, spec)
        with _timed("reasons"):
            rows_read, counts, examples = _count_reasons(con)
        if rows_read == 0:
            raise SchemaError(f"{path.name}, line 2, column 1: the file has a header but no data rows")
        with _timed("offence codes"):
            per_code = _map_codes(con, spec, counts, examples)
        counts = {r: counts[r] for r in _REASON_ORDER if r in counts}
        rejected = sum(counts.get(r, 0) for r in (*_ERROR_REASONS, "duplicate_in_file"))
        errors = sum(counts.get(r, 0) for r in _ERROR_REASONS)
        with _timed("example lines"):
            wanted = {r for ex in examples.values() for r in ex} | {f for _, _, f in per_code}
            lines = _record_lines(path, spec, wanted)
        example_lines = {r: [lines[x] for x in ex] for r, ex in examples.items()}
        if max_errors is not None and errors > max_errors:
            worst = max(_ERROR_REASONS, key=lambda r: counts.get(r, 0))
            raise LoadRejected(
                f"{path.name}: {errors:,} rows are invalid ({_summary(counts, _ERROR_REASONS)}), more than "
                f"--max-errors {max_errors}; e.g. line {example_lines[worst][0]} ({worst}); nothing was loaded",
                [],
            )
        if progress is not None:
            progress(size * 3 // 4, size)
        with _timed("waiting for sha256"):
            digest = hashing.result()
        with _timed("commit"):
            return _commit(
                con, path, spec, src, digest, simulated, rows_read, rejected, counts, example_lines, per_code, lines
            )  # fmt: skip
    finally:
        con.execute("DROP VIEW IF EXISTS _inc_rows")
        for table in ("_inc", "_inc_dups", "_inc_repeats", "_inc_codes"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        _restore_memory(con, old_limit)


def _map_codes(
    con: duckdb.DuckDBPyConnection, spec: IncidentSpec, counts: dict[str, int], examples: dict[str, list[int]]
) -> list[tuple[str, int, int]]:
    """``_inc_codes`` (each mapped code's offence); adds ``unmapped_offence`` to counts and examples.

    Returns the unmapped codes as (code, kept rows, first record), most frequent first.
    """
    mapped: dict[str, str] = {}
    per_code: list[tuple[str, int, int]] = []
    unmapped_records: list[int] = []
    for code, n, first_records in _code_counts(con):
        offence = spec.taxonomy.lookup(code)
        if offence is not None:
            mapped[code] = offence
        elif n:
            per_code.append((code, n, first_records[0]))
            unmapped_records.extend(first_records)
    per_code.sort(key=lambda c: (-c[1], c[0]))
    if per_code:
        counts["unmapped_offence"] = sum(n for _, n, _ in per_code)
        examples["unmapped_offence"] = sorted(unmapped_records)[:_EXAMPLES]
    con.execute("CREATE OR REPLACE TEMP TABLE _inc_codes (code VARCHAR, offence VARCHAR)")
    if mapped:
        con.executemany("INSERT INTO _inc_codes VALUES (?, ?)", list(mapped.items()))
    return per_code


def _summary(counts: dict[str, int], reasons: tuple[str, ...]) -> str:
    return ", ".join(f"{r} {counts[r]:,}" for r in reasons if counts.get(r))


def _has_loads(con: duckdb.DuckDBPyConnection, src: str) -> bool:
    row = con.execute("SELECT count(*) FROM loads WHERE source = ? AND status = 'loaded'", [src]).fetchone()
    return bool(row and row[0])


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


def _commit(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: IncidentSpec,
    src: str,
    digest: str,
    simulated: bool,
    rows_read: int,
    rejected: int,
    counts: dict[str, int],
    example_lines: dict[str, list[int]],
    per_code: list[tuple[str, int, int]],
    lines: dict[int, int],
) -> IncidentLoadReport:
    """The one transaction: loads row, delete-then-insert by key, reasons, issues, source and mapping rows."""
    started = dt.datetime.now()
    cols = ", ".join(
        [
            "incident_key", "occurred_at", "?", "coalesce(m.offence, 'other')", "offence_raw", "offence_detail",
            "latitude", "longitude",
            *_AREA_COLUMNS, "arrest", "domestic",
        ]
    )  # fmt: skip
    con.execute("BEGIN TRANSACTION")
    try:
        fetched = con.execute("SELECT nextval('load_id_seq')").fetchone()
        assert fetched is not None
        load_id = int(fetched[0])
        # a first load of a source has nothing to replace: the DELETE (a semi-join of every stored row of the
        # source against every key of the file) is skipped when the source has no rows yet
        stored = con.execute("SELECT count(*) FROM (SELECT 1 FROM incidents WHERE source = ? LIMIT 1)", [src])
        replaced = 0
        if (stored.fetchone() or (0,))[0]:
            deleted = con.execute(
                "DELETE FROM incidents WHERE source = ? AND incident_key IN "
                "(SELECT incident_key FROM _inc_rows WHERE drop_reason IS NULL)",
                [src],
            ).fetchone()
            replaced = int(deleted[0]) if deleted else 0
        # no ORDER BY rec: row order in a table carries no meaning, and a sort of the whole file costs as much
        # as the write (with preserve_insertion_order the rows still go in file order)
        con.execute(
            f"INSERT INTO incidents SELECT ?, {cols}, ? FROM _inc_rows r LEFT JOIN _inc_codes m ON m.code = r.code "
            "WHERE r.drop_reason IS NULL",
            [src, spec.precision, load_id],
        )
        loaded = rows_read - rejected
        if replaced:
            counts = {**counts, "replaced": replaced}
        for reason, n in counts.items():
            shown = ", ".join(map(str, example_lines.get(reason, [])))
            con.execute(
                "INSERT INTO load_reasons VALUES (?, ?, ?, ?, ?)", [load_id, reason, REASONS[reason], n, shown or None]
            )
        warnings = [
            (
                load_id, lines[first], None, "warning", "unmapped_offence",
                f"offence code {code!r} is not in taxonomy {spec.taxonomy.version}: {n:,} rows loaded as 'other'",
            )
            for code, n, first in per_code
        ]  # fmt: skip
        if warnings:
            con.executemany("INSERT INTO load_issues VALUES (?, ?, ?, ?, ?, ?)", warnings)
        con.execute(
            "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'loaded', NULL)",
            [
                load_id, src, spec.format, path.name, digest, rows_read, loaded, rejected, len(warnings), started,
                dt.datetime.now(),
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
        con.executemany(
            "INSERT OR REPLACE INTO offence_map VALUES (?, ?, ?, ?)",
            [[src, spec.taxonomy.version, code, offence] for code, offence in spec.taxonomy.rules],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    log.info("loaded %s incidents from %s as load %s (%s replaced)", loaded, path.name, load_id, replaced)
    return IncidentLoadReport(
        load_id, src, spec.format, path.name, digest, rows_read, loaded, rejected, replaced,
        {r: (REASONS[r], n) for r, n in counts.items()}, "loaded",
        {r: tuple(v) for r, v in example_lines.items()}, {c: n for c, n, _ in per_code}, spec.taxonomy.version,
    )  # fmt: skip
