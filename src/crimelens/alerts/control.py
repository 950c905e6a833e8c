"""False alarms across many series: Benjamini–Hochberg FDR, or a false-alarm budget calibrated on history.

Watching 140 neighbourhoods every week at p < 0.05 gives seven false alarms a week. Two ways to hold that down:

- :func:`fdr_alarms`: Benjamini–Hochberg over every cell examined (the p-value methods only): of the alarms
  raised, at most a share ``q`` are expected to be false (the BH adjustment of
  :func:`crimelens.analysis.inference.benjamini_hochberg`).
- :func:`calibrate_threshold` and :func:`budget_alarms`: a score threshold set on history so that no more than
  ``budget`` alarms per 100 series-periods were raised there; any method, p-value or not. The rate on later data
  is checked, not assumed (the backtest reports it).
"""

from __future__ import annotations

import math

import numpy as np

from crimelens.analysis.inference import benjamini_hochberg
from crimelens.errors import ConfigError, DataError

__all__ = ["alarm_rate_per_100", "budget_alarms", "calibrate_threshold", "check_budget", "check_fdr", "fdr_alarms"]


def check_fdr(q: float) -> float:
    """``q`` if it is a false discovery rate in (0, 1), else a ConfigError naming the option."""
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q < 1 or math.isnan(q):
        raise ConfigError(f"--fdr: expected a false discovery rate between 0 and 1 (e.g. 0.05), got {q!r}")
    return float(q)


def check_budget(budget: float) -> float:
    """``budget`` if it is a positive number of false alarms per 100 series-periods (at most 50)."""
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 < budget <= 50 or math.isnan(budget):
        raise ConfigError(
            f"--budget: expected false alarms per 100 series-periods, a number above 0 and at most 50 (e.g. 1), "
            f"got {budget!r}"
        )
    return float(budget)


def fdr_alarms(pvalues: np.ndarray, q: float, cells: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(alarm mask, BH q-values) over the ``cells`` examined (default: every cell with a p-value).

    Parameters
    ----------
    pvalues
        One-sided p-values, any shape (NaN = no verdict: not counted among the tests).
    q
        The false discovery rate.
    cells
        A boolean mask of the cells examined together (one family of tests).

    Returns
    -------
    tuple of numpy.ndarray
        Alarms (q-value ≤ q) and the q-values (NaN outside the family).

    References
    ----------
    Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate: a practical and powerful approach
    to multiple testing. *Journal of the Royal Statistical Society B* 57, 289–300.
    """
    q = check_fdr(q)
    p = np.asarray(pvalues, dtype=np.float64)
    family = ~np.isnan(p) if cells is None else (np.asarray(cells, dtype=bool) & ~np.isnan(p))
    qvals = np.full(p.shape, np.nan)
    if family.any():
        qvals[family] = benjamini_hochberg(np.clip(p[family], 0.0, 1.0))
    return np.nan_to_num(qvals, nan=2.0) <= q, qvals


def calibrate_threshold(scores: np.ndarray, budget: float, cells: np.ndarray | None = None) -> float:
    """The lowest threshold h such that the share of ``cells`` with score > h is at most ``budget`` per 100.

    Parameters
    ----------
    scores
        A method's scores on history (higher = more unusual; NaN = no verdict, not counted).
    budget
        False alarms allowed per 100 series-periods.
    cells
        The history cells to calibrate on (default: every cell with a score).

    Returns
    -------
    float
        The threshold: alarms are cells with a score strictly above it. With discrete scores, ties at h are
        not alarms, so the rate on history is at most the budget (it may be below).

    Raises
    ------
    DataError
        Fewer than 100 / budget history cells: too few to calibrate the budget on.
    """
    budget = check_budget(budget)
    s = np.asarray(scores, dtype=np.float64)
    s = s[~np.isnan(s)] if cells is None else s[np.asarray(cells, dtype=bool) & ~np.isnan(s)]
    need = math.ceil(100 / budget)
    if s.size < need:
        raise DataError(
            f"false-alarm budget: expected at least {need} series-periods of history to calibrate "
            f"{budget:g} per 100 on, got {s.size}; use an earlier --since or --fdr"
        )
    allowed = math.floor(s.size * budget / 100)
    ordered = np.sort(s)[::-1]
    if allowed >= s.size:
        return -math.inf
    # the (allowed + 1)-th highest score: at most `allowed` cells lie strictly above it
    return float(ordered[allowed])


def budget_alarms(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Cells whose score is strictly above the calibrated ``threshold`` (NaN is never an alarm)."""
    s = np.asarray(scores, dtype=np.float64)
    return np.nan_to_num(s, nan=-math.inf) > threshold


def alarm_rate_per_100(alarms: np.ndarray, cells: np.ndarray) -> float:
    """Alarms per 100 of the ``cells`` (series-periods) counted; NaN when there are none."""
    n = int(np.asarray(cells, dtype=bool).sum())
    return math.nan if n == 0 else 100.0 * int((np.asarray(alarms, dtype=bool) & cells).sum()) / n
