"""Commands on jurisdiction-year data: statistics, rates, rankings, profiles, comparisons, trends, hotspots."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from crimelens.cli.options import (
    AlphaOpt,
    CsvOpt,
    DbOpt,
    EndOpt,
    JsonOpt,
    KOpt,
    LimitOpt,
    OffenceOpt,
    ReferenceOpt,
    SourceOpt,
    StartOpt,
    YearOpt,
)
from crimelens.cli.render import emit, out, show_result, show_table
from crimelens.cli.support import command, open_warehouse
from crimelens.config import SETTINGS, get_setting

__all__ = [
    "compare_cmd",
    "concentration_cmd",
    "hotspots_cmd",
    "profile_cmd",
    "rank_cmd",
    "rates_cmd",
    "stats_cmd",
    "trends_cmd",
    "turning_points_cmd",
    "yoy_cmd",
]

#: The columns the terminal shows of a trends table (all of them are in --json and --csv).
TREND_COLUMNS = [
    "name", "n_years", "first_year", "last_year", "first_rate", "last_rate", "annual_change_pct",
    "annual_change_low", "annual_change_high", "slope_per_year", "mk_p", "mk_q", "direction",
]  # fmt: skip

#: The columns the terminal shows of a year-over-year table (every column is in --json and --csv).
YOY_COLUMNS = [
    "year", "count", "rate_per_100k", "change_pct", "ci_low", "ci_high", "p_value", "q_value", "p_poisson",
    "direction", "partial",
]  # fmt: skip

JurisdictionOpt = Annotated[str | None, typer.Option("--jurisdiction", help="Name or id (default: the nation).")]


@command("stats")
def stats_cmd(
    source: SourceOpt = None,
    year: YearOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Crime statistics: totals and shares per offence, and the most common violent offences."""
    from crimelens.analysis.jurisdictions import statistics

    with open_warehouse(db) as con:
        result = statistics.offence_totals(con, source, year=year, start=start, end=end)
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit)


@command("rates")
def rates_cmd(
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    year: YearOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Rates per 100,000 residents for each jurisdiction and year (and the nation where available)."""
    from crimelens.analysis.jurisdictions import statistics

    with open_warehouse(db) as con:
        result = statistics.rates(con, source, offence=offence, year=year, start=start, end=end)
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit)


@command("rank")
def rank_cmd(
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    by: Annotated[str, typer.Option("--by", help="Rank by 'rate' (per 100,000) or 'count'.")] = "rate",
    year: YearOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    top: Annotated[int | None, typer.Option("--top", help="Show only the top N.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Rank jurisdictions by rate or count, for one year or a span of years."""
    from crimelens.analysis.jurisdictions import ranking

    with open_warehouse(db) as con:
        result = ranking.rank(con, source, offence=offence, by=by, year=year, start=start, end=end, top=top)
    # what a narrow terminal keeps first: the rank, the name and the measure ranked by
    first = ["rank", "name", "rate_per_100k", "rate_low", "rate_high", "count"]
    if by == "count":
        first = ["rank", "name", "count", "rate_per_100k", "rate_low", "rate_high"]
    rest = [c for c in result.table.columns if c not in first]
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit, columns=[*first, *rest])


@command("profile")
def profile_cmd(
    jurisdiction: Annotated[str, typer.Argument(help="Jurisdiction name or id, e.g. 'Chicago' or US-IL.")],
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    start: StartOpt = None,
    end: EndOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """A jurisdiction's rank over time and its offence mix against its peers."""
    from crimelens.analysis.jurisdictions import ranking

    with open_warehouse(db) as con:
        result = ranking.profile(con, source, jurisdiction=jurisdiction, offence=offence, start=start, end=end)
    if as_json or as_csv:
        emit(result, as_json=as_json, as_csv=as_csv)
        return
    show_result(result, None if limit == 0 else limit)
    show_table(
        result.mix,
        "Offence mix against peers (shares of its violent crime)",
        None,
        columns=["label", "share", "peer_median_share", "difference_points"],
        labels={
            "label": "Offence",
            "share": "Share",
            "peer_median_share": "Peers' median share",
            "difference_points": "Difference (percentage points)",
        },
    )


@command("concentration")
def concentration_cmd(
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    year: YearOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    k: KOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """How much of all recorded crime the top k jurisdictions hold."""
    from crimelens.analysis.jurisdictions import ranking

    kk = int(get_setting("top_k", k))
    with open_warehouse(db) as con:
        result = ranking.top_k_concentration(con, source, offence=offence, year=year, start=start, end=end, k=kk)
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit)


CompareOffenceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--offence",
        help="Only these offences (repeat the option; default: every offence the dataset has counts of), e.g. "
        "robbery, homicide, violent_crime.",
    ),
]


