"""The hotspot-forecast section of the report: next week's forecast map, how each method did on recent weeks it
did not see, the ranked cells with their intervals, and the forecast's model card.

Like every section, this computes nothing of its own: it calls
:func:`crimelens.models.hotspots.evaluate_forecasts` and :func:`crimelens.models.hotspots.predict_hotspots`
through the report's :class:`~crimelens.report.blocks.Runner` and renders their results. To keep the report
quick it evaluates the last :attr:`ForecastReportParams.weeks` weeks of each incident dataset (the command
``crimelens forecast evaluate`` takes any period) with :data:`REPORT_METHODS` and 200 bootstrap replicates, and
maps the method that beat naive at 5 % coverage with an interval above 0 (else naive); the section says so.

The map is drawn by :func:`forecast_map`, the one place that knows the map renderer.

References
----------
Mitchell, M. et al. (2019). Model cards for model reporting. *FAT* '19*, 220-229. Chainey, S., Tompson, L. &
Uhlig, S. (2008). The utility of hotspot mapping for predicting spatial patterns of crime. *Security Journal*
21, 4-28 (hit rate, PAI).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from markupsafe import Markup

from crimelens.models.hotspots import CAVEATS, ForecastEvaluation, HotspotPrediction
from crimelens.report.blocks import Block, PageSection, Runner
from crimelens.report.charts import slug
from crimelens.report.tables import render_table

__all__ = [
    "FORECAST_CARD",
    "REPORT_METHODS",
    "ForecastReportParams",
    "evaluation_frame",
    "forecast_map",
    "forecast_section",
    "ranked_frame",
]

#: The methods the report evaluates (the kernel maps are left to the command: they trail naive on every city
#: measured, docs/forecast.md).
REPORT_METHODS: tuple[str, ...] = ("naive", "sepp", "lightgbm")
_COVS = ("0.01", "0.05", "0.1", "0.2")


@dataclass(frozen=True)
class ForecastReportParams:
    """How the report forecasts: recent weeks evaluated, cell size, training window, methods, replicates, rows."""

    weeks: int = 8
    cell_m: float = 200.0
    train_days: int = 365
    methods: tuple[str, ...] = REPORT_METHODS
    n_boot: int = 200
    seed: int = 0
    top: int = 10


FORECAST_CARD: tuple[str, ...] = (
    *CAVEATS,
    "Evaluation: each week shown was forecast from incidents before it only, next to the naive forecast (last "
    "year's counts per cell); a method is used for the map only when it beat naive on those weeks with an interval "
    "above 0.",
    "Intended use: to help decide where to look first, with local knowledge; not to decide anything "
    "automatically, and never about a person.",
)


def _ci(point: Any, ci: Sequence[Any], digits: int = 3, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if point is None or (isinstance(point, float) and math.isnan(point)):
        return "—"
    lo, hi = ci
    if any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
        return f"{float(point):{sign}.{digits}f}"
    return f"{float(point):{sign}.{digits}f} [{float(lo):{sign}.{digits}f}, {float(hi):{sign}.{digits}f}]"


def evaluation_frame(res: ForecastEvaluation) -> pd.DataFrame:
    """Per method: hit rate at 1/5/10/20 % with 95 % intervals, PAI and PEI* at 5 %, the paired difference
    against naive at 5 %, the share of cell-weeks inside the 90 % count interval and seconds per forecast."""
    rows = []
    for m, v in res.methods.items():
        row: dict[str, Any] = {"method": m}
        for c in _COVS:
            row[f"hit_rate_{c}"] = _ci(v["hit_rate"][c], v["hit_rate_ci"][c])
        row["pai_0.05"] = f"{v['pai']['0.05']:.2f}"
        row["pei_star_0.05"] = f"{v['pei_star']['0.05']:.3f}"
        d = res.paired_vs_naive.get(m, {}).get("0.05")
        row["vs_naive_0.05"] = "—" if d is None else _ci(d["diff"], d["ci"], 4, signed=True)
        row["interval_coverage_90"] = f"{v['interval_coverage_90']:.3f}"
        row["seconds_per_forecast"] = f"{v['seconds_per_forecast']:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def ranked_frame(pred: HotspotPrediction, top: int) -> pd.DataFrame:
    """The first ``top`` cells of the forecast: rank, place, expected incidents with the 90 % interval, recent."""
    head = pred.table.head(top)
    return pd.DataFrame(
        {
            "rank": head["rank"].astype(int),
            "place": [str(p) or "—" for p in head["place"]],
            "expected": [f"{e:.2f}" for e in head["expected"]],
            "interval": [f"{int(lo)}–{int(hi)}" for lo, hi in zip(head["low"], head["high"], strict=True)],
            "recent": head["recent"].astype(int),
            "lat": [f"{v:.4f}" for v in head["lat"]],
            "lon": [f"{v:.4f}" for v in head["lon"]],
        }
    )


def forecast_map(pred: HotspotPrediction, *, id_prefix: str, simulated: bool = False) -> Markup:
    """Next period's expected incidents per cell as a map (a ``<figure>``): the one call to the map renderer."""
    from crimelens.report.maps import grid_map_figure

    t = pred.table
    cells = pd.DataFrame(
        {
            "x_m": (t["cell_x"].to_numpy() + 0.5) * pred.cell_m,
            "y_m": (t["cell_y"].to_numpy() + 0.5) * pred.cell_m,
            "expected": t["expected"].to_numpy(dtype=float),
        }
    )
    caption = (
        f"{pred.cell_m:g} m cells of the study area, shaded by expected incidents over the week; blank cells are "
        "outside it. North is up."
    )
    return grid_map_figure(
        cells,
        chart_id=slug(id_prefix),
        value="expected",
        cell_m=pred.cell_m,
        title=f"Expected incidents, {pred.period_start} to {pred.period_end} ({pred.method})",
        caption=caption,
        legend_label="expected incidents",
        simulated=simulated,
    )


