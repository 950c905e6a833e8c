"""Where incidents are: concentration over places and kernel density surfaces.

Gi* hot spots and persistent hot cells are in :mod:`crimelens.analysis.incidents.hotspots`. The density of a
source's incidents is laid on its pinned grid (:func:`grid_density` of a
:class:`~crimelens.analysis.incidents.panel.GridPanel`), so its cells are the cells of every other grid analysis.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crimelens.analysis.result import ChartSpec, Result
from crimelens.errors import DataError, SchemaError, SparseDataWarning

if TYPE_CHECKING:
    from crimelens.analysis.incidents.panel import GridPanel

__all__ = [
    "ConcentrationResult",
    "KdeResult",
    "concentration_curve",
    "grid_density",
    "kernel_density",
    "scott_bandwidth",
]

#: Largest density grid computed (cells); beyond it the analyst must choose a coarser cell or an extent.
MAX_KDE_CELLS = 16_000_000


def _numeric(
    frame: pd.DataFrame, col: str, what: str, *, whole: bool = False, minimum: float | None = None
) -> np.ndarray:
    values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(values)
    if whole:
        bad |= values != np.round(values)
    if minimum is not None:
        bad |= values < minimum
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        allowed = "a whole number" if whole else "a finite number"
        if minimum is not None:
            allowed += f" ≥ {minimum:g}"
        raise DataError(f"{what}: column {col} row {row}: expected {allowed}, got {str(frame[col].iloc[row])!r}")
    return values


# -- concentration -------------------------------------------------------------------------------------
#: Most points a concentration curve is drawn through.
_CURVE_POINTS = 401


@dataclass(frozen=True)
class ConcentrationResult(Result):
    """The concentration curve: share of incidents held by the busiest share of units.

    ``table``: ``unit_share, incident_share`` from (0, 0) to (1, 1), one point per unit with incidents
    (busiest first) plus the end points. Summary fields as documented in :func:`concentration_curve`.
    """

    units_total: int = 0
    incidents_total: int = 0
    units_for_half: float = math.nan
    top_1pct: float = math.nan
    top_5pct: float = math.nan
    top_10pct: float = math.nan
    gini: float = math.nan

    def chart(self) -> ChartSpec:
        """The curve, through at most 401 of its points (evenly spaced in rank, both ends kept): a page draws
        12,000 points no better than 400, and the file stays small. The full curve is the result's table."""
        n = len(self.table)
        data = self.table
        thinned = ""
        if n > _CURVE_POINTS:
            keep = np.unique(np.linspace(0, n - 1, _CURVE_POINTS).round().astype(int))
            data = self.table.iloc[keep].reset_index(drop=True)
            thinned = f" Drawn through {len(data):,} of the curve's {n:,} points."
        return ChartSpec(
            kind="line",
            data=data,
            x="unit_share",
            y="incident_share",
            title=self.title,
            x_label="share of places (busiest first)",
            y_label="share of incidents",
            note=f"{self.units_for_half:.1%} of places hold half the incidents; Gini {self.gini:.2f}." + thinned,
        )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["summary"] = {
            "units_total": self.units_total,
            "incidents_total": self.incidents_total,
            "units_for_half": self.units_for_half,
            "top_1pct": self.top_1pct,
            "top_5pct": self.top_5pct,
            "top_10pct": self.top_10pct,
            "gini": self.gini,
        }
        return out


def _unit_totals(counts: pd.DataFrame) -> tuple[np.ndarray, str, int | None]:
    """(incidents per unit present, what a unit is, cells of the bounding rectangle when units are cells)."""
    if not isinstance(counts, pd.DataFrame) or "incidents" not in counts.columns:
        got = ", ".join(map(str, counts.columns)) if isinstance(counts, pd.DataFrame) else type(counts).__name__
        raise SchemaError(f"counts: expected columns unit (or area, or cell_x and cell_y) and incidents, got {got}")
    if "unit" in counts.columns:
        keys, kind = ["unit"], "units"
    elif {"cell_x", "cell_y"} <= set(counts.columns):
        keys, kind = ["cell_x", "cell_y"], "grid cells"
    elif "area" in counts.columns:
        keys, kind = ["area"], "areas"
    else:
        raise SchemaError(
            "counts: expected a unit column (unit, area, or cell_x and cell_y) beside incidents, got "
            + ", ".join(map(str, counts.columns))
        )
    values = _numeric(counts, "incidents", "counts", whole=True, minimum=0)
    per_unit = counts[keys].assign(incidents=values).groupby(keys, sort=False, dropna=False)["incidents"].sum()
    rect = None
    if kind == "grid cells" and len(counts):
        cx = _numeric(counts, "cell_x", "counts", whole=True)
        cy = _numeric(counts, "cell_y", "counts", whole=True)
        rect = int((cx.max() - cx.min() + 1) * (cy.max() - cy.min() + 1))
    return per_unit.to_numpy(), kind, rect


