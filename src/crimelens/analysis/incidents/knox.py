"""The near-repeat Knox test: are incidents close in space also close in time more often than chance?

Knox (1964), "The detection of space-time interactions", Applied Statistics 13; as run by Ratcliffe's
Near Repeat Calculator (Ratcliffe 2009, Temple University; Townsley, Homel & Chaseling 2003, "Infectious
burglaries", British Journal of Criminology 43): every pair of incidents is placed in a space band × time
band table; the expected table is the mean over Monte Carlo permutations of the times across the events
(which keeps both the spatial and the temporal pattern and breaks only their link).
"""

from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crimelens.analysis.inference import benjamini_hochberg
from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.errors import CrimeLensWarning, DataError, SchemaError
from crimelens.geo import pairs_within

__all__ = ["KnoxResult", "LargeComputationWarning", "knox_test"]

#: Close pairs beyond which a warning says the test will be slow and memory-hungry.
PAIR_WARNING = 20_000_000

#: Fewest expected pairs in every cell for ``method="auto"`` to use the exact permutation moments.
MOMENTS_MIN_EXPECTED = 100.0

#: Pairs × permutations from which the permutation tables are counted on two threads (below, one thread is
#: faster than starting a pool).
THREADED_WORK = 100_000_000


class LargeComputationWarning(CrimeLensWarning):
    """An analysis is about to do a very large amount of work (e.g. tens of millions of pairs)."""


@dataclass(frozen=True)
class KnoxResult(Result):
    """Knox table: one row per space band × time band (see :func:`knox_test`)."""

    n_pairs: int = 0
    #: Exact same-place, same-day duplicates merged before the test (0 when kept).
    n_merged: int = 0

    def chart(self) -> ChartSpec:
        return ChartSpec(
            kind="bar",
            data=self.table,
            x="time_band",
            y="knox_ratio",
            series="distance_band",
            title=self.title,
            x_label="days apart",
            y_label="observed / expected pairs",
            highlight="significant",
            reference=1.0,
            note="Knox ratio > 1: more close pairs than chance; highlighted: BH q < 0.05 over the bands.",
        )


def _check_edges(name: str, edges: object, unit: str) -> np.ndarray:
    try:
        arr = np.asarray(edges, dtype="float64")
    except (TypeError, ValueError):
        arr = np.array([])
    if arr.ndim != 1 or arr.size < 2 or not np.isfinite(arr).all() or arr[0] < 0 or (np.diff(arr) <= 0).any():
        raise DataError(
            f"{name}: expected at least two increasing band edges in {unit} starting at ≥ 0, e.g. (0, 100, 200), "
            f"got {edges!r}"
        )
    return arr


def _band(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Band index of each value: band 0 is [e0, e1], band k is (e_k, e_k+1]; −1 outside."""
    idx = np.searchsorted(edges, values, side="left")
    idx = np.where(values == edges[0], 1, idx) - 1
    return np.where((values < edges[0]) | (values > edges[-1]), -1, idx)


def _labels(edges: np.ndarray, unit: str) -> list[str]:
    def fmt(v: float) -> str:
        return f"{v:g}"

    return [f"{fmt(edges[k])}–{fmt(edges[k + 1])} {unit}" for k in range(edges.size - 1)]


def _workers() -> int:
    """Threads for the permutation tables: two when this process may use two cores, else one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(2, cpus)


def _tables(
    table_of: Callable[[np.ndarray], np.ndarray], draws: Iterator[np.ndarray], workers: int
) -> Iterator[np.ndarray]:
    """``table_of`` of each draw, in the order drawn; on ``workers`` threads when more than one (numpy releases
    the GIL while it gathers and compares, so two threads count about 1.7 times as fast on two free cores)."""
    if workers <= 1:
        for draw in draws:
            yield table_of(draw)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[np.ndarray]] = deque()
        for draw in draws:
            pending.append(pool.submit(table_of, draw))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _band_degrees(values: np.ndarray, below: int, tops: list[int]) -> np.ndarray:
    """Per event k and time band b: #{l ≠ k : whole-day gap |t_l − t_k| in band b} (bands as in knox_test)."""
    order = np.sort(values)

    def within(k_days: int) -> np.ndarray:  # #{l ≠ k : |t_l − t_k| ≤ k_days}
        if k_days < 0:
            return np.zeros(values.size, dtype=np.int64)
        hi = np.searchsorted(order, values + k_days, side="right")
        lo = np.searchsorted(order, values - k_days, side="left")
        return (hi - lo - 1).astype(np.int64)

    prev = within(below - 1) if below > 0 else np.zeros(values.size, dtype=np.int64)
    out = []
    for top in tops:
        upto = within(top)
        out.append(upto - prev)
        prev = upto
    return np.column_stack(out)


