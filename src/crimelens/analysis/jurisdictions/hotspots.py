"""Persistent hotspots: jurisdictions that rank among the highest rates year after year.

A single year's ranking mixes real differences with noise; a jurisdiction that sits in the top k by rate
in most years of a recent window is a persistent hotspot (the idea of "chronic" hot spots in
Weisburd, Bushway, Lum & Yang 2004, Criminology 42, applied here at the jurisdiction level).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from crimelens.analysis.jurisdictions.panel import offence_years, panel
from crimelens.analysis.jurisdictions.statistics import check_whole, offence_frame, period_label, resolve_years
from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.config import SETTINGS
from crimelens.errors import DataError
from crimelens.schema import OFFENCE_LABELS

__all__ = ["Hotspots", "persistent_hotspots"]

_COLUMNS = [
    "jurisdiction_id",
    "name",
    "years_in_top_k",
    "share_of_years",
    "longest_run",
    "mean_ratio_to_median",
    "ratio_in_top_years",
    "latest_rate",
    "latest_rank",
]


@dataclass(frozen=True)
class Hotspots(Result):
    """Jurisdictions in the top k by rate in at least a given share of a window's years."""

    def chart(self) -> ChartSpec:
        data = self.table.sort_values("share_of_years")[["name", "share_of_years", "years_in_top_k"]]
        return ChartSpec(
            kind="barh",
            data=data.reset_index(drop=True),
            x="name",
            y="share_of_years",
            title=self.title,
            x_label="jurisdiction",
            y_label=f"share of the {self.params.get('n_years', '')} years in the top {self.params.get('k', '')}",
        )


def _longest_run(flags: list[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


@records_caveats
def persistent_hotspots(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    offence: str = "violent_crime",
    k: int = SETTINGS["top_k"].default,
    share: float = SETTINGS["hotspot_share"].default,
    window: int = SETTINGS["hotspot_window"].default,
    end: int | None = None,
) -> Hotspots:
    """Jurisdictions in the top ``k`` by rate per 100,000 in at least ``share`` of the window's years.

    The window is the ``window`` latest years with counts up to ``end`` (default: the latest year). Each
    year the non-national jurisdictions with a rate are ranked (ties share a rank); a year a jurisdiction
    has no rate counts against it (the denominator is always the window's years). Columns
    ``jurisdiction_id, name, years_in_top_k, share_of_years, longest_run`` (consecutive window years in
    the top k), ``mean_ratio_to_median`` (mean over *every* window year it has a rate of rate / that year's
    median rate: how far above typical it runs through the window), ``ratio_in_top_years`` (the same mean over
    its top-k years only, which is larger by construction: those are the years it was high),
    ``latest_rate, latest_rank`` (in the window's last year). Sorted by share of years, then ratio.
    """
    k = check_whole("k", k)
    window = check_whole("window", window, what="a whole number of years")
    if not isinstance(share, float | int) or isinstance(share, bool) or not 0 < share <= 1:
        raise DataError(f"share: expected a share of years in (0, 1], e.g. 0.5, got {share!r}")
    src, years_counted = offence_years(con, source, offence)
    _, last = resolve_years(years_counted, offence, year=end, start=None, end=None, default="latest")
    _, frame = panel(con, src, offences=(offence,), end=last)
    of = offence_frame(frame, offence)
    local = of[(of["kind"] != "nation") & of["rate_per_100k"].notna() & (of["year"] <= last)]
    years = sorted(int(y) for y in local["year"].unique())[-window:]
    notes: list[str] = []
    if len(years) < window:
        notes.append(f"only {len(years)} year(s) with rates up to {last}: the window is shorter than {window}")
    if years and years[-1] != last:
        notes.append(f"no rates in {last}: the window ends in {years[-1]}")
    sel = local[local["year"].isin(years)].copy()
    by_year = sel.groupby("year")["rate_per_100k"]
    sel["rank"] = by_year.rank(method="min", ascending=False)
    sel["ratio"] = sel["rate_per_100k"] / by_year.transform("median")
    sel["top"] = sel["rank"] <= k
    rows = []
    for (jid, name), g in sel.groupby(["jurisdiction_id", "name"]):
        in_top = set(g.loc[g["top"], "year"].astype(int))
        share_of_years = len(in_top) / len(years)
        if share_of_years < share:
            continue
        latest = g[g["year"] == years[-1]]
        rows.append(
            {
                "jurisdiction_id": jid,
                "name": name,
                "years_in_top_k": len(in_top),
                "share_of_years": share_of_years,
                "longest_run": _longest_run([y in in_top for y in years]),
                "mean_ratio_to_median": float(g["ratio"].mean()),
                "ratio_in_top_years": float(g.loc[g["top"], "ratio"].mean()),
                "latest_rate": float(latest["rate_per_100k"].iloc[0]) if not latest.empty else np.nan,
                "latest_rank": int(latest["rank"].iloc[0]) if not latest.empty else pd.NA,
            }
        )
    table = pd.DataFrame(rows, columns=_COLUMNS)
    table["latest_rank"] = table["latest_rank"].astype("Int64")
    table = table.sort_values(
        ["share_of_years", "mean_ratio_to_median", "name"], ascending=[False, False, True]
    ).reset_index(drop=True)
    partial = int(sel["partial"].sum())
    if partial:
        notes.append(
            f"{partial} jurisdiction-year(s) in the window were partially reported; their rates understate "
            "and may keep them out of the top k"
        )
    label = period_label(years[0], years[-1]) if years else str(last)
    return Hotspots(
        title=f"Persistent hotspots: in the top {k} by {OFFENCE_LABELS[offence].lower()} rate in at least "
        f"{share:.0%} of the years {label}",
        table=table,
        params={
            "source": src,
            "offence": offence,
            "k": k,
            "share": share,
            "window": window,
            "start": years[0] if years else None,
            "end": years[-1] if years else None,
            "period": label,
            "n_years": len(years),
        },
        notes=tuple(notes),
    )
