"""Tests for crimelens.analysis.inference: each function against scipy.stats (the independent reference)
on many random cases, plus small cases by hand."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.special._ufuncs as scu
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from crimelens.analysis import inference as inf

REL = 1e-9


def _close(got: float, want: float, rel: float = REL, abs_: float = 0.0) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == pytest.approx(want, rel=rel, abs=abs_)


# -- normal and chi-squared ------------------------------------------------------------------------------
def test_normal_matches_scipy() -> None:
    z = np.random.default_rng(0).normal(0, 6, 20_000)
    want = sps.norm.sf(z)
    assert inf.normal_sf(z) == pytest.approx(want, rel=REL)
    assert np.isnan(inf.normal_sf(np.array([np.nan, 1.0]))[0])
    assert inf.normal_sf(0.0) == 0.5  # by symmetry
    for q in np.random.default_rng(1).uniform(0, 1, 2_000):
        assert inf.normal_ppf(q) == pytest.approx(sps.norm.ppf(q), rel=REL)
    assert inf.normal_ppf(0.975) == pytest.approx(1.959963984540054)  # the familiar 1.96


def test_chi2_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    df = rng.integers(1, 400, 20_000).astype(float)
    x = rng.gamma(df / 2, 2) * np.exp(rng.uniform(-3, 2.5, df.size))  # both tails, down to ~1e-300
    x[:200] = 0.0
    want = sps.chi2.sf(x, df)
    assert inf.chi2_sf(x, df) == pytest.approx(want, rel=REL, abs=1e-300)  # closed form for df ≤ 200
    other = rng.uniform(0.05, 50, 5_000)  # df not whole: the very function scipy.stats calls
    y = rng.gamma(other / 2, 2)
    assert np.array_equal(inf.chi2_sf(y, other), sps.chi2.sf(y, other))
    edges, dfs = np.array([np.nan, -1.0, np.inf, 0.0, 5.0, 0.0]), np.array([3.0, 3.0, 3.0, 0.0, -2.0, 7.0])
    assert np.array_equal(inf.chi2_sf(edges, dfs), sps.chi2.sf(edges, dfs), equal_nan=True)
    q = rng.uniform(0, 1, df.size)
    got, want = inf.chi2_ppf(q, df), sps.chi2.ppf(q, df)
    odd = df % 2 == 1  # odd df: the very function scipy.stats calls; even df: the Poisson-tail quantile
    assert np.array_equal(got[odd], want[odd])
    assert got[~odd] == pytest.approx(want[~odd], rel=1e-11)
    # the edges as scipy.stats: NaN for df = 0 (a count of zero in Garwood's lower limit), 0 and ∞ at q = 0, 1
    edge = inf.chi2_ppf(np.array([0.025, 0.0, 1.0, 0.5]), np.array([0.0, 2.0, 2.0, -1.0]))
    assert np.array_equal(edge, sps.chi2.ppf([0.025, 0.0, 1.0, 0.5], [0.0, 2.0, 2.0, -1.0]), equal_nan=True)
    # df = 2: the χ² tail is exp(−x/2); df = 1: erfc(√(x/2)); df = 4: exp(−x/2)(1 + x/2)
    assert inf.chi2_sf(3.0, 2) == pytest.approx(math.exp(-1.5), rel=1e-14)
    assert inf.chi2_sf(3.0, 1) == pytest.approx(math.erfc(math.sqrt(1.5)), rel=1e-14)
    assert inf.chi2_sf(3.0, 4) == pytest.approx(math.exp(-1.5) * 2.5, rel=1e-14)


@settings(max_examples=300, deadline=None)
@given(df=st.integers(1, 200), x=st.floats(0, 3_000))
def test_chi2_tail_in_closed_form_matches_scipy(df: int, x: float) -> None:
    want = float(sps.chi2.sf(x, df))
    assert float(inf.chi2_sf(x, df)) == pytest.approx(want, rel=REL, abs=1e-300)


# -- binomial ------------------------------------------------------------------------------------------------
def _binomial_cases(seed: int, count: int) -> list[tuple[int, int, float]]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        n = int(rng.integers(1, 10 ** int(rng.integers(1, 8))))
        p = float(rng.uniform(0.01, 0.99))
        spread = 4 * math.sqrt(n * p * (1 - p)) + 2
        k = int(np.clip(round(rng.normal(n * p, spread)), 0, n))
        cases.append((k, n, p))
    return cases


def test_binomial_pmf_cdf_sf_match_scipy() -> None:
    for k, n, p in _binomial_cases(3, 3_000):
        pmf = float(scu._binom_pmf(k, n, p))  # the Boost routine behind scipy.stats.binom.pmf
        assert _close(inf.binom_pmf(k, n, p), pmf, rel=1e-10, abs_=1e-300), (k, n, p)
        assert _close(inf.binom_cdf(k, n, p), float(sps.binom.cdf(k, n, p)), abs_=1e-300), (k, n, p)
        assert _close(inf.binom_sf(k, n, p), float(sps.binom.sf(k, n, p)), abs_=1e-300), (k, n, p)
    assert (inf.binom_pmf(-1, 5, 0.3), inf.binom_pmf(6, 5, 0.3)) == (0.0, 0.0)
    assert (inf.binom_cdf(-1, 5, 0.3), inf.binom_cdf(5, 5, 0.3), inf.binom_sf(-1, 5, 0.3), inf.binom_sf(5, 5, 0.3)) == (
        0.0,
        1.0,
        1.0,
        0.0,
    )
    # P(X = 2), X ~ Bin(4, 1/2): C(4, 2) / 16 = 6/16
    assert inf.binom_pmf(2, 4, 0.5) == pytest.approx(0.375, rel=1e-15)


def test_binom_test_matches_scipy_on_many_cases() -> None:
    for k, n, p in _binomial_cases(4, 3_000):
        want = sps.binomtest(k, n, p).pvalue
        assert _close(inf.binom_test(k, n, p), want, abs_=1e-300), (k, n, p)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 5_000_000),
    p=st.floats(0.001, 0.999),
    at=st.floats(0, 1),
)
def test_binom_test_and_interval_match_scipy(n: int, p: float, at: float) -> None:
    k = min(n, int(at * (n + 1)))
    test = sps.binomtest(k, n, p)
    # far in the tail scipy's sum underflows to 0 where ours is still a tiny positive number (seen: k=33, n=1075,
    # p=0.5 gives 1.9e-261 against 0.0); below 1e-250 both are 'zero' for any decision
    assert _close(inf.binom_test(k, n, p), test.pvalue, abs_=1e-250)
    ci = test.proportion_ci(confidence_level=0.95, method="exact")
    low, high = inf.clopper_pearson(k, n, 0.95)
    # scipy finds the limits by Brent's method to an absolute 2e-12; these are the closed-form beta quantiles
    assert low == pytest.approx(ci.low, rel=REL, abs=2e-12)
    assert high == pytest.approx(ci.high, rel=REL, abs=2e-12)


def test_binom_test_by_hand_in_exact_arithmetic() -> None:
    # Bin(10, 1/2), k = 2: outcomes no more likely than 2 are 0, 1, 2, 8, 9, 10: (1 + 10 + 45) · 2 / 1024
    assert inf.binom_test(2, 10, 0.5) == pytest.approx(112 / 1024, rel=1e-14)
    # an asymmetric p: sum the pmf of every outcome with pmf ≤ pmf(k) · (1 + 1e-7), exactly
    n, p, k = 30, Fraction(3, 10), 14
    pmf = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
    bound = pmf[k] * Fraction(10_000_001, 10_000_000)
    assert inf.binom_test(k, n, 0.3) == pytest.approx(float(sum(q for q in pmf if q <= bound)), rel=1e-12)
    assert inf.binom_test(5, 10, 0.5) == 1.0  # k = n·p


def test_clopper_pearson_by_hand_and_edges() -> None:
    # k = 0: upper limit solves (1 − p)^n = α/2, i.e. 1 − (α/2)^(1/n)
    low, high = inf.clopper_pearson(0, 10, 0.95)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-13)
    low, high = inf.clopper_pearson(10, 10, 0.95)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 10), rel=1e-13)
    with pytest.raises(ValueError, match="k: expected at most n"):
        inf.clopper_pearson(11, 10)
    with pytest.raises(ValueError, match="p: expected a probability"):
        inf.binom_test(1, 10, 1.5)


# -- Kendall's tau, Theil–Sen ------------------------------------------------------------------------------
def _series(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(3, 70))
    x = np.arange(1975, 1975 + n, dtype=float)
    if rng.random() < 0.25:  # ties in x too (not years, but the functions are general)
        x = rng.integers(0, max(2, n // 2), n).astype(float)
    y = rng.normal(500, 120, n) + rng.normal(0, 8) * np.arange(n)
    if rng.random() < 0.3:
        y = y.round(-1)  # ties in y
    if rng.random() < 0.1:
        y = rng.integers(0, 4, n).astype(float)  # many ties
    return x, y


def test_kendall_tau_matches_scipy_on_many_series() -> None:
    rng = np.random.default_rng(5)
    methods = set()
    for _ in range(3_000):
        x, y = _series(rng)
        want = sps.kendalltau(x, y)
        tau, p = inf.kendall_tau(x, y)
        assert _close(tau, float(want.statistic)), (x, y)
        assert _close(p, float(want.pvalue)), (x, y)
        ties = len(set(x)) < len(x) or len(set(y)) < len(y)
        methods.add("asymptotic" if ties or len(x) > 33 else "exact")
    assert methods == {"exact", "asymptotic"}  # both of scipy's methods were compared


def test_kendall_tau_by_hand_and_undefined() -> None:
    # 1, 2, 3 against 1, 3, 2: pairs (1,2) +, (1,3) +, (2,3) −: τ = (2 − 1) / 3; exact p: 4 of the 6
    # permutations have at least as many discordances either way → p = 1
    tau, p = inf.kendall_tau([1, 2, 3], [1, 3, 2])
    assert tau == pytest.approx(1 / 3) and p == pytest.approx(1.0)
    # a perfect increasing series of 5: only 1 of 5! = 120 orderings, two-sided p = 2/120
    assert inf.kendall_tau(range(5), [2, 4, 6, 8, 10]) == pytest.approx((1.0, 2 / 120))
    assert all(math.isnan(v) for v in inf.kendall_tau([1, 2, 3], [4, 4, 4]))  # constant y: undefined
    assert all(math.isnan(v) for v in inf.kendall_tau([1.0], [2.0]))


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 30), min_size=3, max_size=60),
)
def test_kendall_and_theil_sen_match_scipy_with_ties(values: list[int]) -> None:
    y = np.array(values, dtype=float)
    x = np.arange(2000, 2000 + y.size, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns on a constant series
        want = sps.kendalltau(x, y)
    tau, p = inf.kendall_tau(x, y)
    assert _close(tau, float(want.statistic)) and _close(p, float(want.pvalue))
    ts = sps.theilslopes(y, x, alpha=0.95)
    got = inf.theil_sen(y, x, 0.95)
    for mine, theirs in zip(got, ts, strict=True):
        assert _close(mine, float(theirs))


def test_theil_sen_matches_scipy_on_many_series() -> None:
    rng = np.random.default_rng(6)
    for _ in range(2_000):
        x, y = _series(rng)
        level = float(rng.choice([0.9, 0.95, 0.99, 0.05]))  # a level below 1/2 is read as 1 − level
        want = sps.theilslopes(y, x, alpha=level)
        got = inf.theil_sen(y, x, level)
        for mine, theirs in zip(got, want, strict=True):
            assert _close(mine, float(theirs)), (x, y, level)


def test_theil_sen_by_hand() -> None:
    # points (0, 0), (1, 2), (2, 3), (3, 7): slopes 2, 1.5, 7/3, 1, 2.5, 4 → median of 1, 1.5, 2, 7/3, 2.5, 4
    # = (2 + 7/3) / 2; intercept = median(y) − slope · median(x) = 2.5 − 13/6 · 1.5
    fit = inf.theil_sen([0, 2, 3, 7], [0, 1, 2, 3])
    assert fit.slope == pytest.approx(13 / 6)
    assert fit.intercept == pytest.approx(2.5 - 13 / 6 * 1.5)
    assert fit.low_slope <= fit.slope <= fit.high_slope
    with pytest.raises(ValueError, match="at least 2 points"):
        inf.theil_sen([1.0], [1.0])


# -- Benjamini–Hochberg ----------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=0, max_size=200))
def test_benjamini_hochberg_matches_scipy(ps: list[float]) -> None:
    p = np.array(ps, dtype=float)
    want = sps.false_discovery_control(p) if p.size else p
    assert np.array_equal(inf.benjamini_hochberg(p), want)


def test_benjamini_hochberg_by_hand() -> None:
    # sorted 0.001, 0.1, 0.5, 0.6 (m = 4): 0.004, 0.2, 0.667, 0.6 → running minimum from the top: 0.6, 0.6
    assert inf.benjamini_hochberg([0.5, 0.6, 0.1, 0.001]) == pytest.approx([0.6, 0.6, 0.2, 0.004])
    with pytest.raises(ValueError, match="between 0 and 1"):
        inf.benjamini_hochberg([0.2, np.nan])


def test_chi2_quantile_of_even_df_by_hand_and_for_national_counts() -> None:
    # df = 2: P(χ² ≤ x) = 1 − e^(−x/2), so the quantile is −2 ln(1 − q); df = 4: 1 − e^(−h)(1 + h) with h = x / 2
    assert float(inf.chi2_ppf(0.3, 2)) == pytest.approx(-2 * math.log(0.7), rel=1e-14)
    x = float(inf.chi2_ppf(0.9, 4))
    assert 1 - math.exp(-x / 2) * (1 + x / 2) == pytest.approx(0.9, rel=1e-13)
    # counts the size of a nation's (10⁵–10⁷): P(χ²_2k ≤ x) = P(Poisson(x / 2) ≥ k), checked by summing the
    # Poisson terms directly with scipy's log-gamma (scipy's own quantile drifts by up to 1 % in far tails here)
    from scipy.special import gammaln

    for k, q in [(120_000, 0.025), (1_250_000, 0.975), (9_982_426, 1e-10), (3, 1e-200)]:
        lam = float(inf.chi2_ppf(q, 2 * k)) / 2
        j = np.arange(k, k + 20 * int(math.sqrt(k)) + 200, dtype=float)
        tail = float(np.exp(-lam + j * math.log(lam) - gammaln(j + 1)).sum())
        assert tail == pytest.approx(q, rel=1e-9), (k, q)


def test_garwood_interval_matches_scipy_and_needs_an_exposure() -> None:
    from crimelens.analysis.incidents.ranking import poisson_rate_interval

    rng = np.random.default_rng(7)
    count = rng.integers(0, 50_000, 500).astype(float)
    exposure = rng.uniform(0.1, 50, 500)
    exposure[::7] = np.nan  # areas without a population
    with np.errstate(divide="ignore", invalid="ignore"):
        want_low = np.where(count > 0, sps.chi2.ppf(0.025, 2 * count) / 2, 0.0) / exposure
        want_high = sps.chi2.ppf(0.975, 2 * count + 2) / 2 / exposure
    low, high = poisson_rate_interval(count, exposure)
    assert low == pytest.approx(want_low, rel=1e-11, nan_ok=True)  # the same quantiles, to 10⁻¹¹
    assert high == pytest.approx(want_high, rel=1e-11, nan_ok=True)
    # no exposure at all (no populations loaded): every limit is undefined, as the formula gives
    low, high = poisson_rate_interval(count[:5], np.full(5, np.nan))
    assert np.isnan(low).all() and np.isnan(high).all() and low.shape == (5,)
