"""Adapter for any jurisdiction-year CSV described by a small TOML mapping file.

The mapping names the columns that hold the jurisdiction, the year, the population and each offence,
and may fix constants (jurisdiction kind, state, months reported, rape definition). See
``docs/mapped-csv.md`` for a worked example.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..schema import COUNT_COLUMNS, JURISDICTION_KINDS, RAPE_DEFINITIONS
from .base import CsvRecords, ParsedFile, Progress, RowBuilder

__all__ = ["FORMAT", "Mapping", "parse", "read_mapping"]

FORMAT = "mapped-csv"
_KEY_FIELDS = ("jurisdiction", "year")
_OPTIONAL_FIELDS = ("jurisdiction_id", "population", "months_reported", "state", "ori", "rape_legacy")
_ALLOWED_COLUMNS = (*_KEY_FIELDS, *_OPTIONAL_FIELDS, *COUNT_COLUMNS)
_ALLOWED_CONSTANTS = ("kind", "state", "months_reported", "rape_definition")


class Mapping:
    """A parsed, validated mapping file."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        where = f"mapping file {path.name}"
        unknown = sorted(set(data) - {"source", "columns", "constants", "options"})
        if unknown:
            raise ConfigError(f"{where}: unknown section {unknown[0]!r}; allowed: source, columns, constants, options")
        self.source: str = str(data.get("source") or "")
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
        self.kind: str = kind
        self.state: str | None = constants.get("state")
        self.months_reported: int | None = months
        self.rape_definition: str | None = definition
        options = data.get("options", {})
        self.delimiter: str = str(options.get("delimiter", ","))
        self.encoding: str = str(options.get("encoding", "utf-8"))
        na = options.get("na_values", ["", "NA", "N/A", "NULL"])
        if not isinstance(na, list) or not all(isinstance(v, str) for v in na):
            raise ConfigError(f"{where}: [options] na_values must be a list of strings, got {na!r}")
        self.na_values: list[str] = na
        if len(self.delimiter) != 1:
            raise ConfigError(f"{where}: [options] delimiter must be one character, got {self.delimiter!r}")


def read_mapping(path: Path) -> Mapping:
    if not path.exists():
        raise ConfigError(f"mapping file {path}: not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"mapping file {path.name}: not valid TOML ({exc})") from exc
    return Mapping(path, data)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


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
            row["rape_definition"] = mapping.rape_definition if row.get("rape") is not None else None
            state = rec[at["state"]].strip() if "state" in at else mapping.state
            ori = rec[at["ori"]].strip() if "ori" in at else None
            b.add_jurisdiction(jid, name, mapping.kind, state or None, ori or None)
            b.finish_row(line, row, cols["jurisdiction"])
    return b.result(path, mapping.source or _slug(path.stem), records.sha256)
