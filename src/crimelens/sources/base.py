"""Shared machinery for source adapters: a strict, streaming CSV reader and per-row validation.

An adapter reads one file into a :class:`ParsedFile`: canonical rows, the jurisdictions they refer to,
and every :class:`Issue` found, each naming file, line and column. Nothing here touches the warehouse.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from crimelens.errors import SchemaError, SourceError
from crimelens.schema import COUNT_COLUMNS, months_status
from crimelens.sources.incident_spec import check_file

__all__ = [
    "JY_COLUMNS",
    "CsvRecords",
    "Issue",
    "ParsedFile",
    "Progress",
    "RowBuilder",
    "file_sha256",
    "max_year",
    "set_rape",
]

Severity = Literal["error", "warning"]
#: Called with (bytes read, total bytes) while a file is parsed.
Progress = Callable[[int, int], None]

#: Columns an adapter fills for each jurisdiction-year row (``source`` and ``load_id`` are added at load).
JY_COLUMNS: tuple[str, ...] = (
    "jurisdiction_id",
    "year",
    "population",
    "months_reported",
    *COUNT_COLUMNS,
    "rape_definition",
    "rape_legacy",
)
JURISDICTION_COLUMNS: tuple[str, ...] = ("jurisdiction_id", "name", "kind", "state", "ori")
MIN_YEAR = 1900


def max_year() -> int:
    """The latest year a record may have: the current year."""
    return dt.date.today().year


@dataclass(frozen=True)
class Issue:
    """One problem found in an input file, located by file, line and column."""

    file: str
    line: int
    column: str | None
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


@dataclass
class ParsedFile:
    """What an adapter read from one file, ready for an atomic load."""

    path: Path
    format: str
    default_source: str
    rows: pd.DataFrame
    jurisdictions: pd.DataFrame
    issues: list[Issue]
    rows_read: int
    rejected_lines: set[int] = field(default_factory=set)
    #: sha256 of the file as read (computed while reading; None: compute at load)
    sha256: str | None = None

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]


def set_rape(row: dict[str, Any], legacy: int | None, revised: int | None) -> None:
    """Canonical rape count of a row from a source that publishes both FBI definitions.

    The revised count (published from 2013) wins where present, with the legacy count kept beside it in
    ``rape_legacy``; before 2013 the legacy count is the only one.
    """
    if revised is not None:
        row["rape"], row["rape_definition"], row["rape_legacy"] = revised, "revised", legacy
    else:
        row["rape"], row["rape_definition"], row["rape_legacy"] = legacy, "legacy", legacy


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks."""
    return _scan_bytes(path)[0]


def _scan_bytes(path: Path) -> tuple[str, bool]:
    """One binary pass over the file: (sha256, whether it holds a NUL byte)."""
    digest = hashlib.sha256()
    has_nul = False
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            has_nul = has_nul or b"\x00" in chunk
    return digest.hexdigest(), has_nul


_DELIMITER_HINTS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")


