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

__all__ = ["Provenance", "RapeDefinitionChange", "SourceFiles", "incident_months", "provenance", "source_files"]

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


# -- every file behind a report, and what each row is ----------------------------------------------------------------
_FILES_SQL = """
SELECT load_id, source, format, file_name, sha256, rows_read, rows_loaded, rows_rejected, finished_at
FROM loads WHERE status = 'loaded' AND list_contains(?, source) ORDER BY load_id
"""

_AREA_SETS_SQL = """
SELECT area_set, any_value(area_kind) AS area_kind, count(*) AS areas, count(population) AS with_population,
       min(population_year) AS population_year_min, max(population_year) AS population_year_max
FROM areas GROUP BY area_set ORDER BY area_set
"""

# months of each calendar year that hold at least one incident (derived from the data, never assumed per file)
_MONTHS_SQL = """
SELECT year(occurred_at) AS year, count(DISTINCT month(occurred_at)) AS months,
       min(occurred_at)::DATE AS first_day, max(occurred_at)::DATE AS last_day, count(*) AS incidents
FROM incidents WHERE source = ? GROUP BY 1 ORDER BY 1
"""

_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December",
)  # fmt: skip


@dataclass(frozen=True)
class SourceFiles:
    """Every file behind a report: one row per current load, with what each of its rows is.

    ``files``: ``kind`` (jurisdiction-years, incidents, areas), ``dataset``, ``file_name``, ``format``, ``sha256``
    (in full), ``rows_read``, ``rows_loaded``, ``rows_rejected``, ``finished_at`` and ``what`` (the caveats the
    format declares in :data:`crimelens.sources.registry.REGISTRY`, and what the data say about their coverage).
    ``months``: for each incident dataset and calendar year, the months holding incidents (``months`` < 12 is a
    partial year). ``rates``: how the report's rates are computed (whether they are annualised).
    """

    files: pd.DataFrame
    months: pd.DataFrame
    rates: tuple[str, ...]


def _month_span(first: object, last: object) -> str:
    f, la = pd.Timestamp(first), pd.Timestamp(last)  # type: ignore[arg-type]
    return f"{_MONTH_NAMES[f.month - 1]}–{_MONTH_NAMES[la.month - 1]}"


def incident_months(con: duckdb.DuckDBPyConnection, source: str) -> pd.DataFrame:
    """Per calendar year of incident dataset ``source``: ``year, months, first_day, last_day, incidents, partial``
    (fewer than 12 months hold incidents) and ``covers`` (e.g. '11 months, January–November')."""
    frame = con.execute(_MONTHS_SQL, [source]).df()
    frame["partial"] = frame["months"] < 12
    for col in ("first_day", "last_day"):
        frame[col] = pd.to_datetime(frame[col]).dt.strftime("%Y-%m-%d")
    frame["covers"] = [
        "all 12 months" if not p else f"{int(m)} month{'s' if m != 1 else ''}, {_month_span(a, b)}"
        for p, m, a, b in zip(frame["partial"], frame["months"], frame["first_day"], frame["last_day"], strict=True)
    ]
    return frame.assign(source=source)


def source_files(
    con: duckdb.DuckDBPyConnection, jurisdiction_sources: list[str], incident_sources: list[str]
) -> SourceFiles:
    """The files behind a report on ``jurisdiction_sources`` and ``incident_sources``, plus every loaded area set
    (their boundaries and populations give the maps and area rates), each with what its rows are."""
    from crimelens.sources.registry import REGISTRY

    areas = con.execute(_AREA_SETS_SQL).df()
    wanted = [*jurisdiction_sources, *incident_sources, *areas["area_set"].astype(str)]
    files = con.execute(_FILES_SQL, [wanted]).df()
    simulated = {
        str(s): bool(sim)
        for s, sim in con.execute(
            "SELECT source, simulated FROM incident_sources WHERE list_contains(?, source)", [incident_sources]
        ).fetchall()
    }
    months = [incident_months(con, s) for s in incident_sources]
    by_source = {str(m["source"].iloc[0]): m for m in months if not m.empty}
    kinds, whats = [], []
    for row in files.itertuples(index=False):
        src, fmt = str(row.source), str(row.format)
        what = list(REGISTRY[fmt].caveats) if fmt in REGISTRY else []
        if src in jurisdiction_sources:
            kinds.append("jurisdiction-years")
        elif src in incident_sources:
            kinds.append("incidents")
            if simulated.get(src):
                what.insert(0, "SIMULATED incidents made by crimelens: not real crime")
            partial = by_source.get(src)
            if partial is not None:
                what += [f"{int(r['year'])} covers {r['covers']}" for r in partial.to_dict("records") if r["partial"]]
        else:
            kinds.append("areas")
            a = areas[areas["area_set"] == src].iloc[0]
            what.append(f"{int(a['areas'])} {str(a['area_kind']).replace('_', ' ')} boundaries")
            if int(a["with_population"]) == 0:
                what.append("no populations: areas are ranked by count only")
            else:
                lo, hi = _int(a["population_year_min"]), _int(a["population_year_max"])
                year = "a year not stated" if lo is None else str(lo) if lo == hi else f"{lo}–{hi}"
                what.append(f"populations ({int(a['with_population'])} areas) are from {year}")
        whats.append("; ".join(what))
    files.insert(0, "kind", kinds)
    files = files.rename(columns={"source": "dataset"}).assign(what=whats)
    rates = []
    if jurisdiction_sources:
        rates.append(
            "Jurisdiction rates are each year's recorded offences per 100,000 residents. They are not annualised: a "
            "year with fewer than 12 months reported gives a short count and a low rate, and is flagged as partial."
        )
    if incident_sources:
        rates.append(
            "Area rates in the incident sections are incidents per 100,000 residents over the whole period the data "
            "cover, not per year: they are not annualised, so compare them only within one dataset and period."
        )
    all_months = pd.concat(months, ignore_index=True) if months else pd.DataFrame()
    return SourceFiles(files=files.reset_index(drop=True), months=all_months, rates=tuple(rates))
