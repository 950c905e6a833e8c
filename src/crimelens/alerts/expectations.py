"""Expected counts of many series at once, each from past data only: what a count is compared with.

Every function takes a ``series × periods`` array (NaN = not reported) and returns the expectation for every
cell computed from earlier cells of the same series (or, for the pooled expectation, of all series), NaN where
there is too little history. Nothing reads the cell it predicts, so a spike never hides itself.

- :func:`seasonal_expectation`: the same period in prior years (a window around it), plus a linear trend
  across those years (the historical limits method of Stroup et al. 1989, with trend).
- :func:`recent_expectation`: the mean of the previous ``k`` periods (the plain "last 8 weeks" baseline, as in
  the EARS C1–C3 methods of Hutwagner et al. 2003).
- :func:`pooled_expectation`: a profile shared by all series (their total's expectation) times each series'
  own share of the total over a longer past window, for sparse series (Farrington & Andrews 2003, §4).
- :func:`dispersion`: each series' overdispersion φ = Var / mean of its counts around an expectation.
- The quasi-Poisson GLM expectation of Farrington et al. (1996) and Noufaily et al. (2013) is in
  :mod:`crimelens.alerts.glm`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dispersion", "pooled_expectation", "recent_expectation", "seasonal_expectation", "window_sums"]


def window_sums(y: np.ndarray, start: np.ndarray | int, stop: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Sums and numbers of reported values of ``y[:, start:stop]`` per column position, via cumulative sums.

    ``start`` and ``stop`` are per-period bounds (arrays of length ``T``, clipped to ``[0, T]``); returns two
    ``series × T`` arrays (NaN cells are skipped and not counted).
    """
    n, t = y.shape
    present = ~np.isnan(y)
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(np.where(present, y, 0.0), axis=1)], axis=1)
    ccount = np.concatenate([np.zeros((n, 1)), np.cumsum(present, axis=1)], axis=1)
    lo = np.clip(np.broadcast_to(np.asarray(start), (t,)), 0, t)
    hi = np.clip(np.broadcast_to(np.asarray(stop), (t,)), 0, t)
    hi = np.maximum(hi, lo)
    return csum[:, hi] - csum[:, lo], ccount[:, hi] - ccount[:, lo]


