"""Rank, profile and compare jurisdictions, and measure how concentrated recorded crime is.

National rows (kind 'nation') are totals, not peers: they are left out of every ranking and share.
Rankings use rates per 100,000 by default (counts mostly measure size); ties share a rank (the
"min" method: 1, 2, 2, 4).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import duckdb
import pandas as pd

from crimelens.analysis.inference import poisson_rate_interval
from crimelens.analysis.jurisdictions.panel import offence_years, panel
from crimelens.analysis.jurisdictions.statistics import (
    RATE_BASE,
    check_whole,
    offence_frame,
    period_label,
    resolve_period,
    resolve_years,
    skipped_note,
)
from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.config import SETTINGS
from crimelens.errors import DataError
from crimelens.schema import OFFENCE_LABELS, VIOLENT_OFFENCES

__all__ = [
    "Comparison",
    "Concentration",
    "Profile",
    "Ranking",
    "compare",
    "find_jurisdiction",
    "find_jurisdictions",
    "profile",
    "rank",
    "rejoin_names",
    "top_k_concentration",
    "top_series",
]

_CHART_ROWS = 25


def find_jurisdiction(frame: pd.DataFrame, query: str, *, allow_nation: bool = True) -> tuple[str, str, str]:
    """(id, name, kind) of the jurisdiction whose id or name is ``query`` (case-insensitive).

    Unknown names raise :class:`DataError` listing the closest names.
    """
    if not isinstance(query, str) or not query.strip():
        raise DataError(f"jurisdiction: expected a name or id, got {query!r}")
    known = frame[["jurisdiction_id", "name", "kind"]].drop_duplicates("jurisdiction_id")
    if not allow_nation:
        known = known[known["kind"] != "nation"]
    q = query.strip().casefold()
    hit = known[known["jurisdiction_id"].str.casefold() == q]
    if hit.empty:
        hit = known[known["name"].str.casefold() == q]
    if len(hit) > 1:
        ids = ", ".join(hit["jurisdiction_id"])
        raise DataError(f"jurisdiction {query!r}: expected one match, got several ({ids}); give the id")
    if hit.empty:
        names = known["name"].tolist()
        lowered = {n.casefold(): n for n in names}
        close = [lowered[c] for c in difflib.get_close_matches(q, list(lowered), n=5, cutoff=0.5)]
        close += [n for n in names if q in n.casefold() and n not in close]
        shown = ", ".join(close[:5]) if close else ", ".join(sorted(names)[:5]) + ", ..."
        what = "a jurisdiction (not the national total)" if not allow_nation else "a jurisdiction"
        raise DataError(f"jurisdiction {query!r}: expected the name or id of {what}; close matches: {shown}")
    row = hit.iloc[0]
    return str(row["jurisdiction_id"]), str(row["name"]), str(row["kind"])


def rejoin_names(frame: pd.DataFrame, pieces: Sequence[str]) -> list[str]:
    """``pieces`` of a comma-separated list of places, with the pieces of a name that itself holds commas
    ("Miami-Dade County, Fla.") joined back: from each piece, the longest run of pieces that, joined by ", ",
    is the id or name of a jurisdiction of ``frame`` (case-insensitive) is one place; a piece in no such run is
    kept as it is (and :func:`find_jurisdiction` then says it is unknown)."""
    known = {str(v).casefold() for v in frame["jurisdiction_id"]} | {str(v).casefold() for v in frame["name"]}
    parts = [p.strip() for p in pieces]
    out: list[str] = []
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            joined = ", ".join(parts[i:j])
            if j == i + 1 or joined.casefold() in known:
                out.append(joined)
                i = j
                break
    return out


def find_jurisdictions(frame: pd.DataFrame, queries: Sequence[str]) -> list[str]:
    """The ids of the places ``queries`` name, in order and each once, each found by :func:`find_jurisdiction`
    (an unknown one is a :class:`DataError` naming the closest). Pieces of a comma-separated list go through
    :func:`rejoin_names` first."""
    ids: list[str] = []
    for query in queries:
        jid = find_jurisdiction(frame, query)[0]
        if jid not in ids:
            ids.append(jid)
    return ids


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise DataError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _aggregate(sel: pd.DataFrame) -> pd.DataFrame:
    """Per jurisdiction: count (all years with a count) and rate over the years with both."""
    counted = sel[sel["count"].notna()]
    both = counted[counted["population"].notna()]
    agg = counted.groupby(["jurisdiction_id", "name", "kind"], as_index=False).agg(
        count=("count", "sum"), years=("year", "nunique"), partial_years=("partial", "sum")
    )
    rate_part = both.groupby("jurisdiction_id").agg(
        rate_count=("count", "sum"), pop_sum=("population", "sum"), pop_years=("year", "nunique")
    )
    agg = agg.merge(rate_part, how="left", left_on="jurisdiction_id", right_index=True)
    agg["rate_per_100k"] = agg["rate_count"] / agg["pop_sum"] * RATE_BASE
    low, high = poisson_rate_interval(agg["rate_count"].to_numpy(dtype=float), agg["pop_sum"].to_numpy(dtype=float))
    agg["rate_low"], agg["rate_high"] = low * RATE_BASE, high * RATE_BASE
    agg["population"] = (agg["pop_sum"] / agg["pop_years"]).round().astype("Int64")
    agg["count"] = agg["count"].round().astype("Int64")
    agg["partial_years"] = agg["partial_years"].astype("int64")
    return agg


# -- rank ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ranking(Result):
    """Jurisdictions ranked by rate or count."""

    def chart(self) -> ChartSpec:
        by = str(self.params.get("by", "rate"))
        y = "rate_per_100k" if by == "rate" else "count"
        data = self.table.head(_CHART_ROWS).assign(partial=lambda t: t["partial_years"] > 0)
        data = data.iloc[::-1][["name", y, "partial"]].reset_index(drop=True)
        shown = "" if len(self.table) <= _CHART_ROWS else f"Top {_CHART_ROWS} of {len(self.table)}. "
        return ChartSpec(
            kind="barh",
            data=data,
            x="name",
            y=y,
            title=self.title,
            x_label="jurisdiction",
            y_label="per 100,000 residents" if by == "rate" else "recorded offences",
            highlight="partial",
            note=shown + "Highlighted bars include years with partial reporting.",
        )


@records_caveats
def rank(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    offence: str = "violent_crime",
    by: str = "rate",
    year: int | None = None,
    start: int | None = None,
    end: int | None = None,
    top: int | None = None,
) -> Ranking:
    """Rank the jurisdictions (not the nation) by rate per 100,000 or by count, highest first.

    Columns ``rank, jurisdiction_id, name, kind, count, population, rate_per_100k, rate_low, rate_high, years,
    partial_years``; ``rate_low``–``rate_high`` is the exact 95% Poisson (Garwood 1936) interval of the rate
    (:func:`crimelens.analysis.inference.poisson_rate_interval`): on a handful of offences it is wide, and a
    high rank by rate may be chance.
    ``count`` sums every year of the period with a count; the rate is sum(counts) / sum(population) ×
    100,000 over the years with both; ``population`` is the mean annual population over those years.
    Ranked by rate, jurisdictions without a population are left out and named in ``notes``. ``top``
    keeps ranks ≤ top (ties at the edge are all kept).
    """
    by = _check_choice("by", by, ("rate", "count"))
    if top is not None:
        top = check_whole("top", top)
    src, years = offence_years(con, source, offence)
    lo, hi = resolve_years(years, offence, year=year, start=start, end=end, default="latest")
    _, frame = panel(con, src, offences=(offence,), start=lo, end=hi)
    of = offence_frame(frame, offence)
    sel = of[(of["kind"] != "nation") & (of["year"] >= lo) & (of["year"] <= hi)]
    notes = [n for n in [skipped_note(int(sel["count"].isna().sum()), offence)] if n]
    agg = _aggregate(sel)
    value = "rate_per_100k" if by == "rate" else "count"
    if by == "rate":
        no_rate = agg[agg["rate_per_100k"].isna()]
        if not no_rate.empty:
            names = ", ".join(sorted(no_rate["name"]))
            notes.append(f"{len(no_rate)} jurisdiction(s) without a population left out of the rate ranking: {names}")
        agg = agg[agg["rate_per_100k"].notna()]
    agg = agg.assign(rank=agg[value].astype("float64").rank(method="min", ascending=False).astype("int64"))
    agg = agg.sort_values(["rank", "name"]).reset_index(drop=True)
    if top is not None:
        agg = agg[agg["rank"] <= top]
    partial = int((agg["partial_years"] > 0).sum())
    if partial:
        notes.append(f"{partial} ranked jurisdiction(s) include years with fewer than 12 months reported")
    cols = [
        "rank", "jurisdiction_id", "name", "kind", "count", "population", "rate_per_100k", "rate_low", "rate_high",
        "years",
    ]  # fmt: skip
    label = period_label(lo, hi)
    what = "rate per 100,000" if by == "rate" else "count"
    return Ranking(
        title=f"{OFFENCE_LABELS[offence]} {what}, {label}: jurisdictions ranked",
        table=agg[[*cols, "partial_years"]].reset_index(drop=True),
        params={
            "source": src,
            "offence": offence,
            "by": by,
            "start": lo,
            "end": hi,
            "period": label,
            "top": top,
        },
        notes=tuple(notes),
    )


# -- profile -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile(Result):
    """One jurisdiction over time: rank by rate and count each year, and its offence mix against peers."""

    mix: pd.DataFrame = field(default_factory=pd.DataFrame)

    def chart(self) -> ChartSpec:
        data = self.table[self.table["rank_by_rate"].notna()][["year", "rank_by_rate", "partial"]]
        return ChartSpec(
            kind="line",
            data=data.reset_index(drop=True),
            x="year",
            y="rank_by_rate",
            title=f"{self.params.get('name', '')}: rank by rate each year (1 = highest)",
            x_label="year",
            y_label="rank by rate (1 = highest)",
            highlight="partial",
            note="Highlighted years had partial reporting.",
        )


def _violent_shares(rows: pd.DataFrame) -> pd.Series:
    """Share of each violent offence in the sum of the four, over complete rows (NaN if none)."""
    complete = rows[list(VIOLENT_OFFENCES)].dropna().astype("float64")
    total = float(complete.to_numpy().sum()) if not complete.empty else 0.0
    if total <= 0:
        return pd.Series(float("nan"), index=list(VIOLENT_OFFENCES))
    return complete.sum() / total


def _mix(frame: pd.DataFrame, jid: str) -> pd.DataFrame:
    local = frame[frame["kind"] != "nation"]
    own = local[local["jurisdiction_id"] == jid]
    years = own.loc[own[list(VIOLENT_OFFENCES)].notna().all(axis=1), "year"]
    own_share = _violent_shares(own[own["year"].isin(years)])
    peers = local[(local["jurisdiction_id"] != jid) & local["year"].isin(years)]
    # each peer's shares over its complete rows (the same rule as _violent_shares, for all peers at once)
    complete = peers.dropna(subset=list(VIOLENT_OFFENCES))
    sums = complete.groupby("jurisdiction_id")[list(VIOLENT_OFFENCES)].sum().astype("float64")
    totals = sums.sum(axis=1)
    peer_shares = sums[totals > 0].div(totals[totals > 0], axis=0)
    peer_median = (
        peer_shares.median(axis=0) if not peer_shares.empty else pd.Series(float("nan"), index=own_share.index)
    )
    out = pd.DataFrame(
        {
            "offence": list(VIOLENT_OFFENCES),
            "label": [OFFENCE_LABELS[o] for o in VIOLENT_OFFENCES],
            "share": own_share.to_numpy(),
            "peer_median_share": peer_median.reindex(list(VIOLENT_OFFENCES)).to_numpy(),
        }
    )
    out["difference"] = out["share"] - out["peer_median_share"]
    out["difference_points"] = out["difference"] * 100  # percentage points, as a reader says it
    return out


@records_caveats
def profile(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    jurisdiction: str,
    offence: str = "violent_crime",
    start: int | None = None,
    end: int | None = None,
) -> Profile:
    """A jurisdiction's count, rate and ranks year by year, and its violent-offence mix against its peers.

    ``jurisdiction`` is an id or a name (case-insensitive). Table columns ``year, count, rate_per_100k,
    rank_by_rate, rank_by_count, n_jurisdictions, partial``: ranks among the non-national jurisdictions
    that year (1 = highest); ``n_jurisdictions`` is how many had a rate that year. ``mix`` has ``offence,
    label, share, peer_median_share, difference, difference_points``: each violent offence's share of its
    violent crime over the years where all four are known, against the median share of the other jurisdictions
    over the same years; ``difference`` is share − peer median, ``difference_points`` the same in percentage
    points. ``start``/``end``: only the years of that span (inclusive).
    """
    if start is not None or end is not None:
        src, years = offence_years(con, source, offence)
        start, end = resolve_years(years, offence, year=None, start=start, end=end, default="all")
    src, frame = panel(con, source, offences=(offence, *VIOLENT_OFFENCES), start=start, end=end)
    jid, name, kind = find_jurisdiction(frame, jurisdiction, allow_nation=False)
    of = offence_frame(frame, offence)
    local = of[of["kind"] != "nation"].copy()
    by_year = local.groupby("year")
    local["rank_by_rate"] = by_year["rate_per_100k"].rank(method="min", ascending=False)
    local["rank_by_count"] = by_year["count"].rank(method="min", ascending=False)
    local["n_jurisdictions"] = by_year["rate_per_100k"].transform("count")
    own = local[local["jurisdiction_id"] == jid]
    notes = [n for n in [skipped_note(int(own["count"].isna().sum()), offence)] if n]
    own = own[own["count"].notna()]
    table = own[["year", "count", "rate_per_100k", "rank_by_rate", "rank_by_count", "n_jurisdictions", "partial"]]
    table = table.sort_values("year").reset_index(drop=True)
    for col in ("count", "rank_by_rate", "rank_by_count", "n_jurisdictions"):
        table[col] = table[col].round().astype("Int64")
    n_partial = int(table["partial"].sum())
    if n_partial:
        notes.append(f"{n_partial} year(s) reported fewer than 12 months (partial = true): ranks understate them")
    mix = _mix(frame, jid)
    if mix["share"].isna().all():
        notes.append("no year with all four violent offences known: the offence mix is empty")
    return Profile(
        title=f"{name}: {OFFENCE_LABELS[offence].lower()} year by year",
        table=table,
        params={"source": src, "offence": offence, "jurisdiction_id": jid, "name": name, "kind": kind},
        notes=tuple(notes),
        mix=mix,
    )


# -- concentration -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Concentration(Result):
    """How much of the recorded total the top jurisdictions hold."""

    top_k_share: float = float("nan")
    k_share_of_jurisdictions: float = float("nan")

    def chart(self) -> ChartSpec:
        data = self.table[["rank", "name", "cumulative_share"]].assign(top_k=lambda t: t["rank"] <= self.params["k"])
        return ChartSpec(
            kind="line",
            data=data.reset_index(drop=True),
            x="rank",
            y="cumulative_share",
            title=self.title,
            x_label="jurisdictions, largest first",
            y_label="cumulative share of the total",
            highlight="top_k",
            note=f"The top {self.params['k']} hold {self.top_k_share:.1%} of the total.",
        )


@records_caveats
def top_k_concentration(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    offence: str = "violent_crime",
    year: int | None = None,
    start: int | None = None,
    end: int | None = None,
    k: int = SETTINGS["top_k"].default,
) -> Concentration:
    """Each jurisdiction's share of the total count, largest first, with the cumulative share.

    Columns ``rank, jurisdiction_id, name, count, share, cumulative_share`` (rank is the position, ties
    ordered by name). ``top_k_share`` is the share held by the top ``k``; ``k_share_of_jurisdictions`` is
    k as a share of the jurisdictions counted (both also in ``params``).
    """
    k = check_whole("k", k)
    src, years = offence_years(con, source, offence)
    lo, hi = resolve_years(years, offence, year=year, start=start, end=end, default="latest")
    _, frame = panel(con, src, offences=(offence,), start=lo, end=hi)
    of = offence_frame(frame, offence)
    sel = of[(of["kind"] != "nation") & (of["year"] >= lo) & (of["year"] <= hi)]
    notes = [n for n in [skipped_note(int(sel["count"].isna().sum()), offence)] if n]
    agg = _aggregate(sel)[["jurisdiction_id", "name", "count"]]
    agg = agg.sort_values(["count", "name"], ascending=[False, True]).reset_index(drop=True)
    agg.insert(0, "rank", range(1, len(agg) + 1))
    total = float(agg["count"].astype("float64").sum())
    if total > 0:
        agg["share"] = agg["count"].astype("float64") / total
        agg["cumulative_share"] = agg["count"].astype("float64").cumsum() / total
    else:
        agg["share"] = float("nan")
        agg["cumulative_share"] = float("nan")
        notes.append(f"no {offence} recorded in the period: shares are undefined")
    n = len(agg)
    k_used = min(k, n)
    if k > n:
        notes.append(f"k = {k} is more than the {n} jurisdictions with counts: all are in the top k")
    top_share = float(agg["cumulative_share"].iloc[k_used - 1]) if n else float("nan")
    k_share = k_used / n if n else float("nan")
    label = period_label(lo, hi)
    return Concentration(
        title=f"Concentration of {OFFENCE_LABELS[offence].lower()}, {label}",
        table=agg,
        params={
            "source": src,
            "offence": offence,
            "start": lo,
            "end": hi,
            "period": label,
            "k": k,
            "top_k_share": top_share,
            "k_share_of_jurisdictions": k_share,
            "n_jurisdictions": n,
        },
        notes=tuple(notes),
        top_k_share=top_share,
        k_share_of_jurisdictions=k_share,
    )


# -- compare and top series ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison(Result):
    """Several jurisdictions' yearly series, long format (``year, jurisdiction_id, name, value, partial``)."""

    chart_kind: Literal["line", "small_multiples"] = "line"

    def chart(self) -> ChartSpec:
        measure = self.params.get("measure", "rate")
        y_label = "per 100,000 residents" if measure == "rate" else "recorded offences"
        kind: Literal["line", "small_multiples"] = self.chart_kind
        return ChartSpec(
            kind=kind,
            data=self.table,
            x="year",
            y="value",
            title=self.title,
            series="name" if kind == "line" else None,
            facet="name" if kind == "small_multiples" else None,
            x_label="year",
            y_label=y_label,
            highlight="partial",
            note="Highlighted points are years with partial reporting.",
        )