def _simulated(run: Runner, source: str) -> bool:
    row = run.con.execute("SELECT simulated FROM incident_sources WHERE source = ?", [source]).fetchone()
    return bool(row and row[0])


def _span(run: Runner, source: str) -> tuple[dt.date, dt.date] | None:
    row = run.con.execute(
        "SELECT min(occurred_at)::DATE, max(occurred_at)::DATE FROM incidents WHERE source = ? "
        "AND longitude IS NOT NULL AND latitude IS NOT NULL",
        [source],
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


def _chosen(res: ForecastEvaluation) -> tuple[str, str]:
    """The method mapped, and a sentence saying why."""
    best = res.best_method
    d = res.paired_vs_naive.get(best, {}).get("0.05")
    if best != "naive" and d is not None and d["ci"][0] > 0:
        return best, (
            f"The map uses {best}: on these weeks it caught more incidents in the top 5% of cells than naive, by "
            f"{_ci(d['diff'], d['ci'], 4, signed=True)} (paired; interval above 0)."
        )
    return "naive", (
        "The map uses naive (each cell's incidents over the last year): no method beat it on these weeks with an "
        "interval above 0."
    )


def _forecast_block(run: Runner, source: str, params: ForecastReportParams) -> Block:
    from crimelens.models.hotspots import evaluate_forecasts, predict_hotspots

    simulated = _simulated(run, source)
    block = Block(
        f"{source}: where incidents are likeliest next week" + (" (SIMULATED DATA)" if simulated else ""),
        anchor=f"forecast-{slug(source)}",
    )
    if simulated:
        block.paragraphs.append("These incidents are SIMULATED by crimelens: the forecast shows the method only.")
    span = _span(run, source)
    if span is None:
        block.unavailable = f"No incident of {source} has coordinates: nothing to forecast on a grid."
        return block
    first, last = span
    start = last + dt.timedelta(days=1 - 7 * params.weeks)
    train_days = min(params.train_days, (start - first).days)
    if train_days < 28:
        block.unavailable = (
            f"The forecast needs at least 28 days of incidents before the {params.weeks} weeks it is tested on; "
            f"{source} covers {first} to {last}."
        )
        return block
    ev_out = run.run(
        f"forecast.evaluate[{source}]",
        evaluate_forecasts,
        run.con,
        source,
        cell_m=params.cell_m,
        train_days=train_days,
        horizon="week",
        start=start,
        methods=params.methods,
        seed=params.seed,
        n_boot=params.n_boot,
    )
    res = ev_out.value
    block.caveats.extend(c for c in ev_out.caveats if c not in block.caveats)
    if res is None:
        block.unavailable = ev_out.unavailable("The forecast evaluation")
        return block
    method, why = _chosen(res)
    pr_out = run.run(
        f"forecast.predict[{source}:{method}]",
        predict_hotspots,
        run.con,
        source,
        method=method,
        cell_m=params.cell_m,
        train_days=train_days,
        horizon="week",
        seed=params.seed,
    )
    block.caveats.extend(c for c in pr_out.caveats if c not in block.caveats)
    pred = pr_out.value
    block.paragraphs.append(
        f"Tested on the {res.periods} weeks from {res.first_period} to {res.last_period}, each forecast from "
        f"incidents before it only ({train_days}-day window, {params.cell_m:g} m cells, {res.study_area_cells:,} "
        f"cells in the study area). Hit rate: the share of a week's incidents in the top 1, 5, 10 or 20% of cells; "
        f"PAI: the hit rate over the share of the area; intervals: 95%, from {params.n_boot} resamples of whole "
        "weeks. Rerun `crimelens forecast evaluate` over a longer period for the full evaluation."
    )
    block.paragraphs.append(why)
    if pred is not None:
        block.paragraphs.append(
            f"Expected over {pred.period_start} to {pred.period_end}: {pred.expected_total:,.0f} incidents in the "
            "study area. Each cell's 90% interval is the shortest range of whole counts that holds at least 90% of "
            f"a negative binomial around its expected count (dispersion {pred.dispersion:.2f}, estimated on the "
            "method's forecasts of the previous weeks)."
        )
        block.figures.append(forecast_map(pred, id_prefix=f"forecast-map-{slug(source)}", simulated=simulated))
    else:
        block.notes.append(pr_out.unavailable("The forecast map") or "")
    block.figures += run.figure(res.chart(), caption="Hit rate in the top 5% of cells, week by week, per method.")
    block.tables.append(
        render_table(
            evaluation_frame(res),
            max_rows=None,
            caption="Every method on the weeks tested, with 95 % intervals and the paired difference against naive",
            labels={
                "method": "Method",
                "hit_rate_0.01": "Hit rate 1%",
                "hit_rate_0.05": "Hit rate 5%",
                "hit_rate_0.1": "Hit rate 10%",
                "hit_rate_0.2": "Hit rate 20%",
                "pai_0.05": "PAI 5%",
                "pei_star_0.05": "PEI* 5%",
                "vs_naive_0.05": "vs naive at 5%",
                "interval_coverage_90": "Cell-weeks in 90% interval",
                "seconds_per_forecast": "Seconds per forecast",
            },
            table_id=f"forecast-eval-{slug(source)}",
        )
    )
    if pred is not None:
        ranked = ranked_frame(pred, params.top)
        block.tables.append(
            render_table(
                ranked,
                max_rows=None,
                caption=f"The {len(ranked)} cells with the most expected incidents, {pred.period_start} to "
                f"{pred.period_end} ({method})",
                labels={
                    "rank": "Rank",
                    "place": "Place",
                    "expected": "Expected",
                    "interval": "90% interval",
                    "recent": f"Incidents, last {train_days} days",
                    "lat": "Latitude (centre)",
                    "lon": "Longitude (centre)",
                },
                table_id=f"forecast-cells-{slug(source)}",
            )
        )
    skip = set(CAVEATS)
    for note in (*res.notes, *(pred.notes if pred is not None else ())):
        if note not in skip and note not in block.notes:
            block.notes.append(note)
    return block


def forecast_section(
    run: Runner, incident_sources: Sequence[str], params: ForecastReportParams | None = None
) -> list[PageSection]:
    """The forecast section (one block per incident dataset, then the forecast's model card); none without
    incident data."""
    if not incident_sources:
        return []
    p = params or ForecastReportParams()
    section = PageSection(
        "forecast",
        "Where incidents are likeliest next week",
        intro=[
            "A forecast map of next week's expected incidents per grid cell, how well each method ranked cells on "
            "recent weeks it had not seen (beside naive: each cell's count over the last year), and the cells "
            "ranked, each with a 90% interval. Week-to-week noise limits every method: the best ones gain little "
            "over naive counts, and the table shows by how much, with an interval, on this data.",
        ],
    )
    for src in incident_sources:
        section.blocks.append(_forecast_block(run, src, p))
    card = Block("Model card: the hotspot forecast", anchor="forecast-card")
    card.paragraphs.extend(FORECAST_CARD)
    card.paragraphs.append(
        f"Settings: methods {', '.join(p.methods)}; {p.weeks} weeks tested; {p.cell_m:g} m cells; seed {p.seed}; "
        f"{p.n_boot} bootstrap replicates (docs/forecast.md)."
    )
    section.blocks.append(card)
    return [section]
