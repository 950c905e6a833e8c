"""The data provenance section and the limitations list, written from the warehouse's own records.

Every number here is computed from :class:`~crimelens.report.provenance.Provenance`: which file the data
came from (with its SHA-256), how many rows were read, loaded and rejected, which jurisdiction-years are
partial, what problems were recorded at load, and which rape definition each year uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from crimelens.report.blocks import Block, PageSection
from crimelens.report.provenance import Provenance, SourceFiles
from crimelens.report.tables import format_value, records, render_table

__all__ = ["Limitation", "files_block", "incident_provenance_section", "limitations", "provenance_section"]


def _n(value: object) -> str:
    return format_value(value, "count")


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{_n(n)} {word if n == 1 else (plural or word + 's')}"


def _span(years: tuple[int, int] | None) -> str:
    if years is None:
        return "—"
    return str(years[0]) if years[0] == years[1] else f"{years[0]}–{years[1]}"


def files_block(files: SourceFiles) -> Block:
    """Every file behind the report: jurisdiction-year, incident and area files, with SHA-256, rows and what each
    row is (the caveats each format declares, and the coverage found in the data)."""
    block = Block("Files behind this report", anchor="source-files")
    block.paragraphs.append(
        f"This report is built from {_plural(len(files.files), 'file')}, listed below with the fingerprint (SHA-256) "
        "that identifies each exactly, the rows loaded from it and what those rows are."
    )
    for row in records(files.files):
        if row["what"]:
            block.paragraphs.append(f"{row['file_name']} ({row['kind']}, dataset {row['dataset']}): {row['what']}.")
    block.paragraphs.extend(files.rates)
    block.tables.append(
        render_table(
            files.files,
            max_rows=None,
            table_id="source-files-table",
            columns=["kind", "dataset", "file_name", "format", "rows_loaded", "rows_rejected", "sha256"],
            labels={"file_name": "File", "sha256": "SHA-256", "kind": "Kind"},
        )
    )
    partial = files.months[files.months["partial"]] if not files.months.empty else files.months
    if not partial.empty:
        block.tables.append(
            render_table(
                partial,
                max_rows=None,
                columns=["source", "year", "covers", "first_day", "last_day", "incidents"],
                labels={"source": "Dataset", "covers": "Months with incidents"},
                caption="Incident years that are not whole: their counts are not a full year's",
            )
        )
    return block


def incident_provenance_section(files: SourceFiles) -> PageSection:
    """The Data provenance section of a report on incident datasets only."""
    section = PageSection(
        "provenance",
        "Data provenance",
        intro=["Where the incidents in this report come from, and what each record is."],
    )
    section.blocks.append(files_block(files))
    return section


def provenance_section(prov: Provenance, files: SourceFiles | None = None) -> PageSection:
    section = PageSection(
        "provenance",
        "Data provenance",
        intro=[
            f"Where the numbers in this report come from: the dataset {prov.source!r} in the crimelens "
            "warehouse, the file it was loaded from, and the data-quality problems recorded when it was "
            "loaded. The SHA-256 fingerprint identifies the exact file; re-loading the same file changes "
            "nothing."
        ],
    )
    if files is not None:
        section.blocks.append(files_block(files))
    loads = Block("Loads", anchor="loads")
    current = prov.current_loads
    for row in records(current):
        loads.paragraphs.append(
            f"Load {row['load_id']} read {_n(row['rows_read'])} rows from {row['file_name']} "
            f"(format {row['format']}, SHA-256 {row['sha256_short']}…) and loaded {_n(row['rows_loaded'])}; "
            f"{_n(row['rows_rejected'])} were rejected and {_plural(int(row['warnings']), 'warning')} "
            f"recorded. Finished {format_value(row['finished_at'])}."
        )
    if len(prov.loads) > len(current):
        loads.paragraphs.append(
            "Earlier loads of this dataset were replaced by a newer file; they are listed for the record "
            "but none of their rows remain."
        )
    loads.tables.append(
        render_table(
            prov.loads,
            max_rows=None,
            table_id="loads-table",
            columns=[
                "load_id",
                "file_name",
                "format",
                "sha256_short",
                "rows_read",
                "rows_loaded",
                "rows_rejected",
                "warnings",
                "finished_at",
                "status",
            ],
            labels={"finished_at": "Loaded at", "load_id": "Load"},
        )
    )
    section.blocks.append(loads)

    years = Block("Years covered", anchor="years-covered")
    years.paragraphs.append(
        f"The data cover {_plural(prov.n_years, 'year')} ({_span(_first_last(prov))}) and "
        f"{_plural(prov.n_jurisdictions, 'jurisdiction')} (plus national totals where the file has them): "
        f"{_n(prov.n_rows)} jurisdiction-year rows in all."
    )
    if prov.missing_violent:
        verb = "has" if prov.missing_violent == 1 else "have"
        years.paragraphs.append(
            f"{_plural(prov.missing_violent, 'jurisdiction-year')} {verb} no violent-crime count; "
            "they are left out of the analyses, never read as zero."
        )
    years.tables.append(
        render_table(
            prov.coverage,
            max_rows=None,
            table_id="coverage-table",
            labels={
                "load_id": "Load",
                "first_year": "First year",
                "last_year": "Last year",
                "jurisdictions": "Jurisdictions (incl. national)",
            },
        )
    )
    if not prov.gaps.empty:
        n_gaps = len(prov.gaps)
        years.paragraphs.append(
            f"{_plural(n_gaps, 'jurisdiction')} {'has' if n_gaps == 1 else 'have'} no row at all for some "
            "years of the span (listed below); their series have gaps."
        )
        years.tables.append(
            render_table(
                prov.gaps,
                max_rows=None,
                columns=["jurisdiction", "years_missing"],
                caption="Jurisdictions missing whole years",
            )
        )
    section.blocks.append(years)

    partial = Block("Partial-year reporting", anchor="partial-years")
    n_partial = len(prov.partial_years)
    if n_partial:
        partial.paragraphs.append(
            f"{_plural(n_partial, 'jurisdiction-year')} {'covers' if n_partial == 1 else 'cover'} fewer "
            "than 12 months of reporting. "
            "Their counts are short of a full year, so their rates are too low; analyses flag them as "
            "partial and trend tests leave them out."
        )
        partial.tables.append(
            render_table(
                _partial_by_jurisdiction(prov.partial_years),
                max_rows=None,
                table_id="partial-years-table",
                labels={"partial_years": "Partial years (months reported)", "n": "Partial years"},
            )
        )
    else:
        partial.paragraphs.append("No jurisdiction-year is recorded as covering fewer than 12 months.")
    if prov.unknown_months:
        partial.paragraphs.append(
            f"For {_plural(prov.unknown_months, 'jurisdiction-year')} the data do not say how many months "
            "were reported"
            + (" (this dataset does not record it)." if prov.unknown_months == prov.n_rows else ".")
            + " Months reported given as 0 or left empty are read the same way: the counts are kept as annual "
            "figures (not dropped, not treated as partial) and flagged as months not stated."
        )
    section.blocks.append(partial)

    issues = Block("Data issues recorded at load", anchor="data-issues")
    if prov.issues_by_code.empty:
        issues.paragraphs.append("No problems were recorded when this dataset was loaded.")
    else:
        total = int(prov.issues_by_code["count"].sum())
        issues.paragraphs.append(
            f"{_plural(total, 'issue')} were recorded when the file was loaded, by kind below, with the "
            "first examples of each. Warnings did not stop rows loading; errors rejected them."
        )
        issues.tables.append(render_table(prov.issues_by_code, max_rows=None, table_id="issues-table"))
        issues.tables.append(
            render_table(
                prov.issue_examples,
                max_rows=None,
                caption="Examples",
                labels={"line": "Line in file", "column_name": "Column"},
            )
        )
    section.blocks.append(issues)
    return section


def _partial_by_jurisdiction(partial: pd.DataFrame) -> pd.DataFrame:
    """One row per jurisdiction: its partial years as '1975 (9)', most partial years first."""
    rows = [
        (name, jid, len(g), ", ".join(f"{int(r['year'])} ({int(r['months_reported'])})" for r in records(g)))
        for (name, jid), g in partial.sort_values("year").groupby(["jurisdiction", "jurisdiction_id"])
    ]
    out = pd.DataFrame(rows, columns=["jurisdiction", "jurisdiction_id", "n", "partial_years"])
    return out.sort_values(["n", "jurisdiction"], ascending=[False, True]).reset_index(drop=True)


def _first_last(prov: Provenance) -> tuple[int, int] | None:
    if prov.first_year is None or prov.last_year is None:
        return None
    return prov.first_year, prov.last_year


@dataclass(frozen=True)
class Limitation:
    title: str
    text: str


def _rape_text(prov: Provenance) -> str:
    legacy = prov.definition_years("legacy")
    revised = prov.definition_years("revised")
    base = (
        "From 2013 the FBI counts rape under a revised, broader definition (any penetration, any gender, "
        "without consent) instead of the legacy one (forcible rape of a female), so recorded rape jumps "
        "in 2013 without any change in crime. "
    )
    if legacy and revised:
        text = (
            f"In this dataset, rape counts for {_span(legacy)} follow the legacy definition and for "
            f"{_span(revised)} the revised one."
        )
        change = prov.rape_change
        if change is not None and change.change_pct is not None:
            scope = (
                "nationally"
                if change.national
                else f"over the {_plural(change.jurisdictions, 'jurisdiction')} reporting both years"
            )
            text += (
                f" Recorded rape went from {_n(change.before)} in {change.legacy_year} to "
                f"{_n(change.after)} in {change.revised_year} {scope} ({change.change_pct:+.0f}%)."
            )
        text += " Rape and violent-crime totals, rates and trends across the change are not like-for-like."
        return base + text
    if legacy or revised:
        which = "legacy" if legacy else "revised"
        return base + f"Every year of this dataset ({_span(legacy or revised)}) uses the {which} definition."
    return base + "This dataset does not say which definition its rape counts use."


_KIND_PLURALS = {"city": "cities", "county": "counties"}


def _kinds_text(prov: Provenance) -> str:
    kinds = {str(r["kind"]): int(r["jurisdictions"]) for r in records(prov.kinds) if r["kind"] != "nation"}
    base = (
        "A county sheriff often polices only the unincorporated area while cities police their own "
        "residents and many commuters and visitors; states mix both. Rates across kinds of jurisdiction "
        "are not like-for-like."
    )
    if len(kinds) > 1:
        parts = ", ".join(_plural(n, k, _KIND_PLURALS.get(k)) for k, n in kinds.items())
        return f"This dataset mixes {parts}. " + base
    if kinds:
        ((kind, n),) = kinds.items()
        plural = _KIND_PLURALS.get(kind, kind + "s")
        return (
            f"All {_n(n)} jurisdictions compared here are {plural}, so this matters most when setting these "
            "figures beside other data. " + base
        )
    return base


def limitations(prov: Provenance, year: int) -> list[Limitation]:
    """What a reader must keep in mind, with this dataset's own numbers where they matter."""
    coverage = []
    n_partial, n_gaps = len(prov.partial_years), len(prov.gaps)
    if n_partial:
        verb = "reports" if n_partial == 1 else "report"
        coverage.append(f"{_plural(n_partial, 'jurisdiction-year')} {verb} fewer than 12 months")
    if prov.unknown_months:
        verb = "does" if prov.unknown_months == 1 else "do"
        coverage.append(
            f"{_plural(prov.unknown_months, 'jurisdiction-year')} {verb} not say how many months "
            f"{'it covers' if prov.unknown_months == 1 else 'they cover'}"
        )
    if n_gaps:
        coverage.append(f"{_plural(n_gaps, 'jurisdiction')} {'misses' if n_gaps == 1 else 'miss'} whole years")
    if prov.missing_violent:
        verb = "has" if prov.missing_violent == 1 else "have"
        coverage.append(f"{_plural(prov.missing_violent, 'jurisdiction-year')} {verb} no violent-crime count")
    coverage_text = (
        "Agencies join, leave and report for only part of a year; a change in who reports shows up as a "
        "change in crime. "
        + (
            f"In this dataset {'; '.join(coverage)} (see Data provenance)."
            if coverage
            else "In this dataset no partial or missing years were found."
        )
    )
    small = ""
    if prov.smallest is not None:
        name, pop = prov.smallest
        small = (
            f" The smallest jurisdiction in {year}, {name}, has {_n(pop)} residents: there, "
            f"{max(1, round(pop / 100_000 * 10)):,} more offences move its rate by 10 per 100,000."
        )
    return [
        Limitation(
            "Police-recorded crime is not all crime",
            "Many offences are never reported to the police, and reporting rates differ by offence (far "
            "lower for rape and assault than for motor vehicle theft) and by place. Recorded numbers also "
            "reflect how police record and where they patrol: more patrols or better recording can raise "
            "the figures without any rise in crime.",
        ),
        Limitation("Reporting and coverage change across years", coverage_text),
        Limitation("The FBI's 2013 rape definition change", _rape_text(prov)),
        Limitation(
            "Population denominators are estimates",
            "Rates divide by population estimates (Census estimates between censuses), which are revised "
            "and are least accurate late in a decade and for places that grow or shrink fast. Residents "
            "are not the only people exposed: commuters and visitors are not counted.",
        ),
        Limitation(
            "Rates for small places are noisy",
            "A few offences more or less move a small place's rate a lot, so small places swing in and "
            "out of the top of rate rankings. Prefer several years and tested changes to one year's rank." + small,
        ),
        Limitation("Counties, cities and states are not directly comparable", _kinds_text(prov)),
        Limitation(
            "Nothing here identifies individuals",
            "The data are counts per jurisdiction and year. No record describes a person, victim or "
            "suspect, and nothing in this report can be traced back to one.",
        ),
    ]