def _comparison_tables(result: Any, measure: str, limit: int | None) -> None:
    """One table per offence: a row per year, a column per jurisdiction in the order asked (headed by its name as
    written), the reference, and which jurisdictions reported part of the year; then each one's rank among its
    peers over the span."""
    import pandas as pd

    from crimelens.formatting import format_value

    ids = list(result.params["jurisdiction_ids"])
    for offence in result.params["offences"]:
        part = result.table[result.table["offence"] == offence]
        ref = result.reference[result.reference["offence"] == offence]
        if part.empty:
            continue
        names = dict(zip(part["jurisdiction_id"], part["name"], strict=False))

        def cell(row: pd.Series) -> str:
            rate, count = format_value(row["rate_per_100k"], "rate"), format_value(row["count"], "count")
            return rate if measure == "rate" else count if measure == "count" else f"{rate} ({count})"

        wide = part.assign(cell=part.apply(cell, axis=1)).pivot_table(
            index="year", columns="jurisdiction_id", values="cell", aggfunc="first"
        )
        wide = wide[[i for i in ids if i in wide.columns]]
        labels = {i: str(names[i]) for i in wide.columns}
        if not ref.empty:
            wide["reference"] = ref.assign(cell=ref.apply(cell, axis=1)).set_index("year")["cell"]
            labels["reference"] = f"{ref['name'].iloc[0]} (reference)"
        partial = part[part["partial"]].groupby("year")["name"].agg(", ".join)
        wide["partial"] = partial.reindex(wide.index).fillna("")
        labels["partial"] = "Partial year (< 12 months)"
        wide = wide.fillna("—").reset_index()
        wide.columns = [str(c) for c in wide.columns]
        what = {"rate": "rate per 100,000", "count": "count", "both": "rate per 100,000 (count)"}[measure]
        show_table(wide, f"{part['label'].iloc[0]}, {what}", limit, labels=labels)
    show_table(
        result.peers,
        f"Rank by rate among the jurisdictions of {result.params['source']}, {result.params['period']} (1 = highest)",
        None,
        columns=["name", "label", "rank_by_rate", "n_ranked", "rate_per_100k", "count", "rate_low", "rate_high",
                 "partial_years"],
        labels={"label": "Offence", "n_ranked": "Of", "rate_low": "Rate, low (95%)", "rate_high": "Rate, high (95%)"},
    )  # fmt: skip


@command("compare")
def compare_cmd(
    names: Annotated[list[str], typer.Argument(help="Jurisdiction names or ids, in the order to show them.")],
    source: SourceOpt = None,
    offence: CompareOffenceOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    reference: ReferenceOpt = None,
    no_reference: Annotated[
        bool, typer.Option("--no-reference", help="Leave the reference series (the nation or a state) out.")
    ] = False,
    measure: Annotated[
        str, typer.Option("--measure", help="What the terminal shows: 'both' (rate and count), 'rate' or 'count'.")
    ] = "both",
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """Compare jurisdictions year by year, in the order given: every offence as rates and counts, partial years
    flagged, each one's rank among its peers, and the nation (or a state) from another dataset as reference."""
    from crimelens.analysis.jurisdictions.comparison import compare_jurisdictions
    from crimelens.errors import DataError

    if measure not in ("both", "rate", "count"):
        raise DataError(f"measure: expected both, rate or count, got {measure!r}")
    with open_warehouse(db) as con:
        result = compare_jurisdictions(
            con, source, jurisdictions=names, offences=offence, start=start, end=end, reference=reference,
            with_reference=not no_reference,
        )  # fmt: skip
    if as_json or as_csv:
        emit(result, as_json=as_json, as_csv=as_csv)
        return
    out.print(f"[bold]{escape(result.title)}[/bold]")
    _comparison_tables(result, measure, None if limit == 0 else limit)
    if not result.reference.empty:
        ref = result.reference.iloc[0]
        out.print(f"[dim]Reference: {escape(str(ref['name']))} from dataset {escape(str(ref['source']))}.[/dim]")
    for note in result.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]")


@command("trends")
def trends_cmd(
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    start: StartOpt = None,
    end: EndOpt = None,
    alpha: AlphaOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Long-run trends per jurisdiction: Theil–Sen slope of the rate with a Mann–Kendall test."""
    from crimelens.analysis.jurisdictions import trends

    a = float(get_setting("alpha", alpha))
    with open_warehouse(db) as con:
        result = trends.long_run_trends(con, source, offence=offence, start=start, end=end, alpha=a)
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit, columns=TREND_COLUMNS)


@command("yoy")
def yoy_cmd(
    jurisdiction: JurisdictionOpt = None,
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    start: StartOpt = None,
    end: EndOpt = None,
    alpha: AlphaOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """Year-over-year changes, each tested against the series' own year-to-year variation (not a bare percent);
    the latest years first."""
    import dataclasses

    from crimelens.analysis.jurisdictions import trends

    a = float(get_setting("alpha", alpha))
    with open_warehouse(db) as con:
        result = trends.year_over_year(
            con, source, jurisdiction=jurisdiction, offence=offence, start=start, end=end, alpha=a
        )
    if not (as_json or as_csv):  # the terminal shows the latest years first; JSON and CSV keep the year order
        result = dataclasses.replace(result, table=result.table.iloc[::-1].reset_index(drop=True))
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit, columns=YOY_COLUMNS)


@command("turning-points")
def turning_points_cmd(
    jurisdiction: JurisdictionOpt = None,
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    start: StartOpt = None,
    end: EndOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """Years where a long-run rise turned into a fall, or the other way round."""
    from crimelens.analysis.jurisdictions import trends

    with open_warehouse(db) as con:
        result = trends.turning_points(con, source, jurisdiction=jurisdiction, offence=offence, start=start, end=end)
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit)


@command("hotspots")
def hotspots_cmd(
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    k: KOpt = None,
    share: Annotated[float | None, typer.Option("--share", help=SETTINGS["hotspot_share"].help)] = None,
    window: Annotated[int | None, typer.Option("--window", help=SETTINGS["hotspot_window"].help)] = None,
    end: EndOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Persistent hotspots: jurisdictions in the top k by rate in at least a share of recent years."""
    from crimelens.analysis.jurisdictions import hotspots

    with open_warehouse(db) as con:
        result = hotspots.persistent_hotspots(
            con,
            source,
            offence=offence,
            k=int(get_setting("top_k", k)),
            share=float(get_setting("hotspot_share", share)),
            window=int(get_setting("hotspot_window", window)),
            end=end,
        )
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit)
