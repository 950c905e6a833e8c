"""The analysis sections of the report: crime statistics, jurisdictions, trends and persistent hotspots.

Each function calls the analyses through a :class:`~crimelens.report.blocks.Runner` and turns their
results into blocks: a few sentences computed from the result (written for analysts), the result's own
chart, a table and the analysis' notes. The wording never claims more than the numbers do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from crimelens.analysis.jurisdictions import hotspots as persistence
from crimelens.analysis.jurisdictions import ranking as jurisdictions
from crimelens.analysis.jurisdictions import statistics as stats
from crimelens.analysis.jurisdictions import trends
from crimelens.analysis.result import ChartSpec
from crimelens.report.blocks import Block, PageSection, Runner
from crimelens.report.maps import area_map_figure
from crimelens.report.states import state_table
from crimelens.report.tables import format_value, records, render_table
from crimelens.schema import OFFENCE_LABELS, VIOLENT_OFFENCES

__all__ = [
    "ReportParams",
    "hotspots_section",
    "jurisdictions_section",
    "state_map_block",
    "statistics_section",
    "trends_section",
]

OFFENCE = "violent_crime"


class ReportParams:
    """What the report was asked for, resolved (the latest year filled in).

    ``offence``: the offence the rankings, trends and hotspots analyse; ``start``/``end``: the span of years the
    rates, totals and trends cover (None: every year; ``year`` is then the year rankings look at).
    """

    def __init__(
        self,
        *,
        year: int,
        k: int,
        alpha: float,
        hotspot_share: float,
        hotspot_window: int,
        offence: str = OFFENCE,
        start: int | None = None,
        end: int | None = None,
        jurisdiction: str | None = None,
    ) -> None:
        self.year = year
        self.k = k
        self.alpha = alpha
        self.hotspot_share = hotspot_share
        self.hotspot_window = hotspot_window
        self.offence = offence
        self.start = start
        self.end = end
        self.jurisdiction = jurisdiction

    @property
    def label(self) -> str:
        """The offence as the text names it, e.g. 'violent crime'."""
        return OFFENCE_LABELS[self.offence].lower()

    @property
    def focus(self) -> dict[str, Any]:
        """The focused jurisdiction, as keyword arguments of the single-series trends (none when not focused)."""
        return {"jurisdiction": self.jurisdiction} if self.jurisdiction else {}

    @property
    def adjective(self) -> str:
        """The offence before a noun, e.g. 'violent-crime' (rate)."""
        return self.label.replace(" ", "-")

    @property
    def span(self) -> dict[str, Any]:
        """``start``/``end`` as keyword arguments, only those given (so an unfocused report asks the analyses
        exactly what the findings ask, and each runs once)."""
        return {k: v for k, v in (("start", self.start), ("end", self.end)) if v is not None}


def _n(value: Any) -> str:
    return format_value(value, "count")


def _rate(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):,.1f}"


def _pct(value: float) -> str:
    return f"{value:.0%}" if abs(value) >= 0.1 else f"{value:.1%}"


def _finish(block: Block, notes: tuple[str, ...], caveats: tuple[str, ...]) -> Block:
    """Add an analysis' notes (as sentences) and caveats to ``block``, each once."""
    for n in notes:
        sentence = n[0].upper() + n[1:] + ("" if n.endswith(".") else ".") if n else ""
        if sentence and sentence not in block.notes:
            block.notes.append(sentence)
    block.caveats.extend(c for c in caveats if c not in block.caveats)
    return block


def _series_name(params: Mapping[str, Any]) -> str:
    """How the text names the series trends run on: a focused jurisdiction's, the nation's rows, or all
    jurisdictions summed."""
    jid = params.get("jurisdiction_id")
    if params.get("focused") and jid and jid != "US":
        return f"rate of {params.get('name', jid)}"
    return "national rate" if jid else "rate of all jurisdictions combined"


