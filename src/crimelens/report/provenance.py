"""Where the report's numbers come from, and what is known to be wrong with them.

Everything here is read from the warehouse: the ``loads`` table (file, sha256, rows read/loaded/rejected),
``load_issues`` (problems recorded at ingest), and ``jurisdiction_year`` itself (years covered, partial
reporting, gaps, the rape definition each year uses). Parameters are always bound, never formatted.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from crimelens.schema import MONTHS_UNSTATED_SQL

__all__ = ["Provenance", "RapeDefinitionChange", "provenance"]

_LOADS_SQL = """
SELECT load_id, format, file_name, sha256, rows_read, rows_loaded, rows_rejected, warnings,
       started_at, finished_at, status, replaced_by
FROM loads WHERE source = ? ORDER BY load_id
"""

_COVERAGE_SQL = """
SELECT load_id, min(year) AS first_year, max(year) AS last_year, count(DISTINCT year) AS years,
       count(DISTINCT jurisdiction_id) AS jurisdictions, count(*) AS rows
FROM jurisdiction_year WHERE source = ? GROUP BY load_id ORDER BY load_id
"""

_PARTIAL_SQL = """
SELECT j.name AS jurisdiction, jy.jurisdiction_id, jy.year, jy.months_reported
FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)
WHERE jy.source = ? AND jy.months_reported BETWEEN 1 AND 11
ORDER BY jy.year, j.name
"""

_UNKNOWN_MONTHS_SQL = f"SELECT count(*) FROM jurisdiction_year WHERE source = ? AND {MONTHS_UNSTATED_SQL}"

_ISSUES_SQL = """
SELECT i.severity, i.code, count(*) AS count
FROM load_issues i JOIN loads l USING (load_id)
WHERE l.source = ? AND l.status = 'loaded'
GROUP BY i.severity, i.code ORDER BY count DESC, i.code
"""

_ISSUE_EXAMPLES_SQL = """
SELECT code, line, column_name, message FROM (
    SELECT i.code, i.line, i.column_name, i.message,
           row_number() OVER (PARTITION BY i.code ORDER BY i.line) AS n
    FROM load_issues i JOIN loads l USING (load_id)
    WHERE l.source = ? AND l.status = 'loaded'
) WHERE n <= ? ORDER BY code, line
"""

_RAPE_DEF_SQL = """
SELECT rape_definition, min(year) AS first_year, max(year) AS last_year, count(DISTINCT year) AS years
FROM jurisdiction_year WHERE source = ? AND rape_definition IS NOT NULL
GROUP BY rape_definition ORDER BY first_year
"""

# Rape counts summed over the jurisdictions reporting rape in both the last legacy and first revised year
# (the nation row alone when the dataset has one), to show the size of the definitional jump.
_RAPE_JUMP_SQL = """
WITH yearly AS (
    SELECT jy.jurisdiction_id, j.kind, jy.year, jy.rape
    FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)
    WHERE jy.source = ? AND jy.rape IS NOT NULL AND jy.year IN (?, ?)
), scope AS (
    SELECT * FROM yearly
    WHERE (kind = 'nation') = (SELECT count(*) > 0 FROM yearly WHERE kind = 'nation')
), both_years AS (
    SELECT jurisdiction_id FROM scope GROUP BY jurisdiction_id HAVING count(DISTINCT year) = 2
)
SELECT sum(rape) FILTER (WHERE year = ?) AS before, sum(rape) FILTER (WHERE year = ?) AS after,
       count(DISTINCT jurisdiction_id) AS jurisdictions, bool_or(kind = 'nation') AS national
FROM scope WHERE jurisdiction_id IN (SELECT jurisdiction_id FROM both_years)
"""

_GAPS_SQL = """
WITH span AS (SELECT min(year) AS y0, max(year) AS y1 FROM jurisdiction_year WHERE source = ?),
per AS (
    SELECT jy.jurisdiction_id, j.name, j.kind, count(*) AS years_present
    FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)
    WHERE jy.source = ? GROUP BY ALL
)
SELECT name AS jurisdiction, jurisdiction_id, (span.y1 - span.y0 + 1) - years_present AS years_missing
FROM per, span WHERE years_present < span.y1 - span.y0 + 1
ORDER BY years_missing DESC, name
"""

_KINDS_SQL = """
SELECT j.kind, count(DISTINCT jy.jurisdiction_id) AS jurisdictions
FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)
WHERE jy.source = ? GROUP BY j.kind ORDER BY jurisdictions DESC, j.kind
"""

_SMALLEST_SQL = """
SELECT j.name, jy.population
FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)
WHERE jy.source = ? AND jy.year = ? AND j.kind <> 'nation' AND jy.population IS NOT NULL
ORDER BY jy.population, j.name LIMIT 1
"""

_SUMMARY_SQL = """
SELECT min(year), max(year), count(DISTINCT year), count(DISTINCT jurisdiction_id)
       FILTER (WHERE jurisdiction_id NOT IN (SELECT jurisdiction_id FROM jurisdictions WHERE kind = 'nation')),
       count(*), count(*) FILTER (WHERE violent_crime IS NULL)
