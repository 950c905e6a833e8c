"""Early warning: spike detection on count series from the warehouse, false-alarm control, a backtest with
injected spikes, and notifications.

- :mod:`~crimelens.alerts.series`: area × offence × week/month (incidents) and jurisdiction × offence × year
  (UCR) series.
- :mod:`~crimelens.alerts.expectations`, :mod:`~crimelens.alerts.glm`: expected counts from past data only
  (same period in prior years plus trend; the previous periods; pooled across series; the Farrington–Noufaily
  quasi-Poisson GLM).
- :mod:`~crimelens.alerts.detectors`: the methods (CompStat, Poisson z, exact Poisson, GLM, pooled, NB-CUSUM,
  EWMA), each a score per series-period.
- :mod:`~crimelens.alerts.control`: Benjamini–Hochberg FDR, or a false-alarm budget calibrated on history.
- :mod:`~crimelens.alerts.run`: :func:`run_alerts` (detect and store), :func:`run_after_batch` (what a live feed
  calls after each batch: detect, store, notify once).
- :mod:`~crimelens.alerts.backtest`: injected spikes of known size in real series, methods compared at the same
  calibrated false-alarm rate, next to an oracle.
- :mod:`~crimelens.alerts.notify`: stdout, JSON-lines file and webhook, each alert sent once.
"""

from crimelens.alerts.detectors import METHODS, P_VALUE_METHODS, Detection, detect
from crimelens.alerts.run import AlertsResult, find_alerts, run_after_batch, run_alerts
from crimelens.alerts.series import SeriesPanel, incident_series, ucr_series

__all__ = [
    "METHODS",
    "P_VALUE_METHODS",
    "AlertsResult",
    "Detection",
    "SeriesPanel",
    "detect",
    "find_alerts",
    "incident_series",
    "run_after_batch",
    "run_alerts",
    "ucr_series",
]
