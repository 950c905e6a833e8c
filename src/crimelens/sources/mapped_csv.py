"""Adapter for any CSV described by a small TOML mapping file: jurisdiction-year panels or incidents.

A jurisdiction-year mapping names the columns that hold the jurisdiction, the year, the population and each
offence, and may fix constants (jurisdiction kind, state, months reported, rape definition). An incident
mapping (``[options] grain = "incidents"``) names the timestamp, offence code, coordinates and area columns,
the time zone, the city's extent and an ``[offences]`` table. See ``docs/mapped-csv.md`` for worked examples.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import zoneinfo
from pathlib import Path
from typing import Any

from crimelens.errors import ConfigError
from crimelens.schema import COUNT_COLUMNS, JURISDICTION_KINDS, OFFENCES, RAPE_DEFINITIONS, TIME_PRECISIONS
from crimelens.sources.base import CsvRecords, ParsedFile, Progress, RowBuilder
from crimelens.sources.incident_spec import Extent, IncidentSpec, Taxonomy, q, sql_area_id

__all__ = [
    "FORMAT",
    "IncidentMapping",
    "Mapping",
    "incident_spec",
    "mapping_grain",
    "parse",
    "read_incident_mapping",
    "read_mapping",
]

FORMAT = "mapped-csv"
_KEY_FIELDS = ("jurisdiction", "year")
_OPTIONAL_FIELDS = (
    "jurisdiction_id", "population", "months_reported", "state", "ori", "rape_legacy", "kind", "rape_definition",
)  # fmt: skip
_ALLOWED_COLUMNS = (*_KEY_FIELDS, *_OPTIONAL_FIELDS, *COUNT_COLUMNS)
_ALLOWED_CONSTANTS = ("kind", "state", "months_reported", "rape_definition", "rape_revised_from")


def _na_values(options: dict[str, Any], default: list[str], delimiter: str, where: str) -> list[str]:
    """``[options] na_values``: strings a cell holds when the value is missing; none may hold the delimiter, a
    quote or a line break (such a marker could never be a whole cell)."""
    na = options.get("na_values", default)
    if not isinstance(na, list) or not all(isinstance(v, str) for v in na):
        raise ConfigError(f"{where}: [options] na_values must be a list of strings, got {na!r}")
    for value in na:
        bad = next((c for c in (delimiter, '"', "\n", "\r") if c in value), None)
        if bad is not None:
            what = {"\n": "a line break", "\r": "a line break", '"': "a quote"}.get(bad, f"the delimiter {bad!r}")
            raise ConfigError(
                f"{where}: [options] na_values: {value!r} contains {what}; a missing-value marker must fit in one "
                f'cell (e.g. "NA"), got {na!r}'
            )
    return na


class Mapping:
    """A parsed, validated mapping file."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        where = f"mapping file {path.name}"
        unknown = sorted(set(data) - {"source", "columns", "constants", "options"})
        if unknown:
            raise ConfigError(f"{where}: unknown section {unknown[0]!r}; allowed: source, columns, constants, options")
        self.source: str = str(data.get("source") or "")
        if isinstance(data.get("options"), dict) and data["options"].get("grain") == "incidents":
            raise ConfigError(
                f"{where}: this mapping describes incidents ([options] grain = 'incidents'), not jurisdiction-years"
            )
        columns = data.get("columns")
        if not isinstance(columns, dict):
            raise ConfigError(f"{where}: a [columns] table is required, naming at least jurisdiction and year")
        for key, value in columns.items():
            if key not in _ALLOWED_COLUMNS:
                raise ConfigError(
                    f"{where}: [columns] key {key!r} is not a canonical field; allowed: {', '.join(_ALLOWED_COLUMNS)}"
                )
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: [columns] {key} must be a column name (text), got {value!r}")
        for key in _KEY_FIELDS:
            if key not in columns:
                raise ConfigError(f"{where}: [columns] must name the {key!r} column")
        if not any(c in columns for c in COUNT_COLUMNS):
            raise ConfigError(
                f"{where}: [columns] names no offence count; give at least one of {', '.join(COUNT_COLUMNS)}"
            )
        self.columns: dict[str, str] = dict(columns)
        constants = data.get("constants", {})
        if not isinstance(constants, dict):
            raise ConfigError(f"{where}: [constants] must be a table")
        for key in constants:
            if key not in _ALLOWED_CONSTANTS:
                raise ConfigError(
                    f"{where}: [constants] key {key!r} is not allowed; allowed: {', '.join(_ALLOWED_CONSTANTS)}"
                )
        kind = constants.get("kind", "agency")
        if kind not in JURISDICTION_KINDS:
            raise ConfigError(f"{where}: [constants] kind must be one of {', '.join(JURISDICTION_KINDS)}, got {kind!r}")
        definition = constants.get("rape_definition")
        if definition is not None and definition not in RAPE_DEFINITIONS:
            raise ConfigError(f"{where}: [constants] rape_definition must be 'legacy' or 'revised', got {definition!r}")
        months = constants.get("months_reported")
        if months is not None and (not isinstance(months, int) or not 0 <= months <= 12):
            raise ConfigError(f"{where}: [constants] months_reported must be a whole number 0-12, got {months!r}")
        revised_from = constants.get("rape_revised_from")
        if revised_from is not None:
            if isinstance(revised_from, bool) or not isinstance(revised_from, int) or not 1900 <= revised_from <= 2100:
                raise ConfigError(
                    f"{where}: [constants] rape_revised_from must be a year (e.g. 2013: counts from that year on "
                    f"follow the revised rape definition, earlier ones the legacy one), got {revised_from!r}"
                )
            if definition is not None or "rape_definition" in columns:
                raise ConfigError(
                    f"{where}: give the rape definition one way: [constants] rape_revised_from, [constants] "
                    "rape_definition or [columns] rape_definition, not several"
                )
        if definition is not None and "rape_definition" in columns:
            raise ConfigError(
                f"{where}: give the rape definition one way: [constants] rape_definition or [columns] "
                "rape_definition, not both"
            )
        if "kind" in constants and "kind" in columns:
            raise ConfigError(f"{where}: give the jurisdiction kind one way: [constants] kind or [columns] kind")
        self.kind: str = kind
        self.state: str | None = constants.get("state")
        self.months_reported: int | None = months
        self.rape_definition: str | None = definition
        self.rape_revised_from: int | None = revised_from
        options = data.get("options", {})
        self.delimiter: str = str(options.get("delimiter", ","))
        self.encoding: str = str(options.get("encoding", "utf-8"))
        if len(self.delimiter) != 1:
            raise ConfigError(f"{where}: [options] delimiter must be one character, got {self.delimiter!r}")
        self.na_values: list[str] = _na_values(options, ["", "NA", "N/A", "NULL"], self.delimiter, where)


