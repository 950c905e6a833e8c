"""Models evaluated through time, always beside naive baselines.

- :mod:`~crimelens.models.evaluation`: rolling-origin splits over ordered periods, metrics (ROC-AUC, AUPRC,
  F1 at a threshold chosen on training folds, Brier score, calibration), period-bootstrap intervals and the
  paired gain of a method over the best baseline. General: any forecaster whose predictions carry a period
  can be scored with it.
- :mod:`~crimelens.models.baselines`: persistence, historical average, last change, common trend.
- :mod:`~crimelens.models.classify`: which places will be high-crime next period (logistic regression and
  LightGBM under the estimator contract), with the features built only from earlier data.
- :mod:`~crimelens.models.forecast`: grid hotspot forecasters (naive, retrospective and prospective hotspots,
  space-time KDE, a grid self-exciting point process fitted by EM, LightGBM) with count intervals;
  :mod:`~crimelens.models.hotspots` evaluates them through time against naive and forecasts next period.

Heavy libraries (scikit-learn, LightGBM) are imported inside the functions that use them.
"""

from __future__ import annotations

__all__: list[str] = []
