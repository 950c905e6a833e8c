"""Incident mapping and validation, DuckDB-native: one SQL pass per step, no Python loop over rows.

:func:`map_incidents` takes any DuckDB relation of raw records (a staged file today, a page of feed records
next) with the source's column names, maps it into the canonical ``incidents`` columns with the adapter's
SQL expressions (:class:`IncidentSpec`), and counts every dropped, repaired or kept-with-a-note row by reason,
into temporary tables (record order kept: a record's number is its staging row id + 1). Nothing is written to
the warehouse here: :func:`crimelens.warehouse.load_incidents` stages a file with :func:`stage_incident_file`
(DuckDB's ``read_csv``, plain or gzip, then exact file lines for the examples) and writes the staged rows in
one transaction. Each adapter (``chicago``, ``toronto``, ``houston``, ``nij_portland``, ``mapped_csv``) only
supplies an :class:`IncidentSpec`. See ``docs/incidents.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from crimelens.errors import ConfigError, LoadRejected, SchemaError
from crimelens.schema import KEY_AREA_COLUMNS, canonical_key_sql
from crimelens.sources.incident_spec import (
    MAX_LINE_BYTES,
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
    "AREA_COLUMNS",
    "ERROR_REASONS",
    "REASONS",
    "Extent",
    "IncidentFile",
    "IncidentSpec",
    "MappedIncidents",
    "Progress",
    "Taxonomy",
    "detect_incident_format",
    "drop_staged",
    "file_sha256",
    "map_incidents",
    "normalise_area_id",
    "open_incident_file",
    "q",
    "read_header",
    "read_taxonomy",
    "require_columns",
    "sql_area_id",
    "stage_incident_file",
    "timed",
]

log = logging.getLogger(__name__)

#: Called with (work done, total) while a file is loaded; the unit is bytes of the input file.
Progress = Callable[[int, int], None]

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
    "replaced_period": "replaced",
    # rows of a source without ids that are new incidents in the period the dataset already held: a corrected
    # time, place or offence makes a new key, so the old row stays beside it (counted, and said)
    "new_in_period": "kept",
}
#: Reasons that count as errors against ``max_errors`` (a duplicate is an update, not an error).
ERROR_REASONS = ("missing_offence", "missing_key", "bad_date", "date_out_of_range")
#: Reasons whose rows are not loaded.
_DROPPED = (*ERROR_REASONS, "duplicate_in_file")
MIN_DATE = dt.datetime(1960, 1, 1)
_EXAMPLES = 5
#: Exact line numbers of examples are found by re-reading the file with the csv module up to this record.
_EXACT_LINE_SCAN = 2_000_000

#: The canonical area columns of ``incidents``, in table order.
AREA_COLUMNS = ("district", "beat", "community_area", "neighbourhood", "census_tract", "premise")
#: The temporary tables and views staging leaves behind (see :func:`drop_staged`).
_STAGED_VIEWS = ("_inc_kept", "_inc_rows")
_STAGED_TABLES = ("_inc", "_inc_dups", "_inc_repeats", "_inc_codes")
_RAW = "_inc_raw"


@contextmanager
def timed(step: str, logger: logging.Logger = log) -> Iterator[None]:
    """Log how long one step of a load took, wall clock and CPU of all threads (DEBUG: a load's profile)."""
    started, cpu = time.perf_counter(), time.process_time()
    yield
    logger.debug("%s: %.2f s (CPU %.2f s)", step, time.perf_counter() - started, time.process_time() - cpu)


@dataclass(frozen=True)
class MappedIncidents:
    """Raw records mapped into canonical rows, staged in temporary tables, with every reason counted.

    The rows to load are the temporary view ``view`` (columns ``incident_key``, ``occurred_at``, ``offence``,
    ``offence_raw``, ``offence_detail``, ``latitude``, ``longitude``, the :data:`AREA_COLUMNS`, ``arrest``,
    ``domestic``); it lives until :func:`drop_staged`. Positions are record numbers (1 = the first record),
    or file line numbers once :meth:`located`. Do not mutate the dicts.
    """

    rows_read: int
    #: rows per reason (see :data:`REASONS`), in a fixed order; reasons with no rows left out
    counts: dict[str, int]
    #: the first positions (up to 5) of each reason's rows
    examples: dict[str, tuple[int, ...]]
    #: offence codes not in the taxonomy: (code, rows kept as 'other', first position), most frequent first
    unmapped: tuple[tuple[str, int, int], ...]
    view: str = "_inc_kept"

    @property
    def rejected(self) -> int:
        """Rows not loaded (invalid, or repeated within the records)."""
        return sum(self.counts.get(r, 0) for r in _DROPPED)

    @property
    def errors(self) -> int:
        """Invalid rows: those that count against ``max_errors``."""
        return sum(self.counts.get(r, 0) for r in ERROR_REASONS)

    @property
    def kept(self) -> int:
        """Rows to load."""
        return self.rows_read - self.rejected

    def positions(self) -> set[int]:
        """Every example position and every unmapped code's first position."""
        return {x for ex in self.examples.values() for x in ex} | {first for _, _, first in self.unmapped}

    def located(self, lines: Mapping[int, int]) -> MappedIncidents:
        """The same rows with every position replaced by ``lines[position]`` (e.g. record number to file line)."""
        return replace(
            self,
            examples={r: tuple(lines[x] for x in ex) for r, ex in self.examples.items()},
            unmapped=tuple((code, n, lines[first]) for code, n, first in self.unmapped),
        )

    def check_errors(self, max_errors: int | None, name: str) -> None:
        """Raise :class:`LoadRejected` when more rows than ``max_errors`` are invalid (None: no limit)."""
        if max_errors is None or self.errors <= max_errors:
            return
        worst = max(ERROR_REASONS, key=lambda r: self.counts.get(r, 0))
        raise LoadRejected(
            f"{name}: {self.errors:,} rows are invalid ({_summary(self.counts, ERROR_REASONS)}), more than "
            f"--max-errors {max_errors}; e.g. line {self.examples[worst][0]} ({worst}); nothing was loaded",
            [],
        )


def map_incidents(
    con: duckdb.DuckDBPyConnection, raw: duckdb.DuckDBPyRelation | str, spec: IncidentSpec, *, name: str = "records"
) -> MappedIncidents:
    """Map raw incident records into canonical rows and count every reason, whatever the records came from.

    Parameters
    ----------
    con
        The connection the records live in (and the rows are staged in, as temporary tables).
    raw
        A relation of raw records, or the name of a table or view holding them, with the source's own column
        names (as in its files); values are read as text, and the format's missing-value markers as NULL, as
        a file's would be. Record order is kept.
    spec
        The format's mapping (see :class:`IncidentSpec`).
    name
        What the records are, for error messages (a file or feed name).

    Returns
    -------
    MappedIncidents
        Counts and examples by record number; the rows to load in its temporary view. Call
        :func:`drop_staged` when done with them. A column the format requires missing: :class:`SchemaError`.
    """
    if isinstance(raw, duckdb.DuckDBPyRelation):
        con.register(_RAW, raw)
        source = _RAW
        columns = list(raw.columns)
    else:
        source = q(raw)
        columns = [str(d[0]) for d in con.execute(f"SELECT * FROM {source} LIMIT 0").description or []]
    missing = [c for c in spec.required if c not in columns]
    if missing:
        raise SchemaError(
            f"{name}: required column missing for format {spec.format} (missing: {', '.join(missing)}; "
            f"found: {', '.join(columns[:25])})"
        )
    # text, with the format's missing-value markers as NULL: what read_csv gives for the same file
    text = [(f"CAST({q(c)} AS VARCHAR)", q(c)) for c in _used_columns(spec, columns)]
    select = ", ".join(f"CASE WHEN list_contains($na, {v}) THEN NULL ELSE {v} END AS {c}" for v, c in text)
    params = {"na": list(spec.na_values), **_date_bounds()}
    _stage(con, f"SELECT {select} FROM {source}", columns, spec, params)
    return _mapped(con, spec)


@dataclass(frozen=True)
class IncidentFile:
    """An incident file whose format, header and required columns have been checked."""

    path: Path
    spec: IncidentSpec
    header: list[str]


def open_incident_file(path: Path, fmt: str | None, mapping: Path | None = None) -> IncidentFile:
    """Check an incident file before reading it: it exists, its format (detected when None) and columns.

    Structural problems (missing file or columns, wrong delimiter, invalid UTF-8 header, empty file) raise
    :class:`SourceError` / :class:`SchemaError` / :class:`ConfigError` naming the file and line.
    """
    path = Path(path)
    check_file(path)
    first = read_header(path)
    spec = _spec_for(path, fmt, first, mapping)
    header = (
        first
        if (spec.delimiter, spec.encoding) == (",", "utf-8")
        else read_header(path, delimiter=spec.delimiter, encoding=spec.encoding)
    )
    require_columns(path, header, spec.required, spec.format, spec.delimiter)
    return IncidentFile(path, spec, header)


def stage_incident_file(
    con: duckdb.DuckDBPyConnection, file: IncidentFile, *, progress: Progress | None = None
) -> MappedIncidents:
    """Read an incident file with DuckDB's ``read_csv`` and map it (:func:`map_incidents`'s steps, one pass).

    ``read_csv`` feeds the adapter's expressions directly, so the raw text is never materialised. The
    examples' positions are exact file lines (re-read with the csv module). Malformed CSV, invalid text, a
    truncated gzip or a header without rows raise :class:`SourceError` / :class:`SchemaError` naming file and
    line. Call :func:`drop_staged` when done with the rows.
    """
    path, spec, header = file.path, file.spec, file.header
    encoding = "utf-8" if spec.encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig") else spec.encoding
    read = f"""
        SELECT {", ".join(q(c) for c in _used_columns(spec, header))}
        FROM read_csv($path, header = true, auto_detect = false, columns = $columns, delim = $delim,
                      quote = '"', escape = '"', nullstr = $na, strict_mode = true, max_line_size = $max_line,
                      compression = $compression, encoding = $encoding)
    """
    params = {
        "path": str(path),
        "columns": {c: "VARCHAR" for c in header},
        "delim": spec.delimiter,
        "na": list(spec.na_values),
        "max_line": MAX_LINE_BYTES,
        "compression": "gzip" if is_gzip(path) else "none",
        "encoding": encoding,
        **_date_bounds(),
    }
    with timed("stage"):
        try:
            _stage(con, read, header, spec, params)
        except duckdb.Error as exc:
            raise read_error(path, exc, "utf-8" if encoding == "utf-8" else encoding) from None
    if progress is not None:
        size = path.stat().st_size
        progress(size // 2, size)
    mapped = _mapped(con, spec)
    if mapped.rows_read == 0:
        raise SchemaError(f"{path.name}, line 2, column 1: the file has a header but no data rows")
    with timed("example lines"):
        return mapped.located(_record_lines(path, spec, mapped.positions()))


def drop_staged(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary tables and views that mapping left (safe to call when there are none)."""
    for view in _STAGED_VIEWS:
        con.execute(f"DROP VIEW IF EXISTS {view}")
    for table in _STAGED_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    con.unregister(_RAW)


def _date_bounds() -> dict[str, dt.datetime]:
    return {"min_date": MIN_DATE, "max_date": dt.datetime.now() + dt.timedelta(days=1)}


def _mapped(con: duckdb.DuckDBPyConnection, spec: IncidentSpec) -> MappedIncidents:
    """Keys, duplicates, reasons and offence codes over the staged ``_inc`` (record numbers as positions)."""
    with timed("keys and duplicates"):
        _mark_keys(con, spec)
    with timed("reasons"):
        rows_read, counts, examples = _count_reasons(con)
    with timed("offence codes"):
        unmapped = _map_codes(con, spec, counts, examples)
    ordered = {r: counts[r] for r in _REASON_ORDER if r in counts}
    return MappedIncidents(rows_read, ordered, {r: tuple(v) for r, v in examples.items()}, tuple(unmapped))


def _stage(
    con: duckdb.DuckDBPyConnection, raw: str, header: list[str], spec: IncidentSpec, params: Mapping[str, object]
) -> None:
    """``_inc``: every record's canonical columns and why it is dropped (``bad``), in record order.

    ``raw`` is a query yielding the records' text columns (``read_csv`` over a file, or a relation), fed to
    the adapter's expressions directly, so that the raw text is never materialised (the text-only staging
    table that preceded the mapping cost a second full copy of the file). The table's rowid + 1 is the record
    number (``preserve_insertion_order`` keeps record order). A file's columns are read as text, not typed by
    the reader: a value the reader could not convert would fail the whole read, whereas ``TRY_CAST`` turns it
    into a counted reason (``bad_date``, ``no_coordinates``); and typed reading is no faster (10 million rows:
    2.2 s typed, 2.0 s as text, measured with ``count(*)``).
    """
    ext = spec.extent
    if ext is None:
        inside = "lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 AND NOT (lat = 0 AND lon = 0)"
    else:
        inside = f"lat BETWEEN {ext.lat_min!r} AND {ext.lat_max!r} AND lon BETWEEN {ext.lon_min!r} AND {ext.lon_max!r}"
    areas = ", ".join(f"{spec.areas.get(a, 'NULL')} AS {a}" for a in AREA_COLUMNS)
    coordinates = "lat IS NOT NULL AND lon IS NOT NULL AND " + inside
    if spec.key:
        key = f"nullif(trim({spec.key}), '')"
        key_column = "id_key AS incident_key"
    else:
        # sources without ids: the key's stem (the ``#n`` suffix is added later) is the md5 of the row's canonical
        # values, the ones the warehouse stores (canonical_key_sql), not of its raw text: a re-export with its
        # columns reordered or renamed, padding stripped or another field corrected keeps every key
        key = "NULL"
        key_column = (
            canonical_key_sql(
                "ts", "coalesce(nullif(trim(offence_raw), ''), code)", f"CASE WHEN {coordinates} THEN lat END",
                f"CASE WHEN {coordinates} THEN lon END", [f"nullif(trim({a}), '')" for a in KEY_AREA_COLUMNS],
            )
            + " AS _hash"
        )  # fmt: skip
    # columns the format leaves constant (no such area, no time zone conversion) are not staged: the view
    # _inc_rows supplies them (a smaller table is cheaper to write, keep in memory and read back)
    constant = _constant_columns(spec)
    varying = [f"nullif(trim({a}), '') AS {a}" for a in AREA_COLUMNS if a not in constant]
    varying += [c for c in ("arrest", "domestic", "tzc") if c not in constant]
    sql = f"""
        CREATE OR REPLACE TEMP TABLE _inc AS
        WITH raw AS ({raw}), b AS (
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
    con.execute(sql, params)


#: The drop and coordinate reasons are staged as ENUMs: one byte per row instead of a 16-byte string slot.
_BAD = "ENUM('missing_offence', 'missing_key', 'bad_date', 'date_out_of_range')"
_COORD = "ENUM('no_coordinates', 'outside_extent')"


def _constant_columns(spec: IncidentSpec) -> dict[str, str]:
    """The staged columns that this format leaves constant, with their SQL value."""
    constant = {a: "NULL::VARCHAR" for a in AREA_COLUMNS if spec.areas.get(a, "NULL") == "NULL"}
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
    **{r: f"drop_reason = '{r}'" for r in (*ERROR_REASONS, "duplicate_in_file")},
    "no_coordinates": "drop_reason IS NULL AND coord_reason = 'no_coordinates'",
    "outside_extent": "drop_reason IS NULL AND coord_reason = 'outside_extent'",
    "timezone_converted": "drop_reason IS NULL AND tzc",
}
_REASON_ORDER = (*ERROR_REASONS, "duplicate_in_file", "no_coordinates", "outside_extent", "unmapped_offence",
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


def _map_codes(
    con: duckdb.DuckDBPyConnection, spec: IncidentSpec, counts: dict[str, int], examples: dict[str, list[int]]
) -> list[tuple[str, int, int]]:
    """``_inc_codes`` (each mapped code's offence) and the view ``_inc_kept`` (the canonical rows to load).

    Adds ``unmapped_offence`` to counts and examples.

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
    columns = ", ".join(f"r.{c}" for c in (*AREA_COLUMNS, "arrest", "domestic"))
    con.execute(
        "CREATE OR REPLACE TEMP VIEW _inc_kept AS SELECT r.incident_key, r.occurred_at, "
        "coalesce(m.offence, 'other') AS offence, r.offence_raw, r.offence_detail, r.latitude, r.longitude, "
        f"{columns} FROM _inc_rows r LEFT JOIN _inc_codes m ON m.code = r.code WHERE r.drop_reason IS NULL"
    )
    return per_code


def _summary(counts: dict[str, int], reasons: tuple[str, ...]) -> str:
    return ", ".join(f"{r} {counts[r]:,}" for r in reasons if counts.get(r))


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


def _spec_for(path: Path, fmt: str | None, header: list[str], mapping: Path | None) -> IncidentSpec:
    from crimelens.sources import mapped_csv, registry

    if fmt is None:
        fmt = "mapped-csv" if mapping is not None else detect_incident_format(path, header)
    if fmt == "mapped-csv":
        if mapping is None:
            raise ConfigError("format mapped-csv needs a mapping file: pass --mapping FILE.toml")
        return mapped_csv.incident_spec(mapped_csv.read_incident_mapping(mapping), header)
    if mapping is not None:
        raise ConfigError(f"--mapping is only used with --format mapped-csv, not {fmt}")
    found = registry.REGISTRY.get(fmt)
    if found is None or found.spec is None:
        raise ConfigError(f"unknown incident format {fmt!r}; allowed: {', '.join(registry.incident_formats())}")
    return found.spec(header)


def detect_incident_format(path: Path, header: list[str] | None = None) -> str:
    """The incident format whose header signature matches ``path``'s header (SourceError when none does)."""
    from crimelens.sources import registry

    cols = set(header if header is not None else read_header(path))
    return registry.detect(path, cols, grain="incidents")
