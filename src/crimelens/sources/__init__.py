"""Source adapters: one per input format, each mapping a file into the canonical tables.

``read(path, fmt)`` parses a jurisdiction-year file with the named adapter; with no format it is detected from
the header. Incident formats (``chicago``, ``toronto-mci``, ``houston``, ``nij-portland``, and ``mapped-csv``
with an incident mapping) load through :func:`crimelens.warehouse.load_incidents`;
:func:`resolve_format` tells which kind a file is.
"""

from __future__ import annotations

from pathlib import Path

from crimelens.errors import ConfigError, SourceError
from crimelens.sources import (
    chicago,
    fbi_estimates,
    houston,
    mapped_csv,
    marshall_states,
    nij_portland,
    toronto,
    ucr_marshall,
)
from crimelens.sources.base import CsvRecords, Issue, ParsedFile, Progress
from crimelens.sources.incidents import INCIDENT_FORMATS, read_header

__all__ = ["FORMATS", "INCIDENT_FORMATS", "Issue", "ParsedFile", "detect_format", "read", "resolve_format"]

#: Formats with a fixed header that can be detected, and their header signature.
_DETECTABLE = {
    ucr_marshall.FORMAT: ucr_marshall.HEADER_SIGNATURE,
    fbi_estimates.FORMAT: fbi_estimates.HEADER_SIGNATURE,
    marshall_states.FORMAT: marshall_states.HEADER_SIGNATURE,
}
FORMATS: dict[str, str] = {
    ucr_marshall.FORMAT: "The Marshall Project's UCR file for 68 large agencies (ucr_crime_1975_2015.csv)",
    fbi_estimates.FORMAT: "FBI Crime Data Explorer estimated crimes by state (estimated_crimes_1979_2019.csv)",
    marshall_states.FORMAT: "The Marshall Project's state file (crime_rates_1985_2017_ucr_us_states.csv)",
    mapped_csv.FORMAT: "any jurisdiction-year or incident CSV described by a TOML mapping file (--mapping)",
    **{f: d for f, d in INCIDENT_FORMATS.items() if f != mapped_csv.FORMAT},
}
_INCIDENT_ADAPTERS = (chicago, toronto, houston, nij_portland)


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def detect_format(path: Path, encoding: str = "utf-8") -> str:
    """Name the format whose header signature the file's header matches (plain or gzip files)."""
    if path.is_file() and _is_gzip(path):
        header = set(read_header(path, encoding=encoding))
    else:
        with CsvRecords(path, encoding=encoding) as records:
            header = set(records.header)
    matches = [fmt for fmt, signature in _DETECTABLE.items() if signature <= header]
    matches += [str(m.FORMAT) for m in _INCIDENT_ADAPTERS if m.matches(header)]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(sorted(header)[:8])
    raise SourceError(
        f"{path.name}, line 1, column 1: cannot tell the format from the header ({shown}, ...); "
        f"pass --format, one of: {', '.join(FORMATS)}"
    )


def read(
    path: Path,
    fmt: str | None = None,
    *,
    mapping: Path | None = None,
    encoding: str | None = None,
    progress: Progress | None = None,
) -> ParsedFile:
    """Parse ``path`` with the adapter for ``fmt`` (detected when None)."""
    if fmt is None:
        fmt = mapped_csv.FORMAT if mapping is not None else detect_format(path, encoding or "utf-8")
    if fmt == mapped_csv.FORMAT:
        if mapping is None:
            raise ConfigError("format mapped-csv needs a mapping file: pass --mapping FILE.toml")
        return mapped_csv.parse(path, mapping=mapped_csv.read_mapping(mapping), encoding=encoding, progress=progress)
    if mapping is not None:
        raise ConfigError(f"--mapping is only used with --format mapped-csv, not {fmt}")
    adapters = {
        ucr_marshall.FORMAT: ucr_marshall.parse,
        fbi_estimates.FORMAT: fbi_estimates.parse,
        marshall_states.FORMAT: marshall_states.parse,
    }
    if fmt in INCIDENT_FORMATS:
        raise ConfigError(f"format {fmt} holds incidents: load it with crimelens.warehouse.load_incidents")
    if fmt not in adapters:
        raise ConfigError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    return adapters[fmt](path, encoding=encoding or "utf-8", progress=progress)


def resolve_format(path: Path, fmt: str | None, mapping: Path | None, encoding: str | None = None) -> tuple[str, bool]:
    """(format, whether it holds incidents) for a file about to be ingested; detected when ``fmt`` is None."""
    if fmt is None:
        fmt = mapped_csv.FORMAT if mapping is not None else detect_format(path, encoding or "utf-8")
    if fmt == mapped_csv.FORMAT:
        if mapping is None:
            raise ConfigError("format mapped-csv needs a mapping file: pass --mapping FILE.toml")
        return fmt, mapped_csv.mapping_grain(mapping) == "incidents"
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    return fmt, fmt in INCIDENT_FORMATS
