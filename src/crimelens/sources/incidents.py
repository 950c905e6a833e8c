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
import gzip
import hashlib
import io
import logging
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from ..errors import ConfigError, LoadRejected, SchemaError, SourceError
from ..schema import OFFENCES, TIME_PRECISIONS

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


@dataclass(frozen=True)
class Extent:
    """A bounding box in WGS84 degrees; coordinates outside it (including 0/0) are set to NULL."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


@dataclass(frozen=True)
class Taxonomy:
    """A versioned mapping from a source's offence codes to canonical offences.

    A rule code ending in ``*`` matches every code starting with what precedes it; an exact rule wins,
    then the longest matching prefix rule.
    """

    name: str
    version: str
    rules: tuple[tuple[str, str], ...]

    def lookup(self, code: str) -> str | None:
        exact = dict(self.rules)
        if code in exact:
            return exact[code]
        best: tuple[int, str] | None = None
        for rule, offence in self.rules:
            if rule.endswith("*") and code.startswith(rule[:-1]) and (best is None or len(rule) > best[0]):
                best = (len(rule), offence)
        return best[1] if best else None


def read_taxonomy(name: str) -> Taxonomy:
    """The packaged mapping table ``crimelens/taxonomy/<name>.csv`` (columns version, code, offence, note)."""
    text = (resources.files("crimelens") / "taxonomy" / f"{name}.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    versions = {r["version"] for r in rows}
    if len(versions) != 1:
        raise ConfigError(f"taxonomy {name}.csv: expected one version in column version, got {sorted(versions)}")
    for i, r in enumerate(rows, start=2):
        if r["offence"] not in OFFENCES:
            raise ConfigError(
                f"taxonomy {name}.csv, line {i}, column offence: expected one of {', '.join(OFFENCES)}, "
                f"got {r['offence']!r}"
            )
    return Taxonomy(name, versions.pop(), tuple((r["code"], r["offence"]) for r in rows))


def q(column: str) -> str:
    """A column name quoted as a SQL identifier."""
    return '"' + column.replace('"', '""') + '"'


def sql_area_id(expr: str) -> str:
    """SQL normalising an area id: whole numbers written as '01', '1.0' or ' 1 ' become '1'; others trimmed."""
    v = f"nullif(trim({expr}), '')"
    return (
        f"CASE WHEN TRY_CAST({v} AS DOUBLE) IS NOT NULL AND TRY_CAST({v} AS DOUBLE) = floor(TRY_CAST({v} AS DOUBLE)) "
        f"AND abs(TRY_CAST({v} AS DOUBLE)) < 1e15 THEN CAST(CAST(TRY_CAST({v} AS DOUBLE) AS BIGINT) AS VARCHAR) "
        f"ELSE {v} END"
    )


def normalise_area_id(value: object) -> str | None:
    """The Python twin of :func:`sql_area_id` (used for area boundary files)."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return text


@dataclass(frozen=True)
class IncidentSpec:
    """How one incident format maps into the canonical columns: SQL expressions over the staged columns.

    Every expression reads the raw text columns (quoted with :func:`q`). ``occurred_at`` yields a local
    TIMESTAMP or NULL when unparseable; ``code`` the taxonomy lookup key (NULL or empty: missing offence);
    ``key`` the source's own incident id (None: a content hash, see ``docs/incidents.md``).
    """

    format: str
    default_source: str
    description: str
    timezone: str
    precision: str
    required: tuple[str, ...]
    occurred_at: str
    code: str
    offence_raw: str
    taxonomy: Taxonomy
    extent: Extent | None
    key: str | None = None
    offence_detail: str = "NULL"
    latitude: str = "NULL"
    longitude: str = "NULL"
    areas: dict[str, str] = field(default_factory=dict)
    arrest: str = "NULL"
    domestic: str = "NULL"
    timezone_converted: str = "false"
    delimiter: str = ","
    encoding: str = "utf-8"
    na_values: tuple[str, ...] = ("",)

    def __post_init__(self) -> None:
        if self.precision not in TIME_PRECISIONS:
            raise ConfigError(
                f"format {self.format}: time precision must be one of {', '.join(TIME_PRECISIONS)}, "
                f"got {self.precision!r}"
            )


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