class CsvRecords:
    """Stream the records of a delimited file with exact line numbers and strict decoding.

    The fast path reads the file as text with the ``csv`` module and takes line numbers from the reader
    (correct across quoted newlines). When a byte cannot be decoded, or the file holds NUL bytes, the
    file is scanned line by line to name the first bad line and column. A UTF-8 byte-order mark is
    accepted. Records are yielded as ``(line, fields)``, fields in header order (see :meth:`index`); a
    record with the wrong number of fields (a truncated or shifted line) raises :class:`SchemaError`.
    Use as a context manager (or iterate to the end) so the file is closed.
    """

    def __init__(
        self,
        path: Path,
        *,
        encoding: str = "utf-8",
        delimiter: str = ",",
        progress: Progress | None = None,
    ) -> None:
        self.path = path
        self.progress = progress
        self.name = path.name
        self.encoding = encoding
        self.delimiter = delimiter
        check_file(path)
        self.size = path.stat().st_size
        self.sha256, has_nul = _scan_bytes(path)
        if has_nul:
            self._locate_bad_bytes()  # raises, naming the first bad line
        self._check_delimiter()
        self._raw = path.open("rb")  # kept for its byte position (progress)
        self._fh = io.TextIOWrapper(self._raw, encoding="utf-8-sig" if _is_utf8(encoding) else encoding, newline="")
        self._csv = csv.reader(self._fh, delimiter=delimiter, strict=True)
        try:
            self.header: list[str] = self._read_header()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CsvRecords:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_delimiter(self) -> None:
        """A header without the expected delimiter but with another common one is a wrong-delimiter file."""
        with self.path.open("rb") as fh:
            first = fh.readline(1 << 16).decode("utf-8", errors="replace")
        if self.delimiter in first:
            return
        for delim, word in _DELIMITER_HINTS.items():
            if delim != self.delimiter and delim in first:
                expected = {",": "commas", **_DELIMITER_HINTS}.get(self.delimiter, repr(self.delimiter))
                raise SchemaError(
                    f"{self.name}, line 1, column 1: the header has no {expected}; the file seems to be "
                    f"separated by {word} (for such a file use --format mapped-csv with options.delimiter)"
                )

    # -- errors located line by line ------------------------------------------------------------
    def _locate_bad_bytes(self) -> None:
        """Find the first line that does not decode or holds a NUL byte, and raise naming it."""
        enc = "utf-8" if _is_utf8(self.encoding) else self.encoding
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if number == 1:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")
                try:
                    text = raw.decode(enc)
                except UnicodeDecodeError as exc:
                    col = len(raw[: exc.start].decode(enc, errors="replace")) + 1
                    raise SourceError(
                        f"{self.name}, line {number}, column {col}: byte 0x{raw[exc.start]:02x} is not valid "
                        f"{self.encoding}; re-save the file as UTF-8 or pass --encoding (e.g. latin-1)"
                    ) from None
                if "\x00" in text:
                    raise SourceError(
                        f"{self.name}, line {number}, column {text.index(chr(0)) + 1}: NUL byte found; this "
                        "does not look like a text CSV file"
                    )
        raise SourceError(f"{self.name}: cannot be decoded as {self.encoding}")  # pragma: no cover

    # -- records --------------------------------------------------------------------------------
    def _records(self) -> Iterator[tuple[int, list[str]]]:
        reader = self._csv
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                self._locate_bad_bytes()
                raise  # pragma: no cover - _locate_bad_bytes always raises
            except csv.Error as exc:
                msg = str(exc)
                if "unexpected end of data" in msg or "EOF" in msg:
                    msg = "the file ends inside a quoted value (truncated file?)"
                elif "field larger than field limit" in msg:
                    msg = (
                        f"a field is longer than {csv.field_size_limit():,} characters, not a valid value (a damaged "
                        "file, or a quote that is never closed?)"
                    )
                raise SchemaError(f"{self.name}, line {start}, column 1: malformed CSV: {msg}") from None
            if not fields or (len(fields) == 1 and fields[0] == ""):
                continue  # blank line
            yield start, fields

    def _read_header(self) -> list[str]:
        self._iter = self._records()
        try:
            _, header = next(self._iter)
        except StopIteration:
            raise SchemaError(
                f"{self.name}, line 1, column 1: the file is empty; expected a header row of column names"
            ) from None
        header = [h.strip() for h in header]
        seen: set[str] = set()
        for i, name in enumerate(header, start=1):
            if name in seen:
                raise SchemaError(f"{self.name}, line 1, column {i}: column name {name!r} appears twice")
            seen.add(name)
        return header

    def require(self, columns: Sequence[str], fmt: str) -> None:
        """Raise a :class:`SchemaError` naming the first required column the header lacks."""
        missing = [c for c in columns if c not in self.header]
        if missing:
            raise SchemaError(
                f"{self.name}, line 1, column {missing[0]}: required column missing for format {fmt} "
                f"(missing: {', '.join(missing)}; found: {', '.join(self.header[:20])})"
            )

    def index(self, column: str) -> int:
        """Position of ``column`` in each record's fields."""
        return self.header.index(column)

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.header)
        saw_data = False
        progress, raw = self.progress, self._raw
        try:
            for n, (line, fields) in enumerate(self._iter):
                saw_data = True
                if len(fields) != width:
                    hint = " (truncated or shifted line?)" if len(fields) < width else ""
                    raise SchemaError(
                        f"{self.name}, line {line}, column {min(len(fields), width) + 1}: expected {width} "
                        f"fields, found {len(fields)}{hint}"
                    )
                if progress is not None and n % 20000 == 0:
                    progress(raw.tell(), self.size)
                yield line, fields
        finally:
            self.close()
        if progress is not None:
            progress(self.size, self.size)
        if not saw_data:
            raise SchemaError(f"{self.name}, line 2, column 1: the file has a header but no data rows")