def _load_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"mapping file {path}: not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"mapping file {path.name}: not valid TOML ({exc})") from exc


def read_mapping(path: Path) -> Mapping:
    return Mapping(path, _load_toml(path))


def mapping_grain(path: Path) -> str:
    """'incidents' when the mapping's ``[options] grain`` says so, else 'jurisdiction-year'."""
    options = _load_toml(path).get("options", {})
    grain = options.get("grain", "jurisdiction-year") if isinstance(options, dict) else "jurisdiction-year"
    if grain not in ("incidents", "jurisdiction-year"):
        raise ConfigError(
            f"mapping file {path.name}: [options] grain must be 'incidents' or 'jurisdiction-year', got {grain!r}"
        )
    return str(grain)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _rape_definition(
    b: RowBuilder, line: int, mapping: Mapping, rec: list[str], at: dict[str, int], row: dict[str, Any]
) -> str | None:
    """The row's rape definition: from its column, from the cut-over year, or the mapping's constant."""
    if "rape_definition" in at:
        raw = rec[at["rape_definition"]].strip().lower()
        if raw in RAPE_DEFINITIONS:
            return raw
        if raw in ("", *(v.lower() for v in mapping.na_values)):
            return None
        b.error(
            line, mapping.columns["rape_definition"], "bad_rape_definition",
            f"expected the rape definition 'legacy' or 'revised', got {rec[at['rape_definition']]!r}",
        )  # fmt: skip
        return None
    if mapping.rape_revised_from is not None and row.get("year") is not None:
        return "revised" if int(row["year"]) >= mapping.rape_revised_from else "legacy"
    return mapping.rape_definition


