"""Findings on incident data: where incidents concentrate, significant hot spots, the peak hour, near repeats.

:func:`findings_from_results` turns incident analyses already computed (the report's sections compute them) into
findings; :func:`incident_findings` computes those analyses for one incident dataset first, with the settings'
cell size, permutations and seed. Scores follow the one scale of :mod:`crimelens.insights.base`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crimelens.errors import CrimeLensError
from crimelens.insights.base import Finding, make_finding

if TYPE_CHECKING:
    import duckdb

    from crimelens.analysis.incidents.hotspots import GiStarResult
    from crimelens.analysis.incidents.knox import KnoxResult
    from crimelens.analysis.incidents.spatial import ConcentrationResult
    from crimelens.analysis.incidents.temporal import HourWeekdayResult

__all__ = ["IncidentResults", "findings_from_results", "incident_findings"]

#: Hours in a week: an even spread puts 1/168 of incidents in each hour of the week.
_WEEK_HOURS = 168


@dataclass(frozen=True)
class IncidentResults:
    """The incident analyses findings are drawn from (any may be missing: its findings are then left out)."""

    source: str
    simulated: bool
    cell_m: float
    alpha: float
    concentration: ConcentrationResult | None = None
    hotspots: GiStarResult | None = None
    profile: HourWeekdayResult | None = None
    near_repeat: KnoxResult | None = None


def findings_from_results(r: IncidentResults) -> list[Finding]:
    """Headline findings from incident results, each citing its numbers."""
    label = f"{r.source} (simulated)" if r.simulated else r.source
    found: list[Finding] = []
    conc = r.concentration
    if conc is not None and conc.units_total:
        found.append(
            make_finding(
                "incident_concentration",
                f"{label}: half of all located incidents fall in {conc.units_for_half:.1%} of {r.cell_m:g} m cells",
                f"The busiest 5% of cells hold {conc.top_5pct:.0%} of incidents: resources aimed at a few places "
                "reach a large share of crime.",
                {
                    "cells": conc.units_total,
                    "share_of_cells_holding_half": conc.units_for_half,
                    "share_in_busiest_1pct_of_cells": conc.top_1pct,
                    "share_in_busiest_5pct_of_cells": conc.top_5pct,
                    "gini": conc.gini,
                    "cell_m": r.cell_m,
                },
                1 - conc.units_for_half,
                r.source,
            )
        )
    gi = r.hotspots
    if gi is not None and gi.n_hot:
        table = gi.table
        total = float(table["incidents"].sum())
        in_hot = float(table.loc[table["hotspot"] == "hot", "incidents"].sum())
        share = in_hot / total if total else 0.0
        found.append(
            make_finding(
                "incident_hotspots",
                f"{label}: {gi.n_hot:,} grid cells are statistically significant hot spots (Gi*, FDR {r.alpha:g})",
                f"They hold {share:.0%} of located incidents. Clusters of busy cells, not single busy cells: "
                "candidates for place-based prevention, checked against local knowledge first.",
                {
                    "hot_cells": gi.n_hot,
                    "cold_cells": gi.n_cold,
                    "share_of_incidents_in_hot_cells": share,
                    "cell_m": r.cell_m,
                    "false_discovery_rate": r.alpha,
                },
                0.5 + share,
                r.source,
            )
        )
    prof = r.profile
    heaped = prof.heaped_hours if prof is not None else ()
    candidates = prof.table[~prof.table["hour"].isin(heaped)] if prof is not None else None
    if prof is not None and candidates is not None and not candidates.empty:
        top = candidates.sort_values(["incidents", "weekday", "hour"], ascending=[False, True, True]).iloc[0]
        share = float(top["share"])
        left_out = int(prof.table.loc[prof.table["hour"].isin(heaped), "incidents"].sum())
        midnight = (
            " Many sources file incidents with no known time at 00:00, so a midnight peak may partly be records "
            "without a time: check before acting."
            if int(top["hour"]) == 0
            else ""
        )
        if heaped:
            hours = " and ".join(f"{h:02d}:00" for h in heaped)
            midnight += (
                f" Left out: {hours}, time heaps against their neighbouring hours ({left_out:,} incidents, "
                "often times unknown or rounded)."
            )
        days = prof.heaped_days
        if days and prof.day_heaps is not None:
            dh = prof.day_heaps[prof.day_heaps["heap"]]
            midnight += (
                f" Dates heap too, on the {' and '.join(days)} ({float(dh['excess'].sum()):,.0f} incidents above "
                "the days either side): unknown dates are often filed there."
            )
        found.append(
            make_finding(
                "incident_peak_time",
                f"{label}: incidents peak on {top['weekday_name']}s at {int(top['hour']):02d}:00",
                f"That hour holds {share:.1%} of incidents with a known time, {share * _WEEK_HOURS:.1f}× an even "
                "spread over the week's 168 hours: timing patrols and services to the busiest hours is the "
                "cheapest targeting there is." + midnight,
                {
                    "incidents_in_peak_hour": int(top["incidents"]),
                    "share": share,
                    "times_even_spread": share * 168,
                    "heaped_hours": list(heaped),
                    "incidents_in_heaped_hours": left_out,
                    "heaped_days": list(prof.heaped_days),
                },
                0.5 + (share * _WEEK_HOURS - 1) / 4,
                r.source,
            )
        )
    knox = r.near_repeat
    if knox is not None and not knox.table.empty:
        first = knox.table.iloc[0]
        ratio, p = float(first["knox_ratio"]), float(first["p_value"])
        q = float(first["q_value"]) if "q_value" in knox.table else p
        if q < r.alpha and ratio > 1:
            merged = int(knox.params.get("duplicates_merged", 0))
            found.append(
                make_finding(
                    "incident_near_repeat",
                    f"{label}: near repeats — {ratio:.2f}× the pairs expected by chance within "
                    f"{first['distance_band']} and {first['time_band']}",
                    "After an incident, nearby places are at raised risk for a short time: an early-warning window. "
                    f"Significant by the Benjamini–Hochberg q-value over the {len(knox.table)} bands (q = {q:.3g}); "
                    f"{merged:,} exact same-place, same-day duplicates counted once.",
                    {
                        "observed": int(first["observed"]),
                        "expected": float(first["expected"]),
                        "p_value": p,
                        "q_value": q,
                        "knox_ratio": ratio,
                        "duplicates_merged": merged,
                    },
                    0.5 + (ratio - 1),
                    r.source,
                )
            )
    return found


def incident_findings(
    con: duckdb.DuckDBPyConnection,
    source: str,
    *,
    cell_m: float,
    permutations: int,
    seed: int,
    alpha: float = 0.05,
    knox_max_points: int = 20_000,
) -> tuple[list[Finding], list[str]]:
    """Compute the incident analyses findings cite for incident dataset ``source``, and the findings.

    Returns the findings and notes (an analysis that cannot run on this dataset is said, not raised).
    """
    from crimelens.analysis.incidents.aggregate import extent, grid_counts
    from crimelens.analysis.incidents.scope import concentration, hotspots, near_repeat, weekly_profile
    from crimelens.engine import incident_scope

    simulated = bool(
        con.execute("SELECT coalesce(any_value(simulated), false) FROM incident_sources WHERE source = ?", [source])
        .fetchall()[0][0]
    )  # fmt: skip
    notes: list[str] = []
    results: dict[str, Any] = {}
    with incident_scope(con, source=source) as t:

        def attempt(name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
            try:
                results[name] = fn(*args, **kwargs)
            except CrimeLensError as exc:
                notes.append(f"{source}, {name.replace('_', ' ')}: not available on this data ({exc})")

        attempt("profile", weekly_profile, t)
        if int(extent(t)["rows_located"]):
            grid = grid_counts(t, cell_m=cell_m, period=None)
            attempt("concentration", concentration, t, cell_m=cell_m, grid=grid)
            attempt(
                # the finding cites the exact conditional p-values; the Monte Carlo p_sim that permutations add
                # beside them (the incidents hotspots table shows it) would cost time and change nothing here
                "hotspots",
                hotspots,
                t,
                cell_m=cell_m,
                permutations=0,
                seed=seed,
                alpha=alpha,
                grid=grid,
            )
            attempt("near_repeat", near_repeat, t, permutations=permutations, seed=seed, max_points=knox_max_points)
        else:
            notes.append(f"{source}: no incident has coordinates, so there are no place findings")
    found = findings_from_results(
        IncidentResults(source=source, simulated=simulated, cell_m=cell_m, alpha=alpha, **results)
    )
    return found, notes