# -- crime statistics ----------------------------------------------------------------------------------
def statistics_section(run: Runner, p: ReportParams) -> PageSection:
    section = PageSection(
        "statistics",
        "Crime statistics",
        intro=[
            "What police recorded: totals by offence, which violent offences are most common, and the "
            f"{p.adjective} rate per 100,000 residents over the years."
        ],
    )
    period_kw: dict[str, Any] = p.span or {"year": p.year}
    out = run.run("stats.offence_totals", stats.offence_totals, run.con, run.source, **period_kw)
    block = Block(f"Offence totals and shares, {p.year}")
    most = Block("Most common violent offences")
    if out.value is None:
        block.unavailable = out.unavailable("Offence totals")
        section.blocks.append(block)
    else:
        res = out.value
        t = res.table
        period = str(res.params.get("period", p.year))
        block.title = f"Offence totals and shares, {period}"
        violent = t[t["offence"] == "violent_crime"]
        if not violent.empty and not pd.isna(violent["count"].iloc[0]):
            block.paragraphs.append(
                f"In {period}, the jurisdictions in this dataset recorded {_n(violent['count'].iloc[0])} "
                "violent crimes (homicide, rape, robbery and aggravated assault)."
            )
        block.figures += run.figure(res.chart())
        block.tables.append(render_table(t, columns=["label", "count", "share_of_violent", "national_count"]))
        section.blocks.append(_finish(block, res.notes, out.caveats))
        parts = t[t["offence"].isin(VIOLENT_OFFENCES) & t["share_of_violent"].notna()]
        parts = parts.sort_values("violent_rank")
        if not parts.empty:
            ranked = [f"{r['label']} ({_pct(float(r['share_of_violent']))})" for r in records(parts)]
            most.paragraphs.append(
                f"Ranked by recorded count in {period}: {ranked[0]} was the most common violent offence"
                + (f", followed by {', '.join(ranked[1:])}." if len(ranked) > 1 else ".")
                + " Shares are of the four violent offences combined."
            )
            spec = ChartSpec(
                kind="bar",
                data=parts[["label", "share_of_violent"]].reset_index(drop=True),
                x="label",
                y="share_of_violent",
                title=f"Share of violent crime by offence, {period}",
                x_label="offence",
                y_label="share of violent crime",
                note="Over the jurisdiction-years where all four violent offences are known.",
            )
            most.figures += run.figure(spec)
            most.tables.append(render_table(parts, columns=["violent_rank", "label", "count", "share_of_violent"]))
            section.blocks.append(most)
    rates = run.run("stats.rates", stats.rates, run.con, run.source, offence=p.offence, include_nation=True, **p.span)
    block = Block(f"{p.adjective.capitalize()} rate over time")
    if rates.value is None:
        block.unavailable = rates.unavailable(f"The {p.adjective} rate")
    else:
        spec = rates.value.chart()
        series = spec.data.dropna(subset=[spec.y])
        if len(series) >= 2:
            first, last = series.iloc[0], series.iloc[-1]
            peak = series.iloc[int(series[spec.y].astype(float).to_numpy().argmax())]
            change = float(last[spec.y]) / float(first[spec.y]) - 1 if float(first[spec.y]) else math.nan
            what = spec.title.split(":")[0].lower()
            block.paragraphs.append(
                f"The {what} was {_rate(first[spec.y])} per 100,000 residents in {int(first['year'])} and "
                f"{_rate(last[spec.y])} in {int(last['year'])} ({change:+.0%}); it peaked at "
                f"{_rate(peak[spec.y])} in {int(peak['year'])}."
            )
        block.figures += run.figure(spec)
        _finish(block, rates.value.notes, rates.caveats)
    section.blocks.append(block)
    return section


# -- jurisdictions -------------------------------------------------------------------------------------
def _overlap_sentence(by_count: pd.DataFrame, by_rate: pd.DataFrame, k: int, label: str = "violent crime") -> str:
    top_count = list(by_count["name"])
    top_rate = list(by_rate["name"])
    both = [n for n in top_count if n in top_rate]
    first_count = top_count[0] if top_count else "—"
    first_rate = top_rate[0] if top_rate else "—"
    lead = (
        f"{first_count} leads both rankings."
        if first_count == first_rate
        else f"{first_count} recorded the most {label}, but {first_rate} has the highest rate."
    )
    if set(top_count) == set(top_rate):
        differ = f"The same {len(both)} jurisdictions make both top-{k} lists, in a different order."
        if top_count == top_rate:
            differ = f"The two top-{k} lists agree this year, which is unusual."
    else:
        verb = "is" if len(both) == 1 else "are"
        differ = f"The rankings differ: only {len(both)} of the top {k} by count {verb} also in the top {k} by rate."
    return (
        f"{lead} {differ} Counts mostly measure size: large places record more crime because more people "
        "live there. Rates per 100,000 residents adjust for population and are the fairer comparison."
    )


