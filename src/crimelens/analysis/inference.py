"""The tests, intervals and estimators the analyses use, without importing ``scipy.stats``.

Importing ``scipy.stats`` costs over half a second, more than most commands spend on their data. These are the
same formulas as the scipy.stats functions the analyses used before, built on numpy and the standard library;
``scipy.special`` (a quarter of scipy.stats' import cost) is imported, inside the function, only for the χ² at
fractional or very large degrees of freedom. The same formulas give the same numbers to rounding:
``tests/test_inference.py`` checks each one against scipy.stats on many random cases.

- :func:`normal_sf`, :func:`normal_ppf`: the standard normal tail and quantile (``scipy.stats.norm``).
- :func:`chi2_sf`, :func:`chi2_ppf`: the χ² tail (in closed form for whole degrees of freedom) and quantile
  (``scipy.stats.chi2``).
- :func:`binom_pmf`, :func:`binom_cdf`, :func:`binom_sf`, :func:`binom_test`, :func:`clopper_pearson`: the
  binomial distribution, the exact two-sided binomial test and its exact interval (``scipy.stats.binomtest``).
- :func:`kendall_tau`: Kendall's τ-b and its p-value (``scipy.stats.kendalltau``), the Mann–Kendall trend test.
- :func:`theil_sen`: the Theil–Sen slope and Sen's interval (``scipy.stats.theilslopes``).
- :func:`benjamini_hochberg`: Benjamini–Hochberg adjusted p-values (``scipy.stats.false_discovery_control``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "TheilSen",
    "benjamini_hochberg",
    "binom_cdf",
    "binom_pmf",
    "binom_sf",
    "binom_test",
    "chi2_ppf",
    "chi2_sf",
    "clopper_pearson",
    "kendall_tau",
    "normal_ppf",
    "normal_sf",
    "poisson_rate_interval",
    "theil_sen",
]

_SQRT2 = math.sqrt(2.0)
_LN_2PI = math.log(2 * math.pi)
_LN_SQRT_2PI = 0.5 * _LN_2PI
_erfc = np.frompyfunc(math.erfc, 1, 1)


# -- normal ------------------------------------------------------------------------------------------------
def normal_sf(x: npt.ArrayLike) -> np.ndarray:
    """Upper tail P(Z > x) of the standard normal, elementwise (NaN stays NaN).

    ½ · erfc(x / √2) with the C library's ``erfc`` (as ``scipy.special.ndtr(-x)``, which ``scipy.stats.norm.sf``
    calls, computes it for |x| ≥ 1, and to rounding below). Abramowitz & Stegun (1964), *Handbook of
    Mathematical Functions*, 26.2.29.
    """
    z = np.asarray(x, dtype=np.float64)
    return np.asarray(0.5 * _erfc(z / _SQRT2), dtype=np.float64)


def normal_ppf(q: float) -> float:
    """The standard normal quantile Φ⁻¹(q) for 0 < q < 1 (``scipy.stats.norm.ppf``).

    ``statistics.NormalDist().inv_cdf``: Wichura (1988), "Algorithm AS 241: the percentage points of the
    normal distribution", Applied Statistics 37, accurate to about 1 part in 10¹⁶.
    """
    return NormalDist().inv_cdf(float(q))


# -- chi-squared ---------------------------------------------------------------------------------------------
#: Whole degrees of freedom up to this have the χ² tail in closed form (a sum of at most 100 terms).
_CLOSED_FORM_MAX_DF = 200


def _chi2_sf_whole(x: np.ndarray, df: int) -> np.ndarray:
    """Q(df / 2, x / 2) for whole ``df`` ≥ 1 as a finite sum of positive terms, each in log space.

    With h = x / 2: for even df = 2m, Q = Σ_{i<m} e^(−h) h^i / i! (the Poisson tail); for odd df = 2m + 1,
    Q = erfc(√h) + Σ_{i=1..m} e^(−h) h^(i − ½) / Γ(i + ½) (Abramowitz & Stegun 1964, 26.4.4–26.4.5, from the
    recurrence Q(a + 1, h) = Q(a, h) + h^a e^(−h) / Γ(a + 1), 6.5.21). No term cancels another, so the relative
    error is a few units of rounding per term.
    """
    h = x / 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        log_h = np.log(h)
        if df % 2 == 0:
            out = np.exp(-h)  # i = 0 (also right at h = 0, where log h = −∞)
            powers = [(float(i), math.lgamma(i + 1.0)) for i in range(1, df // 2)]
        else:
            out = np.asarray(_erfc(np.sqrt(h)), dtype=np.float64)  # Q(½, h)
            powers = [(i - 0.5, math.lgamma(i + 0.5)) for i in range(1, df // 2 + 1)]
        for power, log_gamma in powers:
            out = out + np.where(h > 0, np.exp(-h + power * log_h - log_gamma), 0.0)
    return np.asarray(out, dtype=np.float64)


def chi2_sf(x: npt.ArrayLike, df: npt.ArrayLike) -> np.ndarray:
    """Upper tail P(χ²_df > x), the regularised upper incomplete gamma function Q(df / 2, x / 2) (A&S 26.4.2).

    Whole ``df`` from 1 to 200 (every χ² test of counts): the closed form of :func:`_chi2_sf_whole`, which
    needs no scipy; other ``df``: ``scipy.special.chdtrc(df, x)``, the function ``scipy.stats.chi2.sf`` calls.
    As scipy.stats: 1 for x < 0, 0 at x = ∞, NaN for NaN x or df ≤ 0.
    """
    xs, dfs = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(np.asarray(x), np.asarray(df)))
    out = np.full(xs.shape, np.nan)
    valid = (dfs > 0) & ~np.isnan(xs)
    out[valid & (xs < 0)] = 1.0
    out[valid & (xs == np.inf)] = 0.0
    inside = valid & (xs >= 0) & (xs < np.inf)
    whole = inside & (dfs == np.round(dfs)) & (dfs <= _CLOSED_FORM_MAX_DF)
    for d in np.unique(dfs[whole]):
        at = whole & (dfs == d)
        out[at] = _chi2_sf_whole(xs[at], int(d))
    rest = inside & ~whole
    if rest.any():
        from scipy.special import chdtrc

        out[rest] = chdtrc(dfs[rest], xs[rest])
    return out


def _poisson_tails(k: int, lam: float) -> tuple[float, float, float]:
    """log P(N ≤ k − 1), log P(N ≥ k) and log P(N = k − 1) for N ~ Poisson(lam), k ≥ 1, lam > 0.

    Each tail is summed in log space outwards from its term next to k − ½ by the ratios of successive Poisson
    terms (j / λ downwards, λ / (j + 1) upwards; one ``lgamma`` for the anchor), over the terms within
    12·√λ + 40 of the mode (the rest are below 10⁻³⁰ of the largest)."""
    top = k - 1
    log_lam = math.log(lam)
    log_top = -lam + top * log_lam - math.lgamma(top + 1)  # log P(N = k − 1)
    width = int(12.0 * math.sqrt(lam)) + 40
    low = max(0, min(top, int(lam)) - width)
    down = np.arange(top, low, -1, dtype=np.float64)  # term(j − 1) = term(j) · j / λ for j = k − 1 … low + 1
    lower = np.empty(down.size + 1)
    lower[0] = 0.0
    np.cumsum(np.log(down) - log_lam, out=lower[1:])
    high = max(top, int(lam)) + width
    up = np.arange(k, high + 1, dtype=np.float64)  # term(j) = term(j − 1) · λ / j for j = k … high
    upper = np.cumsum(log_lam - np.log(up))

    def log_sum(logs: np.ndarray) -> float:
        peak = float(logs.max())
        return log_top + peak + math.log(float(np.exp(logs - peak).sum()))

    return log_sum(lower), log_sum(upper), log_top


@functools.lru_cache(maxsize=4096)  # a pure function; rankings by count and by rate ask for the same counts
def _gamma_quantile_whole(k: int, q: float) -> float:
    """λ with P(k, λ) = q for a whole shape k ≥ 1, 0 < q < 1.

    P(k, λ) = P(N ≥ k) for N ~ Poisson(λ), so λ solves log P(N ≥ k) = log q (q ≤ ½) or log P(N ≤ k − 1) =
    log(1 − q) (q > ½), each tail summed directly (no 1 − p cancellation). Newton's method in log space (the
    derivative of P(N ≥ k) in λ is P(N = k − 1)) from the Wilson–Hilferty start (Johnson, Kotz & Balakrishnan
    1994, *Continuous Univariate Distributions* 1, §18.5) stops when a step is below 10⁻¹¹ of λ."""
    if k == 1:
        return -math.log1p(-q)
    df = 2.0 * k
    z = NormalDist().inv_cdf(q)
    lam = 0.5 * df * (1.0 - 2.0 / (9.0 * df) + z * math.sqrt(2.0 / (9.0 * df))) ** 3
    if lam < 1e-3 * k:  # far in the lower tail, where P(k, λ) ≈ λᵏ / k!
        lam = math.exp((math.log(q) + math.lgamma(k + 1)) / k)
    upper_side = q <= 0.5
    log_target = math.log(q) if upper_side else math.log1p(-q)
    for _ in range(100):
        log_lower, log_upper, log_pmf = _poisson_tails(k, lam)
        log_tail = log_upper if upper_side else log_lower
        slope = math.exp(log_pmf - log_tail) * (1.0 if upper_side else -1.0)  # d log tail / dλ
        step = (log_target - log_tail) / slope
        new = lam + step
        if new <= 0.0:
            new = lam / 4.0
        done = abs(new - lam) <= 1e-11 * new  # the tails are summed to about 10⁻¹², so λ to about 10⁻¹³
        lam = new
        if done:
            break
    return lam


#: Whole shapes up to this use the Poisson-sum quantile (a few thousand terms at most); others scipy.special.
_WHOLE_SHAPE_MAX = 10_000_000


def chi2_ppf(q: npt.ArrayLike, df: npt.ArrayLike) -> np.ndarray:
    """The χ²_df quantile at 0 < q < 1: 2 · P⁻¹(df / 2, q), as ``scipy.stats.chi2.ppf`` computes it.

    P⁻¹ is the inverse regularised lower incomplete gamma function. For even whole ``df`` (the χ² quantiles of
    Garwood's Poisson interval, df = 2c and 2c + 2) it is found without scipy from the Poisson tail
    (:func:`_gamma_quantile_whole`), to about 1 part in 10¹²; other ``df`` use ``scipy.special.gammaincinv``,
    imported only then. As scipy.stats: NaN where df ≤ 0 or q is outside [0, 1], 0 at q = 0 and ∞ at q = 1.
    """
    qs, dfs = np.broadcast_arrays(np.asarray(q, dtype=np.float64), np.asarray(df, dtype=np.float64))
    out = np.full(qs.shape, np.nan)
    ok = dfs > 0
    inside = ok & (qs > 0) & (qs < 1)
    half = dfs / 2
    whole = inside & (half == np.round(half)) & (half <= _WHOLE_SHAPE_MAX)
    flat_out, flat_half, flat_q = out.reshape(-1), half.reshape(-1), qs.reshape(-1)  # views of the same cells
    for at in np.flatnonzero(whole):
        flat_out[at] = 2.0 * _gamma_quantile_whole(int(flat_half[at]), float(flat_q[at]))
    rest = inside & ~whole
    if rest.any():
        from scipy.special import gammaincinv

        out[rest] = 2 * gammaincinv(half[rest], qs[rest])
    out[ok & (qs == 0)] = 0.0
    out[ok & (qs == 1)] = np.inf
    return out


# -- binomial ----------------------------------------------------------------------------------------------
_S0, _S1, _S2, _S3, _S4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188


def _stirlerr(n: float) -> float:
    """log(n!) − log(√(2πn) (n/e)ⁿ), the error of Stirling's formula (Loader 2000, eq. 2 and its series)."""
    if n <= 15.0:
        return math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - _LN_SQRT_2PI
    nn = n * n
    if n > 500:
        return (_S0 - _S1 / nn) / n
    if n > 80:
        return (_S0 - (_S1 - _S2 / nn) / nn) / n
    if n > 35:
        return (_S0 - (_S1 - (_S2 - _S3 / nn) / nn) / nn) / n
    return (_S0 - (_S1 - (_S2 - (_S3 - _S4 / nn) / nn) / nn) / nn) / n


def _bd0(x: float, mean: float) -> float:
    """The deviance term x log(x / mean) + mean − x, by its series when x is near mean (Loader 2000, §2)."""
    if abs(x - mean) < 0.1 * (x + mean):
        v = (x - mean) / (x + mean)
        s = (x - mean) * v
        if abs(s) < 2.2250738585072014e-308:
            return s
        ej = 2 * x * v
        v *= v
        for j in range(1, 1000):
            ej *= v
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
    return x * math.log(x / mean) + mean - x


def binom_pmf(k: int, n: int, p: float) -> float:
    """P(X = k) for X ~ Binomial(n, p), accurate to rounding for any n (0 outside 0…n).

    Catherine Loader (2000), "Fast and accurate computation of binomial probabilities" (the saddle-point
    expansion R's ``dbinom`` uses): no cancellation of large logarithms, so it keeps full relative precision
    for counts of millions, as the Boost routine behind ``scipy.stats.binom.pmf`` does.
    """
    if k < 0 or k > n:
        return 0.0
    q = 1.0 - p
    if p == 0:
        return 1.0 if k == 0 else 0.0
    if q == 0:
        return 1.0 if k == n else 0.0
    if k == 0:
        if n == 0:
            return 1.0
        return math.exp(-_bd0(n, n * q) - n * p if p < 0.1 else n * math.log(q))
    if k == n:
        return math.exp(-_bd0(n, n * p) - n * q if q < 0.1 else n * math.log(p))
    lc = _stirlerr(n) - _stirlerr(k) - _stirlerr(n - k) - _bd0(k, n * p) - _bd0(n - k, n * q)
    lf = _LN_2PI + math.log(k) + math.log1p(-k / n)
    return math.exp(lc - 0.5 * lf)


def _upper_tail(j: int, n: int, p: float) -> float:
    """P(X ≥ j), summed upwards from the exact P(X = j) (Loader 2000) while terms still count (j above the mean)."""
    odds = p / (1.0 - p)
    term = binom_pmf(j, n, p)
    total = term
    while j < n and term > total * 1e-17:
        term *= (n - j) / (j + 1) * odds
        j += 1
        total += term
    return total


def _lower_tail(j: int, n: int, p: float) -> float:
    """P(X ≤ j), summed downwards from the exact P(X = j) while terms still count (j below the mean)."""
    odds = p / (1.0 - p)
    term = binom_pmf(j, n, p)
    total = term
    while j > 0 and term > total * 1e-17:
        term *= j / (n - j + 1) / odds
        j -= 1
        total += term
    return total


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p) (= 1 − I_p(k + 1, n − k), A&S 26.5.24), without importing scipy.

    The nearer tail is summed from its exact end term (see :func:`binom_sf`), so a small lower tail keeps full
    relative precision.
    """
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    if k < n * p:
        return min(_lower_tail(k, n, p), 1.0)
    return max(1.0 - _upper_tail(k + 1, n, p), 0.0)


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X > k) for X ~ Binomial(n, p), = I_p(k + 1, n − k) (A&S 26.5.24), without importing scipy.

    Summed from the exact probability at the nearer end of the tail (:func:`binom_pmf`, Loader 2000) with the
    ratio p(j + 1) / p(j) = (n − j) / (j + 1) · p / (1 − p), until a term no longer changes the sum: the upper
    tail directly when k + 1 lies above the mean n·p (full relative precision far in the tail), else 1 − P(X ≤ k)
    summed downwards. About nine standard deviations of terms at most (a millisecond for n of a million).
    """
    if k < 0:
        return 1.0
    if k >= n:
        return 0.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    if k + 1 > n * p:
        return min(_upper_tail(k + 1, n, p), 1.0)
    return max(1.0 - _lower_tail(k, n, p), 0.0)