class RowBuilder:
    """Validate values of one file into canonical rows, collecting issues instead of stopping.

    Values listed in ``na_values`` are missing (stored as NULL), never zero.
    """

    def __init__(
        self,
        file: str,
        fmt: str,
        na_values: Sequence[str] = ("", "NA", "N/A", "NULL"),
        source_columns: dict[str, str] | None = None,
    ) -> None:
        self.file = file
        #: canonical field -> the file's column name, for cross-field issues
        self.source_columns = source_columns or {}
        self.format = fmt
        self.na_values = frozenset(na_values)
        self.issues: list[Issue] = []
        #: accepted rows, stored by column (lighter than one dict per row)
        self.columns: dict[str, list[Any]] = {c: [] for c in (*JY_COLUMNS, "line")}
        self._appenders = [(col, values.append) for col, values in self.columns.items()]
        self.jurisdictions: dict[str, dict[str, Any]] = {}
        self.rejected_lines: set[int] = set()
        self.rows_read = 0
        self._keys: dict[tuple[str, int], int] = {}
        self._row_errors = 0
        self._max_year = max_year()

    # -- issue recording --------------------------------------------------------------------------
    def error(self, line: int, column: str | None, code: str, message: str) -> None:
        """Record an error; the row on ``line`` is rejected (whether or not its checks run to the end)."""
        self.issues.append(Issue(self.file, line, column, "error", code, message))
        self.rejected_lines.add(line)
        self._row_errors += 1

    def warn(self, line: int, column: str | None, code: str, message: str) -> None:
        self.issues.append(Issue(self.file, line, column, "warning", code, message))

    # -- value parsers ----------------------------------------------------------------------------
    def integer(
        self, line: int, column: str, raw: str, *, minimum: int | None = 0, what: str = "a whole number ≥ 0"
    ) -> int | None:
        """A whole number (or None when missing); ``what`` names it, bound included, for messages."""
        if raw.isascii() and raw.isdigit():  # fast path: a plain non-negative integer
            value = int(raw)
            if minimum is not None and value < minimum:
                self.error(line, column, "too_small", f"expected {what}, got {raw!r}")
                return None
            return value
        text = raw.strip()
        if text in self.na_values:
            return None
        cleaned = text.replace(",", "") if text.count(",") and text.replace(",", "").isdigit() else text
        try:
            value_f = float(cleaned)
        except ValueError:
            self.error(line, column, "not_a_number", f"expected {what}, got {raw!r}")
            return None
        if not math.isfinite(value_f) or value_f != int(value_f):
            self.error(line, column, "not_a_number", f"expected {what}, got {raw!r}")
            return None
        value = int(value_f)
        if minimum is not None and value < minimum:
            kind = "negative" if value < 0 else "too_small"
            self.error(line, column, kind, f"expected {what}, got {raw!r}")
            return None
        return value

    def count(self, line: int, column: str, raw: str) -> int | None:
        return self.integer(line, column, raw, minimum=0, what="a count (a whole number ≥ 0)")

    def year(self, line: int, column: str, raw: str) -> int | None:
        text = raw.strip()
        hi = self._max_year
        what = f"a year {MIN_YEAR}–{hi}"
        if text in self.na_values:
            self.error(line, column, "missing_year", f"expected {what}, got an empty value")
            return None
        if not text.isdigit():
            self.error(line, column, "bad_year", f"expected {what}, got {raw!r}")
            return None
        value = int(text)
        if not MIN_YEAR <= value <= hi:
            self.error(line, column, "impossible_year", f"expected {what}, got {raw!r}")
            return None
        return value

    def population(self, line: int, column: str, raw: str) -> int | None:
        value = self.integer(line, column, raw, minimum=None, what="a population (a whole number > 0)")
        if value is not None and value <= 0:
            self.error(line, column, "bad_population", f"expected a population > 0, got {raw!r}")
            return None
        return value

    def months(self, line: int, column: str, raw: str) -> int | None:
        value = self.integer(line, column, raw, minimum=0, what="months reported (0–12)")
        if value is not None and value > 12:
            self.error(line, column, "bad_months", f"expected months reported 0–12, got {raw!r}")
            return None
        return value

    # -- rows -------------------------------------------------------------------------------------
    def start_row(self) -> None:
        self.rows_read += 1
        self._row_errors = 0

    def add_jurisdiction(self, jurisdiction_id: str, name: str, kind: str, state: str | None, ori: str | None) -> None:
        self.jurisdictions.setdefault(
            jurisdiction_id,
            {"jurisdiction_id": jurisdiction_id, "name": name, "kind": kind, "state": state, "ori": ori},
        )

    def who(self, jurisdiction_id: str) -> str:
        """A jurisdiction as a reader knows it: its name and its code, e.g. "Chicago (ILCPD00)"."""
        known = self.jurisdictions.get(jurisdiction_id)
        name = known.get("name") if known else None
        return f"{name} ({jurisdiction_id})" if name and name != jurisdiction_id else str(jurisdiction_id)

    def finish_row(self, line: int, row: dict[str, Any], key_column: str) -> None:
        """Check cross-field rules, then keep the row unless it had an error."""
        if self._row_errors:
            return
        key = (row["jurisdiction_id"], row["year"])
        if key in self._keys:
            self.error(
                line,
                key_column,
                "duplicate_key",
                f"duplicate row for {self.who(row['jurisdiction_id'])} in {row['year']} (first seen on line "
                f"{self._keys[key]})",
            )
            return
        self._keys[key] = line
        total = row.get("violent_crime")
        h, r, b, a = row.get("homicide"), row.get("rape"), row.get("robbery"), row.get("aggravated_assault")
        if total is not None and h is not None and r is not None and b is not None and a is not None:
            expected = h + r + b + a
            legacy = row.get("rape_legacy")
            revised = row.get("rape_definition") == "revised"
            if expected != total and revised and legacy is not None and h + legacy + b + a == total:
                self.warn(
                    line,
                    self.source_columns.get("violent_crime", "violent_crime"),
                    "violent_total_legacy_rape",
                    f"violent crime total {total} adds up with the legacy rape count ({legacy}), not the "
                    f"revised one ({r}): the source total follows the legacy definition; it is kept",
                )
                expected = total
            if expected != total:
                self.warn(
                    line,
                    self.source_columns.get("violent_crime", "violent_crime"),
                    "violent_sum_mismatch",
                    f"violent crime total {total} differs from the sum of its parts {expected} "
                    f"(by {total - expected:+d}); the source total is kept",
                )
        months = row.get("months_reported")
        if months == 0 and any(row.get(c) is not None for c in COUNT_COLUMNS):
            self.warn(
                line,
                self.source_columns.get("months_reported", "months_reported"),
                "months_not_stated",
                f"months reported is 0 for {self.who(row['jurisdiction_id'])} in {row['year']} although counts are "
                "given: the file does not say how many months they cover; kept as an annual figure and flagged",
            )
        elif months_status(months) == "partial":
            self.warn(
                line,
                self.source_columns.get("months_reported", "months_reported"),
                "partial_year",
                f"only {months} of 12 months reported for {self.who(row['jurisdiction_id'])} in {row['year']}; "
                "counts and rates for this year are understated",
            )
        row["line"] = line
        get = row.get
        for col, append in self._appenders:
            append(get(col))

    def result(self, path: Path, default_source: str, sha256: str | None = None) -> ParsedFile:
        text = ("jurisdiction_id", "rape_definition")
        rows = pd.DataFrame(
            {
                col: pd.array(values, dtype=object) if col in text else pd.array(values, dtype="Int64")
                for col, values in self.columns.items()
            }
        )
        jur = pd.DataFrame(list(self.jurisdictions.values()), columns=list(JURISDICTION_COLUMNS))
        return ParsedFile(
            path=path,
            format=self.format,
            default_source=default_source,
            rows=rows,
            jurisdictions=jur,
            issues=self.issues,
            rows_read=self.rows_read,
            rejected_lines=self.rejected_lines,
            sha256=sha256,
        )
