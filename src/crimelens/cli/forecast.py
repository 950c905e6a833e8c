"""`crimelens forecast …`: where crime is most likely next period on a grid, and how well each method did on
past periods it did not see."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape

from crimelens.cli.options import DbOpt, JsonOpt, LimitOpt, SeedOpt, SourceOpt
from crimelens.cli.render import busy, emit, err, out, show_table
from crimelens.cli.support import guarded, open_warehouse
from crimelens.config import get_setting

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["forecast_app"]

forecast_app = typer.Typer(
    name="forecast",
    help=(
        "Grid hotspot forecasts: `crimelens forecast evaluate` scores every method on past periods it did not "
        "see (hit rate, PAI, PEI at 1-20% of the area, beside naive counts); `crimelens forecast predict` maps "
        "next period's expected incidents per cell with intervals."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])

CellSizeOpt = Annotated[float, typer.Option("--cell-size", help="Grid cell size in metres (square cells).")]
TrainDaysOpt = Annotated[
    int, typer.Option("--train-days", help="Days of history each forecast is fitted on (naive counts them).")
]
HorizonOpt = Annotated[str, typer.Option("--horizon", help="Length of a forecast period: day, week or month.")]
FirstOpt = Annotated[
    str | None,
    typer.Option("--start", help="First forecast period's start (YYYY-MM-DD); default: a window after the data start."),
]
LastOpt = Annotated[
    str | None,
    typer.Option("--end", help="Last forecast period's start (YYYY-MM-DD); default: the last full period."),
]
OffenceOpt = Annotated[
    str | None,
    typer.Option(
        "--offence", help="Only these offences, comma-separated (e.g. burglary,robbery); default: all offences."
    ),
]
MethodsOpt = Annotated[
    str,
    typer.Option(
        "--methods",
        help="Methods to evaluate, comma-separated: naive, retrospective, prospective, stkde, sepp, lightgbm "
        "(naive is always included).",
    ),
]
OffsetsOpt = Annotated[
    int,
    typer.Option(
        "--grid-offsets",
        help="Also evaluate on K grids shifted by k/K of a cell and report the spread (1 = the pinned grid only).",
    ),
]
MethodOpt = Annotated[
    str,
    typer.Option("--method", help="Forecasting method: naive, retrospective, prospective, stkde, sepp or lightgbm."),
]
GeojsonOpt = Annotated[
    Path | None, typer.Option("--geojson", help="Also write the forecast cells as a GeoJSON map to this file.")
]
CsvFileOpt = Annotated[Path | None, typer.Option("--csv-file", help="Also write the ranked cells as CSV to this file.")]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Start of the forecast period (YYYY-MM-DD); default: the day after the last incident."),
]

StudyAreaOpt = Annotated[
    str,
    typer.Option(
        "--study-area",
        help="Cells scored: boundary (inside the loaded area polygons), incidents (cells with an incident before "
        "the first forecast period) or auto (boundary when loaded, else incidents).",
    ),
]

COVS = ("0.01", "0.05", "0.1", "0.2")


def _command(name: str) -> Callable[[F], F]:
    return guarded(forecast_app, name)


def _offences(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def _summary(result: Any) -> pd.DataFrame:
    """Per method: hit rate and PAI at each coverage with intervals, seconds, interval coverage, as text."""
    import pandas as pd

    rows = []
    for m, v in result.methods.items():
        row: dict[str, Any] = {"method": m}
        for c in COVS:
            lo, hi = v["hit_rate_ci"][c]
            row[f"hit_rate_{c}"] = f"{v['hit_rate'][c]:.3f} [{lo:.3f}, {hi:.3f}]"
        row["pai_0.05"] = f"{v['pai']['0.05']:.2f}"
        row["pei_star_0.05"] = f"{v['pei_star']['0.05']:.2f}"
        row["seconds_per_forecast"] = f"{v['seconds_per_forecast']:.3f}"
        row["interval_coverage_90"] = f"{v['interval_coverage_90']:.3f}"
        row["pit_coverage_90"] = f"{v['pit_coverage_90']:.3f}"
        if m in result.paired_vs_naive:
            d = result.paired_vs_naive[m]["0.05"]
            row["vs_naive_hit_rate_0.05"] = f"{d['diff']:+.4f} [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}]"
        else:
            row["vs_naive_hit_rate_0.05"] = ""
        rows.append(row)
    return pd.DataFrame(rows)


@_command("evaluate")
def evaluate_cmd(
    source: SourceOpt = None,
    cell_size: CellSizeOpt = 200.0,
    train_days: TrainDaysOpt = 365,
    horizon: HorizonOpt = "week",
    start: FirstOpt = None,
    end: LastOpt = None,
    offence: OffenceOpt = None,
    methods: MethodsOpt = "naive,retrospective,prospective,stkde,sepp,lightgbm",
    grid_offsets: OffsetsOpt = 1,
    study_area: StudyAreaOpt = "auto",
    seed: SeedOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score grid hotspot forecasters on past periods they did not see, beside naive counts.

    Each period is forecast from the incidents before it only. Hit rate (share of the period's incidents in
    the top 1, 5, 10 and 20% of cells), PAI, PEI and PEI* come with 95% intervals that resample whole
    periods, and each method's paired difference against naive. Study area: the cells with an incident
    before the first forecast period.
    """
    from crimelens.models.hotspots import evaluate_forecasts

    with open_warehouse(db) as con, busy("Evaluating the forecasters through time", quiet=as_json):
        result = evaluate_forecasts(
            con,
            source,
            cell_m=cell_size,
            train_days=train_days,
            horizon=horizon,
            start=start,
            end=end,
            offence=_offences(offence),
            methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
            grid_offsets=grid_offsets,
            study_area=study_area,
            seed=int(get_setting("seed", seed)),
        )
    if as_json:
        emit(result, as_json=True)
        return
    show_table(_summary(result), result.title, None)
    if not result.offsets.empty:
        show_table(result.offsets, "Hit rate across grid offsets", None)
    for note in result.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]")