FROM jurisdiction_year WHERE source = ?
"""


@dataclass(frozen=True)
class RapeDefinitionChange:
    """Recorded rape in the last legacy year and the first revised year, over the same jurisdictions."""

    legacy_year: int
    revised_year: int
    before: int
    after: int
    jurisdictions: int
    national: bool

    @property
    def change_pct(self) -> float | None:
        return None if self.before == 0 else 100.0 * (self.after - self.before) / self.before


@dataclass(frozen=True)
class Provenance:
    """The provenance and data-quality facts of one dataset (source) in the warehouse."""

    source: str
    first_year: int | None
    last_year: int | None
    n_years: int
    n_jurisdictions: int
    n_rows: int
    missing_violent: int
    loads: pd.DataFrame
    coverage: pd.DataFrame
    partial_years: pd.DataFrame
    unknown_months: int
    gaps: pd.DataFrame
    issues_by_code: pd.DataFrame
    issue_examples: pd.DataFrame
    rape_definitions: pd.DataFrame
    rape_change: RapeDefinitionChange | None
    kinds: pd.DataFrame
    smallest: tuple[str, int] | None

    @property
    def current_loads(self) -> pd.DataFrame:
        return self.loads[self.loads["status"] == "loaded"]

    def definition_years(self, definition: str) -> tuple[int, int] | None:
        rows = self.rape_definitions[self.rape_definitions["rape_definition"] == definition]
        if rows.empty:
            return None
        return int(rows["first_year"].iloc[0]), int(rows["last_year"].iloc[0])


def _int(value: object) -> int | None:
    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return None
    return int(str(value))


def provenance(
    con: duckdb.DuckDBPyConnection, source: str, *, year: int | None = None, examples_per_code: int = 3
) -> Provenance:
    """Collect the provenance of ``source``: loads, coverage, partial years, gaps, issues, definitions.

    ``year`` is the year the smallest jurisdiction is looked up in (default: the latest).
    """
    summary = con.execute(_SUMMARY_SQL, [source]).fetchone()
    assert summary is not None
    first_year, last_year = _int(summary[0]), _int(summary[1])
    loads = con.execute(_LOADS_SQL, [source]).df()
    loads.insert(4, "sha256_short", loads["sha256"].str.slice(0, 12))
    unknown = con.execute(_UNKNOWN_MONTHS_SQL, [source]).fetchone()
    rape_defs = con.execute(_RAPE_DEF_SQL, [source]).df()
    return Provenance(
        source=source,
        first_year=first_year,
        last_year=last_year,
        n_years=_int(summary[2]) or 0,
        n_jurisdictions=_int(summary[3]) or 0,
        n_rows=_int(summary[4]) or 0,
        missing_violent=_int(summary[5]) or 0,
        loads=loads,
        coverage=con.execute(_COVERAGE_SQL, [source]).df(),
        partial_years=con.execute(_PARTIAL_SQL, [source]).df(),
        unknown_months=int(unknown[0]) if unknown else 0,
        gaps=con.execute(_GAPS_SQL, [source, source]).df(),
        issues_by_code=con.execute(_ISSUES_SQL, [source]).df(),
        issue_examples=con.execute(_ISSUE_EXAMPLES_SQL, [source, examples_per_code]).df(),
        rape_definitions=rape_defs,
        rape_change=_rape_change(con, source, rape_defs),
        kinds=con.execute(_KINDS_SQL, [source]).df(),
        smallest=_smallest(con, source, last_year if year is None else year),
    )


def _smallest(con: duckdb.DuckDBPyConnection, source: str, year: int | None) -> tuple[str, int] | None:
    if year is None:
        return None
    row = con.execute(_SMALLEST_SQL, [source, year]).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def _rape_change(con: duckdb.DuckDBPyConnection, source: str, defs: pd.DataFrame) -> RapeDefinitionChange | None:
    legacy = defs[defs["rape_definition"] == "legacy"]
    revised = defs[defs["rape_definition"] == "revised"]
    if legacy.empty or revised.empty:
        return None
    y0, y1 = int(legacy["last_year"].iloc[0]), int(revised["first_year"].iloc[0])
    row = con.execute(_RAPE_JUMP_SQL, [source, y0, y1, y0, y1]).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return None
    return RapeDefinitionChange(y0, y1, int(row[0]), int(row[1]), int(row[2]), bool(row[3]))
