"""Spike detectors: each turns a panel of count series into a score (and, where it has one, a p-value) per cell.

A higher score is always more unusual, so one false-alarm budget can be calibrated for any method
(:mod:`crimelens.alerts.control`). The methods (:data:`METHODS`):

=================  ==============================================================================================
``compstat``       the CompStat rule: percent change against the same period last year (the previous year for
                   yearly data; the previous period when the data hold no year-ago period). The baseline.
``recent-z``       Poisson z-score against the mean of the previous 8 periods (the plain early-warning baseline).
``seasonal-z``     Poisson z-score against the same period in prior years, plus trend.
``seasonal-exact`` exact Poisson test against the same expectation.
``glm``            quasi-Poisson GLM expectation (Farrington et al. 1996; Noufaily et al. 2013) and the negative
                   binomial tail beyond it (:mod:`crimelens.alerts.glm`).
``pooled``         exact Poisson test against the pooled expectation: a profile shared by every series times each
                   series' own level (for sparse series).
``cusum``          negative binomial CUSUM against the pooled expectation, tuned to a doubling.
``ewma``           EWMA chart of the standardised residuals from the pooled expectation.
=================  ==============================================================================================

Counts are police-recorded crime: a spike can be a change in reporting or recording (a new online form, a
recording campaign, a backlog entered at once) as well as a change in crime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crimelens.alerts.expectations import (
    dispersion,
    pooled_expectation,
    recent_expectation,
    seasonal_expectation,
)
from crimelens.alerts.glm import GlmSettings, glm_expectation
from crimelens.alerts.series import SeriesPanel
from crimelens.errors import ConfigError

__all__ = [
    "METHODS",
    "P_VALUE_METHODS",
    "Detection",
    "compstat_change",
    "detect",
    "ewma_chart",
    "nb_cusum",
    "nb_interval",
    "nb_upper_p",
    "poisson_upper_p",
    "poisson_z",
    "tail_score",
]

METHODS: tuple[str, ...] = (
    "compstat",
    "recent-z",
    "seasonal-z",
    "seasonal-exact",
    "glm",
    "pooled",
    "cusum",
    "ewma",
)
#: Methods with a p-value (FDR control applies to them); the others have a score only (use a budget).
P_VALUE_METHODS: tuple[str, ...] = ("recent-z", "seasonal-z", "seasonal-exact", "glm", "pooled")

METHOD_LABELS: dict[str, str] = {
    "compstat": "CompStat % change vs same period last year",
    "recent-z": "Poisson z vs previous 8 periods",
    "seasonal-z": "Poisson z vs same period prior years + trend",
    "seasonal-exact": "exact Poisson test vs same period prior years + trend",
    "glm": "quasi-Poisson GLM (Farrington/Noufaily)",
    "pooled": "exact Poisson test vs pooled expectation",
    "cusum": "negative binomial CUSUM (pooled expectation)",
    "ewma": "EWMA chart (pooled expectation)",
}


@dataclass(frozen=True)
class Detection:
    """What a method says about every cell of a panel.

    ``score``: higher is more unusual (NaN: no verdict); ``pvalue``: one-sided upper-tail p-values (None for
    score-only methods); ``expected``: the expected count; ``lower``/``upper``: the central 95% interval of
    the count under that expectation; ``elevated``: cells above the expectation at the unadjusted level (p <
    0.05, a positive CUSUM, an EWMA above 2 standard errors, a rise for CompStat), used to say since when a
    series has been elevated.
    """

    method: str
    score: np.ndarray
    pvalue: np.ndarray | None
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    elevated: np.ndarray


# -- tests and intervals ----------------------------------------------------------------------------------
def poisson_z(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """(y − μ) / √μ: the Poisson z-score (NaN where μ is missing or not positive).

    References
    ----------
    Hutwagner et al. (2003), EARS C1–C3 (see :func:`crimelens.alerts.expectations.recent_expectation`).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (y - mu) / np.sqrt(mu)
    return np.where(np.asarray(mu) > 0, z, np.nan)