def _moments(
    i: np.ndarray, j: np.ndarray, dband: np.ndarray, nd: int, days: np.ndarray, below: int, tops: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Exact permutation mean and variance of every cell's count (Mantel 1967), from neighbour counts per band.

    For symmetric 0/1 matrices A (space band) and B (time band) with zero diagonals over n events and
    Z = Σ_{i≠j} a_ij b_π(i)π(j) = 2 × the cell's count, with M1 = Σ_{i≠j} m_ij, M2 = Σ m_ij² (= M1 here) and
    M3 = Σ_i (Σ_j m_ij)²: E[Z] = A1 B1 / n(n−1) and
    Var[Z] = 2 A2 B2 / n(n−1) + 4 (A3 − A2)(B3 − B2) / n(n−1)(n−2)
             + (A1² + 2 A2 − 4 A3)(B1² + 2 B2 − 4 B3) / n(n−1)(n−2)(n−3) − E[Z]².
    """
    n = float(days.size)
    t = np.asarray(days, dtype=np.int64)
    deg_b = _band_degrees(t, below, tops).astype(np.float64)  # n × nt
    b1 = deg_b.sum(axis=0)
    b3 = (deg_b**2).sum(axis=0)
    a1 = np.zeros(nd)
    a3 = np.zeros(nd)
    for a in range(nd):
        sel = dband == a
        deg = np.bincount(i[sel], minlength=days.size) + np.bincount(j[sel], minlength=days.size)
        a1[a] = 2.0 * float(sel.sum())
        a3[a] = float((deg.astype(np.float64) ** 2).sum())
    a1, a3 = a1[:, None], a3[:, None]
    b1, b3 = b1[None, :], b3[None, :]
    a2, b2 = a1, b1
    pairs2 = n * (n - 1)
    mean_z = a1 * b1 / pairs2
    var_z = (
        2 * a2 * b2 / pairs2
        + (4 * (a3 - a2) * (b3 - b2) / (pairs2 * (n - 2)) if n > 2 else 0.0)
        + ((a1**2 + 2 * a2 - 4 * a3) * (b1**2 + 2 * b2 - 4 * b3) / (pairs2 * (n - 2) * (n - 3)) if n > 3 else 0.0)
        - mean_z**2
    )
    return mean_z / 2, np.maximum(var_z, 0.0) / 4


@records_caveats
def knox_test(
    points: pd.DataFrame,
    *,
    distance_bands_m: Sequence[float] = (0, 100, 200, 400),
    time_bands_days: Sequence[float] = (0, 7, 14, 28),
    permutations: int = 999,
    seed: int = 0,
    keep_duplicates: bool = False,
    alpha: float = 0.05,
    method: str = "auto",
) -> KnoxResult:
    """Knox space-time interaction test over distance × time bands, with exact permutation moments or Monte Carlo
    p-values.

    ``points``: columns ``x_m, y_m`` (projected metres) and ``occurred_at`` (timestamps). Distances are
    Euclidean metres; time apart is the number of calendar days between the two dates (as the Near Repeat
    Calculator, which works with dates; time of day is ignored). Band k covers (edge_k, edge_k+1], the
    first band includes its lower edge: with the defaults the distance bands are 0–100 m (same place
    included), 100–200 m, 200–400 m and the time bands 0–7, 7–14, 14–28 days (0 days included in the first;
    a pair 7 days apart falls in 0–7). Pairs farther apart than the
    last edges are not tabulated.

    Only pairs within the largest distance are enumerated (:func:`crimelens.geo.pairs_within`); permuting
    times across events leaves that set unchanged, so each permutation recomputes only their time gaps.
    The null hypothesis is the permutation one: the dates are shuffled across the events (which keeps both the
    spatial and the temporal pattern and breaks only their link). Two ways to read a cell against it:

    - ``method="moments"``: a cell's count is Mantel's statistic Σ a_ij b_π(i)π(j) of the pairs' space-band
      indicator a and time-band indicator b, whose permutation mean and variance are known exactly (Mantel
      1967, "The detection of disease clustering and a generalized regression approach", Cancer Research 27;
      the variance formula of Mantel's eq. 2 for symmetric matrices with zero diagonals, as in Hubert 1987,
      "Assignment Methods in Combinatorial Data Analysis"). ``expected`` is that exact mean and ``p_value`` the
      upper normal tail of (observed − ½ − mean) / sd. Computing them needs only each event's number of
      neighbours per band: milliseconds instead of one pass over every close pair per permutation.
    - ``method="permutation"``: ``expected`` is the mean over ``permutations`` random permutations (generator
      seeded with ``seed``) and ``p_value`` = (#permutations with count ≥ observed + 1) / (permutations + 1).
    - ``method="auto"`` (the default): moments when every cell expects at least :data:`MOMENTS_MIN_EXPECTED`
      pairs (the normal approximation is then close: the count is a sum of many weakly dependent indicators),
      else permutations.

    For each cell: ``observed`` pairs, ``expected``, ``knox_ratio`` = observed / expected and the one-sided
    ``p_value`` for excess closeness. Many cells are tested at once and they are not independent: read the near
    cells, not the smallest p: each cell also has ``q_value``, the Benjamini–Hochberg adjusted p over all the
    cells of the table (Benjamini & Hochberg 1995), and ``significant`` = q < ``alpha``.

    Exact duplicates, incidents at the same projected coordinates (``x_m, y_m``) on the same calendar day, are
    counted once by default (``keep_duplicates=False``): a single event reported twice, or several offences
    recorded for one event, otherwise adds a 0 m, 0 day pair that inflates the nearest cell's Knox ratio. The
    number merged is in ``n_merged`` and in the notes. Warns (:class:`LargeComputationWarning`) beyond 20
    million close pairs. With more than
    :data:`THREADED_WORK` pairs × permutations the tables are counted on two threads where two cores are
    available; the permutations are still drawn in order, so a seed gives the same table either way.
    """
    if not isinstance(points, pd.DataFrame) or not {"x_m", "y_m", "occurred_at"} <= set(points.columns):
        got = ", ".join(map(str, points.columns)) if isinstance(points, pd.DataFrame) else type(points).__name__
        raise SchemaError(f"points: expected columns x_m, y_m (projected metres) and occurred_at, got {got}")
    if isinstance(permutations, bool) or not isinstance(permutations, int | np.integer) or permutations < 1:
        raise DataError(f"permutations: expected a whole number ≥ 1 (e.g. 999), got {permutations!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise DataError(f"seed: expected an integer, got {seed!r}")
    d_edges = _check_edges("distance_bands_m", distance_bands_m, "metres")
    t_edges = _check_edges("time_bands_days", time_bands_days, "days")
    xy = np.column_stack(
        [pd.to_numeric(points[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan) for c in ("x_m", "y_m")]
    )
    when = pd.to_datetime(points["occurred_at"], errors="coerce")
    bad = ~np.isfinite(xy).all(axis=1) | when.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"points row {row}: expected finite x_m, y_m and a timestamp occurred_at, got "
            f"{str(points['x_m'].iloc[row])!r}, {str(points['y_m'].iloc[row])!r}, "
            f"{str(points['occurred_at'].iloc[row])!r}"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, float | int) or not 0 < alpha < 1:
        raise DataError(f"alpha: expected a false discovery rate between 0 and 1 (e.g. 0.05), got {alpha!r}")
    if method not in ("auto", "moments", "permutation"):
        raise DataError(f"method: expected 'auto', 'moments' or 'permutation', got {method!r}")
    days = when.dt.normalize().to_numpy().astype("datetime64[D]").astype(np.int64)
    n_input = len(points)
    n_merged = 0
    if not keep_duplicates and n_input > 1:
        key = np.column_stack([xy, days.astype("float64")])
        _, first = np.unique(key, axis=0, return_index=True)
        if first.size < n_input:
            first.sort()
            n_merged = n_input - int(first.size)
            xy, days = xy[first], days[first]
    n = int(days.size)
    if n < 2:
        raise DataError(f"points: expected at least 2 incidents to form pairs, got {n}")
    days = (days - days.min()).astype(np.int32)
    pairs = pairs_within(xy, float(d_edges[-1]))
    if len(pairs) > PAIR_WARNING:
        warnings.warn(
            f"points: {len(pairs):,} pairs within {d_edges[-1]:g} m; each of the {permutations} permutations "
            "recomputes all of them — expect minutes and gigabytes; use smaller distance bands or fewer points",
            LargeComputationWarning,
            stacklevel=2,
        )
    i, j = pairs[:, 0], pairs[:, 1]
    dband = _band(np.hypot(*(xy[i] - xy[j]).T), d_edges)
    keep = dband >= 0
    nd, nt = d_edges.size - 1, t_edges.size - 1
    # pairs grouped by distance band (the count of each cell does not depend on the order of the pairs), so a
    # permutation's table is, per band, how many whole-day gaps fall under each time edge
    order = np.argsort(dband[keep], kind="stable")
    i, j, dband = i[keep][order].astype(np.intp), j[keep][order].astype(np.intp), dband[keep][order]
    bounds = np.searchsorted(dband, np.arange(nd + 1))
    # time band k is (e_k, e_k+1] (band 0 also holds e_0); for a whole number of days g, g > e ⇔ g > ⌊e⌋ and
    # g ≥ e_0 ⇔ g ≥ ⌈e_0⌉: so the cell counts are differences of the counts of gaps ≤ ⌊e_k⌋ (as _band bands them)
    below = int(np.ceil(t_edges[0]))
    tops = [int(np.floor(e)) for e in t_edges[1:]]
    span = int(days.max())
    days = days.astype(np.int16 if span <= np.iinfo(np.int16).max else np.int32)

    def table_of(t: np.ndarray) -> np.ndarray:
        gap = np.take(t, i)
        gap -= np.take(t, j)
        np.abs(gap, out=gap)
        cells = np.empty((nd, nt), dtype=np.int64)
        for a in range(nd):
            g = gap[bounds[a] : bounds[a + 1]]
            prev = int(np.count_nonzero(g < below)) if below > 0 else 0
            for b, top in enumerate(tops):
                upto = int(np.count_nonzero(g <= top))
                cells[a, b] = upto - prev
                prev = upto
        return cells

    observed = table_of(days)
    used = method
    if method != "permutation":  # the moments are the test, or decide between the two (auto)
        mean, var = _moments(i, j, dband, nd, days, below, tops)
        if method == "auto":
            used = "moments" if mean.size and float(mean.min()) >= MOMENTS_MIN_EXPECTED else "permutation"
    if used == "moments":
        from crimelens.analysis.inference import normal_sf

        expected = mean
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(var > 0, (observed - 0.5 - mean) / np.sqrt(var), np.where(observed > mean, np.inf, -np.inf))
        p_values = normal_sf(z)
    else:
        rng = np.random.default_rng(int(seed))
        total = np.zeros((nd, nt))
        at_least = np.zeros((nd, nt), dtype=np.int64)
        # the permutations are drawn here, in order, whatever counts them: the same tables for a seed on any machine
        draws = (days[rng.permutation(n)] for _ in range(int(permutations)))
        workers = _workers() if i.size * int(permutations) >= THREADED_WORK else 1
        for sim in _tables(table_of, draws, workers):
            total += sim  # whole counts: the sums do not depend on the order
            at_least += sim >= observed
        expected = total / permutations
        p_values = (at_least + 1) / (permutations + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, observed / expected, np.nan)
    d_labels, t_labels = _labels(d_edges, "m"), _labels(t_edges, "days")
    rows = [
        {
            "distance_band": d_labels[a], "distance_from_m": d_edges[a], "distance_to_m": d_edges[a + 1],
            "time_band": t_labels[b], "time_from_days": t_edges[b], "time_to_days": t_edges[b + 1],
            "observed": int(observed[a, b]), "expected": float(expected[a, b]), "knox_ratio": float(ratio[a, b]),
            "p_value": float(p_values[a, b]),
        }
        for a in range(nd)
        for b in range(nt)
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    table["q_value"] = benjamini_hochberg(table["p_value"].to_numpy(dtype=float))
    table["significant"] = table["q_value"] < alpha
    notes = [
        (
            f"{n_merged:,} of {n_input:,} incidents were exact same-place, same-day duplicates of another and "
            "were counted once for the test (keep them with keep_duplicates / --keep-duplicates)"
            if not keep_duplicates
            else f"exact same-place, same-day duplicates kept ({n_input:,} incidents as given)"
        ),
        f"{n:,} incidents, {int(keep.sum()):,} pairs within {d_edges[-1]:g} m; days apart by calendar date",
        (
            "expected = the exact mean over all permutations of the dates, p = the normal tail with their exact "
            "variance (Mantel 1967)"
            if used == "moments"
            else f"expected = mean of {permutations} permutations of the dates (seed {seed}); p = (#permutations ≥ "
            "observed + 1) / (permutations + 1)"
        ),
        f"significance by the Benjamini–Hochberg q-value over the {nd * nt} bands (q < {alpha:g}), not the raw p",
    ]
    if (observed < 5).any():
        notes.append(f"{int((observed < 5).sum())} band(s) with fewer than 5 observed pairs: ratios there are unstable")
    if table["significant"].any():
        notes.append(
            "near-repeat patterns are also produced by repeat reporting of one event and by data entered in "
            "batches on one date; check before acting"
        )
    return KnoxResult(
        title=f"Near-repeat (Knox) test: {n:,} incidents, {int(keep.sum()):,} close pairs",
        table=table,
        params={
            "distance_bands_m": tuple(float(v) for v in d_edges),
            "time_bands_days": tuple(float(v) for v in t_edges),
            "permutations": int(permutations) if used == "permutation" else 0,
            "seed": int(seed),
            "method": used,
            "incidents": n,
            "incidents_given": n_input,
            "duplicates_merged": n_merged,
            "keep_duplicates": bool(keep_duplicates),
            "alpha": float(alpha),
        },
        notes=tuple(notes),
        n_pairs=int(keep.sum()),
        n_merged=n_merged,
    )
