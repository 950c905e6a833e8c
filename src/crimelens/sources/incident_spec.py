"""What an incident format is, and how its raw file is opened: the pieces every incident adapter shares.

An adapter (``chicago``, ``toronto``, ``houston``, ``nij_portland``, ``mapped_csv``) describes its format
as an :class:`IncidentSpec` (SQL expressions over the raw text columns), with a versioned :class:`Taxonomy`
and the city's :class:`Extent`; :mod:`crimelens.sources.incidents` loads files with it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb

from crimelens.errors import ConfigError, SchemaError, SourceError
from crimelens.schema import OFFENCES, TIME_PRECISIONS

__all__ = [
    "MAX_LINE_BYTES",
    "ByteScan",
    "Extent",
    "IncidentSpec",
    "Taxonomy",
    "check_file",
    "file_sha256",
    "is_gzip",
    "normalise_area_id",
    "open_binary",
    "q",
    "raw_lines",
    "read_error",
    "read_header",
    "read_taxonomy",
    "require_columns",
    "scan_file",
    "sql_area_id",
]


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


# -- reading the raw file ------------------------------------------------------------------------------
def is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_binary(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")  # type: ignore[return-value]


def check_file(path: Path) -> None:
    """A path that can be read as a file: it exists and is a regular file (not a folder, pipe or device, which
    would make a read wait for a writer or never end)."""
    import stat

    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if path.is_dir():
        raise SourceError(f"{path}: is a folder; give the path of a CSV file (plain or .gz)")
    if not stat.S_ISREG(path.stat().st_mode):
        raise SourceError(
            f"{path}: is not a regular file (a pipe, device or socket); save the data to a CSV file (plain or .gz) "
            "and give its path"
        )


#: The longest line an incident file may hold (DuckDB's max_line_size is set to it): longer lines are refused
#: with their line number, never dropped. 8 MiB is hundreds of times the longest real record seen.
MAX_LINE_BYTES = 8 << 20


@dataclass(frozen=True)
class ByteScan:
    """What one pass over a file's bytes found: its sha256 (of the file as stored) and, in the decompressed text,
    the first NUL byte, the first over-long line, and the first line whose ending differs from line 1's."""

    sha256: str
    nul: tuple[int, int] | None = None  # (line, column)
    long_line: tuple[int, int] | None = None  # (line, bytes so far)
    mixed_endings: int | None = None  # the first line ending otherwise than line 1 (LF against CRLF)

    def problem(self, name: str) -> SourceError | None:
        """The one-line error for a NUL byte or an over-long line (both make rows unreadable), or None."""
        if self.nul is not None:
            line, col = self.nul
            return SourceError(
                f"{name}, line {line}, column {col}: NUL byte found; this does not look like a text CSV file "
                "(a damaged or padded download?); nothing was loaded"
            )
        if self.long_line is not None:
            line, size = self.long_line
            return SourceError(
                f"{name}, line {line}, column 1: the line is longer than {MAX_LINE_BYTES >> 20} MB "
                f"({size:,} bytes read without a line end): not a valid record (a damaged file?); nothing was loaded"
            )
        return None


def _blocks(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """The blocks until a damaged gzip stream ends them (the reader reports that, with its line, on its own)."""
    try:
        yield from blocks
    except (EOFError, OSError, zlib.error):
        return


def scan_file(path: Path, *, chunk: int = 1 << 20) -> ByteScan:
    """One pass: the sha256 of the stored bytes, and NUL bytes, over-long lines and mixed line endings in the
    (decompressed) text, each with its line. Stops at the first NUL or over-long line (the file is refused)."""
    sha = file_sha256(path)
    lines = 0  # complete lines before the current block
    since = 0  # bytes since the last line end
    first_crlf: bool | None = None
    mixed: int | None = None
    prev_cr = False
    try:
        text = open_binary(path)
        blocks = iter(lambda: text.read(chunk), b"")
    except OSError:
        return ByteScan(sha)
    with text:
        for block in _blocks(blocks):
            nul = block.find(b"\x00")
            if nul >= 0:
                before = block.rfind(b"\n", 0, nul)
                col = (since + nul + 1) if before < 0 else nul - before
                return ByteScan(sha, nul=(lines + block.count(b"\n", 0, nul) + 1, col))
            first_nl = block.find(b"\n")
            if first_nl < 0:
                since += len(block)
                if since > MAX_LINE_BYTES:
                    return ByteScan(sha, long_line=(lines + 1, since))
                prev_cr = block.endswith(b"\r")
                continue
            if since + first_nl > MAX_LINE_BYTES:
                return ByteScan(sha, long_line=(lines + 1, since + first_nl))
            n_lf = block.count(b"\n")
            n_crlf = block.count(b"\r\n") + (1 if prev_cr and block.startswith(b"\n") else 0)
            if first_crlf is None:
                first_crlf = (block[first_nl - 1 : first_nl] == b"\r") if first_nl else prev_cr
            if mixed is None and n_crlf != (n_lf if first_crlf else 0):
                for k, piece in enumerate(block.split(b"\n")[:-1]):
                    ends_cr = piece.endswith(b"\r") or (k == 0 and not piece and prev_cr)
                    if ends_cr != first_crlf:
                        mixed = lines + k + 1
                        break
            lines += n_lf
            since = len(block) - block.rfind(b"\n") - 1
            prev_cr = block.endswith(b"\r")
    return ByteScan(sha, mixed_endings=mixed)


_DELIMITER_HINTS = {";": "semicolons", "\t": "tabs", "|": "pipes", ",": "commas"}


def read_header(path: Path, *, delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """The header row's column names (BOM and surrounding spaces removed), with clear errors."""
    check_file(path)
    name = path.name
    try:
        with open_binary(path) as fh:
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
    if "\x00" in text:
        raise SourceError(
            f"{name}, line 1, column {text.index(chr(0)) + 1}: NUL byte found; this does not look like a text CSV "
            "file (a damaged or padded download?)"
        )
    try:
        header = [h.strip() for h in next(csv.reader([text.rstrip("\r\n")], delimiter=delimiter))]
    except csv.Error:
        raise SchemaError(
            f"{name}, line 1, column 1: a header field is longer than {csv.field_size_limit():,} characters; this "
            "does not look like a CSV header (a damaged file, or not a CSV file?)"
        ) from None
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


def raw_lines(path: Path) -> Iterator[bytes]:
    """The file's raw lines (decompressed); raises EOFError on a truncated gzip stream."""
    with open_binary(path) as fh:
        yield from fh


def read_error(path: Path, exc: duckdb.Error, encoding: str) -> SourceError | SchemaError:
    """Turn a DuckDB read_csv error into one analyst-readable line naming file and line."""
    msg = str(exc)
    name = path.name
    found = re.search(r"Line: (\d+)", msg)
    line = int(found.group(1)) if found else None
    if "gzip" in msg.lower() or "compress" in msg.lower():
        complete = 0
        try:
            for complete, _ in enumerate(raw_lines(path), start=1):  # noqa: B007
                pass
        except (EOFError, OSError, zlib.error):
            return SourceError(
                f"{name}, line {complete + 1}: the gzip data ends early or is corrupt after {complete:,} complete "
                "lines (truncated download?); nothing was loaded"
            )
        return SourceError(f"{name}: cannot be decompressed ({msg.splitlines()[0]}); nothing was loaded")
    if "unicode" in msg.lower() or "utf" in msg.lower():
        for number, raw in enumerate(raw_lines(path), start=1):
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