def _whole(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}: expected a whole number ≥ {low}, got {value!r}")
    return int(value)


def _check_binomial(k: object, n: object, p: object) -> tuple[int, int, float]:
    k_, n_ = _whole("k", k, 0), _whole("n", n, 1)
    if k_ > n_:
        raise ValueError(f"k: expected at most n = {n_}, got {k_}")
    if not isinstance(p, float | int) or isinstance(p, bool) or not 0 <= p <= 1:
        raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
    return k_, n_, float(p)


def _binary_search(a: Callable[[int], float], d: float, lo: int, hi: int) -> int:
    """The index i in [lo, hi] with a(i) ≤ d < a(i + 1), for ``a`` ascending on [lo, hi] (scipy's search)."""
    while lo < hi:
        mid = lo + (hi - lo) // 2
        midval = a(mid)
        if midval < d:
            lo = mid + 1
        elif midval > d:
            hi = mid - 1
        else:
            return mid
    return lo if a(lo) <= d else lo - 1


def binom_test(k: int, n: int, p: float) -> float:
    """Two-sided exact binomial test of H0: success probability ``p``, given ``k`` successes in ``n`` trials.

    The p-value sums the probabilities of every outcome no more likely than the one observed, ``P(X = i) ≤
    P(X = k) · (1 + 10⁻⁷)`` (the "minlike" rule; the relative tolerance absorbs rounding of equal
    probabilities), found by a binary search on the far side of the mode: the algorithm of
    ``scipy.stats.binomtest(k, n, p).pvalue`` step by step (Zar 2010, *Biostatistical Analysis*, 5th ed.,
    §24.5).
    """
    k, n, p = _check_binomial(k, n, p)
    d = binom_pmf(k, n, p)
    rerr = 1 + 1e-7
    if k == p * n:
        return 1.0
    if k < p * n:
        ix = _binary_search(lambda x1: -binom_pmf(x1, n, p), -d * rerr, math.ceil(p * n), n)
        # y: the outcomes between the mode and n no more likely than k (ix itself when exactly on the bound)
        y = n - ix + int(d * rerr == binom_pmf(ix, n, p))
        pval = binom_cdf(k, n, p) + binom_sf(n - y, n, p)
    else:
        ix = _binary_search(lambda x1: binom_pmf(x1, n, p), d * rerr, 0, math.floor(p * n))
        y = ix + 1
        pval = binom_cdf(y - 1, n, p) + binom_sf(k - 1, n, p)
    return min(1.0, pval)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper–Pearson) two-sided interval for a binomial proportion, k successes in n trials.

    The lower limit solves P(X ≥ k | p) = α/2 and the upper P(X ≤ k | p) = α/2 with α = 1 − confidence
    (Clopper & Pearson 1934, "The use of confidence or fiducial limits illustrated in the case of the
    binomial", Biometrika 26): the beta quantiles B⁻¹(α/2; k, n − k + 1) and B⁻¹(1 − α/2; k + 1, n − k)
    (``scipy.special.betaincinv``, ``betainccinv``), 0 when k = 0 and 1 when k = n. These are the limits
    ``scipy.stats.binomtest(k, n).proportion_ci(confidence, method='exact')`` finds by root-finding (Brent's
    method to an absolute 2·10⁻¹²), solved in closed form.
    """
    from scipy.special import betainccinv, betaincinv

    k, n, _ = _check_binomial(k, n, 0.5)
    if not isinstance(confidence, float | int) or not 0 <= confidence <= 1:
        raise ValueError(f"confidence: expected a level in [0, 1], got {confidence!r}")
    alpha = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, alpha))
    high = 1.0 if k == n else float(betainccinv(k + 1, n - k, alpha))
    return low, high


# -- Kendall's tau ---------------------------------------------------------------------------------------
def _tie_terms(ranks: np.ndarray) -> tuple[int, int, int]:
    """Σ t(t − 1)/2, Σ t(t − 1)(t − 2) and Σ t(t − 1)(2t + 5) over the groups of t tied values."""
    cnt = np.bincount(ranks).astype(np.int64)
    cnt = cnt[cnt > 1]
    return (
        int((cnt * (cnt - 1) // 2).sum()),
        int((cnt * (cnt - 1.0) * (cnt - 2)).sum()),
        int((cnt * (cnt - 1.0) * (2 * cnt + 5)).sum()),
    )


def _kendall_p_exact(n: int, c: int) -> float:
    """Two-sided exact p of c concordant pairs among n untied values (Kendall 1970, *Rank Correlation
    Methods*, 4th ed.: the counts of permutations by number of inversions), as scipy computes it."""
    c = int(min(c, (n * (n - 1)) // 2 - c))
    if n <= 2:
        prob = 1.0
    elif c == 0:
        prob = 2.0 / math.factorial(n) if n < 171 else 0.0
    elif c == 1:
        prob = 2.0 / math.factorial(n - 1) if n < 172 else 0.0
    elif 4 * c == n * (n - 1):
        prob = 1.0
    elif n < 171:
        new = np.zeros(c + 1)
        new[0:2] = 1.0
        for j in range(3, n + 1):
            new = np.cumsum(new)
            if j <= c:
                new[j:] -= new[: c + 1 - j]
        prob = 2.0 * np.sum(new) / math.factorial(n)
    else:
        new = np.zeros(c + 1)
        new[0:2] = 1.0
        for j in range(3, n + 1):
            new = np.cumsum(new) / j
            if j <= c:
                new[j:] -= new[: c + 1 - j]
        prob = float(np.sum(new))
    return float(np.clip(prob, 0, 1))


def kendall_tau(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[float, float]:
    """Kendall's τ-b between ``x`` and ``y`` and its two-sided p-value (NaN, NaN when undefined).

    τ-b = (C − D) / √((N − Tx)(N − Ty)) over the N = n(n − 1)/2 pairs, C and D the concordant and discordant
    pairs, Tx and Ty those tied in x and in y (Kendall 1945, "The treatment of ties in ranking problems",
    Biometrika 33). With x the years this is the Mann–Kendall trend test (Mann 1945, Econometrica 13). The
    p-value follows ``scipy.stats.kendalltau(x, y)`` (method 'auto'): without ties and with n ≤ 33 (or at most
    one discordant or concordant pair) the exact null distribution of C (Kendall 1970); otherwise the normal
    approximation to C − D with the tie-corrected variance of Kendall (1970, eq. 4.4)
    [n(n − 1)(2n + 5) − Σ t(t − 1)(2t + 5) − Σ u(u − 1)(2u + 5)] / 18
    + Σ t(t − 1) Σ u(u − 1) / (2n(n − 1)) + Σ t(t − 1)(t − 2) Σ u(u − 1)(u − 2) / (9n(n − 1)(n − 2)).
    Pairs are counted directly, O(n²): meant for yearly series.
    """
    xa, ya = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if xa.size != ya.size:
        raise ValueError(f"x and y: expected the same length, got {xa.size} and {ya.size}")
    size = xa.size
    if size < 2 or np.isnan(xa).any() or np.isnan(ya).any():
        return math.nan, math.nan
    rx = np.unique(xa, return_inverse=True)[1].ravel()
    ry = np.unique(ya, return_inverse=True)[1].ravel()
    upper = np.triu_indices(size, 1)
    prod = (np.sign(rx[:, None] - rx[None, :]) * np.sign(ry[:, None] - ry[None, :]))[upper]
    con_minus_dis = int(prod.sum())
    dis = int((prod < 0).sum())
    xtie, x0, x1 = _tie_terms(rx)
    ytie, y0, y1 = _tie_terms(ry)
    tot = (size * (size - 1)) // 2
    if xtie == tot or ytie == tot:
        return math.nan, math.nan
    tau = float(min(1.0, max(-1.0, con_minus_dis / np.sqrt(tot - xtie) / np.sqrt(tot - ytie))))
    if xtie == 0 and ytie == 0 and (size <= 33 or min(dis, tot - dis) <= 1):
        return tau, _kendall_p_exact(size, tot - dis)
    m = size * (size - 1.0)
    var = (m * (2 * size + 5) - x1 - y1) / 18 + (2 * xtie * ytie) / m + x0 * y0 / (9 * m * (size - 2))
    z = con_minus_dis / np.sqrt(var)
    return tau, float(2 * normal_sf(abs(z)))


# -- Theil–Sen -----------------------------------------------------------------------------------------------
class TheilSen(NamedTuple):
    """Theil–Sen slope, intercept and the slope's confidence limits."""

    slope: float
    intercept: float
    low_slope: float
    high_slope: float


def _repeat_counts(values: np.ndarray) -> np.ndarray:
    """How many times each value that occurs more than once occurs."""
    counts = np.unique(values, return_counts=True)[1]
    return counts[counts > 1]


def theil_sen(y: npt.ArrayLike, x: npt.ArrayLike, confidence: float = 0.95) -> TheilSen:
    """Theil–Sen slope of ``y`` on ``x`` with Sen's confidence interval, as ``scipy.stats.theilslopes``.

    The slope is the median of the slopes (y_j − y_i) / (x_j − x_i) over the pairs with x_j > x_i (Theil
    1950, "A rank-invariant method of linear and polynomial regression analysis", Indag. Math. 12; Sen 1968,
    "Estimates of the regression coefficient based on Kendall's tau", JASA 63); the intercept is median(y) −
    slope · median(x). The interval takes the order statistics of the slopes at ranks (N ∓ z·σ) / 2, N the
    number of slopes, z the normal quantile of (1 − confidence) / 2 and σ² Sen's (1968) eq. 2.6, the variance
    of Kendall's S with ties in x and y: [n(n − 1)(2n + 5) − Σ t(t − 1)(2t + 5) − Σ u(u − 1)(2u + 5)] / 18.
    A level below one half is read as 1 − level (as scipy does). Limits are NaN when they cannot be formed.
    """
    ya = np.array(y, dtype=float, copy=True).ravel()
    xa = np.array(x, dtype=float, copy=True).ravel()
    if len(xa) != len(ya):
        raise ValueError(f"x and y: expected the same length, got {len(xa)} and {len(ya)}")
    if len(xa) < 2:
        raise ValueError(f"x and y: expected at least 2 points, got {len(xa)}")
    deltax = xa[:, np.newaxis] - xa
    deltay = ya[:, np.newaxis] - ya
    slopes = deltay[deltax > 0] / deltax[deltax > 0]
    if not slopes.size:
        return TheilSen(math.nan, math.nan, math.nan, math.nan)
    slopes.sort()
    medslope = float(np.median(slopes))
    medinter = float(np.median(ya) - medslope * np.median(xa))
    alpha = float(confidence)
    if alpha > 0.5:
        alpha = 1.0 - alpha
    z = normal_ppf(alpha / 2.0)
    nxreps, nyreps = _repeat_counts(xa), _repeat_counts(ya)
    nt = len(slopes)  # N in Sen (1968)
    ny = len(ya)  # n in Sen (1968)
    sigsq = (
        1
        / 18.0
        * (
            ny * (ny - 1) * (2 * ny + 5)
            - sum(int(k) * (int(k) - 1) * (2 * int(k) + 5) for k in nxreps)
            - sum(int(k) * (int(k) - 1) * (2 * int(k) + 5) for k in nyreps)
        )
    )
    try:
        sigma = math.sqrt(sigsq)
        ru = min(round((nt - z * sigma) / 2.0), len(slopes) - 1)
        rl = max(round((nt + z * sigma) / 2.0) - 1, 0)
        low, high = float(slopes[rl]), float(slopes[ru])
    except (ValueError, IndexError):
        low, high = math.nan, math.nan
    return TheilSen(medslope, medinter, low, high)


# -- multiple testing ----------------------------------------------------------------------------------------
def benjamini_hochberg(p: npt.ArrayLike) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), in the order given.

    q_(i) = min over j ≥ i of p_(j) · m / j, clipped to [0, 1], for the ordered p_(1) ≤ … ≤ p_(m) (Benjamini &
    Hochberg 1995, "Controlling the false discovery rate", JRSS B 57; the adjusted form of Yekutieli &
    Benjamini 1999, J. Stat. Plan. Inference 82), as ``scipy.stats.false_discovery_control(p, method='bh')``
    and R's ``p.adjust(p, 'BH')``. Every p must be in [0, 1] (leave NaNs out first).
    """
    ps = np.asarray(p, dtype=np.float64).ravel()
    if not bool(np.all(ps == np.clip(ps, 0.0, 1.0))):
        raise ValueError("p: expected p-values between 0 and 1 (leave missing ones out)")
    m = ps.size
    if m <= 1:
        return ps.copy()
    order = np.argsort(ps)
    q = ps[order] * (m / np.arange(1, m + 1, dtype=np.float64))
    np.minimum.accumulate(q[::-1], out=q[::-1])
    out = np.empty_like(q)
    out[order] = q
    return np.clip(out, 0.0, 1.0)


def poisson_rate_interval(
    count: np.ndarray, exposure: np.ndarray, *, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood 1936) interval for a Poisson rate count / exposure.

    Lower = χ²(α/2; 2c) / 2 / exposure, upper = χ²(1 − α/2; 2c + 2) / 2 / exposure, lower = 0 when c = 0
    (Garwood 1936, "Fiducial limits for the Poisson distribution", Biometrika 28; Ulm 1990); the χ² quantiles
    are :func:`crimelens.analysis.inference.chi2_ppf` (as ``scipy.stats.chi2.ppf``).
    """
    alpha = 1 - level
    c = np.asarray(count, dtype="float64")
    e = np.asarray(exposure, dtype="float64")
    if not np.isfinite(e).any():  # no exposure (no populations): every limit is undefined, nothing to compute
        shape = np.broadcast(c, e).shape
        return np.full(shape, np.nan), np.full(shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(c > 0, chi2_ppf(alpha / 2, 2 * c) / 2, 0.0) / e
        high = chi2_ppf(1 - alpha / 2, 2 * c + 2) / 2 / e
    return low, high
