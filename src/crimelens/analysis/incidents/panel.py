"""The grid panel: incidents per square cell × period, dense, on the grid pinned for the source.

A :class:`GridPanel` is the one shape in which grid analyses take incident counts: Gi* hot spots (on the
whole-period totals), persistent hot cells (cell by period), the kernel density surface, and later forecasters
and spike alerts. It holds

- the grid: its :class:`~crimelens.geo.GridOrigin` and ``cell_m``, so every cell index means one place on the
  map (:meth:`GridPanel.centres`);
- the cells: every cell of a rectangle of cell indices (``extent``, by default the bounding rectangle of the
  cells with incidents), in row-major order from the south-west (row ``(cell_y − y_min) · nx + (cell_x −
  x_min)``, the order of :func:`crimelens.analysis.incidents.hotspots.grid_weights`), and the *study-area* cells
  among them (by default those with at least one incident);
- the periods: the distinct period starts of the counts, in time order (``period=None``: one period, the whole
  span, whose start is NaT);
- ``counts``: a read-only ``int64`` array of shape (cells, periods); absent means 0.

Build it with :func:`grid_panel` (one aggregation in the engine, on DuckDB or Spark, densified in numpy) or from
counts already made (:meth:`GridPanel.from_grid_counts`, :meth:`GridPanel.from_frame`). Give it the source's
pinned origin (:func:`source_origin`) and cells keep their ids whatever the time window or offence filter, so
panels of two windows line up (:meth:`GridPanel.reindex` lays one on the other's rectangle).

Counts are of recorded incidents: they reflect reporting and patrol intensity as well as crime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.analysis.incidents.aggregate import (
    GRID_VALUES,
    PERIODS,
    GridCounts,
    Period,
    _check_cell,
    _check_period,
    _period_col,
    data_origin,
)
from crimelens.analysis.incidents.compiled import compiled_query, run
from crimelens.errors import DataError, SchemaError
from crimelens.geo import FloatArray, GridOrigin, IntArray, cell_index_expr

if TYPE_CHECKING:
    import duckdb

__all__ = ["MAX_PANEL_VALUES", "GridPanel", "dense_counts", "grid_panel", "source_origin"]

#: Largest panel built (cells × periods, 400 MB of int64): beyond it use larger cells, a longer period or a
#: shorter window.
MAX_PANEL_VALUES = 50_000_000

Extent = tuple[int, int, int, int]
BoolArray = npt.NDArray[np.bool_]
TimeArray = npt.NDArray[np.datetime64]


def _readonly(values: Any, dtype: Any) -> Any:
    """A private, read-only copy (the caller's array is neither kept nor frozen)."""
    out = np.array(values, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


def _check_extent(extent: object) -> Extent:
    values = list(extent) if isinstance(extent, tuple | list) else []
    ok = len(values) == 4 and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values)
    if not ok or not (values[0] <= values[2] and values[1] <= values[3]):
        raise DataError(
            f"extent: expected four integer cell indices (x_min, y_min, x_max, y_max) with min ≤ max, got {extent!r}"
        )
    x0, y0, x1, y1 = (int(v) for v in values)
    return x0, y0, x1, y1


def _as_us(when: Any) -> np.datetime64:
    stamp: np.datetime64 = pd.Timestamp(when).to_datetime64().astype("datetime64[us]")
    return stamp


def _check_size(n_cells: int, n_periods: int, nx: int, ny: int) -> None:
    if n_cells * n_periods > MAX_PANEL_VALUES:
        raise DataError(
            f"grid panel: expected at most {MAX_PANEL_VALUES:,} cell-periods, got {nx} × {ny} cells × "
            f"{n_periods:,} periods = {n_cells * n_periods:,}; use larger cells, a longer period or a shorter "
            "window (a few far-off, mis-located incidents also widen the rectangle: check the extent)"
        )


def dense_counts(
    cell_x: Any, cell_y: Any, period_index: Any, incidents: Any, n_periods: int, extent: Extent | None = None
) -> tuple[IntArray, Extent]:
    """Densify sparse counts into a (cells, periods) int64 array over a rectangle of cells (vectorised).

    ``period_index``: each row's column (0 … n_periods − 1); rows of the same cell and period are summed.
    ``extent`` defaults to the bounding rectangle of the cells given; a row outside a given extent raises
    :class:`DataError`. Rows are numbered row-major from the south-west corner, as in :class:`GridPanel`.
    Returns the array and the extent used.
    """
    cx = np.asarray(cell_x, dtype=np.int64)
    cy = np.asarray(cell_y, dtype=np.int64)
    col = np.asarray(period_index, dtype=np.int64)
    n = np.asarray(incidents, dtype=np.float64)
    if cx.size == 0 and extent is None:
        raise DataError("grid: expected at least one cell with incidents, got none")
    if extent is None:
        ext: Extent = (int(cx.min()), int(cy.min()), int(cx.max()), int(cy.max()))
    else:
        ext = _check_extent(extent)
        outside = (cx < ext[0]) | (cx > ext[2]) | (cy < ext[1]) | (cy > ext[3])
        if outside.any():
            raise DataError(
                f"extent: expected every cell with incidents inside {ext}, got {int(outside.sum()):,} row(s) "
                f"outside (first: cell {int(cx[outside][0])}, {int(cy[outside][0])})"
            )
    nx, ny = ext[2] - ext[0] + 1, ext[3] - ext[1] + 1
    _check_size(nx * ny, n_periods, nx, ny)
    flat = ((cy - ext[1]) * nx + (cx - ext[0])) * n_periods + col
    # float weights add exactly up to 2⁵³ incidents per cell-period
    dense = np.bincount(flat, weights=n, minlength=nx * ny * n_periods).round().astype(np.int64)
    return dense.reshape(nx * ny, n_periods), ext


@dataclass(frozen=True, eq=False)
class GridPanel:
    """Incident counts per grid cell × period over a full rectangle of cells: see the module docstring.

    Parameters
    ----------
    origin : GridOrigin
        Where the grid is anchored (projection centre and grid origin); cell ``(i, j)`` covers
        ``x0 + i·cell_m ≤ x < x0 + (i+1)·cell_m`` and likewise in y.
    cell_m : float
        Cell size in metres.
    period : str or None
        ``hour``, ``day``, ``week``, ``month`` or ``year``; None when the panel holds one whole-span period.
    extent : tuple of int
        ``(x_min, y_min, x_max, y_max)``: the rectangle of cell indices (inclusive) the rows cover.
    periods : numpy.ndarray of datetime64[us]
        Period starts, strictly increasing (one NaT when ``period`` is None).
    counts : numpy.ndarray of int64, shape (n_cells, n_periods)
        Incidents per cell (row-major from the south-west corner of ``extent``) and period.
    study_area : numpy.ndarray of bool, shape (n_cells,), optional
        The cells of the study area; default (or an empty array): the cells with at least one incident.
    rows_total, rows_without_coordinates : int
        Incidents of the table the panel was counted from, and those left out for lack of coordinates.

    Notes
    -----
    Arrays are private read-only copies: a panel is not to be mutated (derive a new one instead).
    """

    origin: GridOrigin
    cell_m: float
    period: str | None
    extent: Extent
    periods: TimeArray
    counts: IntArray
    study_area: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    rows_total: int = 0
    rows_without_coordinates: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.origin, GridOrigin):
            raise DataError(f"origin: expected a GridOrigin, got {type(self.origin).__name__}")
        if isinstance(self.cell_m, bool) or not isinstance(self.cell_m, int | float) or not self.cell_m > 0:
            raise DataError(f"cell_m: expected a cell size in metres > 0, got {self.cell_m!r}")
        if self.period is not None:
            _check_period(self.period, optional=True)
        extent = _check_extent(self.extent)
        nx, ny = extent[2] - extent[0] + 1, extent[3] - extent[1] + 1
        periods = _readonly(self.periods, "datetime64[us]")
        counts = np.asarray(self.counts)
        if periods.ndim != 1 or periods.size == 0:
            raise DataError(f"periods: expected a non-empty 1-D array of period starts, got shape {periods.shape}")
        if self.period is None and periods.size != 1:
            raise DataError(f"periods: expected one period when period is None, got {periods.size}")
        if periods.size > 1 and not (np.diff(periods) > np.timedelta64(0, "us")).all():
            raise DataError("periods: expected period starts in strictly increasing order (no NaT, no repeats)")
        if counts.shape != (nx * ny, periods.size):
            raise DataError(
                f"counts: expected shape (cells, periods) = ({nx * ny}, {periods.size}) for extent {extent}, "
                f"got {counts.shape}"
            )
        if counts.size and (not np.issubdtype(counts.dtype, np.integer) or counts.min() < 0):
            raise DataError("counts: expected whole numbers ≥ 0 (incidents), got negative or non-integer values")
        given = np.asarray(self.study_area, dtype=bool)
        study = (counts.sum(axis=1) > 0) if given.size == 0 and nx * ny else given
        if study.shape != (nx * ny,):
            raise DataError(f"study_area: expected {nx * ny} flags (one per cell), got shape {study.shape}")
        object.__setattr__(self, "cell_m", float(self.cell_m))
        object.__setattr__(self, "extent", extent)
        object.__setattr__(self, "periods", periods)
        object.__setattr__(self, "counts", _readonly(counts, np.int64))
        object.__setattr__(self, "study_area", _readonly(study, bool))

    # -- builders ----------------------------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        origin: GridOrigin,
        cell_m: float,
        period: str | None,
        extent: Extent | None = None,
        rows_total: int | None = None,
        rows_without_coordinates: int = 0,
    ) -> GridPanel:
        """Densify tidy counts: columns ``cell_x, cell_y, incidents`` and, with a ``period``, ``period_start``.

        Rows of the same cell and period are summed (e.g. over offences). ``extent`` defaults to the bounding
        rectangle of the cells given; cells outside a given extent raise :class:`DataError`. ``rows_total``
        defaults to the incidents counted plus ``rows_without_coordinates``.
        """
        need = ("cell_x", "cell_y", "incidents", *(("period_start",) if period is not None else ()))
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise SchemaError(
                f"grid counts: missing column(s) {', '.join(missing)}; expected {', '.join(need)}, "
                f"got {', '.join(map(str, frame.columns)) or 'none'}"
            )
        if frame.empty:
            raise DataError("grid: no incident has coordinates (latitude and longitude), so there is nothing to grid")
        cx = frame["cell_x"].to_numpy(dtype=np.int64)
        cy = frame["cell_y"].to_numpy(dtype=np.int64)
        n = frame["incidents"].to_numpy(dtype=np.int64)
        if period is not None:
            starts = pd.to_datetime(frame["period_start"]).to_numpy(dtype="datetime64[us]")
            if np.isnat(starts).any():
                raise DataError("grid counts: column period_start: expected a timestamp in every row, got NaT")
            periods, column = np.unique(starts, return_inverse=True)
        else:
            periods, column = np.array([np.datetime64("NaT", "us")]), np.zeros(cx.size, dtype=np.int64)
        dense, ext = dense_counts(cx, cy, column.ravel(), n, periods.size, extent)
        counted = int(n.sum())
        return cls(
            origin=origin,
            cell_m=cell_m,
            period=period,
            extent=ext,
            periods=periods,
            counts=dense,
            rows_total=counted + rows_without_coordinates if rows_total is None else rows_total,
            rows_without_coordinates=rows_without_coordinates,
        )

    @classmethod
    def from_grid_counts(cls, grid: GridCounts, *, extent: Extent | None = None) -> GridPanel:
        """The panel of counts made by :func:`~crimelens.analysis.incidents.aggregate.grid_counts` (any
        offence split is summed)."""
        return cls.from_frame(
            grid.table,
            origin=grid.origin,
            cell_m=grid.cell_m,
            period=grid.period,
            extent=extent,
            rows_total=grid.rows_total,
            rows_without_coordinates=grid.rows_without_coordinates,
        )

    # -- shape -------------------------------------------------------------------------------------------
    @property
    def nx(self) -> int:
        """Cells west–east."""
        return self.extent[2] - self.extent[0] + 1

    @property
    def ny(self) -> int:
        """Cells south–north."""
        return self.extent[3] - self.extent[1] + 1

    @property
    def n_cells(self) -> int:
        return self.nx * self.ny

    @property
    def n_periods(self) -> int:
        return int(self.periods.size)

    @property
    def cell_x(self) -> IntArray:
        """Cell index west–east of every row."""
        out: IntArray = self.extent[0] + np.arange(self.n_cells, dtype=np.int64) % self.nx
        return out

    @property
    def cell_y(self) -> IntArray:
        """Cell index south–north of every row."""
        out: IntArray = self.extent[1] + np.arange(self.n_cells, dtype=np.int64) // self.nx
        return out

    @property
    def params(self) -> dict[str, Any]:
        """What a result computed from the panel records: grid, origin, rectangle and periods."""
        first, last = (self.periods[0], self.periods[-1]) if self.period is not None else (None, None)
        return {
            "cell_m": self.cell_m,
            "period": self.period,
            **self.origin.to_dict(),
            "cell_extent": self.extent,
            "n_periods": self.n_periods,
            "first_period": None if first is None else pd.Timestamp(first),
            "last_period": None if last is None else pd.Timestamp(last),
            "study_area_cells": int(np.count_nonzero(self.study_area)),
        }

    def index(self, cell_x: Any, cell_y: Any) -> IntArray:
        """Rows of the cells ``(cell_x, cell_y)``; −1 for a cell outside the rectangle."""
        cx = np.asarray(cell_x, dtype=np.int64)
        cy = np.asarray(cell_y, dtype=np.int64)
        inside = (cx >= self.extent[0]) & (cx <= self.extent[2]) & (cy >= self.extent[1]) & (cy <= self.extent[3])
        rows: IntArray = np.where(inside, (cy - self.extent[1]) * self.nx + (cx - self.extent[0]), -1)
        return rows

    # -- views -------------------------------------------------------------------------------------------
    def totals(self) -> IntArray:
        """Incidents per cell over every period (int64, one per row)."""
        out: IntArray = self.counts.sum(axis=1, dtype=np.int64)
        return out

    def as_grid(self, values: Any) -> Any:
        """One value per cell as a (ny, nx) array, row 0 the southernmost (``values[i]`` for row i)."""
        arr = np.asarray(values)
        if arr.shape[:1] != (self.n_cells,):
            raise DataError(f"values: expected one value per cell ({self.n_cells}), got shape {arr.shape}")
        return arr.reshape(self.ny, self.nx, *arr.shape[1:])

    def centres(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Centres of every cell as (x_m, y_m, lon, lat) (:meth:`crimelens.geo.GridOrigin.cell_centres`)."""
        return self.origin.cell_centres(self.cell_x, self.cell_y, self.cell_m)

    def cells_frame(self) -> pd.DataFrame:
        """One row per cell of the rectangle: cell_x, cell_y, x_m, y_m, lat, lon, incidents (all periods),
        study_area."""
        x, y, lon, lat = self.centres()
        return pd.DataFrame(
            {
                "cell_x": self.cell_x, "cell_y": self.cell_y, "x_m": x, "y_m": y, "lat": lat, "lon": lon,
                "incidents": self.totals(), "study_area": self.study_area,
            }
        )  # fmt: skip

    def to_frame(self, *, zeros: bool = False) -> pd.DataFrame:
        """The tidy view: cell_x, cell_y, x_m, y_m, lat, lon, [period_start], incidents, sorted by cell then
        period, as :func:`~crimelens.analysis.incidents.aggregate.grid_counts` gives it.

        ``zeros``: also the cell-periods without incidents (cells of the study area only).
        """
        keep = np.ones(self.counts.shape, dtype=bool) if zeros else self.counts > 0
        if zeros:
            keep &= self.study_area[:, None]
        rows, cols = np.nonzero(keep)
        cx, cy = self.cell_x[rows], self.cell_y[rows]
        order = np.lexsort((cols, cy, cx))
        rows, cols, cx, cy = rows[order], cols[order], cx[order], cy[order]
        x, y, lon, lat = self.origin.cell_centres(cx, cy, self.cell_m)
        data: dict[str, Any] = {"cell_x": cx, "cell_y": cy, "x_m": x, "y_m": y, "lat": lat, "lon": lon}
        if self.period is not None:
            data["period_start"] = self.periods[cols]
        data["incidents"] = self.counts[rows, cols]
        return pd.DataFrame(data)

    # -- derived panels ----------------------------------------------------------------------------------
    def total(self) -> GridPanel:
        """The whole span as one period (``period`` None): the counts summed over periods."""
        return GridPanel(
            origin=self.origin,
            cell_m=self.cell_m,
            period=None,
            extent=self.extent,
            periods=np.array([np.datetime64("NaT", "us")]),
            counts=self.totals()[:, None],
            study_area=self.study_area,
            rows_total=self.rows_total,
            rows_without_coordinates=self.rows_without_coordinates,
        )

    def window(self, start: Any = None, end: Any = None) -> GridPanel:
        """The periods starting at or after ``start`` and before ``end`` (either None: open), same cells.

        The study area is kept as it is (it is a property of the place, not of the window); ``rows_total``
        then counts the incidents in the window's periods.
        """
        if self.period is None:
            raise DataError("window: expected a panel with periods, got one whole-span period (period None)")
        keep = np.ones(self.n_periods, dtype=bool)
        if start is not None:
            keep &= self.periods >= _as_us(start)
        if end is not None:
            keep &= self.periods < _as_us(end)
        if not keep.any():
            raise DataError(
                f"window: expected at least one period from {start or 'the first'} to before {end or 'the last'}; "
                f"the panel's periods run {pd.Timestamp(self.periods[0]).date()} to "
                f"{pd.Timestamp(self.periods[-1]).date()}"
            )
        counts = self.counts[:, keep]
        return GridPanel(
            origin=self.origin,
            cell_m=self.cell_m,
            period=self.period,
            extent=self.extent,
            periods=self.periods[keep],
            counts=counts,
            study_area=self.study_area,
            rows_total=int(counts.sum()),
            rows_without_coordinates=0,
        )

    def reindex(self, extent: Extent) -> GridPanel:
        """The same counts on another rectangle of the same grid (e.g. the union of two windows' rectangles).

        New cells count 0 and are outside the study area. Dropping a cell that holds incidents raises
        :class:`DataError`.
        """
        ext = _check_extent(extent)
        nx, ny = ext[2] - ext[0] + 1, ext[3] - ext[1] + 1
        _check_size(nx * ny, self.n_periods, nx, ny)
        cx, cy = ext[0] + np.arange(nx * ny) % nx, ext[1] + np.arange(nx * ny) // nx
        src = self.index(cx, cy)
        kept = np.zeros(self.n_cells, dtype=bool)
        kept[src[src >= 0]] = True
        lost = int(self.counts[~kept].sum())
        if lost:
            raise DataError(
                f"extent: expected a rectangle holding every cell with incidents, {ext} leaves out {lost:,} incidents"
            )
        counts = np.zeros((nx * ny, self.n_periods), dtype=np.int64)
        study = np.zeros(nx * ny, dtype=bool)
        counts[src >= 0] = self.counts[src[src >= 0]]
        study[src >= 0] = self.study_area[src[src >= 0]]
        return GridPanel(
            origin=self.origin,
            cell_m=self.cell_m,
            period=self.period,
            extent=ext,
            periods=self.periods,
            counts=counts,
            study_area=study,
            rows_total=self.rows_total,
            rows_without_coordinates=self.rows_without_coordinates,
        )


@compiled_query(
    values=GRID_VALUES,
    shapes=[{"period": p} for p in (None, *PERIODS)],
)
def _panel_expr(t: Any, *, lon0: Any, kx: Any, ky: Any, x0: Any, y0: Any, cell_m: Any, period: str | None) -> Any:
    """Every incident counted per cell (× period); those without coordinates fall in the NULL cell."""
    cell_x, cell_y = cell_index_expr(t.longitude, t.latitude, lon0=lon0, kx=kx, ky=ky, x0=x0, y0=y0, cell_m=cell_m)
    keys: dict[str, Any] = {"cell_x": cell_x, "cell_y": cell_y}
    if period is not None:
        keys["period_start"] = _period_col(t, period)
    return t.group_by(**keys).aggregate(incidents=t.count())


def grid_panel(
    t: Any,
    *,
    cell_m: float = 150.0,
    period: Period | None = "week",
    origin: GridOrigin | None = None,
    extent: Extent | None = None,
) -> GridPanel:
    """Count the incidents of ``t`` into a dense cells × periods :class:`GridPanel`.

    Parameters
    ----------
    t : ibis.Table
        Incidents (:func:`crimelens.engine.incident_table`, filtered or not), on DuckDB or Spark.
    cell_m : float
        Cell size in metres (10–100,000).
    period : {'hour', 'day', 'week', 'month', 'year'} or None
        Period of the columns (weeks start on Monday); None: one whole-span period.
    origin : GridOrigin, optional
        The grid's origin: pass the source's (:func:`source_origin`) so that cells keep their ids whatever
        filter ``t`` carries. Default: :func:`~crimelens.analysis.incidents.aggregate.data_origin` of ``t``
        (one more query, and ids that move with the filter).
    extent : tuple of int, optional
        ``(x_min, y_min, x_max, y_max)`` cell indices of the rectangle; default: the bounding rectangle of the
        cells with incidents.

    Returns
    -------
    GridPanel
        The periods are those with at least one incident in ``t`` (a period without any is unknown, not 0).

    Notes
    -----
    One aggregation runs in the engine (incidents without coordinates form the NULL cell, counted in
    ``rows_without_coordinates``); densifying is vectorised numpy. Cells: square, on the Lambert cylindrical
    equal-area projection of :mod:`crimelens.geo` (Snyder 1987, §10).
    """
    _check_cell(cell_m)
    _check_period(period, optional=True)
    if origin is None:
        origin = data_origin(t)
    frame = run(_panel_expr, t, **origin.expr_constants(), cell_m=float(cell_m), period=period)
    located = frame["cell_x"].notna() & frame["cell_y"].notna()
    without = int(frame.loc[~located, "incidents"].sum())
    rows = frame.loc[located]
    if rows.empty:
        raise DataError("grid: no incident has coordinates (latitude and longitude), so there is nothing to grid")
    return GridPanel.from_frame(
        rows,
        origin=origin,
        cell_m=cell_m,
        period=period,
        extent=extent,
        rows_total=int(frame["incidents"].sum()),
        rows_without_coordinates=without,
    )


def source_origin(
    unfiltered: Any, *, con: duckdb.DuckDBPyConnection | None = None, source: str | None = None
) -> GridOrigin:
    """The grid origin of an incident source: the one pinned in the warehouse, else that of its whole extent.

    Parameters
    ----------
    unfiltered : ibis.Table
        The source's incidents before any time or offence filter (the fallback's extent is taken from it).
    con : duckdb.DuckDBPyConnection, optional
        The warehouse; None when reading Parquet without one.
    source : str, optional
        The incident source whose pinned origin to read (:func:`crimelens.warehouse.grid.grid_origin`).

    Returns
    -------
    GridOrigin
        Pass it to :func:`grid_panel`, :func:`~crimelens.analysis.incidents.aggregate.grid_counts` and the
        grid analyses of :mod:`crimelens.analysis.incidents.scope`: the same place then has the same cell id
        with or without a date or offence filter.
    """
    if con is not None and source is not None:
        from crimelens.warehouse.grid import grid_origin

        pinned = grid_origin(con, source)
        if pinned is not None:
            return pinned
    return data_origin(unfiltered)