def jurisdictions_section(run: Runner, p: ReportParams) -> PageSection:
    section = PageSection(
        "jurisdictions",
        "Jurisdictions",
        intro=[
            f"How jurisdictions compare in {p.year}: by count and by rate, how concentrated {p.label} "
            "is, how the highest-rate places got there, and what kinds of violent crime drive them. "
            "National totals are left out of every comparison."
        ],
    )
    con, src = run.con, run.source
    by_count = run.run(
        "jurisdictions.rank(by=count)",
        jurisdictions.rank,
        con,
        src,
        offence=p.offence,
        by="count",
        year=p.year,
        top=p.k,
    )
    by_rate = run.run(
        "jurisdictions.rank(by=rate)", jurisdictions.rank, con, src, offence=p.offence, by="rate", year=p.year, top=p.k
    )
    block = Block(f"Top {p.k} by count and by rate, {p.year}", anchor="ranking")
    if by_count.value is not None and by_rate.value is not None:
        block.paragraphs.append(_overlap_sentence(by_count.value.table, by_rate.value.table, p.k, p.label))
    for out, what in ((by_count, "Ranking by count"), (by_rate, "Ranking by rate")):
        if out.value is None:
            block.notes.append(out.unavailable(what) or "")
            continue
        block.figures += run.figure(out.value.chart(), compact=True)
        _finish(block, out.value.notes, out.caveats)
    section.blocks.append(block)

    conc = run.run(
        "jurisdictions.top_k_concentration",
        jurisdictions.top_k_concentration,
        con,
        src,
        offence=p.offence,
        year=p.year,
        k=p.k,
    )
    block = Block("Concentration: how much the top jurisdictions hold")
    if conc.value is None:
        block.unavailable = conc.unavailable("Concentration")
    else:
        c = conc.value
        n = int(c.params.get("n_jurisdictions", len(c.table)))
        if not math.isnan(c.top_k_share):
            block.paragraphs.append(
                f"The top {min(p.k, n)} jurisdictions by count ({_pct(c.k_share_of_jurisdictions)} of the "
                f"{n} with counts) recorded {_pct(c.top_k_share)} of the {p.label} in {p.year}. "
                "The curve rises steeply when a few places hold most of the total."
            )
        block.figures += run.figure(c.chart())
        _finish(block, c.notes, conc.caveats)
    section.blocks.append(block)

    top = run.run("jurisdictions.top_series", jurisdictions.top_series, con, src, offence=p.offence, k=6, year=p.year)
    block = Block("The highest-rate jurisdictions over time")
    if top.value is None:
        block.unavailable = top.unavailable("The highest-rate series")
    else:
        names = list(dict.fromkeys(top.value.table["name"]))
        block.paragraphs.append(
            f"The {len(names)} jurisdictions with the highest {p.adjective} rate in {p.year}, each with its "
            "whole series. Panels share both axes, so levels can be compared across panels."
        )
        block.figures += run.figure(top.value.chart())
        _finish(block, top.value.notes, top.caveats)
    section.blocks.append(block)

    state_map = state_map_block(run, p)
    if state_map is not None:
        section.blocks.append(state_map)
    if by_rate.value is not None and not by_rate.value.table.empty:
        section.blocks.append(_mix_block(run, by_rate.value.table.iloc[0], p))
    return section


