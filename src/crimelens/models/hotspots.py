"""Hotspot forecasting on the warehouse: rolling evaluation of the grid forecasters and next period's map.

:func:`load_grid_events` reads a source's located incidents into :class:`~crimelens.models.forecast.GridEvents`
on the grid pinned for the source (:mod:`crimelens.warehouse.grid`), optionally shifted by a fraction of a
cell. :func:`evaluate_forecasts` tests every method on each forecast period, fitted on incidents before it
only, and scores hit rate, PAI, PEI and PEI* at fixed area coverage with period-bootstrap intervals and the
paired difference against the naive baseline (:func:`crimelens.models.evaluation.score_periods`).
:func:`predict_hotspots` gives next period's expected count per cell with a calibrated 90 % interval.

Study area (``study_area``): ``boundary``: the cells whose centre lies inside the area polygons loaded for the
source's area column (``crimelens areas``); ``incidents``: the cells with at least one incident from
``study_since`` (default: the first day of the data) to the day before the first forecast period; ``auto``
(default): the boundary when one is loaded and holds most incidents, else the incident cells. Cells never
touched by a recorded incident (parks, water, rail yards) would otherwise inflate every PAI.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.errors import ConfigError, DataError
from crimelens.geo import GridOrigin, forward, inverse, origin_for_extent
from crimelens.models.evaluation import hit_rate_at, pai_at, pei_at, pei_star_at, score_periods
from crimelens.models.forecast import (
    FORECASTERS,
    GridEvents,
    make_forecaster,
    nb_dispersion,
    nb_interval,
    pit_coverage,
)

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "COVERAGES",
    "HORIZONS",
    "ForecastEvaluation",
    "HotspotPrediction",
    "LoadedEvents",
    "evaluate_forecasts",
    "forecast_periods",
    "load_grid_events",
    "predict_hotspots",
]

#: Area coverages every method is scored at.
COVERAGES = (0.01, 0.05, 0.1, 0.2)
HORIZONS = ("day", "week", "month")
_VIOLENT = ("homicide", "rape", "robbery", "aggravated_assault")
_METRICS = {"hit_rate": hit_rate_at, "pai": pai_at, "pei": pei_at, "pei_star": pei_star_at}
#: Largest rectangle of cells handled (a few far-off, mis-located incidents can widen it enormously).
MAX_CELLS = 2_000_000
_EPOCH = np.datetime64("1970-01-01", "D")

CAVEATS = (
    "Police-recorded incidents: the counts reflect reporting and where police patrol as well as where crime "
    "happens; a forecast of them reproduces both.",
    "Feedback loops: sending patrols to forecast cells raises what is recorded there, which raises the next "
    "forecast there. Judge outcomes with data the patrols do not generate.",
    "Place-based only: these forecasts rank grid cells, never people; nothing here identifies anyone.",
    "Uncertainty: week-to-week noise bounds how well any method can do; intervals on metrics resample whole "
    "periods and each cell's expected count has a 90% interval.",
)


def _day(value: Any) -> int:
    return int((np.datetime64(pd.Timestamp(value).date(), "D") - _EPOCH).astype(np.int64))


def _date(day: int) -> dt.date:
    return (_EPOCH + np.timedelta64(int(day), "D")).astype(dt.date)  # type: ignore[no-any-return]


@dataclass(frozen=True, eq=False)
class LoadedEvents:
    """Grid events of one source with what is needed to place the cells on the map and name them."""

    events: GridEvents
    origin: GridOrigin
    cell_m: float
    cell_x0: int
    cell_y0: int
    first_day: int
    last_day: int
    area_names: tuple[str, ...]
    area_column: str | None
    source: str
    rows_without_coordinates: int
    offset_m: float = 0.0

    def cell_polygons(self, rows: Any) -> list[list[list[float]]]:
        """The corners (lon, lat) of cells given by row index, as closed GeoJSON rings."""
        r = np.asarray(rows, dtype=np.int64)
        cx = self.cell_x0 + r % self.events.nx
        cy = self.cell_y0 + r // self.events.nx
        x0 = self.origin.x0 + cx * self.cell_m
        y0 = self.origin.y0 + cy * self.cell_m
        rings = []
        corners = [(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]
        lons, lats = [], []
        for dx, dy in corners:
            lon, lat = inverse(x0 + dx * self.cell_m, y0 + dy * self.cell_m, self.origin.lon0, self.origin.lat0)
            lons.append(lon)
            lats.append(lat)
        for i in range(r.size):
            rings.append([[round(float(lons[k][i]), 6), round(float(lats[k][i]), 6)] for k in range(5)])
        return rings


def load_grid_events(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    cell_m: float = 200.0,
    offence: Sequence[str] = (),
    offset: float = 0.0,
) -> LoadedEvents:
    """Read a source's located incidents onto its pinned grid (shifted by ``offset`` cell widths east and north).

    Parameters
    ----------
    con
        The warehouse.
    source
        Incident dataset (needed only when several are loaded).
    cell_m
        Cell size in metres (10–100,000).
    offence
        Keep only these canonical offences (empty: all).
    offset
        Shift of the grid, in cell widths, 0 ≤ offset < 1 (for the grid-offset robustness check).

    Returns
    -------
    LoadedEvents
    """
    from crimelens.analysis.incidents.aggregate import _check_cell
    from crimelens.schema import OFFENCES
    from crimelens.warehouse import resolve_incident_source
    from crimelens.warehouse.grid import grid_origin

    _check_cell(cell_m)
    if not 0 <= offset < 1:
        raise ConfigError(f"offset: expected a shift in cell widths, 0 ≤ offset < 1, got {offset!r}")
    bad = [o for o in offence if o not in OFFENCES]
    if bad:
        raise ConfigError(f"--offence: expected offences among {', '.join(OFFENCES)}; got {', '.join(bad)}")
    src = resolve_incident_source(con, source)
    cols = {r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE incidents)").fetchall()}
    area_col = None
    for cand in ("neighbourhood", "community_area", "district", "beat"):
        if cand in cols:
            n = con.execute(f"SELECT count({cand}) FROM incidents WHERE source = ?", [src]).fetchone()
            if n is not None and n[0]:
                area_col = cand
                break
    where = "source = ?"
    params: list[Any] = [src]
    if offence:
        where += f" AND offence IN ({', '.join('?' for _ in offence)})"
        params.extend(offence)
    area_sql = area_col if area_col is not None else "NULL"
    frame = con.execute(
        f"SELECT longitude, latitude, occurred_at, time_precision, offence, {area_sql} AS area "
        f"FROM incidents WHERE {where}",
        params,
    ).df()
    located = frame["longitude"].notna() & frame["latitude"].notna()
    without = int((~located).sum())
    frame = frame[located]
    if frame.empty:
        raise DataError(f"incidents of {src!r}: expected some with coordinates to grid, got none")
    origin = grid_origin(con, src) or origin_for_extent(
        float(frame["longitude"].min()), float(frame["longitude"].max()),
        float(frame["latitude"].min()), float(frame["latitude"].max()),
    )  # fmt: skip
    shift = float(offset) * float(cell_m)
    origin = GridOrigin(origin.lon0, origin.lat0, origin.x0 + shift, origin.y0 + shift)
    x, y = forward(frame["longitude"].to_numpy(), frame["latitude"].to_numpy(), origin.lon0, origin.lat0)
    cx, cy = origin.cell_of(x, y, cell_m)
    x_min, y_min = int(cx.min()), int(cy.min())
    nx, ny = int(cx.max()) - x_min + 1, int(cy.max()) - y_min + 1
    if nx * ny > MAX_CELLS:
        raise DataError(
            f"grid: expected at most {MAX_CELLS:,} cells in the rectangle around the incidents, got {nx} × {ny} "
            f"at {cell_m:g} m; use larger cells, or check for mis-located incidents far from the city"
        )
    stamps = frame["occurred_at"].to_numpy(dtype="datetime64[us]")
    day = stamps.astype("datetime64[D]")
    minutes = (stamps - day).astype("timedelta64[m]").astype(np.int64).astype(float)
    precision = frame["time_precision"].to_numpy()
    resolution = np.select([precision == "minute", precision == "hour"], [1 / 1440, 1 / 24], 1.0)
    unit_start = np.where(precision == "minute", minutes, np.where(precision == "hour", minutes // 60 * 60, 0.0))
    frac = unit_start / 1440.0 + resolution / 2
    if area_col is not None:
        codes, names = pd.factorize(frame["area"].astype("string"), use_na_sentinel=True)
        area_names = tuple(str(n) for n in names)
    else:
        codes, area_names = np.full(len(frame), -1), ()
    events = GridEvents.build(
        nx, ny, cell_m,
        x - (origin.x0 + x_min * cell_m), y - (origin.y0 + y_min * cell_m),
        (day - _EPOCH).astype(np.int64),
        frac=frac, resolution=resolution,
        violent=frame["offence"].isin(_VIOLENT).to_numpy(), area=np.asarray(codes, dtype=np.int64),
    )  # fmt: skip
    days = events.day
    return LoadedEvents(
        events=events,
        origin=origin,
        cell_m=float(cell_m),
        cell_x0=x_min,
        cell_y0=y_min,
        first_day=int(days.min()),
        last_day=int(days.max()),
        area_names=area_names,
        area_column=area_col,
        source=src,
        rows_without_coordinates=without,
        offset_m=shift,
    )


STUDY_AREAS = ("auto", "boundary", "incidents")


def boundary_cells(con: duckdb.DuckDBPyConnection, le: LoadedEvents) -> tuple[np.ndarray | None, str]:
    """Cells whose centre lies inside the union of the area polygons of the source's area column, with the
    area set's name; (None, reason) when no single area set of that kind is loaded."""
    import shapely

    from crimelens.analysis.incidents.scope import area_set_for

    if le.area_column is None:
        return None, "the incidents carry no area column"
    try:
        area_set = area_set_for(con, le.area_column, None)
    except DataError as exc:
        return None, str(exc)
    if area_set is None:
        return None, f"no single set of {le.area_column.replace('_', ' ')} polygons is loaded"
    geoms = [str(r[0]) for r in con.execute("SELECT geometry FROM areas WHERE area_set = ?", [area_set]).fetchall()]
    union = shapely.union_all(shapely.from_geojson(geoms))
    ev = le.events
    rows = np.arange(ev.n_cells)
    _, _, lon, lat = le.origin.cell_centres(le.cell_x0 + rows % ev.nx, le.cell_y0 + rows // ev.nx, le.cell_m)
    inside = np.asarray(shapely.contains_xy(union, lon, lat), dtype=bool)
    return inside, area_set


def _study_area(
    con: duckdb.DuckDBPyConnection, le: LoadedEvents, kind: str, since: int, first_period: int
) -> tuple[np.ndarray, str]:
    """The study area's cells and a sentence saying what they are."""
    if kind not in STUDY_AREAS:
        raise ConfigError(f"--study-area: expected one of {', '.join(STUDY_AREAS)}, got {kind!r}")
    history = le.events.counts(since, first_period) > 0
    said = (
        f"the {int(history.sum()):,} cells of {le.cell_m:g} m with at least one incident from {_date(since)} "
        f"to {_date(first_period - 1)}"
    )
    if kind == "incidents":
        return history, said
    inside, name = boundary_cells(con, le)
    if inside is None:
        if kind == "boundary":
            raise DataError(f"--study-area boundary: expected area polygons for the source; {name}")
        return history, said + f" (no boundary: {name})"
    held = float(np.isin(le.events.cell, np.flatnonzero(inside)).mean()) if le.events.cell.size else 0.0
    if kind == "auto" and held < 0.5:
        return history, said + f" (the {name} polygons hold only {held:.0%} of the incidents, so they are not used)"
    return inside, (
        f"the {int(inside.sum()):,} cells of {le.cell_m:g} m whose centre lies inside the {name} polygons "
        f"(they hold {held:.0%} of the incidents)"
    )


def forecast_periods(horizon: str, start: int, end: int, last_day: int) -> list[tuple[int, int]]:
    """Forecast periods ``[a, b)`` in days: every ``horizon`` from ``start`` while ``a ≤ end`` and the period
    ends within the data (``b ≤ last_day + 1``). Months are calendar months from ``start``'s month."""
    if horizon not in HORIZONS:
        raise ConfigError(f"--horizon: expected one of {', '.join(HORIZONS)}, got {horizon!r}")
    out: list[tuple[int, int]] = []
    if horizon == "month":
        month = pd.Timestamp(_date(start)).to_period("M")
        while True:
            a = _day(month.start_time)
            b = _day((month + 1).start_time)
            if a > end or b > last_day + 1:
                break
            if a >= start:
                out.append((a, b))
            month += 1
        return out
    step = 1 if horizon == "day" else 7
    a = start
    while a <= end and a + step <= last_day + 1:
        out.append((a, a + step))
        a += step
    return out


def _metric_values(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    return np.array([[fn(y, score, c) for c in COVERAGES] for fn in _METRICS.values()]).ravel()


@dataclass(frozen=True)
class ForecastEvaluation(Result):
    """Every method's forecasts of past periods it did not see, scored at fixed area coverage.

    ``table``: one row per method: hit rate, PAI, PEI, PEI* at each coverage with 95 % period-bootstrap
    intervals, seconds per forecast, the coverage of the 90 % count intervals. ``methods``: the same nested
    (``{"hit_rate": {"0.05": …}, "hit_rate_ci": {"0.05": [lo, hi]}, …}``). ``paired_vs_naive``: each method's
    hit rate minus naive's on the same resampled periods (``{"0.05": {"diff": …, "ci": [lo, hi]}}``).
    ``per_period``: hit rate at 5 % per method and period. ``offsets``: with several grid offsets, each
    method's hit rate per offset and coverage.
    """

    source: str = ""
    cell_m: float = 0.0
    horizon: str = ""
    train_days: int = 0
    methods: dict[str, Any] = field(default_factory=dict)
    paired_vs_naive: dict[str, Any] = field(default_factory=dict)
    study_area_cells: int = 0
    study_area: str = ""
    periods: int = 0
    first_period: str = ""
    last_period: str = ""
    best_method: str = ""
    per_period: pd.DataFrame = field(default_factory=pd.DataFrame)
    offsets: pd.DataFrame = field(default_factory=pd.DataFrame)

    def chart(self) -> ChartSpec | None:
        """Hit rate at 5 % coverage per period, per method."""
        if self.per_period.empty:
            return None
        return ChartSpec(
            kind="line",
            data=self.per_period,
            x="period_start",
            y="hit_rate_0.05",
            series="method",
            title="Hit rate at 5% of the area, per forecast period",
            x_label="Period",
            y_label="Share of incidents in the top 5% of cells",
        )


def _run_offset(
    le: LoadedEvents,
    methods: Sequence[str],
    periods: list[tuple[int, int]],
    study: np.ndarray,
    train_days: int,
    seed: int,
) -> tuple[np.ndarray, dict[str, float], dict[str, dict[str, float]], dict[str, float], dict[str, int]]:
    """Per-period metric values (periods, methods, metrics), seconds per forecast, interval coverage, the mean
    dispersion used and the forecasts that fell back to naive, for one grid.

    One estimator per method forecasts every period in turn (LightGBM keeps its trees until its next refit date).
    The count interval of a period uses the dispersion of the method's forecasts of every earlier period; the
    first period's, that of a forecast of the period before it (when the data hold a full window before that),
    else a Poisson interval. Coverage: the share of cell-periods inside the 90 % interval (all cells, and the
    top 5 % the method flags) and the randomised-PIT coverage (:func:`~crimelens.models.forecast.pit_coverage`).
    """
    ev = le.events
    values = np.full((len(periods), len(methods), len(_METRICS) * len(COVERAGES)), np.nan)
    seconds = dict.fromkeys(methods, 0.0)
    tally = {m: dict.fromkeys(("inside", "pit", "top_inside", "top_n", "poisson"), 0.0) for m in methods}
    fallbacks = dict.fromkeys(methods, 0)
    alpha_used: dict[str, list[float]] = {m: [] for m in methods}
    history: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {m: ([], []) for m in methods}
    n_study = int(study.sum())
    n_top = max(1, int(np.ceil(0.05 * n_study - 1e-9)))
    for mi, name in enumerate(methods):
        f = make_forecaster(name, window=train_days, seed=seed)
        a0, b0 = periods[0]
        h0 = b0 - a0
        if a0 - h0 - train_days >= le.first_day:
            f.fit(ev, a0 - h0, h0)
            history[name][0].append(ev.counts(a0 - h0, a0)[study])
            history[name][1].append(f.predict()[study])
        for k, (a, b) in enumerate(periods):
            y = ev.counts(a, b)[study]
            t0 = time.perf_counter()
            f.fit(ev, a, b - a)
            mu = f.predict()
            score = f.score_cells()
            seconds[name] += time.perf_counter() - t0
            fallbacks[name] += int(getattr(f, "fallback_", False))
            values[k, mi] = _metric_values(y, score[study])
            ys, mus = history[name]
            alpha = nb_dispersion(np.concatenate(ys), np.concatenate(mus)) if ys else 0.0
            t = tally[name]
            t["poisson"] += float(not ys)
            lo, hi = nb_interval(mu[study], alpha, 0.9)
            inside = (y >= lo) & (y <= hi)
            top = np.argsort(-score[study], kind="mergesort")[:n_top]
            t["inside"] += float(np.count_nonzero(inside))
            t["pit"] += pit_coverage(y, mu[study], alpha, 0.9) * y.size
            t["top_inside"] += float(np.count_nonzero(inside[top]))
            t["top_n"] += float(top.size)
            alpha_used[name].append(alpha)
            ys.append(y)
            mus.append(mu[study])
    n = len(periods)
    cover = {
        m: {
            "interval_coverage_90": tally[m]["inside"] / (n * n_study),
            "interval_coverage_90_top5": tally[m]["top_inside"] / tally[m]["top_n"],
            "pit_coverage_90": tally[m]["pit"] / (n * n_study),
            "poisson_interval_periods": int(tally[m]["poisson"]),
        }
        for m in methods
    }
    alphas = {m: float(np.mean(alpha_used[m])) for m in methods}
    return values, {m: seconds[m] / n for m in methods}, cover, alphas, fallbacks


def _metric_names() -> list[str]:
    return [f"{m}_{c:g}" for m in _METRICS for c in COVERAGES]


@records_caveats
def evaluate_forecasts(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    cell_m: float = 200.0,
    train_days: int = 365,
    horizon: str = "week",
    start: Any = None,
    end: Any = None,
    offence: Sequence[str] = (),
    methods: Sequence[str] = tuple(FORECASTERS),
    grid_offsets: int = 1,
    study_area: str = "auto",
    study_since: Any = None,
    seed: int = 0,
    n_boot: int = 1000,
) -> ForecastEvaluation:
    """Rolling evaluation of grid hotspot forecasters against the naive baseline.

    Each forecast period ``[a, b)`` is forecast by every method fitted on incidents before ``a`` only (the
    forecasters filter their input by the cutoff), and scored on the study area's cells by the share of the
    period's incidents in the top 1, 5, 10 and 20 % of cells (hit rate), PAI, PEI and PEI*.

    Parameters
    ----------
    con
        The warehouse.
    source
        Incident dataset.
    cell_m
        Cell size in metres.
    train_days
        Days of history each method fits (the naive baseline counts them).
    horizon
        ``day``, ``week`` or ``month``.
    start, end
        First and last forecast period starts (dates). Default: from ``train_days`` after the first incident
        to the last period the data cover in full.
    offence
        Canonical offences to keep (empty: all).
    methods
        Among naive, retrospective, prospective, stkde, sepp, lightgbm; naive is always added.
    grid_offsets
        K: also evaluate on grids shifted by k/K of a cell east and north (k = 1 … K−1) and report the spread.
    study_area
        ``auto``, ``boundary`` or ``incidents`` (see the module docstring).
    study_since
        First day of the history that defines an ``incidents`` study area (default: the first incident).
    seed, n_boot
        Seed of the bootstrap and of LightGBM; bootstrap replicates.

    Returns
    -------
    ForecastEvaluation

    References
    ----------
    Chainey, Tompson & Uhlig (2008) (hit rate, PAI); Hunt (2016) (PEI); White, Hunt & Green (2023) (PEI*); Tashman
    (2000) (rolling-origin evaluation); Mohler & Porter (2018) on grid choice in the NIJ challenge.
    """
    chosen = list(dict.fromkeys(["naive", *methods]))
    unknown = [m for m in chosen if m not in FORECASTERS]
    if unknown:
        raise ConfigError(f"--methods: expected names among {', '.join(FORECASTERS)}; got {', '.join(unknown)}")
    if not isinstance(train_days, int) or isinstance(train_days, bool) or not 28 <= train_days <= 3650:
        raise ConfigError(f"--train-days: expected a whole number of days, 28–3650, got {train_days!r}")
    if not isinstance(grid_offsets, int) or isinstance(grid_offsets, bool) or not 1 <= grid_offsets <= 10:
        raise ConfigError(f"--grid-offsets: expected a whole number of grids, 1–10, got {grid_offsets!r}")
    metric_names = _metric_names()
    runs = []
    for k in range(grid_offsets):
        le = load_grid_events(con, source, cell_m=cell_m, offence=offence, offset=k / grid_offsets)
        first = _day(start) if start is not None else le.first_day + train_days
        last = _day(end) if end is not None else le.last_day
        periods = forecast_periods(horizon, first, last, le.last_day)
        if not periods:
            raise DataError(
                f"forecast periods: expected at least one {horizon} from {_date(first)} to {_date(last)} that the "
                f"data ({_date(le.first_day)} to {_date(le.last_day)}) cover in full; got none"
            )
        if periods[0][0] - train_days < le.first_day:
            raise DataError(
                f"--start {_date(periods[0][0])}: expected at least --train-days {train_days} days of data before "
                f"it; the data start on {_date(le.first_day)}"
            )
        since = _day(study_since) if study_since is not None else le.first_day
        study, study_text = _study_area(con, le, study_area, since, periods[0][0])
        if not study.any():
            raise DataError("study area: no cell had an incident before the first forecast period")
        runs.append((le, periods, study, study_text, _run_offset(le, chosen, periods, study, train_days, seed)))
    le, periods, study, study_text, (values, seconds, cover, alphas, fallbacks) = runs[0]
    scores = score_periods(values, chosen, metric_names, baseline="naive", n_boot=n_boot, seed=seed)
    nested: dict[str, Any] = {}
    rows = []
    paired: dict[str, Any] = {}
    for i, m in enumerate(chosen):
        entry: dict[str, Any] = {}
        row: dict[str, Any] = {"method": m}
        for j, name in enumerate(metric_names):
            metric, cov = name.rsplit("_", 1)
            entry.setdefault(metric, {})[cov] = float(scores.mean[i, j])
            entry.setdefault(f"{metric}_ci", {})[cov] = [float(scores.low[i, j]), float(scores.high[i, j])]
            row[name], row[f"{name}_low"], row[f"{name}_high"] = scores.mean[i, j], scores.low[i, j], scores.high[i, j]
        entry["seconds_per_forecast"] = seconds[m]
        entry.update(cover[m])
        entry["dispersion"] = alphas[m]
        row["seconds_per_forecast"] = seconds[m]
        row.update(cover[m])
        j5 = metric_names.index("hit_rate_0.05")
        row["vs_naive_hit_rate_0.05"] = scores.diff[i, j5]
        row["vs_naive_hit_rate_0.05_low"] = scores.diff_low[i, j5]
        row["vs_naive_hit_rate_0.05_high"] = scores.diff_high[i, j5]
        nested[m] = entry
        rows.append(row)
        if m != "naive":
            paired[m] = {}
            for j, name in enumerate(metric_names):
                if name.startswith("hit_rate_"):
                    paired[m][name.rsplit("_", 1)[1]] = {
                        "diff": float(scores.diff[i, j]),
                        "ci": [float(scores.diff_low[i, j]), float(scores.diff_high[i, j])],
                    }
    j5 = metric_names.index("hit_rate_0.05")
    best = chosen[int(np.nanargmax(scores.mean[:, j5]))]
    per = [
        {"period_start": _date(a), "method": m, "hit_rate_0.05": float(values[k, i, j5])}
        for k, (a, _) in enumerate(periods) for i, m in enumerate(chosen)
    ]  # fmt: skip
    off_rows = []
    if grid_offsets > 1:
        for k, (le_k, _, study_k, _, (vals_k, *_)) in enumerate(runs):
            for i, m in enumerate(chosen):
                r: dict[str, Any] = {"offset": k / grid_offsets, "offset_m": le_k.offset_m, "method": m,
                                     "study_area_cells": int(study_k.sum())}  # fmt: skip
                for c in COVERAGES:
                    r[f"hit_rate_{c:g}"] = float(np.nanmean(vals_k[:, i, metric_names.index(f"hit_rate_{c:g}")]))
                off_rows.append(r)
    notes = [
        f"Study area: {study_text}.",
        f"Each {horizon} is forecast from the incidents before it only (each method reads up to {train_days} "
        "days back, except lightgbm, whose features also read each cell's whole earlier history: a 730-day count "
        "and an exponentially decayed count); naive counts the last "
        f"{train_days} days.",
        "Intervals: 95% over resampled periods; differences against naive are paired (same periods).",
        *CAVEATS,
    ]
    worse = [m for m in chosen if m != "naive" and paired[m]["0.05"]["ci"][1] < 0]
    if worse:
        notes.append(f"Worse than naive at 5% coverage (interval below 0): {', '.join(worse)}.")
    if le.rows_without_coordinates:
        notes.append(f"{le.rows_without_coordinates:,} incidents without coordinates are not gridded.")
    if any(cover[m]["poisson_interval_periods"] for m in chosen):
        notes.append(
            "The first period's 90% intervals are Poisson: no earlier period with a full window was left to estimate "
            "the spread on, and Poisson intervals are too narrow for over-dispersed counts."
        )
    for m, n_fb in fallbacks.items():
        if n_fb:
            notes.append(
                f"{m}: {n_fb} of {len(periods)} forecasts had too little history to learn from and are the naive "
                "forecast."
            )
    title = (
        f"Hotspot forecasts of {le.source}: {len(periods)} {horizon}s from {_date(periods[0][0])}, "
        f"{cell_m:g} m cells, best at 5%: {best}"
    )
    return ForecastEvaluation(
        title=title,
        table=pd.DataFrame(rows),
        params={
            "source": le.source,
            "cell_m": cell_m,
            "train_days": train_days,
            "horizon": horizon,
            "offence": list(offence),
            "methods": chosen,
            "grid_offsets": grid_offsets,
            "study_area": study_area,
            "seed": seed,
            "n_boot": n_boot,
            **le.origin.to_dict(),
        },
        notes=tuple(notes),
        source=le.source,
        cell_m=float(cell_m),
        horizon=horizon,
        train_days=train_days,
        methods=nested,
        paired_vs_naive=paired,
        study_area_cells=int(study.sum()),
        study_area=study_text,
        periods=len(periods),
        first_period=str(_date(periods[0][0])),
        last_period=str(_date(periods[-1][0])),
        best_method=best,
        per_period=pd.DataFrame(per),
        offsets=pd.DataFrame(off_rows),
    )


def _area_labels(con: duckdb.DuckDBPyConnection, le: LoadedEvents) -> list[str]:
    """Each area code's name: from the loaded area polygons of the area column when they name it, else its id."""
    import duckdb

    labels = list(le.area_names)
    if le.area_column is None:
        return labels
    try:
        rows = con.execute("SELECT area_id, name FROM areas WHERE area_kind = ?", [le.area_column]).fetchall()
    except duckdb.CatalogException:  # a warehouse without the areas table: ids only
        return labels
    names = {str(r[0]): str(r[1]) for r in rows if r[1] is not None}
    return [names.get(label, label) for label in labels]


@dataclass(frozen=True)
class HotspotPrediction(Result):
    """Next period's forecast: one row per study-area cell, ranked by expected count, with a 90 % interval.

    Columns: rank, cell_x, cell_y, lat, lon (cell centre), place (the area most of the cell's incidents fall
    in), expected, low, high (90 % interval of the count), recent (incidents over the training window).
    """

    source: str = ""
    method: str = ""
    cell_m: float = 0.0
    horizon: str = ""
    period_start: str = ""
    period_end: str = ""
    dispersion: float = 0.0
    expected_total: float = 0.0
    geojson: dict[str, Any] = field(default_factory=dict)

    def chart(self) -> ChartSpec | None:
        """The 25 cells with the highest expected count (the map is the GeoJSON export)."""
        top = self.table.head(25).assign(cell=lambda f: f["place"].astype(str) + " #" + f["rank"].astype(str))
        return ChartSpec(
            kind="barh",
            data=top,
            x="cell",
            y="expected",
            title=f"Expected incidents, {self.period_start} to {self.period_end} ({self.method})",
            x_label="Cell (place and rank)",
            y_label="Expected incidents",
        )


@records_caveats
def predict_hotspots(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    method: str = "naive",
    cell_m: float = 200.0,
    train_days: int = 365,
    horizon: str = "week",
    offence: Sequence[str] = (),
    at: Any = None,
    study_area: str = "auto",
    seed: int = 0,
    calibration_periods: int = 4,
) -> HotspotPrediction:
    """Next period's expected incidents per cell with 90 % intervals, ranked, with place names and GeoJSON.

    Parameters
    ----------
    method
        One of the forecasters (:data:`crimelens.models.forecast.FORECASTERS`).
    at
        Start of the forecast period (default: the day after the last incident).
    study_area
        ``auto``, ``boundary`` or ``incidents`` (see the module docstring).
    calibration_periods
        Earlier periods on which the interval's dispersion is calibrated (the same method, forecast from
        incidents before each).

    Returns
    -------
    HotspotPrediction
        The study area: cells with an incident before the forecast period.
    """
    if method not in FORECASTERS:
        raise ConfigError(f"--method: expected one of {', '.join(FORECASTERS)}, got {method!r}")
    if horizon not in HORIZONS:
        raise ConfigError(f"--horizon: expected one of {', '.join(HORIZONS)}, got {horizon!r}")
    le = load_grid_events(con, source, cell_m=cell_m, offence=offence)
    ev = le.events
    a = _day(at) if at is not None else le.last_day + 1
    if horizon == "month":
        month = pd.Timestamp(_date(a)).to_period("M")
        b = _day((month + 1).start_time)
    else:
        b = a + (1 if horizon == "day" else 7)
    h = b - a
    ys, mus = [], []
    study, study_text = _study_area(con, le, study_area, le.first_day, a)
    if not study.any():
        raise DataError(f"no incident before {_date(a)}: nothing to forecast from")
    f = make_forecaster(method, window=train_days, seed=seed)
    for k in range(calibration_periods, 0, -1):
        c = a - k * h
        if c - train_days < le.first_day:  # not a full window before it: no calibration from it
            continue
        f.fit(ev, c, h)
        ys.append(ev.counts(c, c + h)[study])
        mus.append(f.predict()[study])
    alpha = nb_dispersion(np.concatenate(ys), np.concatenate(mus)) if ys else 0.0
    fitted = f.fit(ev, a, h)
    mu = fitted.predict()
    score = fitted.score_cells()
    rows = np.flatnonzero(study)
    lo, hi = nb_interval(mu[rows], alpha, 0.9)
    cx = le.cell_x0 + rows % ev.nx
    cy = le.cell_y0 + rows // ev.nx
    _, _, lon, lat = le.origin.cell_centres(cx, cy, cell_m)
    place = np.full(rows.size, "", dtype=object)
    known = ev.area >= 0
    if known.any() and le.area_names:
        n_area = len(le.area_names)
        pair = np.bincount(ev.cell[known] * n_area + ev.area[known], minlength=ev.n_cells * n_area)
        pair = pair.reshape(ev.n_cells, n_area)[rows]
        has = pair.sum(axis=1) > 0
        names = np.array(_area_labels(con, le), dtype=object)
        place = np.where(has, names[pair.argmax(axis=1)], "")
    recent = ev.counts(a - train_days, a)[rows]
    table = pd.DataFrame(
        {"cell_x": cx, "cell_y": cy, "lat": lat, "lon": lon, "place": place, "expected": mu[rows],
         "low": lo, "high": hi, "recent": recent.astype(np.int64), "_score": score[rows]}
    ).sort_values(["_score", "expected"], ascending=False, kind="mergesort")  # fmt: skip
    table = table.drop(columns="_score").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    rings = le.cell_polygons(le.events.nx * (table["cell_y"].to_numpy() - le.cell_y0) + table["cell_x"] - le.cell_x0)
    props = table[["rank", "place", "expected", "low", "high", "recent"]].to_dict("records")
    features = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
         "properties": {"rank": int(p["rank"]), "place": str(p["place"]), "expected": float(p["expected"]),
                        "low": float(p["low"]), "high": float(p["high"]), "recent": int(p["recent"])}}
        for p, ring in zip(props, rings, strict=True)
    ]  # fmt: skip
    start_d, end_d = _date(a), _date(b - 1)
    calibrated = (
        f"a negative binomial with dispersion {alpha:.3f} calibrated on the {len(ys)} previous {horizon}(s)"
        if ys
        else "a Poisson distribution (too little history to calibrate a dispersion)"
    )
    notes = (
        f"Method {method}, fitted on incidents before {start_d} ({train_days} days); 90% intervals from {calibrated}.",
        f"Place: the {le.area_column.replace('_', ' ') if le.area_column else 'area'} most of the cell's incidents "
        "fall in.",
        f"Study area: {study_text}.",
        *CAVEATS,
    )
    return HotspotPrediction(
        title=f"Forecast of {le.source}, {start_d} to {end_d}: {method}, {cell_m:g} m cells",
        table=table,
        params={
            "source": le.source,
            "method": method,
            "cell_m": cell_m,
            "train_days": train_days,
            "horizon": horizon,
            "offence": list(offence),
            "seed": seed,
            **le.origin.to_dict(),
        },
        notes=notes,
        source=le.source,
        method=method,
        cell_m=float(cell_m),
        horizon=horizon,
        period_start=str(start_d),
        period_end=str(end_d),
        dispersion=alpha,
        expected_total=float(mu[rows].sum()),
        geojson={"type": "FeatureCollection", "features": features},
    )
