"""Adapter for The Marshall Project's state file ``crime_rates_1985_2017_ucr_us_states.csv``.

Also reads the companion ``..._us_whole.csv`` (state "All" = the United States). Only the ``.total``
count columns are loaded; rates are recomputed from counts and population downstream.
"""

from __future__ import annotations

from pathlib import Path

from crimelens.sources.base import CsvRecords, ParsedFile, Progress, RowBuilder, set_rape
from crimelens.sources.states import resolve_state

__all__ = ["FORMAT", "HEADER_SIGNATURE", "parse"]

FORMAT = "marshall-states"
_COUNTS = {
    "violent.crime.total": "violent_crime",
    "murder.and.nonnegligent.manslaughter.total": "homicide",
    "robbery.total": "robbery",
    "aggravated.assault.total": "aggravated_assault",
    "property.crime.total": "property_crime",
    "burglary.total": "burglary",
    "larceny.theft.total": "larceny",
    "motor.vehicle.theft.total": "motor_vehicle_theft",
}
REQUIRED = ("year", "state", "population", "legacy.rape.total", "revised.rape.total", *_COUNTS)
HEADER_SIGNATURE = frozenset({"violent.crime.total", "legacy.rape.total", "state"})


def parse(path: Path, *, encoding: str = "utf-8", progress: Progress | None = None) -> ParsedFile:
    with CsvRecords(path, encoding=encoding, progress=progress) as records:
        records.require(REQUIRED, FORMAT)
        b = RowBuilder(records.name, FORMAT, source_columns={"violent_crime": "violent.crime.total"})
        i_state, i_year, i_pop = records.index("state"), records.index("year"), records.index("population")
        i_legacy, i_revised = records.index("legacy.rape.total"), records.index("revised.rape.total")
        counts = [(records.index(src), src, dst) for src, dst in _COUNTS.items()]
        for line, rec in records:
            b.start_row()
            state_name = rec[i_state].strip()
            place = resolve_state(state_name) if state_name else None
            if place is None:
                b.error(line, "state", "unknown_state", f"expected a US state name, got {state_name!r}")
                continue
            jid, name, kind, state = place
            row: dict[str, object] = {
                "jurisdiction_id": jid,
                "year": b.year(line, "year", rec[i_year]),
                "population": b.population(line, "population", rec[i_pop]),
                "months_reported": None,
            }
            for i, src, dst in counts:
                row[dst] = b.count(line, src, rec[i])
            legacy = b.count(line, "legacy.rape.total", rec[i_legacy])
            revised = b.count(line, "revised.rape.total", rec[i_revised])
            set_rape(row, legacy, revised)
            b.add_jurisdiction(jid, name, kind, state, None)
            b.finish_row(line, row, "state")
    return b.result(path, FORMAT, records.sha256)