def state_map_block(run: Runner, p: ReportParams) -> Block | None:
    """A US state choropleth of the report's offence's rate in ``p.year`` when the dataset's jurisdictions are states.

    None for a dataset of cities or counties (fewer than half of its jurisdictions are states).
    """
    # the full rate ranking (by="rate" is the default), called as the key findings call it: computed once
    offence = p.offence
    out = run.run("jurisdictions.rank(all)", jurisdictions.rank, run.con, run.source, offence=offence, year=p.year)
    if out.value is None:
        return None
    found = state_table(out.value.table)
    if found is None:
        return None
    table, geometries, unmatched = found
    what = OFFENCE_LABELS.get(offence, offence.replace("_", " "))
    block = Block(f"{what} rate by state, {p.year}", anchor="state-map")
    drawn = table[table["rate_per_100k"].notna()]
    block.paragraphs.append(
        f"{what} per 100,000 residents in {p.year}, "
        + ("for all 50 states and DC. " if len(drawn) >= 51 else f"for {len(drawn)} of the 50 states and DC. ")
        + "Hover a state for its rate, its 95% interval, the count, the population and whether the year is partial."
    )
    if unmatched:
        block.notes.append(
            f"{len(unmatched)} jurisdiction(s) are not US states and are not on the map: {', '.join(unmatched)}."
        )
    missing = table.loc[table["rate_per_100k"].isna(), "state"].tolist()
    if missing:
        block.notes.append(f"No rate for {', '.join(missing)} in {p.year} (drawn white).")
    partial = drawn.loc[drawn["partial_year"] != "no", "state"].tolist()
    if partial:
        block.notes.append(f"Fewer than 12 months reported in {p.year}: {', '.join(partial)}.")
    block.figures.append(
        area_map_figure(
            geometries, table, chart_id=run.next_id(), value="rate_per_100k", name="state",
            title=f"{what} per 100,000 residents by state, {p.year}",
            caption="US Census Bureau 2016 cartographic state boundaries (public domain), simplified; Alaska and "
            "Hawaii moved and not to scale (albersUsa projection).",
            legend_label="per 100,000", projection="albersUsa",
            data_table=render_table(table, columns=list(table.columns), max_rows=60),
        )
    )  # fmt: skip
    _finish(block, out.value.notes, out.caveats)
    return block


def _mix_block(run: Runner, leader: pd.Series, p: ReportParams) -> Block:
    name, jid = str(leader["name"]), str(leader["jurisdiction_id"])
    out = run.run(
        "jurisdictions.profile", jurisdictions.profile, run.con, run.source, jurisdiction=jid, offence=p.offence
    )
    block = Block(f"Offence mix: {name} against its peers", anchor="offence-mix")
    if out.value is None:
        block.unavailable = out.unavailable("The offence mix")
        return block
    prof = out.value
    mix = prof.mix.dropna(subset=["share"])
    if mix.empty:
        block.unavailable = "No year has all four violent offences recorded for this jurisdiction."
        return _finish(block, prof.notes, out.caveats)
    diff = mix.iloc[int(mix["difference"].astype(float).abs().to_numpy().argmax())]
    block.paragraphs.append(
        f"{name} has the highest {p.adjective} rate in the ranking above. Of its violent crime, "
        + ", ".join(f"{str(r['label']).lower()} is {_pct(float(r['share']))}" for r in records(mix))
        + ". The biggest difference from the other jurisdictions (their median share) is "
        f"{str(diff['label']).lower()}: {_pct(float(diff['share']))} against "
        f"{_pct(float(diff['peer_median_share']))}."
    )
    peers = mix["peer_median_share"].astype(float)
    scale = float(peers.sum())
    rows = []  # stacked bars are drawn bottom-up: peers first puts the jurisdiction on top
    if scale > 0:
        rows += [("Peers (median)", r["label"], float(r["peer_median_share"]) / scale) for r in records(mix)]
    rows += [(name, r["label"], float(r["share"])) for r in records(mix)]
    spec = ChartSpec(
        kind="stacked_barh",
        data=pd.DataFrame(rows, columns=["jurisdiction", "offence", "share"]),
        x="jurisdiction",
        y="share",
        series="offence",
        title=f"Violent-offence mix: {name} and the median of its peers",
        x_label="",
        y_label="share of violent crime",
        note="Peer shares are the medians of the other jurisdictions' shares, rescaled to add up to 100%.",
    )
    block.figures += run.figure(spec, compact=True)
    block.figures += run.figure(prof.chart(), compact=True)
    shown = mix.assign(difference_points=mix["difference"].astype(float) * 100)
    block.tables.append(
        render_table(
            shown,
            columns=["label", "share", "peer_median_share", "difference_points"],
            labels={
                "share": f"Share in {name}",
                "peer_median_share": "Peers' median share",
                "difference_points": "Difference (percentage points)",
            },
        )
    )
    return _finish(block, prof.notes, out.caveats)


