"""The jurisdiction-year panel every jurisdiction analysis starts from (one query, parameters bound)."""

from __future__ import annotations

import duckdb
import pandas as pd

from crimelens.errors import DataError
from crimelens.schema import COUNT_COLUMNS
from crimelens.warehouse import resolve_source

__all__ = ["check_offence", "panel"]

_PANEL_SQL = """
SELECT jy.jurisdiction_id, j.name, j.kind, j.state, jy.year, jy.population, jy.months_reported,
       coalesce(jy.months_reported < 12, false) AS partial,
       jy.violent_crime, jy.homicide, jy.rape, jy.robbery, jy.aggravated_assault, jy.property_crime,
       jy.burglary, jy.larceny, jy.motor_vehicle_theft, jy.rape_definition, jy.rape_legacy, jy.load_id
FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)
WHERE jy.source = ?
ORDER BY jy.jurisdiction_id, jy.year
"""


def check_offence(offence: str) -> str:
    if offence not in COUNT_COLUMNS:
        raise DataError(f"offence {offence!r} is not known; allowed: {', '.join(COUNT_COLUMNS)}")
    return offence


def panel(con: duckdb.DuckDBPyConnection, source: str | None = None) -> tuple[str, pd.DataFrame]:
    """(resolved source, every jurisdiction-year row of it with names and kinds).

    ``kind == 'nation'`` rows are national totals: analyses that compare jurisdictions leave them out.
    Count columns are nullable integers (missing stays missing, never zero).
    """
    src = resolve_source(con, source)
    frame = con.execute(_PANEL_SQL, [src]).df()
    for col in ("population", "months_reported", *COUNT_COLUMNS, "rape_legacy", "year"):
        frame[col] = frame[col].astype("Int64")
    return src, frame