def parse(path: Path, *, mapping: Mapping, encoding: str | None = None, progress: Progress | None = None) -> ParsedFile:
    cols = mapping.columns
    delimiter = mapping.delimiter
    with CsvRecords(path, encoding=encoding or mapping.encoding, delimiter=delimiter, progress=progress) as records:
        records.require(list(cols.values()), f"{FORMAT} (as named in {mapping.path.name})")
        b = RowBuilder(records.name, FORMAT, na_values=mapping.na_values, source_columns=cols)
        at = {key: records.index(column) for key, column in cols.items()}
        counts = [(at[c], cols[c], c) for c in (*COUNT_COLUMNS, "rape_legacy") if c in cols]
        for line, rec in records:
            b.start_row()
            name = rec[at["jurisdiction"]].strip()
            if not name:
                b.error(line, cols["jurisdiction"], "missing_key", "expected a jurisdiction name, got an empty value")
                continue
            jid = rec[at["jurisdiction_id"]].strip() if "jurisdiction_id" in at else _slug(name)
            if not jid:
                b.error(line, cols["jurisdiction_id"], "missing_key", "expected a jurisdiction id, got an empty value")
                continue
            row: dict[str, Any] = {"jurisdiction_id": jid, "year": b.year(line, cols["year"], rec[at["year"]])}
            row["population"] = (
                b.population(line, cols["population"], rec[at["population"]]) if "population" in at else None
            )
            if "months_reported" in at:
                row["months_reported"] = b.months(line, cols["months_reported"], rec[at["months_reported"]])
            else:
                row["months_reported"] = mapping.months_reported
            for i, column, canonical in counts:
                row[canonical] = b.count(line, column, rec[i])
            row["rape_definition"] = (
                _rape_definition(b, line, mapping, rec, at, row) if row.get("rape") is not None else None
            )
            state = rec[at["state"]].strip() if "state" in at else mapping.state
            ori = rec[at["ori"]].strip() if "ori" in at else None
            kind = mapping.kind
            if "kind" in at:
                kind = rec[at["kind"]].strip().lower()
                if kind not in JURISDICTION_KINDS:
                    b.error(
                        line, cols["kind"], "bad_kind",
                        f"expected a jurisdiction kind ({', '.join(JURISDICTION_KINDS)}), got {rec[at['kind']]!r}",
                    )  # fmt: skip
                    continue
            b.add_jurisdiction(jid, name, kind, state or None, ori or None)
            b.finish_row(line, row, cols["jurisdiction"])
    return b.result(path, mapping.source or _slug(path.stem), records.sha256)


# -- incidents ----------------------------------------------------------------------------------------------
_INCIDENT_COLUMNS = (
    "key", "occurred_at", "date", "hour", "offence", "offence_detail", "latitude", "longitude", "district", "beat",
    "community_area", "neighbourhood", "census_tract", "premise", "arrest", "domestic",
)  # fmt: skip
_INCIDENT_OPTIONS = (
    "grain", "timezone", "extent", "precision", "occurred_at_format", "date_format", "delimiter", "encoding",
    "na_values", "taxonomy_version",
)  # fmt: skip
#: A timestamp that ends in an explicit UTC offset ('Z', '+02:00', '-0500', '+01') after a time of day.
_OFFSET_RE = r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)$"


