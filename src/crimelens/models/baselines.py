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


class ScoreBaseline:
    """One column of the design as a probability: a logistic fit of the outcome on that score (Platt 1999).

    Parameters
    ----------
    column
        The score column (e.g. ``persistence_rank``). Missing scores take the training median.
    random_state
        Unused (the fit is deterministic); kept for the estimator contract.

    Attributes
    ----------
    coef_, intercept_
        The fitted slope (on the standardised score) and intercept.
    """

    def __init__(self, column: str, random_state: int | None = None) -> None:
        self.column = column
        self.random_state = random_state

    def _x(self, X: pd.DataFrame) -> np.ndarray:
        x = X[self.column].to_numpy(dtype=float)
        x = np.where(np.isfinite(x), x, self.fill_)
        out: np.ndarray = ((x - self.center_) / self.scale_).reshape(-1, 1)
        return out

    def fit(self, X: pd.DataFrame, y: Any) -> ScoreBaseline:
        from sklearn.linear_model import LogisticRegression

        x = X[self.column].to_numpy(dtype=float)
        finite = x[np.isfinite(x)]
        self.fill_ = float(np.median(finite)) if finite.size else 0.0
        x = np.where(np.isfinite(x), x, self.fill_)
        self.center_ = float(x.mean())
        sd = float(x.std())
        self.scale_ = sd if sd > 0 else 1.0
        model = LogisticRegression(C=100.0, max_iter=1000)
        model.fit(self._x(X), np.asarray(y, dtype=int))
        self.model_ = model
        self.coef_ = float(model.coef_[0, 0])
        self.intercept_ = float(model.intercept_[0])
        self.classes_ = model.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"baseline {self.column!r}: call fit before predict_proba")
        out: np.ndarray = self.model_.predict_proba(self._x(X))
        return out