def concentration_curve(counts: pd.DataFrame, *, units_total: int | None = None) -> ConcentrationResult:
    """The "law of crime concentration" curve over places, places with no incidents included.

    ``counts``: ``incidents`` per unit, the unit named by a column ``unit``, or ``cell_x, cell_y`` (grid
    cells), or ``area`` (rows of the same unit are summed, e.g. over periods or offences).
    ``units_total`` is the number of places in the study area, those without incidents included; when
    None it is, for grid cells, the cells of the bounding rectangle of the cells given, and otherwise the
    units present in ``counts`` (both said in ``notes``).

    Units are sorted busiest first; the curve gives, after the k busiest of N units, unit_share = k / N and
    incident_share = their incidents / all incidents. Summaries: ``units_for_half`` (the smallest share of
    units holding at least 50% of incidents: Weisburd 2015, "The law of crime concentration and the
    criminology of place", Criminology 53, reports it at 2–6% of street segments), ``top_1pct``,
    ``top_5pct``, ``top_10pct`` (share of incidents in the ⌈p · N⌉ busiest units) and the Gini coefficient
    G = 2 Σᵢ i · y₍ᵢ₎ / (N Σ y) − (N + 1) / N with y₍ᵢ₎ ascending (0 = even, → 1 = all in one unit).
    With fewer incidents than units much of the concentration is arithmetic, not place (Bernasco &
    Steenbeek 2017, "More places than crimes", J Quant Criminol 33): a :class:`SparseDataWarning` says so.
    """
    per_all, kind, rect = _unit_totals(counts)
    per_unit = per_all[per_all > 0]
    notes: list[str] = []
    if units_total is None:
        if rect is not None:
            units_total = rect
            notes.append(
                f"units_total assumed {units_total:,}: every cell of the bounding rectangle of the cells given; "
                "cells outside the city (water, parks, airports) raise the concentration"
            )
        else:
            units_total = max(1, len(per_all))
            notes.append(
                f"units_total assumed {units_total:,}: the {kind} present in the counts; {kind} with no row "
                "(no incidents) are missed and the concentration is understated"
            )
    elif isinstance(units_total, bool) or not isinstance(units_total, int | np.integer) or units_total < 1:
        raise DataError(f"units_total: expected a whole number ≥ 1 (the number of places), got {units_total!r}")
    else:
        notes.append(f"{units_total:,} {kind} in the study area (as given)")
    n = int(units_total)
    if len(per_unit) > n:
        raise DataError(
            f"units_total: expected at least the {len(per_unit):,} {kind} with incidents, got {units_total!r}"
        )
    total = float(per_unit.sum())
    if total == 0:
        raise DataError("counts: expected at least one incident to measure concentration, got 0 incidents")
    desc = np.sort(per_unit)[::-1]
    cum = np.cumsum(desc) / total
    k = np.arange(1, len(desc) + 1)
    table = pd.DataFrame(
        {
            "unit_share": np.concatenate([[0.0], k / n, [1.0]]),
            "incident_share": np.concatenate([[0.0], cum, [1.0]]),
        }
    )
    table = table.drop_duplicates().reset_index(drop=True)

    def top(p: float) -> float:
        m = max(1, math.ceil(p * n - 1e-9))
        return float(desc[:m].sum() / total)

    half = int(np.searchsorted(cum, 0.5 - 1e-12, side="left")) + 1
    asc = np.concatenate([np.zeros(n - len(desc)), desc[::-1]])
    gini = float(2 * np.sum(np.arange(1, n + 1) * asc) / (n * total) - (n + 1) / n)
    zero = n - len(desc)
    if zero:
        notes.append(f"{zero:,} of {n:,} {kind} ({zero / n:.1%}) had no incidents")
    if total < n:
        warnings.warn(
            f"counts: {total:.0f} incidents over {n:,} {kind}: with fewer incidents than places at least "
            f"{1 - total / n:.0%} of places must be empty, so the curve overstates how concentrated crime is",
            SparseDataWarning,
            stacklevel=2,
        )
    return ConcentrationResult(
        title=f"Concentration: {half / n:.1%} of {kind} hold half the incidents",
        table=table,
        params={"units_total": n, "unit_kind": kind, "incidents_total": int(total)},
        notes=tuple(notes),
        units_total=n,
        incidents_total=int(total),
        units_for_half=half / n,
        top_1pct=top(0.01),
        top_5pct=top(0.05),
        top_10pct=top(0.10),
        gini=gini,
    )


