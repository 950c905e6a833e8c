"""The quasi-Poisson GLM expectation of Farrington et al. (1996), as improved by Noufaily et al. (2013).

For each series and each block of ``refit_every`` periods, a Poisson GLM with a dispersion parameter
(quasi-Poisson) is fitted with statsmodels to the series' past ``years`` years, leaving out the most recent
``exclude_recent`` periods (Noufaily et al. leave out 26 weeks, so that an outbreak still under way does not
enter its own baseline):

- seasonality by a 10-level factor (Noufaily et al. 2013, §3): the ``2·window + 1`` periods around the
  target's period of the year are level 0, the rest of each year is cut into nine equal segments;
- a linear trend, kept only when significant at 5% and when it does not carry the prediction above every count
  it was fitted to (Farrington et al. 1996, §3.3);
- past outbreaks down-weighted: after a first fit, periods whose standardised Anscombe residual exceeds
  ``reweight_threshold`` (2.58 in Noufaily et al.; 1 in Farrington et al.) get weight ∝ s⁻², the weights scaled
  to sum to the number of periods, and the model is refitted;
- dispersion φ = max(1, Σ wᵢ (yᵢ − μᵢ)² / μᵢ / (n − p)).

The count is then compared with a negative binomial of mean μ₀ and variance φ·μ₀ (Noufaily et al. 2013, §3.4),
which replaces Farrington's 2/3-power normal approximation.

References
----------
Farrington, C. P., Andrews, N. J., Beale, A. D., & Catchpole, M. A. (1996). A statistical algorithm for the early
detection of outbreaks of infectious disease. *Journal of the Royal Statistical Society A* 159, 547–563.

Noufaily, A., Enki, D. G., Farrington, P., Garthwaite, P., Andrews, N., & Charlett, A. (2013). An improved
algorithm for outbreak detection in multiple surveillance systems. *Statistics in Medicine* 32, 1206–1222.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["GlmSettings", "glm_expectation", "noufaily_levels"]


@dataclass(frozen=True)
class GlmSettings:
    """Settings of the GLM expectation (Noufaily et al. 2013 defaults for weekly data)."""

    years: int = 3
    window: int = 3
    exclude_recent: int = 26
    refit_every: int = 4
    reweight_threshold: float = 2.58
    alpha_trend: float = 0.05
    min_periods: int = 10

    @classmethod
    def for_unit(cls, unit: str) -> GlmSettings:
        """Defaults for weekly, monthly or yearly series."""
        if unit == "month":
            return cls(years=3, window=1, exclude_recent=6, refit_every=1)
        if unit == "year":
            return cls(years=10, window=0, exclude_recent=0, refit_every=1, min_periods=5)
        return cls()


def noufaily_levels(centre: int, periods: np.ndarray, season: int, window: int) -> np.ndarray:
    """The 10-level seasonal factor of Noufaily et al. (2013) for ``periods`` relative to a ``centre`` period.

    Level 0: within ``window`` periods of the centre's period of the year; levels 1–9: the rest of the year cut
    into nine equal segments, counted forward from the end of the level-0 window. Yearly data (``season`` = 1)
    has the single level 0.

    >>> noufaily_levels(100, np.array([100, 48, 97, 104, 125, 148]), 52, 3).tolist()
    [0, 0, 0, 1, 5, 9]
    """
    if season <= 1:
        return np.zeros(len(periods), dtype=np.int64)
    d = (np.asarray(periods) - centre) % season  # 0 … season − 1 periods after the centre's period of the year
    inside = (d <= window) | (d >= season - window)
    span = season - 2 * window - 1
    level = 1 + ((d - window - 1) * 9) // max(span, 1)
    out = np.where(inside, 0, np.clip(level, 1, 9))
    return np.asarray(out, dtype=np.int64)


def _fit(y: np.ndarray, x: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(coefficients, fitted means, Pearson dispersion φ ≥ 1, quasi-Poisson standard errors) of a weighted
    Poisson GLM (statsmodels IRLS); φ = Σ wᵢ (yᵢ − μᵢ)² / μᵢ / (n − p) (McCullagh & Nelder 1989, §6.2)."""
    import statsmodels.api as sm  # type: ignore[import-untyped]
    from statsmodels.tools.sm_exceptions import (  # type: ignore[import-untyped]
        ConvergenceWarning,
        PerfectSeparationWarning,
        SingularMatrixWarning,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        warnings.simplefilter("ignore", SingularMatrixWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sm.GLM(y, x, family=sm.families.Poisson(), var_weights=weights).fit()
    mu = np.asarray(res.fittedvalues, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        pearson = float(np.sum(weights * (y - mu) ** 2 / mu) / max(len(y) - x.shape[1], 1))
    phi = max(pearson, 1.0) if np.isfinite(pearson) else 1.0
    se = np.asarray(res.bse, dtype=np.float64) * np.sqrt(phi)
    return np.asarray(res.params, dtype=np.float64), mu, phi, se


def _anscombe(y: np.ndarray, mu: np.ndarray, phi: float, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Standardised Anscombe residuals of a Poisson fit: 3/2 (y^(2/3) μ^(−1/6) − μ^(1/2)) / √(φ (1 − h))."""
    wts = w * mu
    xw = x * np.sqrt(wts)[:, None]
    try:
        inv = np.linalg.pinv(xw.T @ xw)
    except np.linalg.LinAlgError:
        inv = np.zeros((x.shape[1], x.shape[1]))
    h = np.einsum("ij,jk,ik->i", xw, inv, xw)
    raw = 1.5 * (np.power(y, 2 / 3) * np.power(mu, -1 / 6) - np.sqrt(mu))
    return np.asarray(raw / np.sqrt(phi * np.clip(1 - h, 1e-6, None)), dtype=np.float64)


def _design(u: np.ndarray, centre: int, season: int, window: int, trend: bool) -> tuple[np.ndarray, list[int]]:
    levels = noufaily_levels(centre, u, season, window)
    present = sorted(set(levels.tolist()) - {0})
    if present and 0 not in levels:
        present = present[1:]  # the first level present is the reference (the intercept) when level 0 is absent
    cols = [np.ones(len(u))]
    if trend:
        cols.append((u - centre) / max(season, 1))
    cols += [(levels == lv).astype(np.float64) for lv in present]
    return np.column_stack(cols), present


def _predict(
    beta: np.ndarray, targets: np.ndarray, centre: int, season: int, window: int, trend: bool, present: list[int]
) -> np.ndarray:
    levels = noufaily_levels(centre, targets, season, window)
    eta = np.full(len(targets), beta[0])
    k = 1
    if trend:
        eta = eta + beta[1] * (targets - centre) / max(season, 1)
        k = 2
    for i, lv in enumerate(present):
        eta = eta + beta[k + i] * (levels == lv)
    # a target in a level the fit never saw (cannot happen with whole past years) keeps the intercept's level
    return np.asarray(np.exp(eta), dtype=np.float64)


def _one_block(y_fit: np.ndarray, u: np.ndarray, targets: np.ndarray, centre: int, season: int,
               s: GlmSettings) -> tuple[np.ndarray, float]:  # fmt: skip
    """Expectations of ``targets`` and the dispersion from one series' past counts ``y_fit`` at periods ``u``."""
    ok = ~np.isnan(y_fit)
    y_fit, u = y_fit[ok], u[ok]
    if len(y_fit) < s.min_periods:
        return np.full(len(targets), np.nan), np.nan
    if y_fit.sum() == 0:
        # nothing recorded in the baseline: expect half a count over its whole length (little, but not zero)
        return np.full(len(targets), 0.5 / len(y_fit)), 1.0
    weights = np.ones(len(y_fit))
    trend = len(np.unique(u // max(season, 1))) >= 2 or season == 1
    beta, mu, phi, se = _fit(y_fit, _design(u, centre, season, s.window, trend)[0], weights)
    if trend:
        from crimelens.analysis.inference import normal_sf

        with np.errstate(invalid="ignore", divide="ignore"):
            z = abs(beta[1] / se[1]) if se[1] > 0 else (0.0 if beta[1] == 0 else np.inf)
        pvalue = float(2 * normal_sf(z)) if np.isfinite(z) else 0.0
        x, present = _design(u, centre, season, s.window, True)
        pred_centre = _predict(beta, np.array([centre]), centre, season, s.window, True, present)[0]
        if not (pvalue < s.alpha_trend) or pred_centre > y_fit.max():
            trend = False
            beta, mu, phi, se = _fit(y_fit, _design(u, centre, season, s.window, False)[0], weights)
    x, present = _design(u, centre, season, s.window, trend)
    phi = max(phi, 1.0)
    resid = _anscombe(y_fit, mu, phi, x, weights)
    high = resid > s.reweight_threshold
    if high.any():
        w = np.ones(len(resid))
        w[high] = resid[high] ** -2.0
        weights = w * len(w) / w.sum()
        beta, mu, _, _ = _fit(y_fit, x, weights)
    p = x.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        pearson = float(np.sum(weights * (y_fit - mu) ** 2 / mu) / max(len(y_fit) - p, 1))
    phi = max(pearson, 1.0)
    return _predict(beta, targets, centre, season, s.window, trend, present), phi


def glm_expectation(
    y: np.ndarray, season: int, settings: GlmSettings | None = None, *, cells: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The Farrington–Noufaily expectation μ₀ and dispersion φ of every cell (or of ``cells`` only).

    Parameters
    ----------
    y
        Counts, ``series × periods`` (NaN = not reported).
    season
        Periods per year (52, 12 or 1).
    settings
        :class:`GlmSettings` (default: Noufaily et al.'s weekly settings).
    cells
        A boolean ``series × periods`` mask: compute only these cells (the others are NaN). Used by the
        backtest, which needs the cells a spike covers.

    Returns
    -------
    tuple of numpy.ndarray
        μ₀ and φ per cell; NaN where the series has fewer than ``min_periods`` usable past counts.

    References
    ----------
    Farrington et al. (1996) and Noufaily et al. (2013): see the module docstring.
    """
    s = settings or GlmSettings()
    n, t = y.shape
    mu = np.full((n, t), np.nan)
    phi = np.full((n, t), np.nan)
    step = max(1, s.refit_every)
    span = s.years * max(season, 1) + s.window
    for t0 in range(0, t, step):
        block = np.arange(t0, min(t0 + step, t))
        centre = int(block[len(block) // 2])
        stop = t0 - s.exclude_recent  # data strictly before t0 − exclude_recent (and before every target)
        start = max(0, centre - span)
        if stop - start < max(s.min_periods, season if season > 1 else 0):
            continue  # at least one whole year, so the seasonal levels are all seen
        u = np.arange(start, stop)
        for i in range(n):
            if cells is not None and not cells[i, block].any():
                continue
            m, f = _one_block(y[i, start:stop], u, block, centre, season, s)
            mu[i, block] = m
            phi[i, block] = f
    if cells is not None:
        mu[~cells] = np.nan
        phi[~cells] = np.nan
    return mu, phi
