"""Adapter for The Marshall Project's ``ucr_crime_1975_2015.csv`` (68 large agencies + a national row-set).

Agencies are keyed by their FBI ORI; the "National" rows become the nation ``US``. Rape counts from 2013
on follow the FBI's revised definition (the source README notes the jump).
"""

from __future__ import annotations

from pathlib import Path

from crimelens.sources.base import CsvRecords, ParsedFile, Progress, RowBuilder
from crimelens.sources.states import NATION_ID

__all__ = ["FORMAT", "HEADER_SIGNATURE", "parse"]

FORMAT = "ucr-marshall"
REQUIRED = (
    "ORI", "year", "department_name", "total_pop", "homs_sum", "rape_sum", "rob_sum", "agg_ass_sum",
    "violent_crime", "months_reported",
)  # fmt: skip
HEADER_SIGNATURE = frozenset({"department_name", "homs_sum", "agg_ass_sum"})
_COUNTS = {
    "homs_sum": "homicide",
    "rape_sum": "rape",
    "rob_sum": "robbery",
    "agg_ass_sum": "aggravated_assault",
    "violent_crime": "violent_crime",
}
REVISED_RAPE_FROM = 2013


def parse(path: Path, *, encoding: str = "utf-8", progress: Progress | None = None) -> ParsedFile:
    with CsvRecords(path, encoding=encoding, progress=progress) as records:
        records.require(REQUIRED, FORMAT)
        b = RowBuilder(records.name, FORMAT)
        i_ori, i_year, i_name = records.index("ORI"), records.index("year"), records.index("department_name")
        i_pop, i_months = records.index("total_pop"), records.index("months_reported")
        counts = [(records.index(src), src, dst) for src, dst in _COUNTS.items()]
        for line, rec in records:
            b.start_row()
            name = rec[i_name].strip()
            ori = rec[i_ori].strip()
            if name.lower() == "national":
                jid, kind, state, ori_value = NATION_ID, "nation", None, None
                name = "United States"
            elif ori in b.na_values:
                b.error(line, "ORI", "missing_key", f"expected an agency ORI for {name!r}, got an empty value")
                continue
            else:
                jid, state, ori_value = ori, ori[:2], ori
                kind = "county" if "county" in name.lower() else "city"
            if not name:
                b.error(line, "department_name", "missing_key", "expected a department name, got an empty value")
            year = b.year(line, "year", rec[i_year])
            row: dict[str, object] = {
                "jurisdiction_id": jid,
                "year": year,
                "population": b.population(line, "total_pop", rec[i_pop]),
                "months_reported": b.months(line, "months_reported", rec[i_months]),
            }
            for i, src, dst in counts:
                row[dst] = b.count(line, src, rec[i])
            row["rape_definition"] = None if year is None else ("revised" if year >= REVISED_RAPE_FROM else "legacy")
            b.add_jurisdiction(jid, name, kind, state, ori_value)
            b.finish_row(line, row, "department_name")
    return b.result(path, FORMAT, records.sha256)
