"""Grid hotspot forecasters and their metrics: hand-computed cases, leakage, and Toronto at small scale."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from crimelens import warehouse
from crimelens.errors import ConfigError, DataError, NotFittedError
from crimelens.models.evaluation import hit_rate_at, pai_at, pei_at, pei_star_at, score_periods
from crimelens.models.forecast import (
    GridEvents,
    LightGBMForecaster,
    NaiveForecaster,
    ProspectiveForecaster,
    RetrospectiveForecaster,
    SEPPForecaster,
    SpaceTimeKDEForecaster,
    downsample_zeros,
    lagged_features,
    nb_dispersion,
    nb_interval,
    pit_coverage,
)


def _events(points: list[tuple[float, float, int]], nx: int = 5, ny: int = 5, cell: float = 100.0) -> GridEvents:
    x, y, d = zip(*points, strict=True) if points else ((), (), ())
    return GridEvents.build(nx, ny, cell, list(x), list(y), list(d))


# -- metrics by hand --------------------------------------------------------------------------------------
def test_hit_rate_pai_pei_by_hand() -> None:
    # 10 cells; counts y; scores flag the top 20% = 2 cells: cells 0 and 1 (scores 9, 8)
    y = np.array([3, 0, 5, 1, 0, 0, 1, 0, 0, 0])  # 10 crimes
    s = np.array([9, 8, 7, 1, 0, 0, 0, 0, 0, 0])
    # hit rate = (3 + 0) / 10 = 0.3; PAI = 0.3 / 0.2 = 1.5
    assert hit_rate_at(y, s, 0.2) == pytest.approx(0.3)
    assert pai_at(y, s, 0.2) == pytest.approx(1.5)
    # PEI: the best 2 cells hold 5 + 3 = 8 crimes → 3 / 8
    assert pei_at(y, s, 0.2) == pytest.approx(3 / 8)
    # PEI*: a perfect forecast needs 1 cell (5 ≥ 3) for the 3 crimes caught, over 2 flagged → 0.5
    assert pei_star_at(y, s, 0.2) == pytest.approx(0.5)
    # PEI* when the flagged cells include an empty one: counts 4, 3, 2, 2, 1, 0 …; scores flag the cells holding
    # 2, 2, 1 (and none) … 30% of 10 = 3 cells: cells 2, 3, 4 with 5 crimes; the fewest cells holding ≥ 5 are the
    # 4 and the 3 (7) → a* = 2, a = 3 → PEI* = 2/3; PEI = 5 / (4 + 3 + 2) = 5/9
    y2 = np.array([4, 3, 2, 2, 1, 0, 0, 0, 0, 0])
    s2 = np.array([0, 0, 9, 8, 7, 1, 0, 0, 0, 0])
    assert pei_star_at(y2, s2, 0.3) == pytest.approx(2 / 3)
    assert pei_at(y2, s2, 0.3) == pytest.approx(5 / 9)
    # … and equals PAI over PAI*: (5/12)/(3/10) over (5/12)/(2/10)
    assert pei_star_at(y2, s2, 0.3) == pytest.approx(pai_at(y2, s2, 0.3) / ((5 / 12) / (2 / 10)))
    # 1% of 10 cells → ceil(0.1) = 1 cell: cell 0, 3 of 10
    assert hit_rate_at(y, s, 0.01) == pytest.approx(0.3)
    assert math.isnan(hit_rate_at(np.zeros(10), s, 0.2))
    with pytest.raises(ConfigError, match="coverage"):
        hit_rate_at(y, s, 0.0)


def test_score_periods_means_intervals_and_paired_difference() -> None:
    # two methods, one metric, three periods: A = 0.3, 0.4, 0.5; B = A + 0.01 every period
    a = np.array([0.3, 0.4, 0.5])
    values = np.stack([a, a + 0.01], axis=1)[:, :, None]
    s = score_periods(values, ["a", "b"], ["hr"], baseline="a", n_boot=200, seed=1)
    assert s.mean[:, 0] == pytest.approx([0.4, 0.41])
    # a constant paired difference has a degenerate interval: exactly +0.01 in every replicate
    assert s.diff[1, 0] == pytest.approx(0.01)
    assert (s.diff_low[1, 0], s.diff_high[1, 0]) == pytest.approx((0.01, 0.01))
    # the unpaired interval of a mean of {0.3, 0.4, 0.5} lies within [0.3, 0.5]
    assert 0.3 <= s.low[0, 0] <= 0.4 <= s.high[0, 0] <= 0.5
    with pytest.raises(DataError, match="shape"):
        score_periods(values[:, :1], ["a", "b"], ["hr"])


# -- methods by hand --------------------------------------------------------------------------------------
def test_naive_counts_the_last_n_days_only() -> None:
    # cell (1, 1) holds incidents on days 5, 8 and 10; cell (3, 3) one on day 1 (outside a 7-day window at 10)
    ev = _events([(150, 150, 5), (150, 150, 8), (150, 150, 10), (350, 350, 1)])
    f = NaiveForecaster(window=7).fit(ev, cutoff=10, horizon=7)
    # window days 3 … 9: cell 6 has days 5 and 8 → 2; day 10 is the cutoff itself, not before it
    assert f.score_cells()[6] == 2 and f.score_cells()[18] == 0
    assert f.predict()[6] == pytest.approx(2 * 7 / 7)
    with pytest.raises(NotFittedError):
        NaiveForecaster().predict()


def test_retrospective_quartic_kernel_by_hand() -> None:
    # one incident at the centre of cell (2, 2) of 300 m cells (sub-grid of 4 × 75 m); bandwidth 400 m
    ev = _events([(750, 750, 0)], cell=300.0)
    f = RetrospectiveForecaster(window=10, bandwidth=400.0).fit(ev, cutoff=5, horizon=1)
    # the incident sits at (750, 750), i.e. the sub-cell (10, 10) of 75 m whose centre is (787.5, 787.5): events
    # are placed at their sub-cell centre. Cell (2, 2) averages K over its 4 × 4 lattice points at offsets
    # {−1.5, −0.5, 0.5, 1.5} × 75 m from the cell centre (750, 750), i.e. at {−2, −1, 0, 1} × 75 m from the
    # event: mean over the 16 points of (1 − (d/400)²)².
    offs = np.array([-2, -1, 0, 1]) * 75.0
    d = np.hypot(offs[None, :], offs[:, None])
    expected_centre = float(np.mean(np.where(d < 400, (1 - (d / 400) ** 2) ** 2, 0)))
    assert f.surface_[2 * 5 + 2] == pytest.approx(expected_centre)
    # every cell's expectation: the surface as shares of 1 incident per 10 days × 1 day
    assert f.predict().sum() == pytest.approx(0.1)
    assert f.surface_[0] == pytest.approx(0.0, abs=1e-12)  # cell (0, 0) is > 400 m away (FFT round-off only)


def test_prospective_bowers_weights_by_hand() -> None:
    # 100 m cells, bandwidth 200 m = 2 cells, 8 weeks. Incidents in cell (2, 2): one on day 27 (the last week
    # before cutoff 28: w = 0) and one on day 13 (w = (27 − 13) // 7 = 2).
    ev = _events([(250, 250, 27), (250, 250, 13)])
    f = ProspectiveForecaster(bandwidth=200.0, weeks=8).fit(ev, cutoff=28, horizon=7)
    # cell (2, 2): d = 0 → (1 + 1/3) = 4/3. Cell (3, 2): d = 1 → ½ · 4/3 = 2/3. Cell (3, 3): d = √2 → 4/3 / (1 + √2).
    # Cell (4, 2): d = 2 → 4/3 / 3 = 4/9. Cell (4, 4): d = 2√2 > 2 → 0.
    s = f.surface_
    assert s[2 * 5 + 2] == pytest.approx(4 / 3)
    assert s[2 * 5 + 3] == pytest.approx(2 / 3)
    assert s[3 * 5 + 3] == pytest.approx(4 / 3 / (1 + math.sqrt(2)))
    assert s[2 * 5 + 4] == pytest.approx(4 / 9)
    assert s[4 * 5 + 4] == pytest.approx(0.0, abs=1e-12)


def test_space_time_kde_by_hand() -> None:
    # one incident at noon of day 9 at (250, 250), cutoff day 10: weight e^{−0.5/τ}; σ = 100 m, 100 m cells
    # (sub-grid 1: evaluated at cell centres). Cell (2, 2): distance 0 → e^{−0.5/10}; cell (3, 2): 100 m →
    # e^{−½} e^{−0.05}.
    ev = _events([(250, 250, 9)])
    f = SpaceTimeKDEForecaster(window=30, sigma=100.0, tau=10.0).fit(ev, cutoff=10, horizon=1)
    assert f.surface_[12] == pytest.approx(math.exp(-0.05))
    assert f.surface_[13] == pytest.approx(math.exp(-0.5) * math.exp(-0.05))


def test_sepp_em_on_a_hand_case() -> None:
    # one cell, window 10 days, incidents at noon of days 0 and 1. The only ordered pair (lag 1 day).
    # EM from μ = 2/(2·10) = 0.1, θ = 0.5, ω = 1/7 converges to the fixed point; check the M-step identities on
    # the fitted values: μ T + θ N = N (every incident is background or triggered) and the forecast formula.
    ev = _events([(50, 50, 0), (50, 50, 1)], nx=1, ny=1)
    f = SEPPForecaster(window=10, iterations=500).fit(ev, cutoff=10, horizon=7)
    mu, theta, omega = f.mu_[0], f.theta_, f.omega_
    assert mu * 10 + theta * 2 == pytest.approx(2.0, rel=1e-6)
    # with one pair, the M step sets ω = 1 / lag = 1 (Σ p Δ / Σ p = Δ)
    assert omega == pytest.approx(1.0, rel=1e-6)
    # forecast: μ h + θ Σ_i (e^{−ω(T − t_i)} − e^{−ω(T + h − t_i)}), t = 0.5 and 1.5, T = 10, h = 7
    exc = sum(math.exp(-omega * (10 - t)) - math.exp(-omega * (17 - t)) for t in (0.5, 1.5))
    assert f.predict()[0] == pytest.approx(mu * 7 + theta * exc)


def test_sepp_date_only_pairs_on_the_same_day_are_unordered() -> None:
    # three incidents known only to day 4 in one cell: no pair can be ordered → no triggering at all
    ev = _events([(50, 50, 4)] * 3, nx=1, ny=1)
    f = SEPPForecaster(window=10).fit(ev, cutoff=10, horizon=7)
    assert f.theta_ == 0.0
    assert f.predict()[0] == pytest.approx(3 / 10 * 7)  # background only: 3 incidents over 10 days


def test_sepp_recovers_self_excitation_from_date_only_times() -> None:
    # a simulated grid Hawkes process (μ = 0.05 a day in each of 100 cells, θ = 0.3, ω = 0.2 a day), times then
    # truncated to the day: the fit, pairing only incidents on different days, finds θ near 0.3.
    rng = np.random.default_rng(3)
    cells, days, horizon = 100, 2000, 0
    times: list[np.ndarray] = []
    cell_of: list[np.ndarray] = []
    for c in range(cells):  # the branching construction (one cell at a time, small)
        gen = list(rng.uniform(0, days, rng.poisson(0.05 * days)))
        out = list(gen)
        while gen:
            kids = []
            for t in gen:
                kids += list(t + rng.exponential(1 / 0.2, rng.poisson(0.3)))
            gen = [k for k in kids if k < days]
            out += gen
        times.append(np.array(out))
        cell_of.append(np.full(len(out), c))
    t = np.concatenate(times)
    c = np.concatenate(cell_of)
    ev = GridEvents.build(10, 10, 100.0, (c % 10) * 100 + 50, (c // 10) * 100 + 50, np.floor(t).astype(int))
    f = SEPPForecaster(window=days, max_lag=120).fit(ev, cutoff=days, horizon=7)
    assert 0.2 < f.theta_ < 0.4, f.theta_
    assert 0.1 < f.omega_ < 0.35, f.omega_
    del horizon


def test_lightgbm_learns_a_persistent_pattern_and_is_deterministic() -> None:
    # cells 0-4 get an incident every 2 days, the others none: the model ranks them on top
    days = np.arange(0, 400, 2)
    pts = [(50 + 100 * k, 50, int(d)) for k in range(5) for d in days]
    ev = _events(pts, nx=10, ny=2)
    a = LightGBMForecaster(window=200, n_cutoffs=4, n_estimators=20, min_child_samples=5).fit(ev, 400, 7)
    b = LightGBMForecaster(window=200, n_cutoffs=4, n_estimators=20, min_child_samples=5).fit(ev, 400, 7)
    assert np.array_equal(a.predict(), b.predict())
    top = set(np.argsort(-a.predict())[:5])
    assert top == {0, 1, 2, 3, 4}
    assert a.predict()[:5] == pytest.approx(np.full(5, 3.5), rel=0.15)  # 7 days / 2 = 3.5


def test_lightgbm_refits_on_its_schedule_only_from_incidents_before_the_refit_date() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    x, y, day = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n), rng.integers(0, 500, n)
    ev = GridEvents.build(10, 10, 100.0, x, y, day)
    kw = {"window": 200, "n_cutoffs": 4, "n_estimators": 10, "min_child_samples": 5, "refit_days": 28}
    f = LightGBMForecaster(**kw)
    # 400 = 14 · 28 + 8: refit date 392; 410 also falls on 392; 420 = 15 · 28 is its own refit date
    assert f.fit(ev, 400, 7).refitted_ and f.anchor_ == 392
    first_trees = f.model_
    assert not f.fit(ev, 410, 7).refitted_ and f.model_ is first_trees
    same = LightGBMForecaster(**kw).fit(ev, 410, 7)  # a fresh estimator at the same cutoff: the same forecast
    assert np.array_equal(f.predict(), same.predict())
    assert f.fit(ev, 420, 7).refitted_ and f.anchor_ == 420
    # incidents from the refit date on (392 … 409) do not reach the trees, only the features at 410
    moved = GridEvents.build(10, 10, 100.0, np.where(day >= 392, (x + 500) % 1000, x), y, day)
    a = LightGBMForecaster(**kw).fit(ev, 410, 7)
    b = LightGBMForecaster(**kw).fit(moved, 410, 7)
    probe = lagged_features(ev, 410, 7)
    assert np.array_equal(a.model_.predict(probe), b.model_.predict(probe))
    # other events: the estimator refits even on the same schedule
    assert f.fit(moved, 421, 7).refitted_


def test_downsample_zeros_keeps_positives_and_weights_kept_zeros_by_the_inverse_fraction() -> None:
    # 6 rows: targets 0, 0, 0, 0, 3, 1; rows 0-2 are eligible (cold), row 3 is a warm zero
    x = np.arange(12.0).reshape(6, 2)
    y = np.array([0.0, 0.0, 0.0, 0.0, 3.0, 1.0])
    eligible = np.array([True, True, True, False, True, True])
    xs, ys, w = downsample_zeros(x, y, 0.25, seed=7, eligible=eligible)
    assert w is not None
    kept = [int(r) for r in xs[:, 0] // 2]  # the row each kept row came from
    # rows 3 (warm zero), 4 and 5 (positive) are always kept, with weight 1; a kept cold zero weighs 1 / 0.25 = 4
    assert {3, 4, 5} <= set(kept) and kept == sorted(kept)
    assert np.array_equal(ys, y[kept])
    assert w.tolist() == [4.0 if r < 3 else 1.0 for r in kept]
    # fraction 1: every row, unweighted
    xa, ya, wa = downsample_zeros(x, y, 1.0, seed=7, eligible=eligible)
    assert xa is x and ya is y and wa is None
    # the same seed gives the same rows
    assert np.array_equal(downsample_zeros(x, y, 0.25, seed=7, eligible=eligible)[0], xs)
    with pytest.raises(ConfigError, match="zero_fraction"):
        downsample_zeros(x, y, 1.5, seed=0)
    with pytest.raises(ConfigError, match="zero_fraction"):
        downsample_zeros(x, y, 0.0, seed=0)


def test_downsample_zeros_keeps_weighted_totals_unbiased() -> None:
    # 90,000 zero rows and 10,000 rows of 1: the Poisson MLE of a constant rate is Σy / n = 0.1. Keeping 20% of the
    # zeros at weight 5, the weighted MLE Σwy / Σw stays 0.1 up to sampling noise: the number of zeros kept is
    # Binomial(90,000, 0.2), sd √(90,000 · 0.2 · 0.8) = 120 rows = 600 weighted rows; Σw = 100,000 ± 600, so the
    # rate is 0.1 ± 0.0006 (sd); a 5-sd band is ± 0.003. Unweighted, it would be 10,000 / 28,000 = 0.357.
    y = np.r_[np.zeros(90_000), np.ones(10_000)]
    x = np.zeros((y.size, 1))
    for seed in range(3):
        _, ys, w = downsample_zeros(x, y, 0.2, seed=seed)
        assert w is not None
        assert 25_000 < ys.size < 31_000  # 10,000 + about 18,000
        assert float((w * ys).sum() / w.sum()) == pytest.approx(0.1, abs=0.003)
        assert float(w.sum()) == pytest.approx(100_000, abs=3_000)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=60),
    st.floats(0.05, 1.0),
    st.integers(0, 2**31),
)
def test_downsample_zeros_drops_only_eligible_zero_rows(
    rows: list[tuple[int, bool]], fraction: float, seed: int
) -> None:
    y = np.array([float(t) for t, _ in rows])
    eligible = np.array([e for _, e in rows])
    x = np.arange(y.size, dtype=float)[:, None]  # each row's index
    xs, ys, w = downsample_zeros(x, y, fraction, seed, eligible)
    kept = xs[:, 0].astype(int)
    droppable = (y == 0) & eligible
    # every row that may not be dropped is kept, in order, with its target
    assert set(np.flatnonzero(~droppable)) <= set(kept.tolist()) and np.all(np.diff(kept) > 0)
    assert np.array_equal(ys, y[kept])
    weights = np.ones(kept.size) if w is None else w
    # a kept droppable row weighs 1 / fraction, every other row 1
    assert np.allclose(weights, np.where(droppable[kept], 1.0 / fraction, 1.0))


def test_lightgbm_downsampling_drops_only_cold_zero_rows_and_stays_close_to_all_rows() -> None:
    rng = np.random.default_rng(5)
    n = 6000
    # a hot corner (cells 0-3 busy) over a sparse background of 20 × 20 cells
    hot = rng.random(n) < 0.5
    x = np.where(hot, rng.uniform(0, 200, n), rng.uniform(0, 2000, n))
    y = np.where(hot, rng.uniform(0, 200, n), rng.uniform(0, 2000, n))
    day = rng.integers(0, 600, n)
    ev = GridEvents.build(20, 20, 100.0, x, y, day)
    kw = {"window": 300, "n_cutoffs": 4, "n_estimators": 30, "min_child_samples": 10}
    full = LightGBMForecaster(**kw, zero_fraction=1.0).fit(ev, 560, 7).predict()
    down = LightGBMForecaster(**kw, zero_fraction=0.2, cold_max=2).fit(ev, 560, 7).predict()
    # the busy cells stay on top, with close expected counts (their rows are all kept); totals stay close
    assert set(np.argsort(-down)[:4]) == set(np.argsort(-full)[:4])
    assert float(down.sum()) == pytest.approx(float(full.sum()), rel=0.15)
    with pytest.raises(ConfigError, match="zero_fraction"):
        LightGBMForecaster(zero_fraction=2.0).fit(ev, 560, 7)
    with pytest.raises(ConfigError, match="cold_max"):
        LightGBMForecaster(cold_max=-1).fit(ev, 560, 7)


def test_ring_sums_by_hand() -> None:
    from crimelens.models.forecast import _ring_sum

    # a 4 × 3 grid (nx = 4, ny = 3) of values 1 … 12, row-major from the south-west corner
    v = np.arange(1.0, 13.0)
    r1 = _ring_sum(v, 4, 3, 1).reshape(3, 4)
    # cell (row 1, col 1) = 6: its 8 neighbours 1, 2, 3, 5, 7, 9, 10, 11 → 48
    assert r1[1, 1] == 48.0
    # corner (0, 0) = 1: neighbours 2, 5, 6 → 13 (cells beyond the edge count 0)
    assert r1[0, 0] == 13.0
    r2 = _ring_sum(v, 4, 3, 2).reshape(3, 4)
    # cell (0, 0): the ring at distance 2 holds (0, 2) = 3, (1, 2) = 7, (2, 0) = 9, (2, 1) = 10, (2, 2) = 11 → 40
    assert r2[0, 0] == 40.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: NaiveForecaster(window=60),
        lambda: RetrospectiveForecaster(window=60),
        lambda: ProspectiveForecaster(),
        lambda: SpaceTimeKDEForecaster(window=60),
        lambda: SEPPForecaster(window=60),
        lambda: LightGBMForecaster(window=60, n_cutoffs=3, n_estimators=10, min_child_samples=5),
    ],
)
def test_no_leakage_data_on_or_after_the_cutoff_changes_nothing(make) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    n = 3000
    x, y = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    day = rng.integers(0, 200, n)
    base = GridEvents.build(10, 10, 100.0, x, y, day)
    # the same incidents before day 150, and different ones (moved, added) on or after it
    late = day >= 150
    x2 = np.where(late, rng.uniform(0, 1000, n), x)
    changed = GridEvents.build(10, 10, 100.0, np.r_[x2, x2[late]], np.r_[y, y[late]], np.r_[day, day[late]])
    p1 = make().fit(base, 150, 7).predict()
    p2 = make().fit(changed, 150, 7).predict()
    assert np.array_equal(p1, p2)


def test_nb_interval_and_dispersion() -> None:
    # Poisson(2): pmf 0.135, 0.271, 0.271, 0.180, 0.090, 0.036: [0, 4] holds 0.947 ≥ 0.9 (width 4); no width-3
    # interval does ([1, 4] 0.812, [0, 3] 0.857); the equal-tailed [0, 5] would hold 0.983
    lo, hi = nb_interval([2.0], 0.0, 0.9)
    assert (lo[0], hi[0]) == (0.0, 4.0)
    # Poisson(0.05): P(0) = 0.951 ≥ 0.9 → [0, 0]
    lo, hi = nb_interval([0.05], 0.0, 0.9)
    assert (lo[0], hi[0]) == (0.0, 0.0)
    # moments: y = (0, 4), μ = (2, 2): Σ[(y − μ)² − y] = (4 − 0) + (4 − 4) = 4; Σ μ² = 8 → α = 0.5
    assert nb_dispersion([0, 4], [2, 2]) == pytest.approx(0.5)
    assert nb_dispersion([2, 2], [2, 2]) == 0.0


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.5])
def test_nb_interval_is_the_shortest_by_brute_force(alpha: float) -> None:
    mus = np.array([0.03, 0.4, 1.0, 2.5, 7.0, 20.0])
    lo, hi = nb_interval(mus, alpha, 0.9)
    for m, a, b in zip(mus, lo, hi, strict=True):
        # independently: scipy's pmf on 0..300, every (lo, hi) pair, the narrowest holding ≥ 0.9
        k = np.arange(300)
        pmf = stats.poisson.pmf(k, m) if alpha == 0 else stats.nbinom.pmf(k, 1 / alpha, (1 / alpha) / (1 / alpha + m))
        cum = np.r_[0.0, np.cumsum(pmf)]
        width = min(h - lo_ for lo_ in range(60) for h in range(lo_, 300) if cum[h + 1] - cum[lo_] >= 0.9 - 1e-12)
        assert b - a == width
        assert cum[int(b) + 1] - cum[int(a)] >= 0.9 - 1e-12


def test_pit_coverage_is_the_level_for_calibrated_counts_and_not_otherwise() -> None:
    rng = np.random.default_rng(3)
    mu = rng.gamma(0.5, 0.4, 40_000)  # mostly tiny means: most counts are 0
    y = rng.poisson(mu)
    assert pit_coverage(y, mu, 0.0, 0.9) == pytest.approx(0.9, abs=0.01)
    # ...while the share of counts inside the whole-number interval is far above 0.9 (zeros)
    lo, hi = nb_interval(mu, 0.0, 0.9)
    assert float(np.mean((y >= lo) & (y <= hi))) > 0.93
    # over-dispersed counts (NB, α = 2): calibrated under the right α, too often outside under a Poisson
    m2 = rng.gamma(2.0, 1.0, 40_000)
    y2 = rng.negative_binomial(0.5, 0.5 / (0.5 + m2))
    assert pit_coverage(y2, m2, 2.0, 0.9) == pytest.approx(0.9, abs=0.01)
    assert pit_coverage(y2, m2, 0.0, 0.9) < 0.8
    # one count 0 under Poisson(1): PIT uniform on [0, e^-1 = 0.368]; the share in [0.05, 0.95] = 0.318 / 0.368
    assert pit_coverage([0], [1.0], 0.0, 0.9) == pytest.approx((math.exp(-1) - 0.05) / math.exp(-1))


def test_bad_parameters_are_clear() -> None:
    ev = _events([(50, 50, 0)])
    with pytest.raises(ConfigError, match="window"):
        NaiveForecaster(window=0).fit(ev, 5, 7)
    with pytest.raises(ConfigError, match="horizon"):
        NaiveForecaster().fit(ev, 5, 0)
    with pytest.raises(DataError, match="positions"):
        GridEvents.build(2, 2, 100.0, [500.0], [0.0], [0])


# -- Toronto, small scale -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toronto_db(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    db = tmp_path_factory.mktemp("forecast") / "toronto.duckdb"
    con = warehouse.connect(db)
    warehouse.load_incidents(con, real_data / "toronto_mci_2014_2019" / "toronto_mci_2014_2019.csv.gz", "toronto-mci")
    con.close()
    yield db


def test_toronto_eight_weeks(toronto_db: Path) -> None:
    from crimelens.models.hotspots import evaluate_forecasts

    con = duckdb.connect(str(toronto_db), read_only=True)
    try:
        r = evaluate_forecasts(
            con, "toronto-mci", cell_m=400.0, start="2019-01-01", end="2019-02-19",
            methods=("naive", "prospective", "sepp"), n_boot=200,
        )  # fmt: skip
    finally:
        con.close()
    assert r.periods == 8 and r.first_period == "2019-01-01"
    naive = r.methods["naive"]["hit_rate"]["0.05"]
    # last year's counts capture about a quarter to half of next week's incidents in 5% of the area
    assert 0.25 < naive < 0.5
    for m in ("prospective", "sepp"):
        d = r.paired_vs_naive[m]["0.05"]
        assert d["ci"][0] <= d["diff"] <= d["ci"][1]
        assert abs(d["diff"]) < 0.05  # a gain this large over naive would point to leakage
    assert 0.8 < r.methods["naive"]["interval_coverage_90"] <= 1.0
    d = r.to_dict()
    assert set(d["methods"]["naive"]["hit_rate"]) == {"0.01", "0.05", "0.1", "0.2"}


def test_one_period_has_no_interval() -> None:
    s = score_periods(np.array([[[0.3], [0.4]]]), ["a", "b"], ["hr"], baseline="a", n_boot=100)
    assert s.mean[:, 0] == pytest.approx([0.3, 0.4]) and s.diff[1, 0] == pytest.approx(0.1)
    assert np.isnan(s.low).all() and np.isnan(s.diff_low).all()


def test_lightgbm_without_enough_history_says_it_gives_the_naive_forecast() -> None:
    # 30 days of history: no training cutoff has the 91 days its features need
    ev = _events([(50 + 100 * (d % 5), 50, d) for d in range(30)])
    f = LightGBMForecaster(window=30).fit(ev, 30, 7)
    assert f.fallback_
    assert np.array_equal(f.predict(), NaiveForecaster(window=30).fit(ev, 30, 7).predict())


def test_bench_replaces_only_its_own_section() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "forecast_bench.py"
    spec = importlib.util.spec_from_file_location("forecast_bench", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    before = "# R\n\n## A\n\na\n\n## Hotspot forecasting\n\nold\n\n## B\n\nb\n"
    after = bench.replace_section(before, "## Hotspot forecasting\n\nnew\n")
    assert after == "# R\n\n## A\n\na\n\n## Hotspot forecasting\n\nnew\n\n## B\n\nb\n"
    assert bench.replace_section("# R\n", "## Hotspot forecasting\n\nx\n") == "# R\n\n## Hotspot forecasting\n\nx\n"