def _series_table(of: pd.DataFrame, ids: list[str], measure: str) -> tuple[pd.DataFrame, int]:
    column = "rate_per_100k" if measure == "rate" else "count"
    sel = of[of["jurisdiction_id"].isin(ids)]
    missing = int(sel[column].isna().sum())
    sel = sel[sel[column].notna()].rename(columns={column: "value"})
    order = {j: i for i, j in enumerate(ids)}
    sel = sel.assign(_order=sel["jurisdiction_id"].map(order)).sort_values(["_order", "year"])
    table = sel[["year", "jurisdiction_id", "name", "value", "partial"]].reset_index(drop=True)
    return table, missing


@records_caveats
def compare(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    jurisdictions: list[str],
    offence: str = "violent_crime",
    measure: str = "rate",
) -> Comparison:
    """Jurisdictions' (or the nation's) yearly rate per 100,000 or count, side by side.

    Long table ``year, jurisdiction_id, name, value, partial``; years without a value are skipped and
    counted in ``notes``.
    """
    measure = _check_choice("measure", measure, ("rate", "count"))
    if isinstance(jurisdictions, str) or not jurisdictions:
        raise DataError(f"jurisdictions: expected a list of one or more names or ids, got {jurisdictions!r}")
    src, frame = panel(con, source, offences=(offence,))
    of = offence_frame(frame, offence)
    ids = find_jurisdictions(frame, jurisdictions)
    table, missing = _series_table(of, ids, measure)
    notes = []
    if missing:
        notes.append(f"{missing} jurisdiction-year(s) without a {measure} skipped")
    names = ", ".join(dict.fromkeys(table["name"]))
    what = "rate per 100,000" if measure == "rate" else "count"
    return Comparison(
        title=f"{OFFENCE_LABELS[offence]} {what}: {names}",
        table=table,
        params={"source": src, "offence": offence, "measure": measure, "jurisdiction_ids": ids},
        notes=tuple(notes),
    )