@_command("predict")
def predict_cmd(
    source: SourceOpt = None,
    method: MethodOpt = "naive",
    cell_size: CellSizeOpt = 200.0,
    train_days: TrainDaysOpt = 365,
    horizon: HorizonOpt = "week",
    offence: OffenceOpt = None,
    at: AtOpt = None,
    study_area: StudyAreaOpt = "auto",
    geojson: GeojsonOpt = None,
    csv_file: CsvFileOpt = None,
    seed: SeedOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Next period's expected incidents per grid cell, ranked, with 90% intervals and place names.

    The interval is the shortest range of whole counts holding at least 90% of a negative binomial around the
    expected count, its spread calibrated on the method's forecasts of the four previous periods. Export the
    map with --geojson and the ranked cells with --csv-file.
    """
    from crimelens.models.hotspots import predict_hotspots

    with open_warehouse(db) as con, busy("Forecasting the next period", quiet=as_json):
        result = predict_hotspots(
            con,
            source,
            method=method,
            cell_m=cell_size,
            train_days=train_days,
            horizon=horizon,
            offence=_offences(offence),
            at=at,
            study_area=study_area,
            seed=int(get_setting("seed", seed)),
        )
    if geojson is not None:
        geojson.write_text(json.dumps(result.geojson), encoding="utf-8")
        err.print(f"Wrote {len(result.geojson['features']):,} cells to {geojson}", highlight=False)
    if csv_file is not None:
        result.table.to_csv(csv_file, index=False)
        err.print(f"Wrote {len(result.table):,} cells to {csv_file}", highlight=False)
    if as_json:
        emit(result, as_json=True)
        return
    show_table(
        result.table,
        result.title,
        None if limit == 0 else limit,
        columns=["rank", "place", "lat", "lon", "expected", "low", "high", "recent"],
    )
    for note in result.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]")
