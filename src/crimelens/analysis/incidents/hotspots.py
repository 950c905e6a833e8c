"""Getis-Ord Gi* hot and cold spots on the cells of a study area, with FDR control, and persistent grid hotspots.

Gi* (Getis & Ord 1992, "The analysis of spatial association by use of distance statistics", Geographical
Analysis 24; Ord & Getis 1995, "Local spatial autocorrelation statistics: distributional issues and an
application", Geographical Analysis 27) compares the incidents in a cell and its neighbours with what the
whole study area would give a neighbourhood of that size. The study area is the data's footprint (by default
the cells with at least one incident), not the bounding rectangle: lake and land outside the city would add
zeros that lower the mean, shrink the neighbourhoods of shore cells and be tested themselves. Every study-area
cell is tested, so the p-values (by default by conditional randomisation, valid for skewed counts) are
corrected with the Benjamini–Hochberg false discovery rate (Benjamini & Hochberg 1995, JRSS B 57) before a
cell is called hot or cold.

Both take counts as a :class:`~crimelens.analysis.incidents.panel.GridPanel` (the grid pinned for the source,
cells × periods) or as a tidy frame.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from crimelens.analysis.incidents.panel import GridPanel, dense_counts
from crimelens.analysis.inference import benjamini_hochberg, normal_sf
from crimelens.analysis.result import Result
from crimelens.errors import DataError, SchemaError, SparseDataWarning

if TYPE_CHECKING:
    from scipy import sparse

__all__ = [
    "GiStarResult",
    "PersistentCellsResult",
    "getis_ord_gi_star",
    "grid_weights",
    "grow_study_area",
    "persistent_cells",
]

Neighbours = Literal["queen", "rook", "distance"]

_GI_COLUMNS = [
    "cell_x", "cell_y", "incidents", "neighbours", "gi_star", "z", "p_norm", "p_sim", "p_exact", "p_value", "q_value",
    "significant", "hotspot",
]  # fmt: skip


def _check_columns(frame: object, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{what}: expected a pandas DataFrame with columns {', '.join(columns)}, got {type(frame)}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{what}: missing column(s) {', '.join(missing)}; expected columns {', '.join(columns)}, "
            f"got {', '.join(map(str, frame.columns)) or 'none'}"
        )
    return frame


def _check_share(name: str, value: object, *, upper_open: bool = False) -> float:
    ok = isinstance(value, float | int) and not isinstance(value, bool) and 0 < value <= 1
    if not ok or (upper_open and value == 1):
        bound = "(0, 1)" if upper_open else "(0, 1]"
        raise DataError(f"{name}: expected a number in {bound}, e.g. 0.05, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _cell_counts(grid: pd.DataFrame, what: str) -> pd.DataFrame:
    """cell_x, cell_y (int64) and incidents (float64) summed per cell; invalid values raise DataError."""
    _check_columns(grid, ("cell_x", "cell_y", "incidents"), what)
    if grid.empty:
        raise DataError(f"{what}: expected at least one cell with incidents, got an empty frame")
    cols = {}
    for col in ("cell_x", "cell_y", "incidents"):
        values = pd.to_numeric(grid[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bad = ~np.isfinite(values) | (values != np.round(values)) | ((values < 0) if col == "incidents" else False)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{what}: column {col} row {row}: expected a whole number"
                f"{' ≥ 0' if col == 'incidents' else ''}, got {str(grid[col].iloc[row])!r}"
            )
        cols[col] = values
    out = pd.DataFrame(
        {
            "cell_x": cols["cell_x"].astype("int64"),
            "cell_y": cols["cell_y"].astype("int64"),
            "incidents": cols["incidents"],
        }
    )
    summed: pd.DataFrame = out.groupby(["cell_x", "cell_y"], as_index=False, sort=True)[["incidents"]].sum()
    return summed


def _offsets(neighbours: str, distance_m: float | None, cell_m: float | None) -> np.ndarray:
    """(dx, dy) offsets of a cell's neighbourhood, the cell itself (0, 0) included."""
    if neighbours == "queen":
        return np.array([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    if neighbours == "rook":
        return np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)])
    if neighbours != "distance":
        raise DataError(f"neighbours: expected 'queen', 'rook' or 'distance', got {neighbours!r}")
    if distance_m is None or not isinstance(distance_m, float | int) or isinstance(distance_m, bool) or distance_m < 0:
        raise DataError(f"distance_m: expected a distance in metres ≥ 0 with neighbours='distance', got {distance_m!r}")
    if cell_m is None or not isinstance(cell_m, float | int) or isinstance(cell_m, bool) or cell_m <= 0:
        raise DataError(
            "cell_m: expected the cell size in metres (> 0) with neighbours='distance' "
            f"(or x_m beside cell_x in the grid to infer it), got {cell_m!r}"
        )
    reach = math.floor(distance_m / cell_m + 1e-9)
    d = np.arange(-reach, reach + 1)
    dx, dy = (a.ravel() for a in np.meshgrid(d, d))
    keep = np.hypot(dx, dy) * cell_m <= distance_m * (1 + 1e-9)
    return np.column_stack([dx[keep], dy[keep]])