@records_caveats
def top_series(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    offence: str = "violent_crime",
    k: int = 6,
    year: int | None = None,
) -> Comparison:
    """The ``k`` jurisdictions with the highest rate in ``year`` (default: latest), each with its full
    rate series (for small multiples, ordered by that year's rank)."""
    k = check_whole("k", k)
    src, frame = panel(con, source, offences=(offence,))
    of = offence_frame(frame, offence)
    lo, _ = resolve_period(of, offence, year=year, start=None, end=None, default="latest")
    that_year = of[(of["kind"] != "nation") & (of["year"] == lo) & of["rate_per_100k"].notna()]
    top = that_year.sort_values(["rate_per_100k", "name"], ascending=[False, True]).head(k)
    ids = top["jurisdiction_id"].tolist()
    table, _ = _series_table(of, ids, "rate")
    notes = []
    if len(ids) < k:
        notes.append(f"only {len(ids)} jurisdiction(s) have a rate in {lo}")
    return Comparison(
        title=f"Highest {OFFENCE_LABELS[offence].lower()} rates in {lo}: each series",
        table=table,
        params={
            "source": src,
            "offence": offence,
            "measure": "rate",
            "year": lo,
            "k": k,
            "jurisdiction_ids": ids,
        },
        notes=tuple(notes),
        chart_kind="small_multiples",
    )