# -- trends --------------------------------------------------------------------------------------------
def trends_section(run: Runner, p: ReportParams) -> PageSection:
    section = PageSection(
        "trends",
        "Trends",
        intro=[
            "Whether changes are real or noise. Each year is tested against the year before (exact Poisson "
            f"test, significance level {p.alpha}); long-run trends use the Theil–Sen slope, which is robust "
            "to unusual years, and the Mann–Kendall test."
        ],
    )
    con, src = run.con, run.source
    yoy = run.run(
        "trends.year_over_year",
        trends.year_over_year,
        con,
        src,
        offence=p.offence,
        alpha=p.alpha,
        **p.span,
        **p.focus,
    )
    block = Block("Year-over-year changes", anchor="year-over-year")
    if yoy.value is None:
        block.unavailable = yoy.unavailable("Year-over-year changes")
    else:
        t = yoy.value.table
        tested = t[t["p_value"].notna()]
        sig = tested[tested["significant"].fillna(False).astype(bool)]
        ups = int((sig["direction"] == "up").sum())
        series_name = _series_name({**yoy.value.params, "focused": bool(p.jurisdiction)})
        block.title = f"Year-over-year changes in the {series_name}"
        block.paragraphs.append(
            f"Of {len(tested)} consecutive-year changes in the {series_name}, "
            f"{len(sig)} are statistically significant at "
            f"α = {p.alpha} ({ups} up, {len(sig) - ups} down). With large counts even small changes are "
            "significant, so read the size of the change as well."
        )
        block.figures += run.figure(yoy.value.chart())
        recent = tested.tail(10).iloc[::-1]
        block.tables.append(
            render_table(
                recent,
                columns=["year", "rate_per_100k", "change_pct", "ci_low", "ci_high", "p_value", "direction"],
                labels={"ci_low": "Rate ratio, low", "ci_high": "Rate ratio, high", "change_pct": "Change"},
                caption="The ten latest changes",
            )
        )
        _finish(block, yoy.value.notes, yoy.caveats)
    section.blocks.append(block)

    tp = run.run("trends.turning_points", trends.turning_points, con, src, offence=p.offence, **p.span, **p.focus)
    block = Block("Turning points", anchor="turning-points")
    if tp.value is None:
        block.unavailable = tp.unavailable("Turning points")
    else:
        t = tp.value.table
        min_run = tp.value.params.get("min_run", 3)
        series = _series_name({**tp.value.params, "focused": bool(p.jurisdiction)})
        if t.empty:
            block.paragraphs.append(
                f"The {series} has no sustained turn (a rise or fall of at least {min_run} years on "
                "each side, on a 3-year moving average)."
            )
        else:
            turns = ", ".join(f"a {r['kind']} in {r['year']}" for r in records(t))
            block.paragraphs.append(
                f"Turning points mark where a sustained rise gives way to a sustained fall, or back: at "
                f"least {min_run} years each side, on a 3-year moving average. The {series} has {turns}."
            )
            block.tables.append(
                render_table(t, columns=["year", "kind", "rate_per_100k", "change_before_pct", "change_after_pct"])
            )
        block.figures += run.figure(tp.value.chart())
        _finish(block, tp.value.notes, tp.caveats)
    section.blocks.append(block)

    lr = run.run("trends.long_run_trends", trends.long_run_trends, con, src, offence=p.offence, alpha=p.alpha, **p.span)
    block = Block("Fastest rising and falling long-run trends", anchor="long-run-trends")
    if lr.value is None:
        block.unavailable = lr.unavailable("Long-run trends")
    else:
        t = lr.value.table
        local = t[(t["kind"] != "nation") & t["annual_change_pct"].notna()]
        period = lr.value.params.get("period", "")
        if local.empty:
            min_years = lr.value.params.get("min_years", 5)
            block.paragraphs.append(
                f"No jurisdiction has the {min_years} or more fully reported years a long-run trend needs in {period}."
            )
        else:
            rising = local.iloc[0]
            falling = local.iloc[-1]
            block.paragraphs.append(
                f"Over {period}, the rate rose fastest in {rising['name']} "
                f"({float(rising['annual_change_pct']):+.1f}% a year compounded, {rising['direction']}) and "
                f"fell fastest in {falling['name']} ({float(falling['annual_change_pct']):+.1f}% a year, "
                f"{falling['direction']}). The compound annual change is the Theil–Sen slope of the log rate. "
                f"'No clear trend' means the Mann–Kendall test did not reach q < {p.alpha} after the "
                f"Benjamini–Hochberg correction over the {len(local)} jurisdictions."
            )
            block.figures += run.figure(lr.value.chart())
            cols = ["name", "n_years", "first_rate", "last_rate", "annual_change_pct", "mk_tau", "mk_p", "mk_q"]
            shown = pd.concat([local.head(5), local.tail(5)]).drop_duplicates("jurisdiction_id")
            block.tables.append(
                render_table(
                    shown,
                    columns=[*cols, "direction"],
                    labels={"annual_change_pct": "% a year (compound)"},
                    caption="Five fastest rising and five fastest falling",
                )
            )
        _finish(block, lr.value.notes, lr.caveats)
    section.blocks.append(block)
    return section