def recent_expectation(y: np.ndarray, k: int = 8, guard: int = 0, min_periods: int | None = None) -> np.ndarray:
    """Mean of the ``k`` periods before each period, skipping the ``guard`` periods just before it.

    Parameters
    ----------
    y
        Counts, ``series × periods`` (NaN = not reported).
    k
        Periods averaged.
    guard
        Periods left out just before the one predicted (so that a spike that began recently does not raise
        its own baseline; the guard band of the EARS C2 and C3 methods).
    min_periods
        Fewest reported periods needed (default ``k // 2``, at least 1); fewer give NaN.

    Returns
    -------
    numpy.ndarray
        The expectation of every cell; NaN where the history is too short.

    References
    ----------
    Hutwagner, L., Thompson, W., Seeman, G. M., & Treadwell, T. (2003). The bioterrorism preparedness and
    response Early Aberration Reporting System (EARS). *Journal of Urban Health* 80, i89–i96.
    """
    t = y.shape[1]
    pos = np.arange(t)
    sums, counts = window_sums(y, pos - guard - k, pos - guard)
    need = max(1, k // 2) if min_periods is None else min_periods
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    mean[counts < need] = np.nan
    return np.asarray(mean, dtype=np.float64)


def seasonal_expectation(
    y: np.ndarray, season: int, *, years: int = 3, window: int = 3, trend: bool = True, floor_share: float = 0.5
) -> np.ndarray:
    """The same period in each of the prior ``years`` years (± ``window`` periods), plus a linear trend.

    For each prior year j = 1 … b the mean m_j of the ``2·window + 1`` periods centred one season back
    (``t − j·season``) is taken; with three or more such years a least-squares line through (−j, m_j) is
    extrapolated to j = 0 when its slope is significant at 5% (z > 1.96, with the Poisson variance m_j / n_j of
    each year's mean of n_j counts; a trend through three noisy points is otherwise mostly noise, and
    extrapolating it inflates false alarms), otherwise their plain mean is the expectation. For yearly data
    (``season`` = 1, ``window`` = 0) this is the previous ``years`` years and their trend. A trend line may not take the
    expectation below ``floor_share`` of the plain mean (a falling series is not certain to reach zero).

    Parameters
    ----------
    y
        Counts, ``series × periods`` (NaN = not reported).
    season
        Periods per year (52 weeks, 12 months, 1 for yearly data).
    years
        Prior years used (b).
    window
        Periods either side of the same period last year (w).
    trend
        Fit the linear trend across years (when three or more are available; kept only when significant).
    floor_share
        Lowest expectation, as a share of the plain mean across the years.

    Returns
    -------
    numpy.ndarray
        The expectation of every cell; NaN where not one prior year is available.

    References
    ----------
    Stroup, D. F., Williamson, G. D., Herndon, J. L., & Karon, J. M. (1989). Detection of aberrations in the
    occurrence of notifiable diseases surveillance data. *Statistics in Medicine* 8, 323–329.
    """
    n, t = y.shape
    pos = np.arange(t)
    means = np.full((years, n, t), np.nan)
    sizes = np.full((years, n, t), np.nan)
    for j in range(1, years + 1):
        centre = pos - j * season
        sums, counts = window_sums(y, centre - window, centre + window + 1)
        ok = (centre - window >= 0) & (centre + window < pos)  # whole window, strictly in the past
        with np.errstate(invalid="ignore", divide="ignore"):
            m = sums / counts
        m[:, ~ok] = np.nan
        m[counts < max(1, window + 1)] = np.nan
        means[j - 1] = m
        sizes[j - 1] = counts
    avail = ~np.isnan(means)
    n_years = avail.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        plain = np.nansum(means, axis=0) / n_years
    out = plain.copy()
    if trend:
        x = -np.arange(1, years + 1, dtype=np.float64)[:, None, None] * np.ones((1, n, t))
        x = np.where(avail, x, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            xbar = np.nansum(x, axis=0) / n_years
            sxx = np.nansum((x - xbar) ** 2, axis=0)
            sxy = np.nansum((x - xbar) * (means - plain), axis=0)
            slope = sxy / sxx
            fitted = plain - slope * xbar  # the line at x = 0
            # Poisson variance of each year's mean, m_j / n_j: the slope's standard error
            var_slope = np.nansum((x - xbar) ** 2 * np.maximum(means, 0.5 / sizes) / sizes, axis=0) / sxx**2
            z = np.abs(slope) / np.sqrt(var_slope)
        use = (n_years >= 3) & (z > 1.96)
        out = np.where(use, np.maximum(fitted, floor_share * plain), plain)
    out[n_years == 0] = np.nan
    return np.asarray(out, dtype=np.float64)


def pooled_expectation(
    y: np.ndarray,
    season: int,
    *,
    level_periods: int = 52,
    guard: int = 4,
    years: int = 3,
    window: int = 3,
    recent: int = 8,
) -> np.ndarray:
    """A profile shared by every series (the total's expectation) times each series' own share of the total.

    E_t is the expectation of the total of all series: :func:`seasonal_expectation` of the total when a prior
    year is available, else the mean of its previous ``recent`` periods (before the ``guard``). Each series'
    level is its share of the total over the ``level_periods`` periods before the guard band:
    s_it = Σ y_iu / Σ C_u (over the periods it reported). The expectation is s_it · E_t. A sparse series (a few
    incidents a week) thus borrows its season and trend from the whole city and keeps its own level, learnt from
    a year of data rather than a few weeks.

    Parameters
    ----------
    y
        Counts, ``series × periods`` (NaN = not reported).
    season
        Periods per year.
    level_periods
        Periods each series' share is learnt from.
    guard
        Periods just before the predicted one left out of the share (a recent spike does not lift its own level).
    years, window
        The total's seasonal expectation (:func:`seasonal_expectation`).
    recent
        Periods of the total's fallback expectation, when no prior year is available.

    Returns
    -------
    numpy.ndarray
        The expectation of every cell (NaN where the history is too short).

    References
    ----------
    Farrington, C. P., & Andrews, N. (2003). Outbreak detection: application to infectious disease
    surveillance. In R. Brookmeyer & D. F. Stroup (eds.), *Monitoring the Health of Populations*, Oxford
    University Press, 203–231 (pooling across series for sparse counts).
    """
    present = ~np.isnan(y)
    total = np.where(present.any(axis=0), np.nansum(y, axis=0), np.nan)[None, :]
    city = seasonal_expectation(total, season, years=years, window=window)
    fallback = recent_expectation(total, recent, guard)
    city_e = np.where(np.isnan(city), fallback, city)
    t = y.shape[1]
    pos = np.arange(t)
    own, _ = window_sums(y, pos - guard - level_periods, pos - guard)
    # the total over the same periods, counted only where the series reported
    tot_masked = np.where(present, np.broadcast_to(total, y.shape), np.nan)
    tot, counts = window_sums(tot_masked, pos - guard - level_periods, pos - guard)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = own / tot
    share[(counts < max(1, min(level_periods, max(1, t)) // 4)) | (tot <= 0)] = np.nan
    return np.asarray(share * city_e, dtype=np.float64)


def dispersion(y: np.ndarray, expected: np.ndarray, upto: int | None = None, min_periods: int = 8) -> np.ndarray:
    """Each series' overdispersion φ: the mean of (y − μ)² / μ over its periods before ``upto`` (at least 1).

    φ = 1 is Poisson variation; crime counts are usually overdispersed (φ > 1: counts vary more than chance,
    e.g. with weather, events and recording batches). Series with fewer than ``min_periods`` usable periods
    get the median φ of the others.

    References
    ----------
    McCullagh, P., & Nelder, J. A. (1989). *Generalized Linear Models*, 2nd ed., Chapman & Hall, §6.2
    (the Pearson estimate of the dispersion).
    """
    stop = y.shape[1] if upto is None else upto
    yy, mu = y[:, :stop], expected[:, :stop]
    ok = ~np.isnan(yy) & ~np.isnan(mu) & (mu > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ok, (yy - mu) ** 2 / np.where(ok, mu, 1.0), 0.0)
        n = ok.sum(axis=1)
        phi = r2.sum(axis=1) / n
    enough = n >= min_periods
    fill = float(np.median(phi[enough])) if enough.any() else 1.0
    phi = np.where(enough, phi, fill)
    return np.asarray(np.maximum(phi, 1.0), dtype=np.float64)
