"""The local equal-area projection behind crimelens' square grids.

Grids are laid in metres, never in degrees: a degree of longitude is 111 km at the equator and 80 km in
Chicago, so a "0.001° grid" has cells of different sizes in different cities and non-square cells everywhere.

We use the Lambert cylindrical equal-area projection on the authalic sphere, with its standard parallel at the
data's centre latitude φ0 (Snyder, *Map Projections — A Working Manual*, USGS Professional Paper 1395, 1987,
§10, eqs. 10-1 and 10-2 with the normal aspect scaled by k0 = cos φ0)::

    x = R · cos φ0 · (λ − λ0)          y = R · sin φ / cos φ0

with R = 6,371,007.181 m, the radius of the sphere with the same surface area as the GRS80/WGS84 ellipsoid
(Snyder eq. 3-13; the value PROJ uses for ``+R_A``). The projection is equal-area everywhere, so every grid
cell covers exactly ``cell_m²`` of the sphere; it is true to scale (cells are square) along φ0, and the
east–west / north–south scale factors drift apart as cos φ / cos φ0 away from it (0.2 % at ±0.15° — a city —
and 4 % at ±2.5°). This is the same formula as PROJ's ``+proj=cea +lat_ts=φ0 +lon_0=λ0 +R=6371007.181``.

The same formulas are written twice: once over numpy arrays (:func:`forward`, :func:`inverse`) and once over
Ibis column expressions (:func:`forward_expr`) so that grid binning runs inside DuckDB or Spark.

Grid geometry lives here too, once: a :class:`GridOrigin` anchors square cells of ``cell_m`` metres in that
plane (:meth:`GridOrigin.cell_of` and :meth:`GridOrigin.cell_of_expr` bin points, :meth:`GridOrigin.cell_centres`
places cells back on the map) and :func:`origin_for_extent` gives the origin of an extent. Each incident source
keeps one origin (:mod:`crimelens.warehouse.grid`), so its cells mean the same place in every analysis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crimelens.errors import DataError

__all__ = [
    "AUTHALIC_RADIUS_M",
    "GridOrigin",
    "cell_index_expr",
    "forward",
    "forward_expr",
    "inverse",
    "origin_for_extent",
    "pairs_within",
]

#: Radius (m) of the sphere with the WGS84 ellipsoid's surface area (Snyder 1987, eq. 3-13).
AUTHALIC_RADIUS_M = 6_371_007.181

_DEG = math.pi / 180.0
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class GridOrigin:
    """Where a grid is anchored: projection centre (``lon0``, ``lat0``, degrees) and grid origin (``x0``, ``y0``, m).

    Cell ``(i, j)`` of size ``c`` covers ``x0 + i·c ≤ x < x0 + (i+1)·c`` and likewise in y. Keep one origin per
    source (record it beside results) so that cells mean the same place from one run to the next.
    """

    lon0: float
    lat0: float
    x0: float = 0.0
    y0: float = 0.0

    def __post_init__(self) -> None:
        if not (-180.0 <= self.lon0 <= 180.0) or not math.isfinite(self.lon0):
            raise DataError(f"grid origin lon0: expected a longitude between -180 and 180, got {self.lon0!r}")
        if not (-80.0 <= self.lat0 <= 80.0) or not math.isfinite(self.lat0):
            raise DataError(
                f"grid origin lat0: expected a latitude between -80 and 80 (the projection degenerates at the "
                f"poles), got {self.lat0!r}"
            )
        if not (math.isfinite(self.x0) and math.isfinite(self.y0)):
            raise DataError(f"grid origin x0, y0: expected finite metres, got {self.x0!r}, {self.y0!r}")

    def to_dict(self) -> dict[str, float]:
        return {"lon0": self.lon0, "lat0": self.lat0, "x0": self.x0, "y0": self.y0}

    def cell_centres(
        self, cell_x: Any, cell_y: Any, cell_m: float
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Centres of grid cells (integer indices) as (x_m, y_m, lon, lat)."""
        x = self.x0 + (np.asarray(cell_x, dtype=np.float64) + 0.5) * float(cell_m)
        y = self.y0 + (np.asarray(cell_y, dtype=np.float64) + 0.5) * float(cell_m)
        lon, lat = inverse(x, y, self.lon0, self.lat0)
        return x, y, lon, lat

    def cell_of(self, x: Any, y: Any, cell_m: float) -> tuple[IntArray, IntArray]:
        """Indices (cell_x, cell_y) of the cells holding projected points ``x``, ``y`` (metres, this plane).

        cell_x = ⌊(x − x0) / cell_m⌋, cell_y = ⌊(y − y0) / cell_m⌋: a point on a cell's west or south edge is in
        that cell. The same arithmetic as :meth:`cell_of_expr`, over numpy arrays.
        """
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.float64)
        return (
            np.floor((xs - self.x0) / float(cell_m)).astype(np.int64),
            np.floor((ys - self.y0) / float(cell_m)).astype(np.int64),
        )

    def cell_of_expr(self, lon: Any, lat: Any, cell_m: float) -> tuple[Any, Any]:
        """:meth:`cell_of` of WGS84 points given as Ibis column expressions (projected in the engine).

        Rows without coordinates get NULL indices.
        """
        return cell_index_expr(lon, lat, **self.expr_constants(), cell_m=float(cell_m))

    def expr_constants(self) -> dict[str, float]:
        """The numbers :func:`cell_index_expr` needs for this origin: ``lon0``, the x and y scales ``kx`` =
        R·cos φ0 and ``ky`` = R / cos φ0, and ``x0``, ``y0``."""
        k0 = math.cos(self.lat0 * _DEG)
        return {
            "lon0": self.lon0,
            "kx": AUTHALIC_RADIUS_M * k0,
            "ky": AUTHALIC_RADIUS_M / k0,
            "x0": self.x0,
            "y0": self.y0,
        }