# -- kernel density ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KdeResult(Result):
    """A kernel density surface: ``table`` has one row per grid cell (see :func:`kernel_density`)."""

    bandwidth_m: float = math.nan
    cell_m: float = math.nan
    extent: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    shape: tuple[int, int] = (0, 0)


def scott_bandwidth(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Scott's rule for a 2-D isotropic Gaussian kernel: h = σ̂ · n^(−1/6).

    σ̂ is the mean over the two axes of Silverman's robust spread min(sd, IQR / 1.349) (Scott 1992,
    *Multivariate Density Estimation*, §6.3; Silverman 1986, *Density Estimation*, eq. 3.31). For a city's
    incidents it gives a smooth city-wide surface (several hundred metres); pass ``bandwidth_m`` for
    street-level detail. ``weights``: points stand for that many incidents each (binned counts: cell centres
    weighted by their incidents); n is then their sum, sd the weighted sd (n − 1 in the denominator) and the
    quartiles the weighted ones (inverted CDF).
    """
    n: float
    if weights is None:
        n = float(x.size)
        spreads = []
        for v in (x, y):
            sd = float(np.std(v, ddof=1)) if n > 1 else 0.0
            q75, q25 = np.percentile(v, [75, 25])
            iqr = float(q75 - q25) / 1.349
            spreads.append(min(sd, iqr) if iqr > 0 else sd)
    else:
        w = np.asarray(weights, dtype=np.float64)
        n = float(w.sum())
        spreads = []
        for v in (x, y):
            mean = float(np.sum(w * v) / n)
            sd = math.sqrt(float(np.sum(w * (v - mean) ** 2)) / (n - 1)) if n > 1 else 0.0
            q75, q25 = np.percentile(v, [75, 25], weights=w, method="inverted_cdf")
            iqr = float(q75 - q25) / 1.349
            spreads.append(min(sd, iqr) if iqr > 0 else sd)
    factor: float = math.pow(n, -1 / 6)
    return float(np.mean(spreads)) * factor


def kernel_density(
    points: pd.DataFrame,
    *,
    bandwidth_m: float | None = None,
    cell_m: float = 150,
    extent: tuple[float, float, float, float] | None = None,
) -> KdeResult:
    """Gaussian kernel density of incidents on a regular grid, in incidents per km².

    ``points``: columns ``x_m, y_m`` (projected metres). The surface is
    f(c) = Σⱼ φ_h(c − pⱼ) · 10⁶ incidents per km² at each cell centre c, with φ_h the isotropic bivariate
    normal density of standard deviation ``bandwidth_m`` (default: :func:`scott_bandwidth`). For speed the
    points are first counted into the ``cell_m`` grid and the counts smoothed with
    ``scipy.ndimage.gaussian_filter`` (σ = h / cell_m, truncated at 4σ, zero outside the extent): each point
    moves to its cell centre, an error of at most cell_m / 2 that is small when h ≫ cell_m (Wand & Jones
    1995, *Kernel Smoothing*, §4.6 "binned kernel density estimation").

    ``extent`` = (x_min, y_min, x_max, y_max) metres (default: the points' bounding box padded by 2h);
    points outside it are dropped and counted in ``notes``. ``table``: ``cell_x, cell_y`` (cell indices
    from the extent's lower-left corner), ``x_m, y_m`` (cell centres), ``density`` (incidents per km²) and
    ``relative`` (density / its maximum).
    """
    from scipy.ndimage import gaussian_filter

    if not isinstance(points, pd.DataFrame) or not {"x_m", "y_m"} <= set(points.columns):
        got = ", ".join(map(str, points.columns)) if isinstance(points, pd.DataFrame) else type(points).__name__
        raise SchemaError(f"points: expected columns x_m and y_m (projected metres), got {got}")
    if isinstance(cell_m, bool) or not isinstance(cell_m, float | int) or not cell_m > 0:
        raise DataError(f"cell_m: expected a cell size in metres > 0 (e.g. 150), got {cell_m!r}")
    x = _numeric(points, "x_m", "points")
    y = _numeric(points, "y_m", "points")
    if x.size < 2:
        raise DataError(f"points: expected at least 2 incidents to estimate a density, got {x.size}")
    h, rule = _bandwidth(bandwidth_m, x, y, None)
    if extent is None:
        ext = (float(x.min() - 2 * h), float(y.min() - 2 * h), float(x.max() + 2 * h), float(y.max() + 2 * h))
    else:
        if len(extent) != 4 or not extent[2] > extent[0] or not extent[3] > extent[1]:
            raise DataError(f"extent: expected (x_min, y_min, x_max, y_max) metres with max > min, got {extent!r}")
        ext = tuple(float(v) for v in extent)  # type: ignore[assignment]
    nx = max(1, math.ceil((ext[2] - ext[0]) / cell_m - 1e-9))
    ny = max(1, math.ceil((ext[3] - ext[1]) / cell_m - 1e-9))
    if nx * ny > MAX_KDE_CELLS:
        raise DataError(
            f"cell_m: expected a grid of at most {MAX_KDE_CELLS:,} cells, got {nx} × {ny} = {nx * ny:,} at "
            f"{cell_m:g} m; use larger cells or a smaller extent"
        )
    ix = np.floor((x - ext[0]) / cell_m).astype(np.int64)
    iy = np.floor((y - ext[1]) / cell_m).astype(np.int64)
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    notes = [f"bandwidth {h:,.0f} m ({rule}); Gaussian kernel on {cell_m:g} m cells, points binned to cells first"]
    if (~inside).any():
        notes.append(f"{int((~inside).sum()):,} of {x.size:,} incidents outside the extent were left out")
    binned = np.bincount(iy[inside] * nx + ix[inside], minlength=nx * ny).reshape(ny, nx).astype("float64")
    smooth = gaussian_filter(binned, sigma=h / cell_m, mode="constant", cval=0.0, truncate=4.0)
    density = smooth / (cell_m * cell_m) * 1e6
    if h < cell_m:
        notes.append(f"bandwidth {h:,.0f} m is below the cell size {cell_m:g} m: the surface is barely smoothed")
    xs, ys = np.meshgrid(np.arange(nx), np.arange(ny))
    peak = float(density.max())
    table = pd.DataFrame(
        {
            "cell_x": xs.ravel(),
            "cell_y": ys.ravel(),
            "x_m": ext[0] + (xs.ravel() + 0.5) * cell_m,
            "y_m": ext[1] + (ys.ravel() + 0.5) * cell_m,
            "density": density.ravel(),
            "relative": density.ravel() / peak if peak > 0 else np.zeros(nx * ny),
        }
    )
    return KdeResult(
        title=f"Kernel density of incidents (bandwidth {h:,.0f} m, {cell_m:g} m cells)",
        table=table,
        params={
            "bandwidth_m": h,
            "bandwidth_rule": rule,
            "cell_m": float(cell_m),
            "extent": ext,
            "incidents": int(inside.sum()),
            "units": "incidents per km²",
        },
        notes=tuple(notes),
        bandwidth_m=h,
        cell_m=float(cell_m),
        extent=ext,
        shape=(ny, nx),
    )


def _bandwidth(bandwidth_m: float | None, x: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[float, str]:
    if bandwidth_m is None:
        h = scott_bandwidth(x, y, w)
        if not h > 0:
            raise DataError("points: every incident is at the same place; pass bandwidth_m to smooth them")
        return h, "Scott's rule" if w is None else "Scott's rule, on the binned counts"
    if isinstance(bandwidth_m, bool) or not isinstance(bandwidth_m, float | int) or not bandwidth_m > 0:
        raise DataError(f"bandwidth_m: expected a bandwidth in metres > 0 (e.g. 300), got {bandwidth_m!r}")
    return float(bandwidth_m), "given"


def grid_density(panel: GridPanel, *, bandwidth_m: float | None = None) -> KdeResult:
    """Gaussian kernel density of a panel's incidents (all periods) on the panel's own grid, per km².

    Parameters
    ----------
    panel : GridPanel
        Counts on the grid pinned for the source (:func:`crimelens.analysis.incidents.panel.grid_panel`); the
        surface's cells are the panel's cells, same ids and centres, so it lines up with Gi* and persistent
        hot spots and with the surfaces of other windows of the same source.
    bandwidth_m : float, optional
        Standard deviation of the isotropic kernel, metres; default: :func:`scott_bandwidth` of the cell
        centres weighted by their incidents.

    Returns
    -------
    KdeResult
        ``table``: one row per cell of the panel's rectangle padded by ⌈2h / cell_m⌉ cells on every side:
        ``cell_x, cell_y`` (the grid's cell ids), ``x_m, y_m, lat, lon`` (cell centres), ``density``
        (incidents per km²) and ``relative`` (density / its maximum). ``extent``: that rectangle in metres.

    Notes
    -----
    The surface is the binned kernel estimate of :func:`kernel_density` with the engine's cell counts as the
    bins: f(c) = Σ_cells n_cell · φ_h(c − centre) · 10⁶, ``scipy.ndimage.gaussian_filter`` with σ = h / cell_m,
    truncated at 4σ, zero outside (Wand & Jones 1995, *Kernel Smoothing*, §4.6). Each incident sits at its
    cell centre: an error of at most cell_m / 2, small when h ≫ cell_m.

    References
    ----------
    Scott (1992), *Multivariate Density Estimation*; Wand & Jones (1995), *Kernel Smoothing*.
    """
    from scipy.ndimage import gaussian_filter

    totals = panel.totals().astype(np.float64)
    total = int(totals.sum())
    if total < 2:
        raise DataError(f"points: expected at least 2 incidents to estimate a density, got {total}")
    cell_m = panel.cell_m
    x_all, y_all, _, _ = panel.centres()
    busy = totals > 0
    h, rule = _bandwidth(bandwidth_m, x_all[busy], y_all[busy], totals[busy])
    pad = math.ceil(2 * h / cell_m - 1e-9)
    gx0, gy0, gx1, gy1 = panel.extent
    ex0, ey0, ex1, ey1 = gx0 - pad, gy0 - pad, gx1 + pad, gy1 + pad
    nx, ny = ex1 - ex0 + 1, ey1 - ey0 + 1
    if nx * ny > MAX_KDE_CELLS:
        raise DataError(
            f"cell_m: expected a grid of at most {MAX_KDE_CELLS:,} cells, got {nx} × {ny} = {nx * ny:,} at "
            f"{cell_m:g} m; use larger cells or a smaller extent"
        )
    binned = np.zeros((ny, nx))
    binned[pad : pad + panel.ny, pad : pad + panel.nx] = panel.as_grid(totals)
    density = gaussian_filter(binned, sigma=h / cell_m, mode="constant", cval=0.0, truncate=4.0) / cell_m**2 * 1e6
    notes = [
        f"bandwidth {h:,.0f} m ({rule}); Gaussian kernel on the source's {cell_m:g} m grid cells, incidents "
        "counted per cell first"
    ]
    if h < cell_m:
        notes.append(f"bandwidth {h:,.0f} m is below the cell size {cell_m:g} m: the surface is barely smoothed")
    if panel.rows_without_coordinates:
        notes.append(f"{panel.rows_without_coordinates:,} incidents without coordinates are not in the surface")
    xs, ys = np.meshgrid(np.arange(ex0, ex1 + 1), np.arange(ey0, ey1 + 1))
    x, y, lon, lat = panel.origin.cell_centres(xs.ravel(), ys.ravel(), cell_m)
    peak = float(density.max())
    table = pd.DataFrame(
        {
            "cell_x": xs.ravel(), "cell_y": ys.ravel(), "x_m": x, "y_m": y, "lat": lat, "lon": lon,
            "density": density.ravel(), "relative": density.ravel() / peak if peak > 0 else np.zeros(nx * ny),
        }
    )  # fmt: skip
    o = panel.origin
    ext = (o.x0 + ex0 * cell_m, o.y0 + ey0 * cell_m, o.x0 + (ex1 + 1) * cell_m, o.y0 + (ey1 + 1) * cell_m)
    return KdeResult(
        title=f"Kernel density of incidents (bandwidth {h:,.0f} m, {cell_m:g} m cells)",
        table=table,
        params={
            "bandwidth_m": h,
            "bandwidth_rule": rule,
            "cell_m": cell_m,
            "extent": ext,
            "cell_extent": (ex0, ey0, ex1, ey1),
            "incidents": total,
            "units": "incidents per km²",
            **o.to_dict(),
        },
        notes=tuple(notes),
        bandwidth_m=h,
        cell_m=cell_m,
        extent=ext,
        shape=(ny, nx),
    )
