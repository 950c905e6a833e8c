"""Adapter for the FBI Crime Data Explorer ``estimated_crimes_1979_2019.csv`` (states + national row).

An empty ``state_abbr`` is the United States total. Where the revised rape count exists (2013 on) it
becomes the canonical ``rape`` (definition 'revised') and the legacy count is kept in ``rape_legacy``.
"""

from __future__ import annotations

from pathlib import Path

from crimelens.sources.base import CsvRecords, ParsedFile, Progress, RowBuilder, set_rape
from crimelens.sources.states import STATE_NAMES, resolve_state

__all__ = ["FORMAT", "HEADER_SIGNATURE", "parse"]

FORMAT = "fbi-estimates"
REQUIRED = (
    "year", "state_abbr", "state_name", "population", "violent_crime", "homicide", "rape_legacy",
    "rape_revised", "robbery", "aggravated_assault", "property_crime", "burglary", "larceny",
    "motor_vehicle_theft",
)  # fmt: skip
HEADER_SIGNATURE = frozenset({"state_abbr", "rape_legacy", "rape_revised"})
_SAME = (
    "violent_crime", "homicide", "robbery", "aggravated_assault", "property_crime", "burglary",
    "larceny", "motor_vehicle_theft",
)  # fmt: skip


def parse(path: Path, *, encoding: str = "utf-8", progress: Progress | None = None) -> ParsedFile:
    with CsvRecords(path, encoding=encoding, progress=progress) as records:
        records.require(REQUIRED, FORMAT)
        b = RowBuilder(records.name, FORMAT)
        i_abbr, i_year, i_pop = records.index("state_abbr"), records.index("year"), records.index("population")
        i_legacy, i_revised = records.index("rape_legacy"), records.index("rape_revised")
        same = [(records.index(col), col) for col in _SAME]
        for line, rec in records:
            b.start_row()
            abbr = rec[i_abbr].strip()
            place = resolve_state(abbr) if abbr == "" or abbr.upper() in STATE_NAMES else None
            if place is None:
                b.error(line, "state_abbr", "unknown_state", f"expected a US state abbreviation, got {abbr!r}")
                continue
            jid, name, kind, state = place
            row: dict[str, object] = {
                "jurisdiction_id": jid,
                "year": b.year(line, "year", rec[i_year]),
                "population": b.population(line, "population", rec[i_pop]),
                "months_reported": None,
            }
            for i, col in same:
                row[col] = b.count(line, col, rec[i])
            legacy = b.count(line, "rape_legacy", rec[i_legacy])
            revised = b.count(line, "rape_revised", rec[i_revised])
            set_rape(row, legacy, revised)
            b.add_jurisdiction(jid, name, kind, state, None)
            b.finish_row(line, row, "state_abbr")
    return b.result(path, FORMAT, records.sha256)