def poisson_upper_p(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """P(Y ≥ y) for Y ~ Poisson(μ): the one-sided exact Poisson test (1 when y ≤ 0; NaN where μ is missing).

    Computed as the regularised lower incomplete gamma function P(y, μ) (Abramowitz & Stegun 1964, 6.5.2 and
    26.4.21), exact for whole y.
    """
    from scipy.special import gammainc

    y = np.asarray(y, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        p = np.where(y >= 1, gammainc(np.maximum(y, 1.0), np.maximum(mu, 1e-300)), 1.0)
    return np.where(np.isnan(y) | np.isnan(mu) | ~(mu > 0), np.nan, p)


def nb_upper_p(y: np.ndarray, mu: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """P(Y ≥ y) for a negative binomial of mean μ and variance φ·μ (Poisson where φ ≤ 1).

    With size r = μ / (φ − 1) and q = μ / (r + μ), P(Y ≥ y) = I_q(y, r), the regularised incomplete beta
    function (Johnson, Kemp & Kotz 2005, *Univariate Discrete Distributions*, 3rd ed., §5.6). This is the
    negative binomial threshold of Noufaily et al. (2013).
    """
    from scipy.special import betainc

    y = np.asarray(y, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    phi = np.broadcast_to(np.asarray(phi, dtype=np.float64), mu.shape)
    over = phi > 1 + 1e-9
    with np.errstate(invalid="ignore", divide="ignore"):
        r = mu / np.where(over, phi - 1, 1.0)
        q = mu / (r + mu)
        nb = np.where(y >= 1, betainc(np.maximum(y, 1.0), r, q), 1.0)
    return np.where(over, nb, poisson_upper_p(y, mu)) * np.where(np.isnan(phi), np.nan, 1.0)


def nb_interval(mu: np.ndarray, phi: np.ndarray | float = 1.0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` interval of a count of mean μ and variance φ·μ (Poisson where φ ≤ 1)."""
    from scipy import stats

    mu = np.asarray(mu, dtype=np.float64)
    phi = np.broadcast_to(np.asarray(phi, dtype=np.float64), mu.shape)
    a = (1 - level) / 2
    ok = ~np.isnan(mu) & (mu > 0) & ~np.isnan(phi)
    lo = np.full(mu.shape, np.nan)
    hi = np.full(mu.shape, np.nan)
    pois = ok & (phi <= 1 + 1e-9)
    lo[pois] = stats.poisson.ppf(a, mu[pois])
    hi[pois] = stats.poisson.ppf(1 - a, mu[pois])
    nb = ok & ~pois
    r = mu[nb] / (phi[nb] - 1)
    p = r / (r + mu[nb])
    lo[nb] = stats.nbinom.ppf(a, r, p)
    hi[nb] = stats.nbinom.ppf(1 - a, r, p)
    zero = ~np.isnan(mu) & (mu == 0)
    lo[zero] = 0.0
    hi[zero] = 0.0
    return lo, hi


def tail_score(p: np.ndarray, y: np.ndarray, mu: np.ndarray, phi: np.ndarray | float = 1.0) -> np.ndarray:
    """−log₁₀ p, the score of the p-value methods, kept informative where p underflows.

    Where p < 10⁻²⁵⁰ (counts of thousands far above their expectation) the exact tail is below what a double
    holds; there the score is −log₁₀ of the normal tail at the signed root deviance r = √(2(y log(y/μ) − (y − μ))
    / φ), whose tail log Φ̄(r) ≈ −r²/2 − log r − ½ log 2π (Abramowitz & Stegun 1964, 26.2.12), so scores stay
    ordered instead of tying at a cap.
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        score = -np.log10(p)
        tiny = ~np.isnan(p) & (p < 1e-250)
        if tiny.any():
            dev = 2 * (y * np.log(np.where(y > 0, y / mu, 1.0)) - (y - mu))
            r = np.sqrt(np.maximum(dev, 0.0) / np.asarray(phi, dtype=np.float64))
            approx = (r**2 / 2 + np.log(np.maximum(r, 1.0)) + 0.5 * math.log(2 * math.pi)) / math.log(10)
            score = np.where(tiny, np.maximum(approx, 250.0), score)
    return np.asarray(score, dtype=np.float64)


# -- charts and the CompStat rule ---------------------------------------------------------------------------
def nb_cusum(y: np.ndarray, mu0: np.ndarray, phi: np.ndarray | float = 1.0, kappa: float = 2.0) -> np.ndarray:
    """Negative binomial CUSUM S_t = max(0, S_{t−1} + LLR_t), tuned to detect a shift from μ₀ to κ·μ₀.

    With size r = μ₀ / (φ − 1) held fixed, the log-likelihood ratio of a count y is
    LLR = y·log κ + (r + y)·log((r + μ₀) / (r + κ μ₀)); for Poisson counts (φ = 1) it is y·log κ − (κ − 1)·μ₀.
    A cell with no count or no expectation leaves the sum unchanged. The chart signals when S_t exceeds a
    threshold h, calibrated on history (:mod:`crimelens.alerts.control`).

    References
    ----------
    Hawkins, D. M., & Olwell, D. H. (1998). *Cumulative Sum Charts and Charting for Quality Improvement*.
    Springer, §5.3 (the negative binomial CUSUM).

    Höhle, M., & Paul, M. (2008). Count data regression charts for the monitoring of surveillance time series.
    *Computational Statistics & Data Analysis* 52, 4357–4368.
    """
    y = np.asarray(y, dtype=np.float64)
    mu0 = np.asarray(mu0, dtype=np.float64)
    phi_b = np.broadcast_to(np.asarray(phi, dtype=np.float64).reshape(-1, 1) if np.ndim(phi) == 1 else phi, y.shape)
    over = phi_b > 1 + 1e-9
    with np.errstate(invalid="ignore", divide="ignore"):
        r = mu0 / np.where(over, phi_b - 1, 1.0)
        llr_nb = y * math.log(kappa) + (r + y) * np.log((r + mu0) / (r + kappa * mu0))
        llr_pois = y * math.log(kappa) - (kappa - 1) * mu0
    llr = np.where(over, llr_nb, llr_pois)
    llr = np.where(np.isnan(y) | np.isnan(mu0) | ~(mu0 > 0), np.nan, llr)
    out = np.full(y.shape, np.nan)
    s = np.zeros(y.shape[0])
    started = np.zeros(y.shape[0], dtype=bool)
    for j in range(y.shape[1]):
        step = llr[:, j]
        ok = ~np.isnan(step)
        s = np.where(ok, np.maximum(0.0, s + np.where(ok, step, 0.0)), s)
        started |= ok
        out[:, j] = np.where(started & ok, s, np.nan)
    return out


def ewma_chart(y: np.ndarray, mu: np.ndarray, phi: np.ndarray | float = 1.0, lam: float = 0.3) -> np.ndarray:
    """EWMA of standardised residuals e_t = (y − μ) / √(φμ), in units of its asymptotic standard deviation.

    Z_t = λ·e_t + (1 − λ)·Z_{t−1}, Z_0 = 0; the score is Z_t / √(λ / (2 − λ)) (under no change, about a standard
    normal). A cell with no count or no expectation leaves Z unchanged.

    References
    ----------
    Roberts, S. W. (1959). Control chart tests based on geometric moving averages. *Technometrics* 1, 239–250.

    Lucas, J. M., & Saccucci, M. S. (1990). Exponentially weighted moving average control schemes: properties
    and enhancements. *Technometrics* 32, 1–12.
    """
    y = np.asarray(y, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    phi_b = np.broadcast_to(np.asarray(phi, dtype=np.float64).reshape(-1, 1) if np.ndim(phi) == 1 else phi, y.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        e = (y - mu) / np.sqrt(phi_b * mu)
    e = np.where(np.isnan(y) | np.isnan(mu) | ~(mu > 0), np.nan, e)
    out = np.full(y.shape, np.nan)
    z = np.zeros(y.shape[0])
    sd = math.sqrt(lam / (2 - lam))
    for j in range(y.shape[1]):
        ok = ~np.isnan(e[:, j])
        z = np.where(ok, lam * np.where(ok, e[:, j], 0.0) + (1 - lam) * z, z)
        out[:, j] = np.where(ok, z / sd, np.nan)
    return out


def compstat_change(y: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """The CompStat rule: (percent change against the count ``lag`` periods earlier, that earlier count).

    Percent change = 100 · (y_t − y_{t−lag}) / max(y_{t−lag}, 1); a zero a year ago is counted as one, so that
    0 → 3 reads +300% rather than infinite.

    References
    ----------
    Weisburd, D., Mastrofski, S. D., McNally, A. M., Greenspan, R., & Willis, J. J. (2003). Reforming to
    preserve: COMPSTAT and strategic problem solving in American policing. *Criminology & Public Policy* 2,
    421–456.
    """
    y = np.asarray(y, dtype=np.float64)
    prev = np.full(y.shape, np.nan)
    if 0 < lag < y.shape[1]:
        prev[:, lag:] = y[:, :-lag]
    with np.errstate(invalid="ignore"):
        change = 100 * (y - prev) / np.maximum(prev, 1.0)
    return change, prev


# -- the methods ------------------------------------------------------------------------------------------
def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"method: expected one of {', '.join(METHODS)}; got {method!r}")
    return method


def _has_prior_year(panel: SeriesPanel) -> bool:
    return panel.season == 1 or len(panel.periods) > panel.season + 3


def _pooled(panel: SeriesPanel) -> np.ndarray:
    if panel.unit == "year":
        return pooled_expectation(panel.counts, 1, level_periods=5, guard=1, years=5, window=0, recent=3)
    if panel.unit == "month":
        return pooled_expectation(panel.counts, 12, level_periods=12, guard=2, years=3, window=1, recent=3)
    return pooled_expectation(panel.counts, 52, level_periods=52, guard=4, years=3, window=3, recent=8)


def _seasonal(panel: SeriesPanel) -> np.ndarray:
    if panel.unit == "year":
        return seasonal_expectation(panel.counts, 1, years=5, window=0)
    return seasonal_expectation(panel.counts, panel.season, years=3, window=3 if panel.unit == "week" else 1)


def detect(
    panel: SeriesPanel,
    method: str,
    *,
    history_end: int | None = None,
    glm_cells: np.ndarray | None = None,
    glm_fit: tuple[np.ndarray, np.ndarray] | None = None,
    intervals: bool = True,
) -> Detection:
    """Run one method on every cell of ``panel``.

    Parameters
    ----------
    panel
        The count series (:mod:`crimelens.alerts.series`).
    method
        One of :data:`METHODS`.
    history_end
        The first period that is not history: the overdispersion of the CUSUM and EWMA charts is estimated from
        the periods before it only (default: every period).
    glm_cells
        For ``glm``: compute only these cells (a boolean mask; the backtest's spike cells).
    glm_fit
        For ``glm``: the expectation and dispersion (μ₀, φ) already fitted (the backtest reuses the fit on clean
        data where the spike cannot have entered it).
    intervals
        Compute the 95% intervals (the backtest does without them).

    Returns
    -------
    Detection
        Score, p-value (where the method has one), expectation and its 95% interval for every cell.

    Raises
    ------
    ConfigError
        An unknown method, or a seasonal method on data without a prior year.

    References
    ----------
    See each method's function: :func:`compstat_change`, :func:`poisson_z`, :func:`poisson_upper_p`,
    :func:`crimelens.alerts.glm.glm_expectation`, :func:`crimelens.alerts.expectations.pooled_expectation`,
    :func:`nb_cusum`, :func:`ewma_chart`.
    """
    _check_method(method)
    y = panel.counts
    if method in ("seasonal-z", "seasonal-exact", "glm") and not _has_prior_year(panel):
        raise ConfigError(
            f"method {method}: expected data with at least one prior year to compare each {panel.unit} with; "
            f"got {len(panel.periods)} {panel.unit}s; use recent-z, pooled, cusum or ewma"
        )
    ones = np.ones(y.shape)

    def nb_interval(mu: np.ndarray, phi: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        if not intervals:
            return np.full(y.shape, np.nan), np.full(y.shape, np.nan)
        return _interval(mu, phi)

    if method == "compstat":
        lag = panel.season if len(panel.periods) > panel.season else 1
        change, prev = compstat_change(y, lag)
        lo, hi = nb_interval(prev)
        return Detection(method, change, None, prev, lo, hi, np.nan_to_num(change, nan=0.0) > 0)
    if method in ("recent-z", "seasonal-z", "seasonal-exact", "pooled"):
        if method == "recent-z":
            mu = recent_expectation(y, 8)
        elif method == "pooled":
            mu = _pooled(panel)
        else:
            mu = _seasonal(panel)
        lo, hi = nb_interval(mu)
        if method in ("recent-z", "seasonal-z"):
            from crimelens.analysis.inference import normal_sf

            z = poisson_z(y, mu)
            p = np.where(np.isnan(z), np.nan, normal_sf(np.nan_to_num(z, nan=0.0)))
            return Detection(method, z, p, mu, lo, hi, p < 0.05)
        p = poisson_upper_p(y, mu)
        return Detection(method, tail_score(p, y, mu), p, mu, lo, hi, p < 0.05)
    if method == "glm":
        if glm_fit is None:
            mu, phi = glm_expectation(y, panel.season, GlmSettings.for_unit(panel.unit), cells=glm_cells)
        else:
            mu, phi = glm_fit
        p = nb_upper_p(y, mu, phi)
        score = tail_score(p, y, mu, np.where(np.isnan(phi), 1.0, phi))
        lo, hi = nb_interval(mu, np.where(np.isnan(phi), 1.0, phi))
        return Detection(method, score, p, mu, lo, hi, p < 0.05)
    # cusum and ewma: on the pooled expectation, with each series' overdispersion from the history
    mu = _pooled(panel)
    phi = dispersion(y, mu, history_end)
    lo, hi = nb_interval(mu, phi[:, None] * ones)
    if method == "cusum":
        s = nb_cusum(y, mu, phi)
        return Detection(method, s, None, mu, lo, hi, np.nan_to_num(s, nan=0.0) > 0)
    e = ewma_chart(y, mu, phi)
    return Detection(method, e, None, mu, lo, hi, np.nan_to_num(e, nan=0.0) > 2)


_interval = nb_interval
