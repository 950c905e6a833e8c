"""Naive baselines, reported beside every model: a model is worth only its gain over them.

Each baseline is a *score* computed from the panel up to the current period (periods × units, a wide frame
indexed by period):

- persistence: this period's percentile rank among the units (:func:`percentile_rank`), and this period's
  class (the target's own definition applied to this period);
- historical average: the unit's mean over every period so far (:func:`historical_mean`), ranked among units,
  or its share of past periods in the class (:func:`past_share`);
- for a "rise" target: last period's change (:func:`last_change`) and the common (national) trend.

:class:`ScoreBaseline` turns one score into a probability with a one-variable logistic fit on the training
periods only (Platt scaling). The fit is monotone, so the ranking is the score's own; its slope learns the
sign (a rise may follow a fall: regression to the mean), and the Brier score becomes meaningful.

References
----------
Platt, J. (1999). Probabilistic outputs for support vector machines and comparisons to regularized likelihood
methods. *Advances in Large Margin Classifiers*, 61-74.
Mohler, G. et al. (2015). Randomized controlled field trials of predictive policing. *JASA* 110(512),
1399-1411 (last period's hot spots as the benchmark to beat).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crimelens.errors import NotFittedError

__all__ = ["ScoreBaseline", "historical_mean", "last_change", "past_share", "percentile_rank"]


def percentile_rank(wide: pd.DataFrame) -> pd.DataFrame:
    """Each unit's percentile rank among the units with a value in the same period (row): (0, 1], ties averaged."""
    return wide.rank(axis=1, pct=True)


def historical_mean(wide: pd.DataFrame) -> pd.DataFrame:
    """Each unit's mean over every period up to and including this one (missing periods skipped)."""
    return wide.expanding(min_periods=1).mean()


def past_share(indicator: pd.DataFrame) -> pd.DataFrame:
    """Share of the periods so far (this one included) in which a 0/1 ``indicator`` was 1 (missing skipped)."""
    return indicator.expanding(min_periods=1).mean()


def last_change(wide: pd.DataFrame) -> pd.DataFrame:
    """This period's relative change from the previous one, ``x_t / x_{t-1} - 1`` (missing where x_{t-1} ≤ 0)."""
    prev = wide.shift(1)
    out: pd.DataFrame = (wide / prev.where(prev > 0)) - 1
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1 + np.tanh(0.5 * z))  # overflow-free logistic function
    return out


def _logistic_1d(x: np.ndarray, y: np.ndarray, penalty: float, iterations: int = 50) -> tuple[float, float]:
    """(intercept, slope) of a logistic regression of 0/1 ``y`` on one standardised ``x`` (Newton-Raphson),
    with ``penalty / 2 · slope²`` added to the negative log-likelihood (the intercept is not penalised)."""
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    ridge = np.diag([0.0, penalty])
    for _ in range(iterations):
        p = _sigmoid(design @ beta)
        grad = design.T @ (p - y) + ridge @ beta
        hess = (design * (p * (1 - p))[:, None]).T @ design + ridge + 1e-10 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta = beta - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(beta[0]), float(beta[1])


class ScoreBaseline:
    """One column of the design as a probability: a logistic fit of the outcome on that score (Platt 1999).

    Parameters
    ----------
    column
        The score column (e.g. ``persistence_rank``). Missing scores take the training median.
    penalty
        L2 penalty on the slope (keeps it finite when the score separates the classes); the objective is
        scikit-learn's ``LogisticRegression(C=1 / penalty)`` on the standardised score.
    random_state
        Unused (the fit is deterministic); kept for the estimator contract.

    Attributes
    ----------
    coef_, intercept_
        The fitted slope (on the standardised score) and intercept.
    """

    def __init__(self, column: str, penalty: float = 0.01, random_state: int | None = None) -> None:
        self.column = column
        self.penalty = penalty
        self.random_state = random_state

    def _x(self, X: pd.DataFrame) -> np.ndarray:
        x = X[self.column].to_numpy(dtype=float)
        x = np.where(np.isfinite(x), x, self.fill_)
        out: np.ndarray = ((x - self.center_) / self.scale_).reshape(-1, 1)
        return out

    def fit(self, X: pd.DataFrame, y: Any) -> ScoreBaseline:
        x = X[self.column].to_numpy(dtype=float)
        finite = x[np.isfinite(x)]
        self.fill_ = float(np.median(finite)) if finite.size else 0.0
        x = np.where(np.isfinite(x), x, self.fill_)
        self.center_ = float(x.mean()) if x.size else 0.0
        sd = float(x.std()) if x.size else 0.0
        self.scale_ = sd if sd > 0 else 1.0
        self.intercept_, self.coef_ = _logistic_1d(self._x(X)[:, 0], np.asarray(y, dtype=float), self.penalty)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"baseline {self.column!r}: call fit before predict_proba")
        p = _sigmoid(self.intercept_ + self.coef_ * self._x(X)[:, 0])
        return np.column_stack([1 - p, p])