# -- reading the raw file ------------------------------------------------------------------------------
def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_binary(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")  # type: ignore[return-value]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if path.is_dir():
        raise SourceError(f"{path}: is a folder; give the path of a CSV file (plain or .gz)")


_DELIMITER_HINTS = {";": "semicolons", "\t": "tabs", "|": "pipes", ",": "commas"}


def read_header(path: Path, *, delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """The header row's column names (BOM and surrounding spaces removed), with clear errors."""
    _check_file(path)
    name = path.name
    try:
        with _open_binary(path) as fh:
            first = fh.readline(1 << 20)
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"{name}, line 1: cannot be read as gzip ({exc}); is the file truncated?") from None
    if not first.strip():
        raise SchemaError(f"{name}, line 1, column 1: the file is empty; expected a header row of column names")
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        text = first.decode(enc)
    except UnicodeDecodeError as exc:
        col = len(first[: exc.start].decode(enc, errors="replace")) + 1
        raise SourceError(
            f"{name}, line 1, column {col}: byte 0x{first[exc.start]:02x} is not valid {encoding}; "
            "re-save the file as UTF-8 (or set the mapping's options.encoding)"
        ) from None
    header = [h.strip() for h in next(csv.reader([text.rstrip("\r\n")], delimiter=delimiter))]
    seen: set[str] = set()
    for i, column in enumerate(header, start=1):
        if column in seen:
            raise SchemaError(f"{name}, line 1, column {i}: column name {column!r} appears twice")
        seen.add(column)
    return header


def require_columns(path: Path, header: list[str], required: tuple[str, ...], fmt: str, delimiter: str) -> None:
    """Raise a SchemaError naming the first required column missing (and a wrong delimiter, if that is why)."""
    missing = [c for c in required if c not in header]
    if not missing:
        return
    if len(header) == 1:
        for delim, word in _DELIMITER_HINTS.items():
            if delim != delimiter and delim in header[0]:
                expected = _DELIMITER_HINTS.get(delimiter, repr(delimiter))
                raise SchemaError(
                    f"{path.name}, line 1, column 1: the header has no {expected}; the file seems to be "
                    f"separated by {word} (format {fmt} expects {expected})"
                )
    raise SchemaError(
        f"{path.name}, line 1, column {missing[0]}: required column missing for format {fmt} "
        f"(missing: {', '.join(missing)}; found: {', '.join(header[:25])})"
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _lines(path: Path) -> Iterator[bytes]:
    """The file's raw lines (decompressed); raises EOFError on a truncated gzip stream."""
    with _open_binary(path) as fh:
        yield from fh


def _read_error(path: Path, exc: duckdb.Error, encoding: str) -> SourceError | SchemaError:
    """Turn a DuckDB read_csv error into one analyst-readable line naming file and line."""
    msg = str(exc)
    name = path.name
    found = re.search(r"Line: (\d+)", msg)
    line = int(found.group(1)) if found else None
    if "gzip" in msg.lower() or "compress" in msg.lower():
        complete = 0
        try:
            for complete, _ in enumerate(_lines(path), start=1):  # noqa: B007
                pass
        except (EOFError, OSError, zlib.error):
            return SourceError(
                f"{name}, line {complete + 1}: the gzip data ends early or is corrupt after {complete:,} complete "
                "lines (truncated download?); nothing was loaded"
            )
        return SourceError(f"{name}: cannot be decompressed ({msg.splitlines()[0]}); nothing was loaded")
    if "unicode" in msg.lower() or "utf" in msg.lower():
        for number, raw in enumerate(_lines(path), start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as err:
                col = len(raw[: err.start].decode(encoding, errors="replace")) + 1
                return SourceError(
                    f"{name}, line {number}, column {col}: byte 0x{raw[err.start]:02x} is not valid {encoding}; "
                    "re-save the file as UTF-8 (or set the mapping's options.encoding); nothing was loaded"
                )
        where = f", line {line}" if line else ""
        return SourceError(f"{name}{where}: text is not valid {encoding}; nothing was loaded")
    where = f", line {line}" if line else ""
    columns = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", msg)
    if columns:
        expected, got = columns.groups()
        hint = " (truncated or shifted line?)" if int(got) < int(expected) else ""
        return SchemaError(
            f"{name}{where}: expected {expected} fields (as in the header), found {got}{hint}; nothing was loaded"
        )
    if "quote" in msg.lower():
        return SchemaError(f"{name}{where}: a quoted value is not closed (truncated file?); nothing was loaded")
    detail = next((s for s in msg.splitlines()[1:] if s.strip() and not s.startswith("Original Line")), msg)
    return SchemaError(f"{name}{where}: malformed CSV ({detail.strip()}); nothing was loaded")


def _stage_raw(
    con: duckdb.DuckDBPyConnection, path: Path, header: list[str], spec: IncidentSpec, used: list[str]
) -> None:
    """``_inc_raw``: the used columns as text, plus ``_hash`` (md5 of every raw field), in file order."""
    fields = ", ".join(f"coalesce({q(c)}, '')" for c in header)
    select = ", ".join(q(c) for c in used)
    na = list(spec.na_values)
    sql = (
        f"CREATE OR REPLACE TEMP TABLE _inc_raw AS SELECT {select}{', ' if select else ''}"
        f"md5(concat_ws(chr(31), {fields})) AS _hash "
        "FROM read_csv(?, header = true, auto_detect = false, columns = ?, delim = ?, quote = '\"', "
        "escape = '\"', nullstr = ?, strict_mode = true, compression = ?, encoding = ?)"
    )
    compression = "gzip" if _is_gzip(path) else "none"
    encoding = "utf-8" if spec.encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig") else spec.encoding
    columns = {c: "VARCHAR" for c in header}
    try:
        con.execute(sql, [str(path), columns, spec.delimiter, na, compression, encoding])
    except duckdb.Error as exc:
        raise _read_error(path, exc, "utf-8" if encoding == "utf-8" else encoding) from None


def _used_columns(spec: IncidentSpec, header: list[str]) -> list[str]:
    exprs = " ".join(
        [
            spec.occurred_at, spec.code, spec.offence_raw, spec.offence_detail, spec.latitude, spec.longitude,
            spec.arrest, spec.domestic, spec.timezone_converted, spec.key or "", *spec.areas.values(),
        ]
    )  # fmt: skip
    return [c for c in header if q(c) in exprs]


def _stage_canonical(con: duckdb.DuckDBPyConnection, spec: IncidentSpec, codes: dict[str, str]) -> None:
    """``_inc``: canonical columns, the drop reason, coordinate and offence notes for every record."""
    ext = spec.extent
    if ext is None:
        inside = "lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 AND NOT (lat = 0 AND lon = 0)"
    else:
        inside = f"lat BETWEEN {ext.lat_min!r} AND {ext.lat_max!r} AND lon BETWEEN {ext.lon_min!r} AND {ext.lon_max!r}"
    key = f"nullif(trim({spec.key}), '')" if spec.key else "NULL"
    areas = ", ".join(f"{spec.areas.get(a, 'NULL')} AS {a}" for a in _AREA_COLUMNS)
    limit = dt.datetime.now() + dt.timedelta(days=1)
    con.execute("CREATE OR REPLACE TEMP TABLE _inc_codes (code VARCHAR, offence VARCHAR)")
    if codes:
        con.executemany("INSERT INTO _inc_codes VALUES (?, ?)", list(codes.items()))
    hash_key = "_hash || '#' || row_number() OVER (PARTITION BY _hash ORDER BY rec)"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _inc AS
        WITH b AS (
            SELECT rowid + 1 AS rec, _hash, {key} AS id_key, {spec.occurred_at} AS ts,
                   nullif(trim({spec.code}), '') AS code, {spec.offence_raw} AS offence_raw,
                   {spec.offence_detail} AS offence_detail,
                   TRY_CAST({spec.latitude} AS DOUBLE) AS lat, TRY_CAST({spec.longitude} AS DOUBLE) AS lon,
                   {areas}, TRY_CAST({spec.arrest} AS BOOLEAN) AS arrest,
                   TRY_CAST({spec.domestic} AS BOOLEAN) AS domestic, coalesce({spec.timezone_converted}, false) AS tzc
            FROM _inc_raw
        ), c AS (
            SELECT *, {"id_key" if spec.key else hash_key} AS incident_key,
                   CASE WHEN code IS NULL THEN 'missing_offence'
                        WHEN {"id_key IS NULL" if spec.key else "false"} THEN 'missing_key'
                        WHEN ts IS NULL THEN 'bad_date'
                        WHEN ts < ? OR ts > ? THEN 'date_out_of_range' END AS bad
            FROM b
        ), d AS (
            SELECT *, CASE WHEN bad IS NULL AND row_number() OVER (
                              PARTITION BY incident_key, bad IS NULL ORDER BY rec DESC) > 1
                           THEN 'duplicate_in_file' ELSE bad END AS drop_reason
            FROM c
        )
        SELECT d.rec, d.incident_key, d.ts AS occurred_at, d.drop_reason, d.code,
               coalesce(m.offence, 'other') AS offence, m.offence IS NULL AS unmapped,
               coalesce(nullif(trim(d.offence_raw), ''), d.code) AS offence_raw,
               nullif(trim(d.offence_detail), '') AS offence_detail,
               CASE WHEN lat IS NULL OR lon IS NULL THEN 'no_coordinates'
                    WHEN NOT ({inside}) THEN 'outside_extent' END AS coord_reason,
               CASE WHEN lat IS NOT NULL AND lon IS NOT NULL AND {inside} THEN lat END AS latitude,
               CASE WHEN lat IS NOT NULL AND lon IS NOT NULL AND {inside} THEN lon END AS longitude,
               {", ".join(f"nullif(trim(d.{a}), '') AS {a}" for a in _AREA_COLUMNS)},
               d.arrest, d.domestic, d.tzc
        FROM d LEFT JOIN _inc_codes m ON m.code = d.code
        """,
        [MIN_DATE, limit],
    )
    con.execute("DROP TABLE _inc_raw")


# reason -> SQL condition over _inc
_CONDITIONS: dict[str, str] = {
    **{r: f"drop_reason = '{r}'" for r in (*_ERROR_REASONS, "duplicate_in_file")},
    "no_coordinates": "drop_reason IS NULL AND coord_reason = 'no_coordinates'",
    "outside_extent": "drop_reason IS NULL AND coord_reason = 'outside_extent'",
    "unmapped_offence": "drop_reason IS NULL AND unmapped",
    "timezone_converted": "drop_reason IS NULL AND tzc",
}


def _count_reasons(con: duckdb.DuckDBPyConnection) -> tuple[int, dict[str, int], dict[str, list[int]]]:
    """(records read, rows per reason, first record numbers per reason) over ``_inc``."""
    filters = ", ".join(f"count(*) FILTER (WHERE {cond})" for cond in _CONDITIONS.values())
    row = con.execute(f"SELECT count(*), {filters} FROM _inc").fetchone()
    assert row is not None
    counts = {r: int(n) for r, n in zip(_CONDITIONS, row[1:], strict=True) if n}
    examples = {
        r: [
            int(x[0])
            for x in con.execute(
                f"SELECT rec FROM _inc WHERE {_CONDITIONS[r]} ORDER BY rec LIMIT ?", [_EXAMPLES]
            ).fetchall()
        ]
        for r in counts
    }
    return int(row[0]), counts, examples


def _record_lines(path: Path, spec: IncidentSpec, records: set[int]) -> dict[int, int]:
    """Exact file line of each data record number, re-reading the file with the csv module."""
    wanted = {r for r in records if r <= _EXACT_LINE_SCAN}
    out = {r: r + 1 for r in records}  # exact when no quoted value holds a line break and no blank lines
    if not wanted:
        return out
    last = max(wanted)
    with _open_binary(path) as raw:
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
    from . import chicago, houston, mapped_csv, nij_portland, toronto

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
    from . import chicago, houston, nij_portland, toronto

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
    _check_file(path)
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
    digest = file_sha256(path)
    done = _unchanged(con, src, digest, spec.format, path)
    if done is not None:
        return done
    codes_needed: dict[str, str] = {}
    old_limit = _limit_memory(con)
    try:
        _stage_raw(con, path, header, spec, _used_columns(spec, header))
        if progress is not None:
            progress(size // 2, size)
        distinct = con.execute(f"SELECT DISTINCT nullif(trim({spec.code}), '') FROM _inc_raw").fetchall()
        unmapped: list[str] = []
        for (code,) in distinct:
            if code is None:
                continue
            offence = spec.taxonomy.lookup(str(code))
            if offence is None:
                unmapped.append(str(code))
            else:
                codes_needed[str(code)] = offence
        _stage_canonical(con, spec, codes_needed)
        rows_read, counts, examples = _count_reasons(con)
        if rows_read == 0:
            raise SchemaError(f"{path.name}, line 2, column 1: the file has a header but no data rows")
        rejected = sum(counts.get(r, 0) for r in (*_ERROR_REASONS, "duplicate_in_file"))
        errors = sum(counts.get(r, 0) for r in _ERROR_REASONS)
        per_code = [
            (str(c), int(n), int(first_rec))
            for c, n, first_rec in con.execute(
                "SELECT code, count(*), min(rec) FROM _inc WHERE drop_reason IS NULL AND unmapped "
                "GROUP BY code ORDER BY count(*) DESC, code"
            ).fetchall()
        ]
        lines = _record_lines(path, spec, {r for ex in examples.values() for r in ex} | {f for _, _, f in per_code})
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
        report = _commit(
            con, path, spec, src, digest, simulated, rows_read, rejected, counts, example_lines, per_code, lines
        )  # fmt: skip
    finally:
        con.execute("DROP TABLE IF EXISTS _inc_raw")
        con.execute("DROP TABLE IF EXISTS _inc")
        con.execute("DROP TABLE IF EXISTS _inc_codes")
        _restore_memory(con, old_limit)
    if progress is not None:
        progress(size, size)
    return report


def _summary(counts: dict[str, int], reasons: tuple[str, ...]) -> str:
    return ", ".join(f"{r} {counts[r]:,}" for r in reasons if counts.get(r))


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
            "incident_key", "occurred_at", "?", "offence", "offence_raw", "offence_detail", "latitude", "longitude",
            *_AREA_COLUMNS, "arrest", "domestic",
        ]
    )  # fmt: skip
    con.execute("BEGIN TRANSACTION")
    try:
        fetched = con.execute("SELECT nextval('load_id_seq')").fetchone()
        assert fetched is not None
        load_id = int(fetched[0])
        deleted = con.execute(
            "DELETE FROM incidents WHERE source = ? AND incident_key IN "
            "(SELECT incident_key FROM _inc WHERE drop_reason IS NULL)",
            [src],
        ).fetchone()
        replaced = int(deleted[0]) if deleted else 0
        con.execute(
            f"INSERT INTO incidents SELECT ?, {cols}, ? FROM _inc WHERE drop_reason IS NULL ORDER BY rec",
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
            "format = excluded.format, timezone = excluded.timezone, simulated = excluded.simulated, "
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
