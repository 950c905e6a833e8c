"""Commands on jurisdiction-year data: statistics, rates, rankings, profiles, comparisons, trends, hotspots."""

from __future__ import annotations

from typing import Annotated

import typer

from crimelens.cli.options import (
    AlphaOpt,
    CsvOpt,
    DbOpt,
    EndOpt,
    JsonOpt,
    KOpt,
    LimitOpt,
    OffenceOpt,
    SourceOpt,
    StartOpt,
    YearOpt,
)
from crimelens.cli.render import emit, show_result, show_table
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
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit)


@command("profile")
def profile_cmd(
    jurisdiction: Annotated[str, typer.Argument(help="Jurisdiction name or id, e.g. 'Chicago' or US-IL.")],
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """A jurisdiction's rank over time and its offence mix against its peers."""
    from crimelens.analysis.jurisdictions import ranking

    with open_warehouse(db) as con:
        result = ranking.profile(con, source, jurisdiction=jurisdiction, offence=offence)
    if as_json or as_csv:
        emit(result, as_json=as_json, as_csv=as_csv)
        return
    show_result(result, None if limit == 0 else limit)
    show_table(result.mix, "Offence mix against peers", None)


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


@command("compare")
def compare_cmd(
    names: Annotated[list[str], typer.Argument(help="Two or more jurisdiction names or ids.")],
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    measure: Annotated[str, typer.Option("--measure", help="'rate' (per 100,000) or 'count'.")] = "rate",
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """Compare jurisdictions year by year."""
    from crimelens.analysis.jurisdictions import ranking

    with open_warehouse(db) as con:
        result = ranking.compare(con, source, jurisdictions=names, offence=offence, measure=measure)
    if as_json or as_csv:
        emit(result, as_json=as_json, as_csv=as_csv)
        return
    # one column per jurisdiction, in the order asked, headed by its name as written (not title-cased)
    ids = list(result.params["jurisdiction_ids"])
    shown = dict(zip(result.table["jurisdiction_id"], result.table["name"], strict=True))
    wide = result.table.pivot_table(index="year", columns="jurisdiction_id", values="value", aggfunc="first")
    wide = wide[[i for i in ids if i in wide.columns]].reset_index()
    wide.columns = [str(c) for c in wide.columns]
    labels = {i: str(shown[i]) for i in ids if i in shown}
    show_table(wide, result.title, None if limit == 0 else limit, labels=labels)


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
        result = trends.year_over_year(con, source, jurisdiction=jurisdiction, offence=offence, alpha=a)
    if not (as_json or as_csv):  # the terminal shows the latest years first; JSON and CSV keep the year order
        result = dataclasses.replace(result, table=result.table.iloc[::-1].reset_index(drop=True))
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit, columns=YOY_COLUMNS)


@command("turning-points")
def turning_points_cmd(
    jurisdiction: JurisdictionOpt = None,
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """Years where a long-run rise turned into a fall, or the other way round."""
    from crimelens.analysis.jurisdictions import trends

    with open_warehouse(db) as con:
        result = trends.turning_points(con, source, jurisdiction=jurisdiction, offence=offence)
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
