"""Tests for the band counting of crimelens.analysis.incidents.knox: the observed table over every pair, by brute
force, for edges that are not whole days, a first edge above zero and gaps past the last edge."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimelens.analysis.incidents.knox import knox_test


def _band_of(value: float, edges: tuple[float, ...]) -> int | None:
    """Band k is (e_k, e_k+1]; band 0 also holds e_0; None outside [e_0, e_last] (the documented rule)."""
    if value == edges[0]:
        return 0
    for k in range(len(edges) - 1):
        if edges[k] < value <= edges[k + 1]:
            return k
    return None


def _brute_force(points: pd.DataFrame, d_edges: tuple[float, ...], t_edges: tuple[float, ...]) -> np.ndarray:
    days = [d.date() for d in points["occurred_at"]]
    xy = points[["x_m", "y_m"]].to_numpy().tolist()
    table = np.zeros((len(d_edges) - 1, len(t_edges) - 1), dtype=np.int64)
    for a, b in itertools.combinations(range(len(points)), 2):
        dist = math.hypot(xy[a][0] - xy[b][0], xy[a][1] - xy[b][1])
        gap = abs((days[a] - days[b]).days)
        d, t = _band_of(dist, d_edges), _band_of(float(gap), t_edges)
        if d is not None and t is not None:
            table[d, t] += 1
    return table


def _points(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            # a coarse lattice, so that distances land exactly on the edges too
            "x_m": rng.integers(0, 12, n) * 25.0,
            "y_m": rng.integers(0, 12, n) * 25.0,
            "occurred_at": pd.Timestamp("2021-03-01") + pd.to_timedelta(rng.integers(0, 60 * 24, n), unit="h"),
        }
    )


@pytest.mark.parametrize(
    ("d_edges", "t_edges"),
    [
        ((0.0, 100.0, 200.0, 400.0), (0.0, 7.0, 14.0, 28.0)),  # the defaults
        ((10.0, 55.5, 120.0, 300.0), (0.5, 3.2, 7.0, 10.0, 30.5)),  # edges between whole days
        ((0.0, 50.0, 250.0), (2.0, 5.0, 9.0)),  # a first edge above zero: gaps of 0 and 1 day are out
        ((0.0, 400.0), (0.0, 1.0, 2.0, 3.0, 4.0, 400.0)),  # one-day bands and a band past the data's span
        ((0.0, 75.0, 150.0), (3.1, 3.4, 3.9, 12.0)),  # a band holding no whole number of days
    ],
)
def test_observed_table_equals_brute_force(d_edges: tuple[float, ...], t_edges: tuple[float, ...]) -> None:
    points = _points(11, 120)
    result = knox_test(
        points, distance_bands_m=d_edges, time_bands_days=t_edges, permutations=3, seed=1, keep_duplicates=True
    )
    observed = result.table["observed"].to_numpy().reshape(len(d_edges) - 1, len(t_edges) - 1)
    want = _brute_force(points, d_edges, t_edges)
    assert np.array_equal(observed, want)
    assert result.n_pairs == int(sum(_band_of(d, d_edges) is not None for d in _distances(points)))


def _distances(points: pd.DataFrame) -> list[float]:
    xy = points[["x_m", "y_m"]].to_numpy().tolist()
    return [math.hypot(xy[a][0] - xy[b][0], xy[a][1] - xy[b][1]) for a, b in itertools.combinations(range(len(xy)), 2)]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cuts=st.lists(st.floats(0.0, 40.0, allow_nan=False), min_size=2, max_size=5, unique=True),
)
def test_observed_table_equals_brute_force_for_any_time_edges(seed: int, cuts: list[float]) -> None:
    t_edges = tuple(sorted(cuts))
    d_edges = (0.0, 60.0, 160.0)
    points = _points(seed, 60)
    result = knox_test(
        points, distance_bands_m=d_edges, time_bands_days=t_edges, permutations=2, seed=seed, keep_duplicates=True
    )
    observed = result.table["observed"].to_numpy().reshape(len(d_edges) - 1, len(t_edges) - 1)
    assert np.array_equal(observed, _brute_force(points, d_edges, t_edges))
    # every permutation keeps the pairs, so each row of expected counts sums to at most the pairs in that band
    expected = result.table["expected"].to_numpy().reshape(observed.shape)
    assert (expected.sum(axis=1) <= np.bincount(_d_bands(points, d_edges), minlength=len(d_edges) - 1) + 1e-9).all()


def _d_bands(points: pd.DataFrame, d_edges: tuple[float, ...]) -> np.ndarray:
    bands = [_band_of(d, d_edges) for d in _distances(points)]
    return np.array([b for b in bands if b is not None], dtype=np.int64)


def test_threaded_permutations_give_the_same_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The permutations are drawn in order in the calling thread; counting them on two threads changes nothing."""
    from crimelens.analysis.incidents import knox

    points = _points(5, 400)
    monkeypatch.setattr(knox, "THREADED_WORK", 10**18)  # one thread
    serial = knox_test(points, permutations=60, seed=9)
    monkeypatch.setattr(knox, "THREADED_WORK", 0)  # always threaded
    monkeypatch.setattr(knox, "_workers", lambda: 2)  # even on a single-core machine
    threaded = knox_test(points, permutations=60, seed=9)
    pd.testing.assert_frame_equal(serial.table, threaded.table, check_exact=True)
    assert serial.n_pairs == threaded.n_pairs


def test_duplicates_merged_by_default_equal_brute_force_on_deduplicated_points() -> None:
    # the gridded points (25 m steps, 60 days) hold many exact same-place, same-day duplicates; by default each
    # is counted once, so the table must equal the brute-force table of pandas' drop_duplicates on (x, y, date)
    points = _points(11, 120)
    unique = points.assign(day=points["occurred_at"].dt.normalize()).drop_duplicates(["x_m", "y_m", "day"])
    d_edges, t_edges = (0.0, 50.0, 100.0), (0.0, 7.0, 14.0)
    result = knox_test(points, distance_bands_m=d_edges, time_bands_days=t_edges, permutations=3, seed=1)
    assert len(unique) < len(points)  # the data really has duplicates
    assert result.n_merged == len(points) - len(unique)
    observed = result.table["observed"].to_numpy().reshape(2, 2)
    assert np.array_equal(observed, _brute_force(unique[["x_m", "y_m", "occurred_at"]], d_edges, t_edges))
    assert any(f"{result.n_merged:,} of 120 incidents" in note for note in result.notes)
