"""Heavy aggregations over incidents, written once as Ibis expressions, run on DuckDB or Spark.

Each aggregation has an *expression builder* (``*_expr``: an Ibis table in, an Ibis expression out, nothing
executed) and a thin runner that runs it with :func:`crimelens.analysis.incidents.compiled.run` and returns a
small pandas frame, sorted by its key columns so both engines give identical frames: on an Ibis table from
:func:`crimelens.engine.incident_table` (DuckDB or Spark) through Ibis, on an
:class:`~crimelens.engine.IncidentScope` (the warehouse on DuckDB) as the same expression's SQL compiled ahead
of time.

- :func:`area_counts`: incidents per area × period (× offence).
- :func:`grid_counts`: incidents per square cell of ``cell_m`` metres on a local equal-area projection
  (:mod:`crimelens.geo`) × period. The dense cells × periods form of the same counts is
  :class:`crimelens.analysis.incidents.panel.GridPanel`.
- :func:`h3_counts`: incidents per H3 hexagon (Uber's H3 grid, https://h3geo.org; ``h3.latlng_to_cell``).
- :func:`weekday_hour_counts`, :func:`month_of_year_counts`: temporal profiles.

Periods start at the truncated local timestamp: hour, day, ISO week (Monday 00:00), month, year.
Counts are of recorded incidents: they reflect reporting and patrol intensity as well as crime.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from crimelens.analysis.incidents.compiled import compiled_query, execute, run, to_ibis
from crimelens.errors import ConfigError, DataError
from crimelens.geo import GridOrigin, cell_index_expr, origin_for_extent

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AREA_COLUMNS",
    "MIN_CELL_M",
    "PERIODS",
    "GridCounts",
    "HexCounts",
    "Period",
    "area_counts",
    "area_counts_expr",
    "daily_counts",
    "data_origin",
    "execute",
    "extent",
    "grid_counts",
    "grid_counts_expr",
    "h3_counts",
    "h3_counts_expr",
    "month_of_year_counts",
    "weekday_hour_counts",
]

Period = Literal["hour", "day", "week", "month", "year"]
#: Period name → Ibis truncation unit (weeks start on Monday on every engine, ISO 8601).
PERIODS: dict[str, str] = {"hour": "h", "day": "D", "week": "W", "month": "M", "year": "Y"}
#: Area id columns of ``incidents``.
AREA_COLUMNS: tuple[str, ...] = ("district", "beat", "community_area", "neighbourhood", "census_tract")
#: Smallest grid cell accepted (m): finer than the precision of recorded crime locations (often offset to a
#: block or an intersection, 50–100 m) is false precision.
MIN_CELL_M = 10.0
#: Largest grid cell accepted (m): beyond this the local projection's shape distortion matters.
MAX_CELL_M = 100_000.0


# -- validation --------------------------------------------------------------------------------------------
def _check_period(period: str | None, *, optional: bool) -> None:
    if period is None and optional:
        return
    if period not in PERIODS:
        allowed = ", ".join(PERIODS) + (", or None" if optional else "")
        raise ConfigError(f"period: expected one of {allowed}; got {period!r}")


def _check_area(t: Any, area: str) -> None:
    if area not in AREA_COLUMNS:
        raise ConfigError(f"area: expected one of {', '.join(AREA_COLUMNS)}; got {area!r}")
    if area not in t.columns:
        raise DataError(f"area {area!r}: the incidents table has no such column (its columns: {', '.join(t.columns)})")


def _check_cell(cell_m: float) -> None:
    if not isinstance(cell_m, int | float) or isinstance(cell_m, bool) or not math.isfinite(cell_m):
        raise ConfigError(f"cell_m: expected a cell size in metres, {MIN_CELL_M:g}–{MAX_CELL_M:g}; got {cell_m!r}")
    if not (MIN_CELL_M <= cell_m <= MAX_CELL_M):
        raise ConfigError(
            f"cell_m: expected a cell size in metres, {MIN_CELL_M:g}–{MAX_CELL_M:g} (recorded locations are "
            f"rarely more precise than {MIN_CELL_M:g} m); got {cell_m!r}"
        )


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, int) or isinstance(resolution, bool) or not 0 <= resolution <= 15:
        raise ConfigError(f"resolution: expected an H3 resolution, an integer 0–15; got {resolution!r}")


# -- execution ---------------------------------------------------------------------------------------------
# execute() lives in compiled.py, beside run(), which runs the registered queries below without Ibis on DuckDB


def _period_col(t: Any, period: str) -> Any:
    return t.occurred_at.truncate(PERIODS[period]).cast("timestamp")


# -- areas -------------------------------------------------------------------------------------------------
def area_counts_expr(t: Any, area: str = "community_area", period: Period = "week", by_offence: bool = True) -> Any:
    """Ibis expression: incidents per ``area`` × ``period`` (× offence). Rows with no area id count under NULL."""
    _check_area(t, area)
    _check_period(period, optional=False)
    return _area_counts_expr(t, area=area, period=period, by_offence=by_offence)


def _area_keys(shape: Mapping[str, Any]) -> list[str]:
    return ["area", "period_start", *(["offence"] if shape["by_offence"] else [])]


@compiled_query(
    shapes=[{"area": a, "period": p, "by_offence": b} for a in AREA_COLUMNS for p in PERIODS for b in (False, True)],
    sort_by=_area_keys,
)
def _area_counts_expr(t: Any, *, area: str, period: str, by_offence: bool) -> Any:
    keys = {"area": t[area], "period_start": _period_col(t, period)}
    if by_offence:
        keys["offence"] = t.offence
    return t.group_by(**keys).aggregate(incidents=t.count())


def area_counts(t: Any, area: str = "community_area", period: Period = "week", by_offence: bool = True) -> pd.DataFrame:
    """Incidents per area × period (× offence): columns area, period_start, [offence], incidents.

    Every incident is counted once: the counts add up to the table's row count (no area → area NULL).
    """
    _check_area(t, area)
    _check_period(period, optional=False)
    return run(_area_counts_expr, t, area=area, period=period, by_offence=by_offence)


# -- square grid -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridCounts:
    """Grid counts with what is needed to read them: the origin, cell size and rows left out."""

    table: pd.DataFrame
    origin: GridOrigin
    cell_m: float
    period: str | None
    rows_total: int
    rows_without_coordinates: int
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HexCounts:
    """H3 counts and the rows left out for lack of coordinates."""

    table: pd.DataFrame
    resolution: int
    period: str | None
    rows_total: int
    rows_without_coordinates: int


def _located(t: Any) -> Any:
    return t.filter(t.latitude.notnull() & t.longitude.notnull())


@compiled_query()
def _extent_expr(t: Any) -> Any:
    located = t.latitude.notnull() & t.longitude.notnull()
    return t.aggregate(
        rows_total=t.count(),
        rows_located=t.count(where=located),
        min_lon=t.longitude.min(),
        max_lon=t.longitude.max(),
        min_lat=t.latitude.min(),
        max_lat=t.latitude.max(),
    )


def extent(t: Any) -> dict[str, Any]:
    """How many incidents ``t`` holds (``rows_total``), how many have coordinates (``rows_located``), and the
    located ones' extent (``min_lon``, ``max_lon``, ``min_lat``, ``max_lat``; None when none is located), in one
    query."""
    return {str(k): v for k, v in run(_extent_expr, t).iloc[0].to_dict().items()}


def _origin_of(ext: dict[str, Any]) -> GridOrigin:
    if not ext["rows_located"]:
        raise DataError("grid: no incident has coordinates (latitude and longitude), so there is nothing to grid")
    return origin_for_extent(float(ext["min_lon"]), float(ext["max_lon"]), float(ext["min_lat"]), float(ext["max_lat"]))


def data_origin(t: Any) -> GridOrigin:
    """A grid origin for the located incidents of ``t`` (see :func:`crimelens.geo.origin_for_extent`).

    It depends on which incidents ``t`` holds: for cells that keep their ids whatever the time window or offence
    filter, use the source's pinned origin instead (:func:`crimelens.analysis.incidents.panel.source_origin`).
    """
    return _origin_of(extent(t))


def grid_counts_expr(
    t: Any, origin: GridOrigin, cell_m: float = 150.0, period: Period | None = "week", by_offence: bool = False
) -> Any:
    """Ibis expression: located incidents per square cell (cell_x, cell_y) × period (× offence).

    x, y are computed in the engine (:meth:`crimelens.geo.GridOrigin.cell_of_expr`); cell index =
    floor((x − x0) / cell_m).
    """
    _check_cell(cell_m)
    _check_period(period, optional=True)
    return _grid_cells_expr(t, **origin.expr_constants(), cell_m=float(cell_m), period=period, by_offence=by_offence)


#: The values a grid query takes (:meth:`crimelens.geo.GridOrigin.expr_constants` and the cell size), by type.
GRID_VALUES = {k: "float64" for k in ("lon0", "kx", "ky", "x0", "y0", "cell_m")}


def _grid_keys(shape: Mapping[str, Any]) -> list[str]:
    return [
        "cell_x",
        "cell_y",
        *(["period_start"] if shape["period"] else []),
        *(["offence"] if shape["by_offence"] else []),
    ]


@compiled_query(
    values=GRID_VALUES,
    shapes=[{"period": p, "by_offence": b} for p in (None, *PERIODS) for b in (False, True)],
    sort_by=_grid_keys,
)
def _grid_cells_expr(
    t: Any, *, lon0: Any, kx: Any, ky: Any, x0: Any, y0: Any, cell_m: Any, period: str | None, by_offence: bool
) -> Any:
    pts = _located(t)
    cell_x, cell_y = cell_index_expr(pts.longitude, pts.latitude, lon0=lon0, kx=kx, ky=ky, x0=x0, y0=y0, cell_m=cell_m)
    keys: dict[str, Any] = {"cell_x": cell_x, "cell_y": cell_y}
    if period is not None:
        keys["period_start"] = _period_col(pts, period)
    if by_offence:
        keys["offence"] = pts.offence
    return pts.group_by(**keys).aggregate(incidents=pts.count())


def grid_counts(
    t: Any,
    cell_m: float = 150.0,
    period: Period | None = "week",
    by_offence: bool = False,
    origin: GridOrigin | None = None,
) -> GridCounts:
    """Incidents per ``cell_m`` × ``cell_m`` metre square cell (× period × offence).

    Columns: cell_x, cell_y (integer indices), x_m, y_m (cell centre, m), lat, lon (cell centre back-projected),
    [period_start], [offence], incidents. ``origin`` defaults to :func:`data_origin` of ``t``; pass the
    source's pinned origin (:func:`crimelens.analysis.incidents.panel.source_origin`) for cells that keep their
    ids whatever the filter, and as data is added. Rows without coordinates are not counted; their
    number is in ``rows_without_coordinates``. Projection: Lambert cylindrical equal-area (Snyder 1987, §10).
    """
    _check_cell(cell_m)
    _check_period(period, optional=True)
    ext = extent(t)
    if origin is None:
        origin = _origin_of(ext)
    frame = run(
        _grid_cells_expr, t, **origin.expr_constants(), cell_m=float(cell_m), period=period, by_offence=by_offence
    )
    x, y, lon, lat = origin.cell_centres(frame["cell_x"].to_numpy(), frame["cell_y"].to_numpy(), cell_m)
    frame.insert(2, "x_m", x)
    frame.insert(3, "y_m", y)
    frame.insert(4, "lat", lat)
    frame.insert(5, "lon", lon)
    total = int(ext["rows_total"])
    return GridCounts(
        table=frame,
        origin=origin,
        cell_m=float(cell_m),
        period=period,
        rows_total=total,
        rows_without_coordinates=total - int(ext["rows_located"]),
        params={"cell_m": float(cell_m), "period": period, "by_offence": by_offence, **origin.to_dict()},
    )


# -- H3 hexagons -------------------------------------------------------------------------------------------
def _latlng_to_cell(lat: float, lon: float, resolution: int) -> str:
    import h3

    return str(h3.latlng_to_cell(lat, lon, resolution))


@functools.cache
def _h3_udf() -> Any:
    """The H3 cell of a point as an Ibis Python scalar UDF (the same UDF on DuckDB and on Spark)."""
    import ibis

    @ibis.udf.scalar.python(name="crimelens_h3_cell")  # type: ignore[untyped-decorator]
    def h3_cell(lat: float, lon: float, resolution: int) -> str:
        return _latlng_to_cell(lat, lon, resolution)

    return h3_cell


def h3_counts_expr(t: Any, resolution: int = 8, period: Period | None = None, by_offence: bool = False) -> Any:
    """Ibis expression: located incidents per H3 cell (× period × offence).

    Incidents are first counted per exact coordinate pair (in the engine), so the Python UDF runs once per
    distinct location and key rather than once per incident, then the counts are summed per cell.
    """
    import ibis

    _check_resolution(resolution)
    _check_period(period, optional=True)
    pts = _located(t)
    keys: dict[str, Any] = {"latitude": pts.latitude, "longitude": pts.longitude}
    if period is not None:
        keys["period_start"] = _period_col(pts, period)
    if by_offence:
        keys["offence"] = pts.offence
    at_points = pts.group_by(**keys).aggregate(n=pts.count())
    cell = _h3_udf()(at_points.latitude, at_points.longitude, ibis.literal(resolution, "int64"))
    out_keys: dict[str, Any] = {"h3_cell": cell}
    for k in keys:
        if k not in ("latitude", "longitude"):
            out_keys[k] = at_points[k]
    return at_points.group_by(**out_keys).aggregate(incidents=at_points.n.sum().cast("int64"))


def h3_counts(t: Any, resolution: int = 8, period: Period | None = None, by_offence: bool = False) -> HexCounts:
    """Incidents per H3 cell at ``resolution`` (0–15; 8 ≈ 0.74 km² hexagons) (× period × offence).

    Columns: h3_cell (hex string, as ``h3.latlng_to_cell``), [period_start], [offence], incidents. Rows without
    coordinates are not counted; their number is in ``rows_without_coordinates``.
    """
    _check_resolution(resolution)
    _check_period(period, optional=True)
    ext = extent(t)
    t = to_ibis(t)
    keys = ["h3_cell", *(["period_start"] if period else []), *(["offence"] if by_offence else [])]
    frame = execute(h3_counts_expr(t, resolution, period, by_offence), keys)
    total = int(ext["rows_total"])
    return HexCounts(frame, resolution, period, total, total - int(ext["rows_located"]))


# -- temporal profiles -------------------------------------------------------------------------------------
def _weekday_hour_keys(shape: Mapping[str, Any]) -> list[str]:
    return ["weekday", "hour", *(["offence"] if shape["by_offence"] else [])]


@compiled_query(
    shapes=[{"timed": a, "by_offence": b} for a in (True, False) for b in (False, True)], sort_by=_weekday_hour_keys
)
def _weekday_hour_expr(t: Any, *, timed: bool, by_offence: bool) -> Any:
    if timed:  # known to the hour: time_precision is not 'day'
        t = t.filter(t.time_precision != "day")
    keys: dict[str, Any] = {
        "weekday": t.occurred_at.day_of_week.index().cast("int64"),
        "hour": t.occurred_at.hour().cast("int64"),
    }
    if by_offence:
        keys["offence"] = t.offence
    return t.group_by(**keys).aggregate(incidents=t.count())


def weekday_hour_counts(t: Any, by_offence: bool = False) -> pd.DataFrame:
    """Incidents by weekday (0 = Monday … 6 = Sunday) × hour of day (0–23) (× offence).

    Incidents whose time is known only to the day (``time_precision = 'day'``) are left out: their hour is
    unknown, and counting them at midnight would invent a midnight peak. ``frame.attrs['rows_excluded']``
    holds how many were left out.
    """
    frame = run(_weekday_hour_expr, t, timed="time_precision" in t.columns, by_offence=by_offence)
    frame.attrs["rows_excluded"] = int(extent(t)["rows_total"]) - int(frame["incidents"].sum())
    return frame


@compiled_query(sort_by=["date"])
def _daily_expr(t: Any) -> Any:
    return t.group_by(date=t.occurred_at.date()).aggregate(incidents=t.count())


def daily_counts(t: Any) -> pd.DataFrame:
    """Incidents per calendar date (``date``, ``incidents``), every incident including those known only to the day."""
    return run(_daily_expr, t)


def month_of_year_counts(t: Any, by_offence: bool = False) -> pd.DataFrame:
    """Incidents by calendar month (1–12) summed over years (× offence)."""
    t = to_ibis(t)
    keys: dict[str, Any] = {"month": t.occurred_at.month().cast("int64")}
    if by_offence:
        keys["offence"] = t.offence
    return execute(t.group_by(**keys).aggregate(incidents=t.count()), list(keys))
