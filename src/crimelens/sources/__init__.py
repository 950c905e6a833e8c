"""Source adapters: one per input format, each mapping a file into the canonical tables.

``read(path, fmt)`` parses a jurisdiction-year file with the named adapter; with no format it is detected from
the header. Incident formats (``chicago``, ``toronto-mci``, ``houston``, ``nij-portland``, and ``mapped-csv``
with an incident mapping) load through :func:`crimelens.warehouse.load_incidents`;
:func:`resolve_format` tells which kind a file is.
"""

from __future__ import annotations

from pathlib import Path

from crimelens.errors import ConfigError
from crimelens.sources import mapped_csv, registry
from crimelens.sources.base import Issue, ParsedFile, Progress

__all__ = ["FORMATS", "INCIDENT_FORMATS", "Issue", "ParsedFile", "detect_format", "read", "resolve_format"]

#: Every format and what it is (from the one table, :mod:`crimelens.sources.registry`).
FORMATS: dict[str, str] = {f.name: f.description for f in registry.REGISTRY.values()}
#: The formats that can hold incidents.
INCIDENT_FORMATS: dict[str, str] = {name: FORMATS[name] for name in registry.incident_formats()}


def detect_format(path: Path, encoding: str = "utf-8") -> str:
    """Name the format whose header signature the file's header matches (plain or gzip files)."""
    return registry.detect(path, registry.file_header(path, encoding))


def read(
    path: Path,
    fmt: str | None = None,
    *,
    mapping: Path | None = None,
    encoding: str | None = None,
    progress: Progress | None = None,
) -> ParsedFile:
    """Parse the jurisdiction-year file ``path`` with the adapter for ``fmt`` (detected when None)."""
    if fmt is None:
        fmt = mapped_csv.FORMAT if mapping is not None else detect_format(path, encoding or "utf-8")
    if fmt == mapped_csv.FORMAT:
        if mapping is None:
            raise ConfigError("format mapped-csv needs a mapping file: pass --mapping FILE.toml")
        return mapped_csv.parse(path, mapping=mapped_csv.read_mapping(mapping), encoding=encoding, progress=progress)
    if mapping is not None:
        raise ConfigError(f"--mapping is only used with --format mapped-csv, not {fmt}")
    found = registry.get(fmt)
    if found.parse is None:
        raise ConfigError(f"format {fmt} holds incidents: load it with crimelens.warehouse.load_incidents")
    return found.parse(path, encoding=encoding or "utf-8", progress=progress)


def resolve_format(path: Path, fmt: str | None, mapping: Path | None, encoding: str | None = None) -> tuple[str, bool]:
    """(format, whether it holds incidents) for a file about to be ingested; detected when ``fmt`` is None."""
    if fmt is None:
        fmt = mapped_csv.FORMAT if mapping is not None else detect_format(path, encoding or "utf-8")
    if fmt == mapped_csv.FORMAT:
        if mapping is None:
            raise ConfigError("format mapped-csv needs a mapping file: pass --mapping FILE.toml")
        return fmt, mapped_csv.mapping_grain(mapping) == "incidents"
    return fmt, registry.get(fmt).grain == "incidents"