def grid_weights(
    nx: int,
    ny: int,
    *,
    neighbours: Neighbours = "queen",
    distance_m: float | None = None,
    cell_m: float | None = None,
) -> sparse.csr_matrix:
    """Binary Gi* weights (self included) of a full ``ny`` × ``nx`` grid as a sparse n × n matrix.

    Cell (x, y) is row ``y * nx + x`` (the order of ``libpysal.weights.lat2W(ny, nx)``). ``queen``: the 8
    surrounding cells; ``rook``: the 4 sharing an edge; ``distance``: every cell whose centre is within
    ``distance_m`` metres of the cell's centre (cells of ``cell_m`` metres). The diagonal is 1 (the "star").
    """
    from scipy import sparse

    offsets = _offsets(neighbours, distance_m, cell_m)
    gx, gy = np.meshgrid(np.arange(nx), np.arange(ny))
    xs, ys = gx.ravel(), gy.ravel()
    rows, cols = [], []
    for dx, dy in offsets:
        tx, ty = xs + dx, ys + dy
        ok = (tx >= 0) & (tx < nx) & (ty >= 0) & (ty < ny)
        rows.append(ys[ok] * nx + xs[ok])
        cols.append(ty[ok] * nx + tx[ok])
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sparse.csr_matrix((np.ones(r.size), (r, c)), shape=(nx * ny, nx * ny))


def _neighbourhood_sums(y: np.ndarray, nx: int, ny: int, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Σ_j w_ij y_j, W_i = Σ_j w_ij) for the binary weights :func:`grid_weights` builds, without building them.

    Cell (x, y) gathers the cells (x + dx, y + dy) of ``offsets`` inside the ``ny`` × ``nx`` rectangle: one
    shifted slice per offset. ``y`` holds whole counts, so these sums equal the sparse product's exactly,
    whatever the order of the additions.
    """
    grid = y.reshape(ny, nx)
    lag = np.zeros((ny, nx))
    card = np.zeros((ny, nx))
    for dx, dy in offsets:
        x0, x1 = max(0, -dx), min(nx, nx - dx)
        y0, y1 = max(0, -dy), min(ny, ny - dy)
        if x0 >= x1 or y0 >= y1:
            continue
        lag[y0:y1, x0:x1] += grid[y0 + dy : y1 + dy, x0 + dx : x1 + dx]
        card[y0:y1, x0:x1] += 1
    return lag.ravel(), card.ravel()


def grow_study_area(cells: np.ndarray, nx: int, ny: int) -> np.ndarray:
    """The cells flagged in ``cells`` (one flag per cell of an ``ny`` × ``nx`` rectangle, row-major from the
    south-west) and every cell touching one of them (queen): a footprint without holes between incidents."""
    flags = np.asarray(cells, dtype=bool)
    if flags.shape != (nx * ny,):
        raise DataError(f"cells: expected {nx * ny} flags (one per cell of the rectangle), got shape {flags.shape}")
    touching, _ = _neighbourhood_sums(flags.astype(np.float64), nx, ny, _offsets("queen", None, None))
    out: np.ndarray = touching > 0
    return out


def _gi_star_z(y: np.ndarray, lag: np.ndarray, card: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Gi*, z) of counts ``y`` with neighbourhood sums ``lag`` and sizes ``card`` (binary weights, self included).

    Ord & Getis (1995) eq. 9 with binary weights: E[Gi*] = W_i / n and
    Var[Gi*] = W_i (n − W_i) / (n − 1) / n² · s² / ȳ², where W_i counts the cell and its neighbours and
    s² = Σy²/n − ȳ² (the population variance). The arithmetic follows ``esda.G_Local(star=True,
    transform='B')`` term by term so the two agree to rounding.
    """
    n = y.size
    total = y.sum()
    g = lag / total
    mean = total / n
    variance = (y**2).sum() / n - mean**2
    expected = card / n
    with np.errstate(divide="ignore", invalid="ignore"):  # one cell (n = 1) or no variance: z is NaN
        var_g: np.ndarray = card * (n - card)
        var_g = var_g / (n - 1)
        var_g = var_g * (1 / n**2)
        var_g = var_g * (variance / mean**2)
        z = (g - expected) / np.sqrt(var_g)
    z[~np.isfinite(z)] = np.nan
    return g, z


def _draw_without_replacement(rng: np.random.Generator, pool: int, k: int, draws: int) -> np.ndarray:
    """``draws`` rows of ``k`` distinct indices in [0, pool), each row a uniform sample without replacement."""
    if k == 0:
        return np.zeros((draws, 0), dtype=np.int64)
    if k * k <= pool:
        out = rng.integers(0, pool, size=(draws, k))
        while True:  # reject rows with a repeated index: what is left is uniform over distinct tuples
            s = np.sort(out, axis=1)
            bad = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
            if bad.size == 0:
                return out
            out[bad] = rng.integers(0, pool, size=(bad.size, k))
    return np.stack([rng.choice(pool, size=k, replace=False) for _ in range(draws)])


def _permutation_p(y: np.ndarray, lag: np.ndarray, card: np.ndarray, permutations: int, seed: int) -> np.ndarray:
    """Two-sided pseudo p-values of each cell's neighbourhood sum by conditional randomisation.

    For cell i the value y_i stays put and its W_i − 1 neighbours are a random sample, without
    replacement, of the other n − 1 values (Anselin 1995, "Local indicators of spatial association —
    LISA", Geographical Analysis 27). The null distribution depends on i only through (y_i, W_i), so
    it is simulated once per distinct pair; as in esda's ``crand`` one matrix of random draws is shared by
    all cells (each cell's p-value is exact Monte Carlo; cells are not independent of one another).
    p = min(1, 2 · min(#(sim ≥ obs) + 1, #(sim ≤ obs) + 1) / (permutations + 1)), counting ties on both
    sides (esda's folded p_sim counts ties on one side only, which calls a cell of zeros among zeros
    significant).
    """
    rng = np.random.default_rng(seed)
    n = y.size
    kmax = int(card.max()) - 1
    draws = _draw_without_replacement(rng, n - 1, kmax, permutations)
    order = np.sort(y)
    p = np.full(n, np.nan)
    keys = pd.DataFrame({"y": y, "k": card.astype(np.int64)})
    groups: dict[tuple[float, int], np.ndarray] = keys.groupby(["y", "k"], sort=False).indices  # type: ignore[assignment]
    for (value, k), idx in groups.items():
        pos = int(np.searchsorted(order, float(value), side="left"))
        chosen: np.ndarray = draws[:, : int(k) - 1]
        picked = np.where(chosen < pos, chosen, chosen + 1)  # skip one copy of y_i in the pool
        sims = np.sort(order[picked].sum(axis=1) + value)
        obs = lag[idx]
        above = permutations - np.searchsorted(sims, obs, side="left")
        below = np.searchsorted(sims, obs, side="right")
        p[idx] = np.minimum(1.0, 2 * (np.minimum(above, below) + 1) / (permutations + 1))
    return p