class IncidentMapping:
    """A parsed, validated incident mapping file (``[options] grain = "incidents"``)."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        where = f"mapping file {path.name}"
        unknown = sorted(set(data) - {"source", "columns", "options", "offences"})
        if unknown:
            raise ConfigError(f"{where}: unknown section {unknown[0]!r}; allowed: source, columns, options, offences")
        self.source = str(data.get("source") or _slug(path.stem))
        options = data.get("options", {})
        columns = data.get("columns")
        offences = data.get("offences")
        if not isinstance(options, dict) or not isinstance(columns, dict) or not isinstance(offences, dict):
            raise ConfigError(f"{where}: [options], [columns] and [offences] must be tables")
        for key in options:
            if key not in _INCIDENT_OPTIONS:
                raise ConfigError(
                    f"{where}: [options] key {key!r} is not allowed; allowed: {', '.join(_INCIDENT_OPTIONS)}"
                )
        for key, value in columns.items():
            if key not in _INCIDENT_COLUMNS:
                raise ConfigError(
                    f"{where}: [columns] key {key!r} is not an incident field; allowed: {', '.join(_INCIDENT_COLUMNS)}"
                )
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: [columns] {key} must be a column name (text), got {value!r}")
        if "offence" not in columns:
            raise ConfigError(f"{where}: [columns] must name the 'offence' column (the source's offence code)")
        if ("occurred_at" in columns) == ("date" in columns):
            raise ConfigError(f"{where}: [columns] must name either 'occurred_at' or 'date' (with an optional 'hour')")
        if ("latitude" in columns) != ("longitude" in columns):
            raise ConfigError(f"{where}: [columns] must name both 'latitude' and 'longitude', or neither")
        self.columns: dict[str, str] = dict(columns)
        tz = options.get("timezone")
        try:
            zoneinfo.ZoneInfo(str(tz))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{where}: [options] timezone must be an IANA time zone such as 'America/New_York', got {tz!r}"
            ) from None
        self.timezone = str(tz)
        extent = options.get("extent")
        self.extent: Extent | None = None
        if extent is not None:
            ok = isinstance(extent, list) and len(extent) == 4 and all(isinstance(v, int | float) for v in extent)
            if not ok or not (-90 <= extent[0] < extent[1] <= 90 and -180 <= extent[2] < extent[3] <= 180):
                raise ConfigError(
                    f"{where}: [options] extent must be [lat_min, lat_max, lon_min, lon_max] in degrees, got {extent!r}"
                )
            self.extent = Extent(*(float(v) for v in extent))
        default_precision = "minute" if "occurred_at" in columns else ("hour" if "hour" in columns else "day")
        self.precision = str(options.get("precision", default_precision))
        if self.precision not in TIME_PRECISIONS:
            raise ConfigError(
                f"{where}: [options] precision must be one of {', '.join(TIME_PRECISIONS)}, got {self.precision!r}"
            )
        self.occurred_at_format: str | None = options.get("occurred_at_format")
        self.date_format = str(options.get("date_format", "%Y-%m-%d"))
        self.delimiter = str(options.get("delimiter", ","))
        if len(self.delimiter) != 1:
            raise ConfigError(f"{where}: [options] delimiter must be one character, got {self.delimiter!r}")
        self.encoding = str(options.get("encoding", "utf-8"))
        self.na_values: tuple[str, ...] = tuple(_na_values(options, [""], self.delimiter, where))
        for code, offence in offences.items():
            if offence not in OFFENCES:
                raise ConfigError(
                    f"{where}: [offences] {code!r} must map to one of {', '.join(OFFENCES)}, got {offence!r}"
                )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        version = str(options.get("taxonomy_version", f"{_slug(path.stem)}-{digest}"))
        self.taxonomy = Taxonomy(path.name, version, tuple((str(k), str(v)) for k, v in offences.items()))


def read_incident_mapping(path: Path) -> IncidentMapping:
    return IncidentMapping(path, _load_toml(path))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def incident_spec(mapping: IncidentMapping, header: list[str]) -> IncidentSpec:
    """The :class:`IncidentSpec` an incident mapping describes (``header`` is unused: columns are named)."""
    del header
    cols = mapping.columns
    tz = _literal(mapping.timezone)
    if "occurred_at" in cols:
        v = f"trim({q(cols['occurred_at'])})"
        offset = f"regexp_matches({v}, {_literal(_OFFSET_RE)})"
        fmt = mapping.occurred_at_format
        naive = f"try_strptime({v}, {_literal(fmt)})" if fmt else f"TRY_CAST({v} AS TIMESTAMP)"
        occurred = f"CASE WHEN {offset} THEN timezone({tz}, TRY_CAST({v} AS TIMESTAMPTZ)) ELSE {naive} END"
        converted = f"({offset} AND TRY_CAST({v} AS TIMESTAMPTZ) IS NOT NULL)"
    else:
        day = f"try_strptime(trim({q(cols['date'])}), {_literal(mapping.date_format)})"
        if "hour" in cols:
            hour = f"TRY_CAST(trim({q(cols['hour'])}) AS INTEGER)"
            occurred = f"CASE WHEN {hour} BETWEEN 0 AND 23 THEN {day} + to_hours({hour}) END"
        else:
            occurred = day
        converted = "false"

    def col(name: str, area: bool = False) -> str:
        if name not in cols:
            return "NULL"
        return sql_area_id(q(cols[name])) if area else q(cols[name])

    required = tuple(dict.fromkeys(cols.values()))
    return IncidentSpec(
        format=FORMAT,
        default_source=mapping.source,
        description=f"incident CSV described by mapping file {mapping.path.name}",
        timezone=mapping.timezone,
        precision=mapping.precision,
        required=required,
        occurred_at=occurred,
        code=f"trim({q(cols['offence'])})",
        offence_raw=q(cols["offence"]),
        offence_detail=col("offence_detail"),
        taxonomy=mapping.taxonomy,
        extent=mapping.extent,
        key=q(cols["key"]) if "key" in cols else None,
        latitude=col("latitude"),
        longitude=col("longitude"),
        areas={
            "district": col("district", True),
            "beat": col("beat"),
            "community_area": col("community_area", True),
            "neighbourhood": col("neighbourhood"),
            "census_tract": col("census_tract"),
            "premise": col("premise"),
        },
        arrest=col("arrest"),
        domestic=col("domestic"),
        timezone_converted=converted,
        delimiter=mapping.delimiter,
        encoding=mapping.encoding,
        na_values=mapping.na_values,
    )