def cell_index_expr(
    lon: Any, lat: Any, *, lon0: Any, kx: Any, ky: Any, x0: Any, y0: Any, cell_m: Any
) -> tuple[Any, Any]:
    """Grid cell indices of WGS84 points (Ibis column expressions), from :meth:`GridOrigin.expr_constants`.

    The constants may be numbers or Ibis scalar expressions (the placeholders of SQL compiled ahead of time,
    :mod:`crimelens.analysis.incidents.compiled`); the arithmetic is :func:`forward_expr`'s, then
    ⌊(x − x0) / cell_m⌋ as in :meth:`GridOrigin.cell_of`.
    """
    x, y = _forward_scaled(lon, lat, lon0, kx, ky)
    return ((x - x0) / cell_m).floor().cast("int64"), ((y - y0) / cell_m).floor().cast("int64")


def forward(lon: Any, lat: Any, lon0: float, lat0: float) -> tuple[FloatArray, FloatArray]:
    """Project WGS84 degrees to metres (x east, y north) on the local equal-area projection."""
    k0 = math.cos(lat0 * _DEG)
    lam = np.asarray(lon, dtype=np.float64)
    phi = np.asarray(lat, dtype=np.float64)
    x = ((lam - lon0) * _DEG) * (AUTHALIC_RADIUS_M * k0)
    y = np.sin(phi * _DEG) * (AUTHALIC_RADIUS_M / k0)
    return x, y


def inverse(x: Any, y: Any, lon0: float, lat0: float) -> tuple[FloatArray, FloatArray]:
    """Back-project metres to WGS84 degrees (the inverse of :func:`forward`)."""
    k0 = math.cos(lat0 * _DEG)
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    lon = lon0 + xs / (AUTHALIC_RADIUS_M * k0) / _DEG
    lat = np.arcsin(np.clip(ys * k0 / AUTHALIC_RADIUS_M, -1.0, 1.0)) / _DEG
    return lon, lat


def forward_expr(lon: Any, lat: Any, lon0: float, lat0: float) -> tuple[Any, Any]:
    """:func:`forward` over Ibis numeric column expressions (same arithmetic, evaluated by the engine)."""
    k0 = math.cos(lat0 * _DEG)
    return _forward_scaled(lon, lat, lon0, AUTHALIC_RADIUS_M * k0, AUTHALIC_RADIUS_M / k0)


def _forward_scaled(lon: Any, lat: Any, lon0: Any, kx: Any, ky: Any) -> tuple[Any, Any]:
    return ((lon - lon0) * _DEG) * kx, (lat * _DEG).sin() * ky


def origin_for_extent(
    min_lon: float, max_lon: float, min_lat: float, max_lat: float, *, snap_m: float = 1000.0
) -> GridOrigin:
    """A stable origin for data within the given extent.

    The projection centre is the extent's midpoint rounded to 0.01° (so adding a few incidents does not move
    it); the grid origin is the projected south-west corner rounded down to a multiple of ``snap_m`` metres, so
    cell indices over the data are non-negative.
    """
    lon0 = round((min_lon + max_lon) / 2.0, 2)
    lat0 = round((min_lat + max_lat) / 2.0, 2)
    x, y = forward(np.array([min_lon]), np.array([min_lat]), lon0, lat0)
    x0 = math.floor(float(x[0]) / snap_m) * snap_m
    y0 = math.floor(float(y[0]) / snap_m) * snap_m
    return GridOrigin(lon0=lon0, lat0=lat0, x0=x0, y0=y0)