def _exact_p(y: np.ndarray, lag: np.ndarray, card: np.ndarray) -> np.ndarray:
    """Two-sided randomisation p-values of the neighbourhood sums, computed exactly (no Monte Carlo draws).

    The null hypothesis is the one Ord & Getis' (1995) moments, and so the normal z, are derived under: the
    counts are placed at random over the study area, so the W_i counts of a neighbourhood (the cell's own
    included) are a random sample of the n counts. Drawn with replacement, their sum S has the counts'
    empirical distribution convolved W_i times (by FFT; rounding residue clipped to 0, so tails are exact to
    about 1e-13); drawing without replacement differs by O(W_i / n). p = min(1, 2 · min(P(S ≥ obs),
    P(S ≤ obs))), ties counted on both sides. It has the normal z's mean and variance (up to the n / (n − 1)
    of sampling without replacement) but the skewed shape of the counts, and no floor of 2 / (permutations + 1).
    The Monte Carlo ``p_sim`` (:func:`_permutation_p`) instead keeps each cell's own count fixed (conditional
    randomisation, as esda), a different question: are the neighbours unusual given the cell.
    """

    def fftconvolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # numpy's FFT: scipy.signal costs 0.5 s to import
        size = a.size + b.size - 1
        nfft = 1 << (size - 1).bit_length()
        return np.fft.irfft(np.fft.rfft(a, nfft) * np.fft.rfft(b, nfft), nfft)[:size]

    counts = np.round(y).astype(np.int64)
    pmf = np.bincount(counts) / counts.size
    ks = card.astype(np.int64)
    obs = np.round(lag).astype(np.int64)
    p = np.full(y.size, np.nan)
    dist = np.array([1.0])
    for k in range(1, int(ks.max()) + 1):
        dist = np.clip(fftconvolve(dist, pmf), 0.0, None)
        dist /= dist.sum()
        idx = np.flatnonzero(ks == k)
        if idx.size == 0:
            continue
        upper = np.cumsum(dist[::-1])[::-1]  # P(S ≥ s)
        lower = np.cumsum(dist)  # P(S ≤ s)
        s = obs[idx].clip(0, dist.size - 1)  # a neighbourhood sum lies in [0, k · max(y)]
        p[idx] = np.minimum(1.0, 2 * np.minimum(upper[s], lower[s]))
    return p


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values); NaN p-values stay NaN and are not counted."""
    q = np.full(p.size, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = benjamini_hochberg(p[ok])
    return q


@dataclass(frozen=True)
class GiStarResult(Result):
    """Gi* z-scores, p-values and hot/cold classification of every cell of the study area.

    ``table``: one row per study-area cell (``cell_x, cell_y`` and, when the input had them, ``x_m,
    y_m, lat, lon``), ``incidents``, ``neighbours`` (W_i: the cell and its neighbours in the study area),
    ``gi_star``, ``z``, ``p_norm`` (one-sided normal p, as esda), ``p_sim`` (two-sided Monte Carlo
    conditional-randomisation p or NaN), ``p_exact`` (two-sided exact randomisation p),
    ``p_value`` (the p used), ``q_value`` (BH-adjusted), ``significant``, ``hotspot`` ('hot' | 'cold' |
    'not significant'). The lead draws maps from it; ``chart()`` is None.
    """

    n_hot: int = 0
    n_cold: int = 0


def _infer_cell_m(grid: pd.DataFrame) -> float | None:
    if "x_m" not in grid.columns or len(grid) < 2:
        return None
    cx = pd.to_numeric(grid["cell_x"], errors="coerce").to_numpy(dtype="float64")
    xm = pd.to_numeric(grid["x_m"], errors="coerce").to_numpy(dtype="float64")
    dx = cx - cx[0]
    ok = np.isfinite(dx) & np.isfinite(xm) & (dx != 0)
    if not ok.any():
        return None
    return float(np.median((xm[ok] - xm[0]) / dx[ok]))


def getis_ord_gi_star(
    grid: pd.DataFrame | GridPanel,
    *,
    neighbours: Neighbours = "queen",
    distance_m: float | None = None,
    cell_m: float | None = None,
    cell_extent: tuple[int, int, int, int] | None = None,
    permutations: int = 999,
    seed: int = 0,
    alpha: float = 0.05,
    fdr: bool = True,
    p_values: Literal["exact", "normal", "permutation"] = "exact",
    study_area: Literal["data", "rectangle"] = "data",
) -> GiStarResult:
    """Getis-Ord Gi* hot and cold spots on the cells of a study area of one period.

    Parameters
    ----------
    grid : pandas.DataFrame or GridPanel
        A frame with columns ``cell_x, cell_y, incidents`` (one period; rows for the same cell are summed;
        optional ``x_m, y_m, lat, lon`` are carried to the table), or a one-period
        :class:`~crimelens.analysis.incidents.panel.GridPanel` (``panel.total()`` for the whole span of a
        panel by period), whose rectangle, study area, cell size and cell centres are used.
    neighbours : {'queen', 'rook', 'distance'}
        Binary weights, the cell itself included (Gi*): ``queen`` (8 neighbours), ``rook`` (4) or
        ``distance`` (cell centres within ``distance_m`` metres); only neighbours inside the study area count.
    distance_m : float, optional
        The distance band with ``neighbours='distance'``.
    cell_m : float, optional
        Cell size in metres (a panel's own; for a frame, inferred from ``x_m`` when not given).
    cell_extent : tuple of int, optional
        ``(x_min, y_min, x_max, y_max)`` cell indices, inclusive: the rectangle (default: the cells' bounding
        box, or the panel's rectangle); cells without a row count 0 incidents.
    permutations, seed : int
        Conditional-randomisation draws (0: none) and their seed (see :func:`_permutation_p`).
    alpha : float
        The level (of the false discovery rate with ``fdr``).
    fdr : bool
        Benjamini–Hochberg adjust the p-values over the study-area cells (default); a cell is significant when
        q ≤ alpha.
    p_values : {'exact', 'normal', 'permutation'}
        Which p-value decides: ``exact`` (default) the randomisation p of the neighbourhood sum under the normal
        z's own null hypothesis, computed exactly by convolution (:func:`_exact_p`, column ``p_exact``);
        ``normal``: the two-sided 2 · p_norm; ``permutation``: the Monte Carlo conditional-randomisation p
        (``p_sim``, the cell's own count kept, as esda), whose floor 2 / (permutations + 1) the FDR over
        thousands of cells rarely passes.
    study_area : {'data', 'rectangle'}
        The cells tested, whose counts give the mean and variance Gi* compares with. ``data`` (default): a
        panel's ``study_area`` (by default the cells with at least one incident), or a frame's cells (its rows,
        rows of 0 included); ``rectangle``: every cell of the rectangle, lake and land outside the city
        included (as esda on a full lattice).

    Returns
    -------
    GiStarResult
        One row per study-area cell (see :class:`GiStarResult`); hot when significant with z > 0, cold when
        z < 0.

    Notes
    -----
    z-scores: Ord & Getis (1995) with binary weights over the study-area cells, identical to
    ``esda.G_Local(y, w, star=True, transform='B').Zs`` with ``w`` the weights among those cells (esda uses
    the population variance over all n cells); ``p_norm`` is esda's one-sided ``norm.sf(|z|)``. Permutation
    p-values are computed whenever ``permutations`` > 0 and reported as ``p_sim``. Crime counts per cell are
    skewed (mostly small, a few very large): the normal p understates how often a random neighbourhood sums
    high, and a cell cannot sit far below a mean of a few incidents, so the permutation p is the default and
    cold spots are often impossible (the notes say when).

    References
    ----------
    Getis & Ord (1992), Geographical Analysis 24; Ord & Getis (1995), Geographical Analysis 27; Anselin (1995),
    Geographical Analysis 27; Benjamini & Hochberg (1995), JRSS B 57.
    """
    if isinstance(permutations, bool) or not isinstance(permutations, int | np.integer) or permutations < 0:
        raise DataError(f"permutations: expected a whole number ≥ 0 (e.g. 999), got {permutations!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise DataError(f"seed: expected an integer, got {seed!r}")
    alpha = _check_share("alpha", alpha, upper_open=True)
    if p_values not in ("exact", "normal", "permutation"):
        raise DataError(f"p_values: expected 'exact', 'normal' or 'permutation', got {p_values!r}")
    if p_values == "permutation" and permutations == 0:
        raise DataError("p_values: 'permutation' needs permutations ≥ 1 (e.g. 999), got permutations=0")
    if study_area not in ("data", "rectangle"):
        raise DataError(f"study_area: expected 'data' or 'rectangle', got {study_area!r}")
    options: dict[str, Any] = {
        "neighbours": neighbours, "distance_m": distance_m, "permutations": int(permutations), "seed": int(seed),
        "alpha": alpha, "fdr": fdr, "p_values": p_values,
    }  # fmt: skip
    if isinstance(grid, GridPanel):
        panel = grid if cell_extent is None else grid.reindex(_extent_arg(cell_extent))
        if panel.n_periods != 1:
            raise DataError(
                f"grid: expected the counts of one period, got a panel of {panel.n_periods} periods (use "
                "panel.total() for the whole span, or persistent_cells)"
            )
        if cell_m is None:
            cell_m = panel.cell_m
        y = panel.counts[:, 0].astype(np.float64)
        if study_area == "rectangle":
            study, area = np.ones(y.size, dtype=bool), "every cell of the rectangle"
        else:
            study, area = panel.study_area, "the study area: the cells given or with incidents"
        result = _gi_star(y, panel.extent, study, cell_m=cell_m, area=area, **options)
        rows = panel.index(result.table["cell_x"].to_numpy(), result.table["cell_y"].to_numpy())
        x, y_m, lon, lat = (v[rows] for v in panel.centres())
        table = result.table
        table.insert(2, "x_m", x)
        table.insert(3, "y_m", y_m)
        table.insert(4, "lat", lat)
        table.insert(5, "lon", lon)
        return result
    if "period_start" in grid.columns and grid["period_start"].nunique() > 1:
        raise DataError(
            "grid: expected the counts of one period, got "
            f"{grid['period_start'].nunique()} distinct period_start values (filter one period first, "
            "or use persistent_cells)"
        )
    counts = _cell_counts(grid, "grid")
    if neighbours == "distance" and cell_m is None:
        cell_m = _infer_cell_m(grid)
    if cell_extent is None:
        x0, y0 = int(counts["cell_x"].min()), int(counts["cell_y"].min())
        x1, y1 = int(counts["cell_x"].max()), int(counts["cell_y"].max())
    else:
        x0, y0, x1, y1 = _extent_arg(cell_extent)
        inside = counts["cell_x"].between(x0, x1) & counts["cell_y"].between(y0, y1)
        if not inside.all():
            raise DataError(
                f"cell_extent: expected every cell of the grid inside {cell_extent}, got "
                f"{int((~inside).sum())} cell(s) outside"
            )
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    dense = np.zeros(nx * ny)
    at = (counts["cell_y"].to_numpy() - y0) * nx + (counts["cell_x"].to_numpy() - x0)
    dense[at] = counts["incidents"].to_numpy()
    if study_area == "rectangle":
        study, area = np.ones(nx * ny, dtype=bool), "every cell of the rectangle"
    else:
        study, area = np.zeros(nx * ny, dtype=bool), "the study area: the cells given or with incidents"
        study[at] = True
    result = _gi_star(dense, (x0, y0, x1, y1), study, cell_m=cell_m, area=area, **options)
    extra = [c for c in ("x_m", "y_m", "lat", "lon") if c in grid.columns]
    if extra:
        table = result.table
        coords = grid[["cell_x", "cell_y", *extra]].drop_duplicates(["cell_x", "cell_y"])
        coords = coords.astype({"cell_x": "int64", "cell_y": "int64"})
        table = table.merge(coords, on=["cell_x", "cell_y"], how="left")
        size = cell_m if cell_m is not None else _infer_cell_m(grid)
        if size is not None and {"x_m", "y_m"} <= set(extra):  # centres of the cells without a row
            ref = coords.iloc[0]
            table["x_m"] = float(ref["x_m"]) + (table["cell_x"] - int(ref["cell_x"])) * size
            table["y_m"] = float(ref["y_m"]) + (table["cell_y"] - int(ref["cell_y"])) * size
        result = replace(result, table=table[["cell_x", "cell_y", *extra, *_GI_COLUMNS[2:]]])
    return result


def _extent_arg(cell_extent: object) -> tuple[int, int, int, int]:
    values = list(cell_extent) if isinstance(cell_extent, tuple | list) else []
    if len(values) != 4 or not all(isinstance(v, int | np.integer) for v in values):
        raise DataError(f"cell_extent: expected four integers (x_min, y_min, x_max, y_max), got {cell_extent!r}")
    x0, y0, x1, y1 = (int(v) for v in values)
    return x0, y0, x1, y1


def _cold_floor(y: np.ndarray, card: np.ndarray, permutations: int) -> tuple[float, float, float]:
    """The smallest two-sided p-values a cold cell could reach: (normal, Monte Carlo permutation, exact).

    The lowest neighbourhood sum a cell of W_i cells can have is W_i · min(y) (every cell at the study area's
    fewest incidents). Normal: 2 · Φ(z) at that sum, the smallest over the cells' W_i. Permutation: the chance
    that the W_i − 1 cells drawn without replacement from the other n − 1 are all at the minimum (c of them,
    the cell's own one excluded) is C(c − 1, W_i − 1) / C(n − 1, W_i − 1); the two-sided p is at least twice
    that, and never below 2 / (permutations + 1). Exact (:func:`_exact_p`: the cell's own count random too, drawn
    with replacement): 2 · (c / n)^W_i.
    """
    n = y.size
    low = float(y.min())
    floor_lag = card * low
    _, z = _gi_star_z(y, floor_lag, card)
    finite = np.isfinite(z)
    p_norm = float(np.min(2 * normal_sf(-z[finite]))) if finite.any() else math.nan
    c = int((y == low).sum())
    best, exact = math.inf, math.inf
    for k in np.unique(card.astype(np.int64)):
        draws = int(k) - 1
        chance = 1.0
        for j in range(draws):  # hypergeometric: every draw at the minimum
            chance *= max(c - 1 - j, 0) / (n - 1 - j)
        best = min(best, 2 * chance)
        exact = min(exact, 2 * (c / n) ** int(k))
    p_perm = max(best, 2 / (permutations + 1)) if permutations else best
    return min(1.0, p_norm), min(1.0, p_perm), min(1.0, exact)


def _gi_star(
    y: np.ndarray,
    extent: tuple[int, int, int, int],
    study: np.ndarray,
    *,
    neighbours: Neighbours,
    distance_m: float | None,
    cell_m: float | None,
    permutations: int,
    seed: int,
    alpha: float,
    fdr: bool,
    p_values: str,
    area: str,
) -> GiStarResult:
    """Gi* of the dense counts ``y`` of the rectangle ``extent`` (row-major from the south-west), tested on
    the cells flagged in ``study`` only (the study area; ``area`` says what it is, for the notes). Warnings
    point at the caller's caller."""
    x0, y0, x1, y1 = extent
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    study = np.asarray(study, dtype=bool)
    cells = np.flatnonzero(study)
    n_rect = nx * ny
    n = cells.size
    left_out = float(y[~study].sum())
    inside = np.where(study, y, 0.0)
    total = float(inside.sum())
    if total == 0:
        raise DataError(
            "grid: expected at least one incident in the study area to test for hot spots, got 0 incidents in "
            f"every one of its {n:,} cells"
        )
    offsets = _offsets(neighbours, distance_m, cell_m)
    lag_all, _ = _neighbourhood_sums(inside, nx, ny, offsets)
    card_all, _ = _neighbourhood_sums(study.astype(np.float64), nx, ny, offsets)  # neighbours in the study area
    y_s, lag, card = inside[cells], lag_all[cells], card_all[cells]
    g, z = _gi_star_z(y_s, lag, card)
    p_norm = normal_sf(np.abs(z))
    p_sim = _permutation_p(y_s, lag, card, permutations, seed) if permutations else np.full(n, np.nan)
    p_exact = _exact_p(y_s, lag, card)
    p = {"normal": 2 * p_norm, "permutation": p_sim, "exact": p_exact}[p_values]
    q = _bh(p) if fdr else p.copy()
    significant = np.isfinite(q) & (q <= alpha)
    hotspot = np.where(significant & (z > 0), "hot", np.where(significant & (z < 0), "cold", "not significant"))
    table = pd.DataFrame(
        {
            "cell_x": x0 + cells % nx, "cell_y": y0 + cells // nx, "incidents": y_s.round().astype("int64"),
            "neighbours": card.astype("int64"), "gi_star": g, "z": z, "p_norm": p_norm, "p_sim": p_sim,
            "p_exact": p_exact, "p_value": p, "q_value": q, "significant": significant, "hotspot": hotspot,
        }
    )  # fmt: skip
    n_hot, n_cold = int((hotspot == "hot").sum()), int((hotspot == "cold").sum())
    zeros = float((y_s == 0).mean())
    spread = float(y_s.var() / y_s.mean())
    notes = [
        f"{n:,} of the {n_rect:,} cells of the {nx} × {ny} rectangle tested ({area}; {n_rect - n:,} left out, "
        "e.g. lake and land outside the city)"
        + (f"; {left_out:,.0f} incidents in cells outside it are not tested" if left_out else ""),
        f"Counts per cell: mean {y_s.mean():.2f}, variance {spread:.1f} × the mean, {zeros:.0%} zero"
        + (
            ": far from normal, so the normal z understates the chance of a large neighbourhood sum"
            if spread > 2 or zeros > 0.2
            else ""
        ),
        "p-values: "
        + {
            "exact": "two-sided exact randomisation p (the normal z's null hypothesis, computed by convolution: "
            "valid for skewed counts, no Monte Carlo floor)",
            "permutation": f"two-sided Monte Carlo permutation ({permutations:,} draws, seed {seed})",
            "normal": "two-sided normal (Ord & Getis 1995), approximate for skewed counts",
        }[p_values]
        + (f", Benjamini–Hochberg FDR at {alpha:g} over the {n:,} study-area cells" if fdr else ", not corrected"),
    ]
    if not fdr:
        notes.append(
            f"{n:,} cells tested at α = {alpha:g} without correction: about {alpha * n:,.0f} cells would be "
            "called significant by chance alone"
        )
    if p_values == "permutation" and fdr and 2 / (permutations + 1) > alpha / n:
        notes.append(
            f"with {permutations:,} permutations the smallest p is {2 / (permutations + 1):.4f}: the FDR calls a "
            f"cell only when at least {math.ceil(2 / (permutations + 1) * n / alpha):,} cells reach it; the exact "
            "p-values (the default) have no such floor"
        )
    if n_cold == 0 and np.isfinite(z).any():
        floor_norm, floor_perm, floor_exact = _cold_floor(y_s, card, permutations)
        floor = {"normal": floor_norm, "permutation": floor_perm, "exact": floor_exact}[p_values]
        low = int(y_s.min())
        at_floor = int((np.round(lag) == card * low).sum())
        reach = (
            f"a neighbourhood whose every cell holds the fewest incidents ({low}) reaches at best p = {floor:.3g} "
            f"({p_values}; normal {floor_norm:.3g})"
        )
        if floor > alpha:
            notes.append(
                f"No cold spot is possible here: {reach}, above {alpha:g}. Counts bounded below by 0 and skewed "
                "leave no room to be significantly below the mean (a property of the data, not a fault)"
            )
        elif fdr and floor > alpha / n:
            need = math.ceil(floor * n / alpha - 1e-9)
            notes.append(
                f"No cold spot: {reach}; the FDR over {n:,} cells calls such a cell cold only when at least "
                f"{need:,} cells are that low, and {at_floor:,} are (a property of the data, not a fault)"
            )
    if np.isnan(z).all():
        warnings.warn(
            "grid: every cell has the same count, so Gi* has no variance to test; no cell is hot or cold",
            SparseDataWarning,
            stacklevel=3,
        )
    elif total < 30 or total / n < 0.05:
        warnings.warn(
            f"grid: {total:.0f} incidents over {n:,} cells: so few incidents per cell leave Gi* little to find "
            "(and the normal z far from valid); prefer larger cells or a longer period",
            SparseDataWarning,
            stacklevel=3,
        )
    normal_sig = 2 * p_norm <= alpha
    for label, other in (("exact", p_exact), ("Monte Carlo permutation", p_sim)):
        other_sig = other <= alpha
        more, fewer = int((normal_sig & ~other_sig).sum()), int((~normal_sig & other_sig).sum())
        if (more or fewer) and np.isfinite(other).any():
            notes.append(
                f"Before any correction, {more + fewer:,} cell(s) differ between the normal and the {label} "
                f"p-value at {alpha:g}: {more:,} significant by the normal only, {fewer:,} by the {label} only"
            )
    params: dict[str, Any] = {
        "neighbours": neighbours, "distance_m": distance_m, "cell_m": cell_m, "permutations": permutations,
        "seed": seed, "alpha": alpha, "fdr": fdr, "p_values": p_values, "cell_extent": (x0, y0, x1, y1),
        "study_area": area, "n_cells": n, "rectangle_cells": n_rect, "incidents": total,
        "incidents_outside_study_area": left_out,
    }  # fmt: skip
    return GiStarResult(
        title=f"Getis-Ord Gi* hot spots: {n_hot} hot and {n_cold} cold cell(s) of {n:,}",
        table=table,
        params=params,
        notes=tuple(notes),
        n_hot=n_hot,
        n_cold=n_cold,
    )


# -- persistent hotspots -------------------------------------------------------------------------------
_PERSIST_COLUMNS = [
    "cell_x", "cell_y", "periods_hot", "share_of_periods", "longest_run", "first_hot", "last_hot", "incidents",
    "status",
]  # fmt: skip


@dataclass(frozen=True)
class PersistentCellsResult(Result):
    """Cells hot in many periods. ``table``: one row per cell hot at least once (see the function)."""

    n_periods: int = 0
    n_stable: int = 0


def _longest_run(flags: np.ndarray) -> np.ndarray:
    """Longest run of True along axis 1 of a boolean (cells × periods) matrix."""
    best = np.zeros(flags.shape[0], dtype=np.int64)
    run = np.zeros(flags.shape[0], dtype=np.int64)
    for j in range(flags.shape[1]):
        run = np.where(flags[:, j], run + 1, 0)
        best = np.maximum(best, run)
    return best


def persistent_cells(
    grid_by_period: pd.DataFrame | GridPanel,
    *,
    method: Literal["top", "gi"] = "top",
    top_share: float = 0.05,
    min_periods_share: float = 0.75,
    neighbours: Neighbours = "queen",
    alpha: float = 0.05,
    permutations: int = 0,
    seed: int = 0,
) -> PersistentCellsResult:
    """Grid cells that are hot in at least ``min_periods_share`` of the periods.

    Parameters
    ----------
    grid_by_period : pandas.DataFrame or GridPanel
        A frame with columns ``cell_x, cell_y, period_start, incidents`` (optional ``x_m, y_m, lat, lon``
        carried over), or a :class:`~crimelens.analysis.incidents.panel.GridPanel` by period (its cell centres
        are carried over). The grid is the frame's bounding rectangle of cells, or the panel's rectangle, the
        same in every period.
    method : {'top', 'gi'}
        When a cell is hot in a period: ``'top'``: its count is > 0 and at least the count of the
        ⌈top_share · n_cells⌉-th busiest cell of the rectangle that period (ties at the threshold are all hot);
        ``'gi'``: :func:`getis_ord_gi_star` calls it hot after the FDR at ``alpha`` (exact randomisation p-values,
        or Monte Carlo permutation p-values when ``permutations`` > 0), tested on the study area: the panel's (by
        default its cells with an incident in any period), or a frame's cells with a row.
    top_share, min_periods_share : float
        Share of cells hot per period (``'top'``), and share of periods a stable cell is hot in.
    neighbours, alpha, permutations, seed
        Gi*'s options with ``method='gi'``.

    Returns
    -------
    PersistentCellsResult
        Columns ``cell_x, cell_y, periods_hot, share_of_periods, longest_run, first_hot, last_hot, incidents``
        (over all periods) and ``status``: ``stable`` (share ≥ ``min_periods_share``), ``emerging`` (not
        stable, hot in each of the latest r = max(1, ⌊periods / 4⌋) periods and in none before), else
        ``intermittent``; one row per cell hot at least once.

    Notes
    -----
    Periods are the distinct ``period_start`` values (a period without any row is unknown and not counted).

    References
    ----------
    The idea of chronic versus intermittent hot spots follows Weisburd, Bushway, Lum & Yang (2004),
    "Trajectories of crime at places", Criminology 42.
    """
    if method not in ("top", "gi"):
        raise DataError(f"method: expected 'top' or 'gi', got {method!r}")
    top_share = _check_share("top_share", top_share)
    min_periods_share = _check_share("min_periods_share", min_periods_share)
    if isinstance(grid_by_period, GridPanel):
        panel = grid_by_period
        if panel.period is None:
            raise DataError("grid_by_period: expected a panel by period, got one whole-span period (period None)")
        x0, y0, x1, y1 = panel.extent
        dense = panel.counts.astype(np.float64)
        order = [pd.Timestamp(p) for p in panel.periods]
        study = panel.study_area
    else:
        _check_columns(grid_by_period, ("cell_x", "cell_y", "period_start", "incidents"), "grid_by_period")
        periods = pd.to_datetime(grid_by_period["period_start"], errors="coerce")
        if periods.isna().any():
            row = int(np.flatnonzero(periods.isna().to_numpy())[0])
            raise DataError(
                f"grid_by_period: column period_start row {row}: expected a timestamp, "
                f"got {str(grid_by_period['period_start'].iloc[row])!r}"
            )
        counts = _cell_counts(grid_by_period, "grid_by_period")  # validates every value
        x0, y0 = int(counts["cell_x"].min()), int(counts["cell_y"].min())
        x1, y1 = int(counts["cell_x"].max()), int(counts["cell_y"].max())
        stamps, column = np.unique(periods.to_numpy(), return_inverse=True)
        dense = dense_counts(
            pd.to_numeric(grid_by_period["cell_x"]).to_numpy(dtype=np.int64),
            pd.to_numeric(grid_by_period["cell_y"]).to_numpy(dtype=np.int64),
            column.ravel(),
            pd.to_numeric(grid_by_period["incidents"]).to_numpy(dtype=np.float64),
            len(stamps),
            (x0, y0, x1, y1),
        )[0].astype(np.float64)
        order = [pd.Timestamp(p) for p in stamps]
        study = np.zeros(dense.shape[0], dtype=bool)
        study[(counts["cell_y"].to_numpy() - y0) * (x1 - x0 + 1) + counts["cell_x"].to_numpy() - x0] = True
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    n = nx * ny
    totals = dense.sum(axis=1)
    area = "the cells with incidents in any period"
    notes: list[str] = []
    if method == "top":
        # the k-th largest count of each period is its threshold; counts are ≥ 0 and mostly 0, so it is the
        # k-th largest of the period's non-zero counts, or 0 when fewer than k cells have any (one small
        # partition per period instead of one of every cell)
        k = max(1, math.ceil(top_share * n - 1e-9))
        threshold = np.zeros(dense.shape[1])
        for j, column in enumerate(np.ascontiguousarray(dense.T)):
            busy = column[column > 0]
            if busy.size >= k:
                threshold[j] = np.partition(busy, busy.size - k)[busy.size - k]
        flags = (dense >= threshold[None, :]) & (dense > 0)
    else:
        flags = np.zeros(dense.shape, dtype=bool)
        for j, period in enumerate(order):  # one Gi* per period (a loop over periods, not cells)
            y = dense[:, j]
            if y[study].sum() == 0:
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                gi = _gi_star(
                    y, (x0, y0, x1, y1), study, neighbours=neighbours, distance_m=None, cell_m=None,
                    permutations=permutations, seed=seed, alpha=alpha, fdr=True,
                    p_values="permutation" if permutations else "exact", area=area,
                )  # fmt: skip
            if caught:
                notes.append(f"{period.date()}: {caught[0].message}")
            hot = gi.table["hotspot"].to_numpy() == "hot"
            flags[(gi.table["cell_y"].to_numpy()[hot] - y0) * nx + gi.table["cell_x"].to_numpy()[hot] - x0, j] = True
    hot_counts = [int(v) for v in flags.sum(axis=0)]
    periods_hot = flags.sum(axis=1)
    ever = np.flatnonzero(periods_hot > 0)
    m = len(order)
    r = max(1, m // 4)
    share = periods_hot / m
    stable = share >= min_periods_share - 1e-12
    emerging = ~stable & flags[:, m - r :].all(axis=1) & ~flags[:, : m - r].any(axis=1)
    status = np.where(stable, "stable", np.where(emerging, "emerging", "intermittent"))
    first = np.argmax(flags, axis=1)
    last = m - 1 - np.argmax(flags[:, ::-1], axis=1)
    stamps = np.array([pd.Timestamp(p) for p in order], dtype=object)
    table = pd.DataFrame(
        {
            "cell_x": (ever % nx) + x0, "cell_y": (ever // nx) + y0, "periods_hot": periods_hot[ever],
            "share_of_periods": share[ever], "longest_run": _longest_run(flags[ever]),
            "first_hot": pd.to_datetime(stamps[first[ever]]), "last_hot": pd.to_datetime(stamps[last[ever]]),
            "incidents": totals[ever].round().astype("int64"), "status": status[ever],
        },
        columns=_PERSIST_COLUMNS,
    )  # fmt: skip
    rank = table["status"].map({"stable": 0, "emerging": 1, "intermittent": 2})
    table = (
        table.assign(_r=rank)
        .sort_values(
            ["_r", "share_of_periods", "incidents", "cell_y", "cell_x"], ascending=[True, False, False, True, True]
        )
        .drop(columns="_r")
        .reset_index(drop=True)
    )
    if isinstance(grid_by_period, GridPanel):
        rows = grid_by_period.index(table["cell_x"].to_numpy(), table["cell_y"].to_numpy())
        x, y_m, lon, lat = (v[rows] for v in grid_by_period.centres())
        table.insert(2, "x_m", x)
        table.insert(3, "y_m", y_m)
        table.insert(4, "lat", lat)
        table.insert(5, "lon", lon)
    else:
        extra = [c for c in ("x_m", "y_m", "lat", "lon") if c in grid_by_period.columns]
        if extra:
            coords = grid_by_period[["cell_x", "cell_y", *extra]].drop_duplicates(["cell_x", "cell_y"])
            coords = coords.astype({"cell_x": "int64", "cell_y": "int64"})
            table = table.merge(coords, on=["cell_x", "cell_y"], how="left")
            table = table[["cell_x", "cell_y", *extra, *_PERSIST_COLUMNS[2:]]]
    if m < 4:
        notes.append(f"only {m} period(s): persistence over so few periods says little")
    what = (
        f"top {top_share:.0%} of the {n:,} cells"
        if method == "top"
        else f"Gi* hot after FDR at {alpha:g} over {int(study.sum()):,} cells"
    )
    notes.append(
        f"hot = {what}; hot cells per period: mean {np.mean(hot_counts):.1f}, range {min(hot_counts)}–{max(hot_counts)}"
    )
    if method == "top":
        notes.append("the rectangle includes cells outside the city; the top share is taken of all of them")
    n_stable = int((table["status"] == "stable").sum())
    return PersistentCellsResult(
        title=f"Persistent hot spots: {n_stable} cell(s) hot in at least {min_periods_share:.0%} of {m} periods",
        table=table,
        params={
            "method": method, "top_share": top_share, "min_periods_share": min_periods_share,
            "neighbours": neighbours, "alpha": alpha, "permutations": permutations, "seed": seed,
            "n_periods": m, "n_cells": n, "recent_periods": r,
            "first_period": pd.Timestamp(order[0]), "last_period": pd.Timestamp(order[-1]),
        },
        notes=tuple(notes),
        n_periods=m,
        n_stable=n_stable,
    )  # fmt: skip
