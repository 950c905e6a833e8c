"""Findings on jurisdiction-year data, each derived from an analysis and citing the numbers behind it.

Nothing here knows any place: every name and number comes from the analyses run on the data loaded. Scores
follow the one scale of :mod:`crimelens.insights.base`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crimelens.analysis.jurisdictions import hotspots as persistence
from crimelens.analysis.jurisdictions import ranking as jurisdictions
from crimelens.analysis.jurisdictions import statistics as stats
from crimelens.analysis.jurisdictions import trends
from crimelens.analysis.jurisdictions.panel import panel
from crimelens.analysis.memo import Memo
from crimelens.config import SETTINGS, get_setting
from crimelens.errors import DataError
from crimelens.insights.base import MAX_NAMES as _MAX_NAMES
from crimelens.insights.base import Finding, make_finding
from crimelens.insights.base import among_highest as _among_highest
from crimelens.insights.base import fmt_count as _n
from crimelens.insights.base import fmt_p as _p
from crimelens.insights.base import fmt_pct as _pct
from crimelens.insights.base import fmt_rate as _rate
from crimelens.insights.base import join_names as _names
from crimelens.insights.base import sentence as _sentence
from crimelens.schema import COUNT_COLUMNS, OFFENCE_LABELS, VIOLENT_OFFENCES

__all__ = ["jurisdiction_findings"]

# the analyses' defaults, passed explicitly: a report asks with its parameters (these by default), and a memo
# shares a result only between calls with the same arguments
_ALPHA: float = SETTINGS["alpha"].default
_SHARE: float = SETTINGS["hotspot_share"].default
_WINDOW: int = SETTINGS["hotspot_window"].default


def _finding(kind: str, headline: str, detail: str, evidence: dict[str, Any], strength: float) -> Finding:
    return make_finding(kind, headline, detail, evidence, strength)


def _check_k_below(k: int, table: pd.DataFrame) -> None:
    if k >= len(table):
        raise DataError(
            f"k: expected fewer than the {len(table)} jurisdictions (else every one is in the top k), got {k}"
        )


# -- one function per finding --------------------------------------------------------------------------
def _counts_vs_rates(
    con: duckdb.DuckDBPyConnection, src: str, offence: str, year: int, k: int, memo: Memo
) -> list[Finding]:
    # the arguments of the report's rankings (ranks ≤ k; their first k rows are those of the full ranking), so a
    # report computes each once
    by_count = memo(jurisdictions.rank, con, src, offence=offence, by="count", year=year, top=k).table.head(k)
    ranked = memo(jurisdictions.rank, con, src, offence=offence, year=year).table  # by rate: the report's call
    min_count = int(get_setting("min_count"))
    small = ranked["count"].astype("float64") < min_count
    by_rate = ranked[~small].head(k)
    if by_count.empty or by_rate.empty:
        return []
    what = OFFENCE_LABELS[offence].lower()
    top_c, top_r = by_count.iloc[0], by_rate.iloc[0]
    overlap = sorted(set(by_count["name"]) & set(by_rate["name"]))
    if top_c["jurisdiction_id"] == top_r["jurisdiction_id"]:
        headline = (
            f"{top_c['name']} records both the most {what} ({_n(top_c['count'])} in {year}) and the highest "
            f"rate ({_rate(top_r['rate_per_100k'])} per 100,000 residents)"
        )
    else:
        headline = (
            f"{top_c['name']} records the most {what} ({_n(top_c['count'])} in {year}), but {top_r['name']} "
            f"has the highest rate ({_rate(top_r['rate_per_100k'])} per 100,000 residents)"
        )
    n = min(len(by_count), len(by_rate))
    same = set(by_count["name"]) == set(by_rate["name"])
    if n == 1:
        lists = ""
    elif same:
        lists = f"The top {n} by count and by rate are the same jurisdictions."
    elif not overlap:
        lists = f"The lists differ: none of the top {n} by count is among the top {n} by rate."
    else:
        verb = "is" if len(overlap) == 1 else "are"
        lists = f"The lists differ: only {len(overlap)} of the top {n} by count {verb} also in the top {n} by rate."
    detail = (
        f"Most {what} in {year}: {_sentence(_names(list(by_count['name'])))} Highest rates: "
        f"{_sentence(_names(list(by_rate['name'])))} {lists} Counts mostly follow population; rates per "
        "100,000 residents compare risk."
    ).replace("  ", " ")
    flags = small.to_numpy(dtype=bool)
    ahead = int(flags[: int(np.argmax(~flags))].sum())  # left out, yet ranked above the top one named
    if int(small.sum()):
        top = by_rate.iloc[0]
        detail += (
            f" {int(small.sum())} jurisdiction(s) with fewer than {min_count} recorded {what} offences were left out "
            f"of the rate ranking ({ahead} of them would have ranked above {top['name']}): on so few offences a "
            f"rate is mostly chance. {top['name']}'s rate: {_rate(top['rate_low'])}–{_rate(top['rate_high'])} "
            "(exact 95% interval)."
        )
    evidence = {
        "year": year,
        "offence": offence,
        "top_by_count": by_count[["name", "count"]].to_dict("records"),
        "top_by_rate": by_rate[["name", "rate_per_100k", "rate_low", "rate_high", "count"]].to_dict("records"),
        "min_count": min_count,
        "left_out_small_counts": int(small.sum()),
        "overlap": overlap,
    }
    return [_finding("counts_vs_rates", headline, detail, evidence, 1 - 0.5 * len(overlap) / max(n, 1))]


def _offence_mix(
    con: duckdb.DuckDBPyConnection, src: str, offence: str, year: int, k: int, memo: Memo
) -> list[Finding]:
    totals = memo(stats.offence_totals, con, src, year=year).table
    parts = totals[totals["offence"].isin(VIOLENT_OFFENCES) & totals["share_of_violent"].notna()]
    if parts.empty:
        return []
    parts = parts.sort_values("share_of_violent", ascending=False)
    first = parts.iloc[0]
    rest = ", ".join(
        f"{str(label).lower()} {_pct(float(share) * 100)}"
        for label, share in zip(parts["label"].iloc[1:], parts["share_of_violent"].iloc[1:], strict=True)
    )
    headline = (
        f"{first['label']} is the most common violent offence: {_pct(first['share_of_violent'] * 100)} of "
        f"recorded violent crime in {year}"
    )
    detail = f"Then {rest}." if rest else ""
    detail += " Shares are of the four violent offences, over jurisdictions reporting all four."
    evidence = {
        "year": year,
        "shares": dict(zip(parts["offence"], parts["share_of_violent"], strict=True)),
        "counts": dict(zip(parts["offence"], parts["count"], strict=True)),
    }
    return [_finding("offence_mix", headline, detail.strip(), evidence, 0.5 + float(first["share_of_violent"]) / 2)]


def _hotspots(con: duckdb.DuckDBPyConnection, src: str, offence: str, year: int, k: int, memo: Memo) -> list[Finding]:
    _check_k_below(k, memo(jurisdictions.rank, con, src, offence=offence, year=year).table)
    result = memo(
        persistence.persistent_hotspots, con, src, offence=offence, k=k, share=_SHARE, window=_WINDOW, end=year
    )
    p = result.params
    t = result.table
    what = OFFENCE_LABELS[offence].lower()
    share = float(p["share"])
    if t.empty:
        headline = (
            f"No jurisdiction stayed {_among_highest(k)} {what} rates in at least {share:.0%} of the "
            f"years {p['period']}"
        )
        return [_finding("hotspots", headline, "Rankings by rate change from year to year.", dict(p), 0.5)]
    always = t[t["share_of_years"] >= 1]
    shown = list(t["name"].head(_MAX_NAMES)) + ([f"{len(t) - _MAX_NAMES} more"] if len(t) > _MAX_NAMES else [])
    headline = (
        f"{len(t)} persistent hotspot{'s' if len(t) != 1 else ''}: {_names(shown)} ranked "
        f"{_among_highest(k)} {what} rates in at least {share:.0%} of the years {p['period']}"
    )
    parts = [
        f"{r.name}: {r.years_in_top_k} of {p['n_years']} years, on average {r.mean_ratio_to_median:.1f}× the "
        "median rate over the window"
        for r in t.itertuples()
    ]
    detail = "; ".join(parts) + "."
    if not always.empty:
        detail += f" {_among_highest(k).capitalize()} every year: {_sentence(_names(list(always['name'])))}"
    evidence = {
        **dict(p),
        "hotspots": t[["name", "years_in_top_k", "mean_ratio_to_median", "ratio_in_top_years"]].to_dict("records"),
    }
    return [_finding("hotspots", headline, detail, evidence, float(t["share_of_years"].mean()))]


def _trends(
    con: duckdb.DuckDBPyConnection, src: str, offence: str, year: int, k: int, memo: Memo, *, latest: int
) -> list[Finding]:
    # up to the latest year is the whole series: asked as the report's trends section asks for it (one run)
    if year == latest:
        result = memo(trends.long_run_trends, con, src, offence=offence, alpha=_ALPHA)
    else:
        result = memo(trends.long_run_trends, con, src, offence=offence, end=year, alpha=_ALPHA)
    t = result.table
    local = t[t["kind"] != "nation"]
    if local.empty:
        raise DataError(
            f"long-run trends: expected jurisdictions with at least {result.params['min_years']} fully "
            "reported years, got none"
        )
    significant = local[local["direction"] != "no clear trend"]
    what = OFFENCE_LABELS[offence].lower()
    out: list[Finding] = []
    nation = t[t["kind"] == "nation"]
    national = ""
    if not nation.empty:
        r = nation.iloc[0]
        national = (
            f" Nationally: {_pct(r['annual_change_pct'], signed=True)} a year compounded ({r['direction']}, "
            f"{_p(r['mk_p'])})."
        )
    for kind, sub, verb in (
        ("trend_rising", significant[significant["direction"] == "rising"].head(k), "rose"),
        ("trend_falling", significant[significant["direction"] == "falling"].iloc[::-1].head(k), "fell"),
    ):
        if sub.empty:
            continue
        r = sub.iloc[0]
        headline = (
            f"{r['name']}'s {what} rate {verb} fastest: {_pct(r['annual_change_pct'], signed=True)} a year "
            f"compounded over {r['first_year']}–{r['last_year']} ({_rate(r['first_rate'])} → "
            f"{_rate(r['last_rate'])} per 100,000)"
        )
        others = [
            f"{name} ({_pct(float(pct), signed=True)})"
            for name, pct in zip(sub["name"].iloc[1:], sub["annual_change_pct"].iloc[1:], strict=True)
        ]
        detail = (
            f"Compound annual change {_pct(r['annual_change_pct'], signed=True)} "
            f"({_pct(r['annual_change_low'], signed=True)} to {_pct(r['annual_change_high'], signed=True)}; "
            f"Theil–Sen on the log rate; first to last year alone: {_pct(r['endpoint_cagr_pct'], signed=True)}). "
            f"Mann–Kendall {_p(r['mk_p'])}, q = {float(r['mk_q']):.2g} after Benjamini–Hochberg over "
            f"{len(local)} jurisdictions." + (f" Next: {', '.join(others)}." if others else "") + national
        )
        evidence = {
            "period": result.params["period"],
            "jurisdiction": r["name"],
            "annual_change_pct": r["annual_change_pct"],
            "annual_change_low": r["annual_change_low"],
            "annual_change_high": r["annual_change_high"],
            "endpoint_cagr_pct": r["endpoint_cagr_pct"],
            "slope_per_year": r["slope_per_year"],
            "mk_p": r["mk_p"],
            "mk_q": r["mk_q"],
            "significant_trends": int((significant["direction"] == kind.removeprefix("trend_")).sum()),
        }
        out.append(_finding(kind, headline, detail, evidence, 0.5 + abs(float(r["annual_change_pct"])) / 10))
    if not out:
        headline = (
            f"No jurisdiction shows a significant long-run trend in its {what} rate over {result.params['period']}"
        )
        out.append(_finding("trend_none", headline, national.strip(), dict(result.params), 0.5))
    return out


def _national_change(
    con: duckdb.DuckDBPyConnection, src: str, offence: str, year: int, k: int, memo: Memo
) -> list[Finding]:
    result = memo(trends.year_over_year, con, src, offence=offence, alpha=_ALPHA)
    t = result.table
    row = t[t["year"] == year]
    if row.empty or pd.isna(row.iloc[0]["p_value"]):
        return []
    r = row.iloc[0]
    where = "Nationally" if result.params["jurisdiction_id"] else "Across all jurisdictions combined"
    what = OFFENCE_LABELS[offence].lower()
    prev = t[t["year"] == year - 1].iloc[0]
    rates = f"{_rate(prev['rate_per_100k'])} → {_rate(r['rate_per_100k'])} per 100,000"
    if bool(r["significant"]):
        verb = "rose" if r["direction"] == "up" else "fell"
        headline = f"{where}, the {what} rate {verb} {_pct(abs(r['change_pct']))} from {year - 1} to {year}"
        strength = 1.0
    else:
        headline = (
            f"{where}, the {what} rate did not change significantly from {year - 1} to {year} "
            f"({_pct(r['change_pct'], signed=True)})"
        )
        strength = 0.5
    phi = result.params.get("dispersion")
    test = (
        f"test allowing for the series' own year-to-year variation ({phi:.0f}× Poisson) {_p(r['p_value'])}"
        if phi is not None and phi > 1
        else f"exact Poisson test {_p(r['p_value'])}"
    )
    detail = (
        f"{rates}; rate ratio {r['rate_ratio']:.3f} ({(1 - result.params['alpha']):.0%} CI {r['ci_low']:.3f}–"
        f"{r['ci_high']:.3f}), {test}."
    )
    if bool(r["poisson_disagrees"]):
        detail += f" The exact Poisson test alone ({_p(r['p_poisson'])}) would call it " + (
            "not significant." if bool(r["significant"]) else "significant, but it ignores that variation."
        )
    evidence = {
        "year": year,
        "change_pct": r["change_pct"],
        "rate_ratio": r["rate_ratio"],
        "ci": [r["ci_low"], r["ci_high"]],
        "p_value": r["p_value"],
        "q_value": r["q_value"],
        "p_poisson": r["p_poisson"],
        "dispersion": phi,
        "significant": bool(r["significant"]),
        "series": result.params["name"],
    }
    return [_finding("national_change", headline, detail, evidence, strength)]


def _concentration(
    con: duckdb.DuckDBPyConnection, src: str, offence: str, year: int, k: int, memo: Memo
) -> list[Finding]:
    result = memo(jurisdictions.top_k_concentration, con, src, offence=offence, year=year, k=k)
    _check_k_below(k, result.table)
    if math.isnan(result.top_k_share):
        return []
    n = int(result.params["n_jurisdictions"])
    what = OFFENCE_LABELS[offence].lower()
    k_used = min(k, n)
    headline = (
        f"{'The jurisdiction' if k_used == 1 else f'The {k_used} jurisdictions'} with the most {what} "
        f"({_pct(result.k_share_of_jurisdictions * 100)} of {n}) account{'s' if k_used == 1 else ''} for "
        f"{_pct(result.top_k_share * 100)} of it in {year}"
    )
    top = result.table.head(k_used)
    detail = f"{_sentence(_names(list(top['name'])))} Large counts largely reflect large populations."
    evidence = {
        "year": year,
        "k": k_used,
        "n_jurisdictions": n,
        "top_k_share": result.top_k_share,
        "k_share_of_jurisdictions": result.k_share_of_jurisdictions,
    }
    strength = 0.5 + result.top_k_share - result.k_share_of_jurisdictions
    return [_finding("concentration", headline, detail, evidence, strength)]


def _caveats(frame: pd.DataFrame, offence: str, year: int) -> list[Finding]:
    local = frame[(frame["kind"] != "nation") & (frame["year"] <= year)]
    items: list[str] = []
    evidence: dict[str, Any] = {"year": year}
    partial = local[(local["year"] == year) & local["partial"] & local[offence].notna()]
    if not partial.empty:
        names = sorted(partial["name"])
        shown = _names(names[:5] + ([f"{len(names) - 5} more"] if len(names) > 5 else []))
        items.append(f"{len(names)} jurisdiction(s) reported fewer than 12 months in {year} ({shown})")
        evidence["partial_in_year"] = names
    partial_all = int((local["partial"] & local[offence].notna()).sum())
    if partial_all:
        evidence["partial_jurisdiction_years"] = partial_all
        items.append(f"{partial_all:,} jurisdiction-years in the data are partial and are flagged in every table")
    defs = local.loc[local["rape_definition"].notna()]
    if offence in ("rape", "violent_crime") and defs["rape_definition"].nunique() > 1:
        first = int(defs.loc[defs["rape_definition"] == "revised", "year"].min())
        items.append(
            f"rape counts follow the FBI's revised (broader) definition from {first}: rape and violent-crime "
            "series jump there for definitional reasons"
        )
        evidence["revised_rape_from"] = first
    missing = int(local[offence].isna().sum())
    if missing:
        items.append(f"{missing:,} jurisdiction-years have no {offence} count; they are skipped, never read as zero")
        evidence["missing_counts"] = missing
    if not items:
        return []
    headline = f"Data caveats: {len(items)} to keep in mind when reading these figures"
    detail = "; ".join(items) + "."
    return [_finding("caveats", headline, detail[0].upper() + detail[1:], evidence, 1.0)]


def _main_offence(frame: pd.DataFrame) -> str:
    local = frame[frame["kind"] != "nation"]
    for offence in COUNT_COLUMNS:
        if local[offence].notna().any():
            return offence
    raise DataError("findings: expected a dataset with at least one offence count, got none")


def jurisdiction_findings(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    year: int | None = None,
    k: int = 5,
    memo: Memo | None = None,
) -> tuple[list[Finding], list[str], dict[str, Any]]:
    """The findings on jurisdiction dataset ``source`` for ``year`` (default: the latest), with notes and params.

    Findings (each from an analysis, with its evidence): the jurisdictions with the most crimes against
    those with the highest rates; the most common violent offences; persistent hotspots (top ``k`` by
    rate); the fastest significant long-run rise and fall up to ``year``; the national (or combined) change
    from the year before, significant or not; how much the top ``k`` hold; and data caveats (partial
    years, the 2013 rape definition change, missing counts). Violent crime is used when the dataset has
    it. A finding whose analysis cannot run on this data is left out and said in the notes. ``memo``: share
    analyses with a report that shows them too (each runs once).
    """
    memo = memo or Memo()
    k = stats.check_whole("k", k)
    src, frame = panel(con, source)
    offence = _main_offence(frame)
    of = stats.offence_frame(frame, offence)
    the_year, _ = stats.resolve_period(of, offence, year=year, start=None, end=None, default="latest")
    latest, _ = stats.resolve_period(of, offence, year=None, start=None, end=None, default="latest")
    makers: list[tuple[str, Callable[[duckdb.DuckDBPyConnection, str, str, int, int, Memo], list[Finding]]]] = [
        ("counts vs rates", _counts_vs_rates),
        ("offence mix", _offence_mix),
        ("persistent hotspots", _hotspots),
        ("long-run trends", functools.partial(_trends, latest=latest)),
        ("national change", _national_change),
        ("concentration", _concentration),
    ]
    found: list[Finding] = []
    notes: list[str] = []
    for label, make in makers:
        try:
            found.extend(make(con, src, offence, the_year, k, memo))
        except DataError as exc:
            notes.append(f"{label}: not available on this data ({exc})")
    found.extend(_caveats(frame, offence, the_year))
    found = [replace(f, source=src) for f in found]
    params = {"source": src, "year": the_year, "k": k, "offence": offence}
    return found, notes, params
