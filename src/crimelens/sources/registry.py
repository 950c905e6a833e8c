"""The one table of input formats: name, grain, header detector, reader, description and caveats.

Every place that needs to know the formats (detection from a header, the jurisdiction-year reader, the incident
mapping, ``crimelens formats``, error messages) reads :data:`REGISTRY`; a new format is one adapter module and
one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
from crimelens.sources.base import CsvRecords, ParsedFile
from crimelens.sources.incident_spec import IncidentSpec, is_gzip, read_header

__all__ = ["REGISTRY", "Format", "detect", "file_header", "get", "incident_formats", "names"]

Grain = Literal["jurisdiction-years", "incidents", "mapped"]


@dataclass(frozen=True)
class Format:
    """One input format.

    ``matches``: the header detector (None: the format is never detected, e.g. mapped-csv needs its mapping);
    ``parse``: the jurisdiction-year reader; ``spec``: the incident mapping for a header; ``caveats``: what a
    reader of results built on this source should know.
    """

    name: str
    grain: Grain
    description: str
    matches: Callable[[set[str]], bool] | None = None
    parse: Callable[..., ParsedFile] | None = None
    spec: Callable[[list[str]], IncidentSpec] | None = None
    caveats: tuple[str, ...] = ()


def _signature(signature: frozenset[str]) -> Callable[[set[str]], bool]:
    return lambda header: signature <= header


REGISTRY: dict[str, Format] = {
    f.name: f
    for f in [
        Format(
            ucr_marshall.FORMAT,
            "jurisdiction-years",
            "The Marshall Project's UCR file for 68 large agencies (ucr_crime_1975_2015.csv)",
            _signature(ucr_marshall.HEADER_SIGNATURE),
            parse=ucr_marshall.parse,
            caveats=(
                "each row is one police agency's year as reported to the FBI's Uniform Crime Reporting program "
                "(recorded offences, not estimates); the 'National' rows are the FBI's national totals",
                "agencies reporting fewer than 12 months are flagged as partial years",
            ),
        ),
        Format(
            fbi_estimates.FORMAT,
            "jurisdiction-years",
            "FBI Crime Data Explorer estimated crimes by state (estimated_crimes_1979_2019.csv)",
            _signature(fbi_estimates.HEADER_SIGNATURE),
            parse=fbi_estimates.parse,
            caveats=(
                "each row is a state's (or the nation's) year of offences estimated by the FBI",
                "FBI estimates fill in agencies that did not report: they are modelled, not counted",
            ),
        ),
        Format(
            marshall_states.FORMAT,
            "jurisdiction-years",
            "The Marshall Project's state file (crime_rates_1985_2017_ucr_us_states.csv)",
            _signature(marshall_states.HEADER_SIGNATURE),
            parse=marshall_states.parse,
            caveats=(
                "each row is a state's year of offences reported to the FBI, as compiled by the Marshall Project; "
                "the whole-US rows are national totals",
            ),
        ),
        Format(
            mapped_csv.FORMAT,
            "mapped",
            "any jurisdiction-year or incident CSV described by a TOML mapping file (--mapping)",
        ),
        Format(
            chicago.FORMAT,
            "incidents",
            "City of Chicago 'Crimes - 2001 to present' export (full schema with ID, or the slim extract)",
            chicago.matches,
            spec=chicago.spec,
            caveats=(
                "each row is one crime recorded by the Chicago Police Department (one row per incident, whatever "
                "the number of victims)",
                "locations are moved to the block for privacy",
            ),
        ),
        Format(
            toronto.FORMAT,
            "incidents",
            "Toronto Police Service Major Crime Indicators (MCI) table",
            toronto.matches,
            spec=toronto.spec,
            caveats=(
                "each row is one Major Crime Indicator offence recorded by the Toronto Police Service (an occurrence "
                "with several offences or victims can give several rows)",
                "'Theft Over' covers only thefts over $5,000: smaller thefts are not in the data",
                "locations are offset to the nearest intersection for privacy",
            ),
        ),
        Format(
            houston.FORMAT,
            "incidents",
            "Houston Police Department crime incidents (ggmap `crime` data, 2010)",
            houston.matches,
            spec=houston.spec,
            caveats=(
                "each row is one offence recorded by the Houston Police Department, geocoded by the ggmap authors",
            ),
        ),
        Format(
            nij_portland.FORMAT,
            "incidents",
            "Portland Police Bureau calls for service, NIJ Real-Time Crime Forecasting Challenge format",
            nij_portland.matches,
            spec=nij_portland.spec,
            caveats=(
                "each row is a call for service to the Portland Police Bureau, not a recorded crime: a call may "
                "report no crime, or the same one twice",
            ),
        ),
    ]
}


def names() -> list[str]:
    """Every format name, in the order of the table."""
    return list(REGISTRY)


def incident_formats() -> list[str]:
    """The formats that can hold incidents (mapped-csv included)."""
    return [f.name for f in REGISTRY.values() if f.grain in ("incidents", "mapped")]


def get(name: str) -> Format:
    """The format called ``name`` (ConfigError naming the allowed ones otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}; allowed: {', '.join(REGISTRY)}") from None


def file_header(path: Path, encoding: str = "utf-8") -> set[str]:
    """The column names of a CSV file, plain or gzip (read with the checks of each reader)."""
    if path.is_file() and is_gzip(path):
        return set(read_header(path, encoding=encoding))
    with CsvRecords(path, encoding=encoding) as records:
        return set(records.header)


def detect(path: Path, header: set[str], *, grain: Grain | None = None) -> str:
    """The one format (of ``grain``, when given) whose detector matches ``header``; SourceError otherwise."""
    found = [
        f.name
        for f in REGISTRY.values()
        if f.matches is not None and (grain is None or f.grain == grain) and f.matches(header)
    ]
    if len(found) == 1:
        return found[0]
    shown = ", ".join(sorted(header)[:8])
    what = "the incident format" if grain == "incidents" else "the format"
    allowed = incident_formats() if grain == "incidents" else names()
    raise SourceError(
        f"{path.name}, line 1, column 1: cannot tell {what} from the header ({shown}, ...); "
        f"pass --format, one of: {', '.join(allowed)}"
    )