# -- persistent hotspots -------------------------------------------------------------------------------
def hotspots_section(run: Runner, p: ReportParams) -> PageSection:
    section = PageSection("hotspots", "Persistent hotspots")
    out = run.run(
        "persistence.persistent_hotspots",
        persistence.persistent_hotspots,
        run.con,
        run.source,
        offence=p.offence,
        k=p.k,
        share=p.hotspot_share,
        window=p.hotspot_window,
        end=p.year,
    )
    block = Block("Jurisdictions that stay at the top", anchor="persistent-hotspots")
    if out.value is None:
        block.unavailable = out.unavailable("Persistent hotspots")
        section.blocks.append(block)
        return section
    res = out.value
    k, share = res.params.get("k", p.k), float(res.params.get("share", p.hotspot_share))
    n_years, period = res.params.get("n_years", p.hotspot_window), res.params.get("period", "")
    section.intro.append(
        f"Rule: a jurisdiction is a persistent hotspot when it ranks in the top {k} by {p.adjective} rate "
        f"per 100,000 in at least {share:.0%} of the {n_years} years {period}. A year without a rate counts "
        "against it. One bad year is not enough: this finds places that are high year after year."
    )
    t = res.table
    if t.empty:
        block.paragraphs.append(f"No jurisdiction meets the rule in {period}.")
    else:
        lead = t.iloc[0]
        block.paragraphs.append(
            f"{len(t)} jurisdiction(s) meet the rule. {lead['name']} was in the top {k} in "
            f"{int(lead['years_in_top_k'])} of {n_years} years, at on average "
            f"{float(lead['mean_ratio_to_median']):.1f} times the median jurisdiction's rate over the window's "
            f"years ({float(lead['ratio_in_top_years']):.1f} times in its top-{k} years alone)."
        )
        block.figures += run.figure(res.chart())
    block.tables.append(
        render_table(
            t,
            max_rows=None,
            columns=[
                "name",
                "years_in_top_k",
                "share_of_years",
                "longest_run",
                "mean_ratio_to_median",
                "ratio_in_top_years",
                "latest_rate",
                "latest_rank",
            ],
            labels={
                "years_in_top_k": f"Years in top {k}",
                "share_of_years": "Share of years",
                "longest_run": "Longest run (years)",
                "mean_ratio_to_median": "Times the median rate (all window years)",
                "ratio_in_top_years": f"Times the median (top-{k} years only)",
                "latest_rate": "Latest rate per 100,000",
            },
        )
    )
    section.blocks.append(_finish(block, res.notes, out.caveats))
    return section