#: Candidate pairs handled at once by :func:`pairs_within` (a few MB of temporaries).
_CANDIDATES_PER_RUN = 1 << 18

#: Cell offsets that visit each pair of neighbouring cells once: the cell itself and four of its eight neighbours.
_HALF_NEIGHBOURHOOD = ((0, 0), (0, 1), (1, -1), (1, 0), (1, 1))


def _close_pairs(
    a: IntArray,
    b: IntArray,
    sizes: IntArray,
    starts: IntArray,
    counts: IntArray,
    order: IntArray,
    xs: FloatArray,
    ys: FloatArray,
    r: float,
    same: bool,
) -> np.ndarray:
    """The pairs within ``r`` among the candidates of bucket pairs (a, b) (:func:`pairs_within`'s inner step)."""
    total = int(sizes.sum())
    nb = counts[b]
    # candidate k of bucket pair g: positions (in bucket order) starts[a] + k // nb and starts[b] + k % nb;
    # 32-bit while they fit (half the memory traffic of the passes over every candidate)
    idx = np.int32 if max(total, len(order)) < np.iinfo(np.int32).max else np.int64
    group = np.repeat(np.arange(a.size, dtype=idx), sizes)
    within = np.arange(total, dtype=idx) - np.repeat((np.cumsum(sizes) - sizes).astype(idx), sizes)
    step, rest = np.divmod(within, nb.astype(idx)[group])
    pi = starts.astype(idx)[a][group]
    pi += step
    pj = starts.astype(idx)[b][group]
    pj += rest
    if same:  # a bucket with itself: each pair once
        keep = order[pi] < order[pj]
        pi, pj = pi[keep], pj[keep]
    ddx, ddy = xs[pi] - xs[pj], ys[pi] - ys[pj]
    close = ddx * ddx + ddy * ddy <= r * r
    i, j = order[pi[close]], order[pj[close]]
    return np.column_stack([np.minimum(i, j), np.maximum(i, j)])


def pairs_within(xy: npt.ArrayLike, r: float) -> np.ndarray:
    """Every pair (i, j), i < j, of points at most ``r`` apart: an (n_pairs, 2) array of row numbers.

    The same pairs as ``scipy.spatial.cKDTree(xy).query_pairs(r, output_type="ndarray")`` (in another order),
    found on a grid of ``r``-metre buckets instead of a tree, with numpy only (``scipy.spatial`` costs a quarter
    of a second to import, more than the search itself on a city's incidents): points are sorted by bucket, and
    each bucket is matched with itself and four of its eight neighbours, so that every candidate pair is
    generated once; candidates farther apart than ``r`` are dropped. Memory is about three times the number of
    pairs found (the buckets' corners hold candidates that are not within ``r``).
    """
    pts = np.asarray(xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise DataError(f"xy: expected an (n, 2) array of projected metres, got shape {pts.shape}")
    if not (math.isfinite(r) and r > 0):
        raise DataError(f"r: expected a positive distance in metres, got {r!r}")
    empty = np.empty((0, 2), dtype=np.intp)
    if len(pts) < 2:
        return empty
    cells = np.floor((pts - pts.min(axis=0)) / r).astype(np.int64)
    width = int(cells[:, 1].max()) + 3  # room for the column offsets −1..+1 without wrapping into the next row
    key = cells[:, 0] * width + (cells[:, 1] + 1)
    order = np.argsort(key, kind="stable")
    xs, ys = pts[order, 0], pts[order, 1]  # coordinates in bucket order: candidates read them close together
    keys, starts, counts = np.unique(key[order], return_index=True, return_counts=True)
    found = []
    for dx, dy in _HALF_NEIGHBOURHOOD:
        target = keys + dx * width + dy
        at = np.searchsorted(keys, target)
        hit = at < keys.size
        hit[hit] = keys[at[hit]] == target[hit]
        a, b = np.flatnonzero(hit), at[hit]
        sizes = counts[a] * counts[b]
        # bucket pairs in runs of about _CANDIDATES_PER_RUN candidates: the temporaries stay in cache and are reused
        # instead of growing with the data (a city's 20,000 incidents make millions of candidates)
        ends = np.searchsorted(np.cumsum(sizes), np.arange(_CANDIDATES_PER_RUN, int(sizes.sum()), _CANDIDATES_PER_RUN))
        for run in np.split(np.arange(a.size), np.unique(ends)):
            if run.size:
                found.append(_close_pairs(a[run], b[run], sizes[run], starts, counts, order, xs, ys, r, dx == dy == 0))
    found = [f for f in found if len(f)]
    return np.concatenate(found).astype(np.intp, copy=False) if found else empty
