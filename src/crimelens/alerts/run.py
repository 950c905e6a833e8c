"""An alert run: series from the warehouse → one detector → false-alarm control → alerts, stored once each.

:func:`find_alerts` is the pure part (a panel in, an :class:`AlertsResult` out); :func:`run_alerts` builds the
panel from the warehouse, stores new alerts in the ``alerts`` table with the data version they were computed on,
and :func:`run_after_batch` is what a live feed calls after each batch it loads (it also notifies).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crimelens.alerts.control import budget_alarms, calibrate_threshold, check_budget, check_fdr, fdr_alarms
from crimelens.alerts.detectors import METHOD_LABELS, METHODS, P_VALUE_METHODS, detect
from crimelens.alerts.series import SeriesPanel, incident_series, source_kind, ucr_series
from crimelens.analysis.result import Result, records_caveats
from crimelens.errors import ConfigError

if TYPE_CHECKING:
    import duckdb

    from crimelens.alerts.notify import Channel, DeliveryReport

__all__ = ["ALERT_TABLE_COLUMNS", "AlertsResult", "alert_key", "find_alerts", "run_after_batch", "run_alerts"]

#: Columns of an alert run's table (the ``alerts`` table's, without ``detected_at``).
ALERT_TABLE_COLUMNS: tuple[str, ...] = (
    "alert_key", "source", "unit", "where_kind", "where_id", "where_name", "offence", "period", "method",
    "observed", "expected", "expected_low", "expected_high", "p_value", "q_value", "score", "elevated_since",
    "control", "data_version",
)  # fmt: skip

CAVEAT = (
    "Counts are police-recorded crime: a spike can be a change in reporting, recording or patrolling (a new "
    "online form, a crackdown, a backlog entered at once) as well as a change in crime. Check the records "
    "before acting, and never read an alert as being about individuals."
)


@dataclass(frozen=True)
class AlertsResult(Result):
    """The alerts of one run, with how false alarms were controlled and on which data version.

    ``table``: one row per alert (:data:`ALERT_TABLE_COLUMNS`), most significant first. ``control``: ``fdr`` or
    ``budget``; ``threshold``: the score threshold calibrated for a budget (None under FDR);
    ``cells_examined``: series-periods tested; ``new_alerts``: keys first stored by this run.
    """

    source: str = ""
    method: str = ""
    unit: str = ""
    control: str = "fdr"
    fdr: float | None = None
    budget: float | None = None
    threshold: float | None = None
    series: int = 0
    periods_examined: tuple[str, ...] = ()
    cells_examined: int = 0
    data_version: int | None = None
    new_alerts: tuple[str, ...] = ()
    delivery: dict[str, Any] = field(default_factory=dict)


def alert_key(source: str, unit: str, where_kind: str, where_id: str, offence: str, period: str, method: str) -> str:
    """A stable key for an alert: the same series, period and method give the same key on every run."""
    text = "|".join((source, unit, where_kind, where_id, offence, period, method))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def _since_index(panel: SeriesPanel, since: str | int | dt.date | None) -> int:
    if since is None:
        return len(panel.periods) - 1
    j = panel.index_of(since)
    if j >= len(panel.periods):
        raise ConfigError(
            f"--since: expected a period within the data ({panel.period_label(0)} to "
            f"{panel.period_label(len(panel.periods) - 1)}), got {since!r}"
        )
    return j


@records_caveats
def find_alerts(
    panel: SeriesPanel,
    method: str = "pooled",
    *,
    since: str | int | dt.date | None = None,
    fdr: float | None = None,
    budget: float | None = None,
) -> AlertsResult:
    """Run one detector on ``panel`` and keep the alerts that survive false-alarm control.

    Parameters
    ----------
    panel
        The count series.
    method
        A detector of :data:`crimelens.alerts.detectors.METHODS`.
    since
        First period examined (a date, or a year for yearly data); default: the latest period only. Earlier
        periods are the history the expectations (and a budget's threshold) are learnt from.
    fdr
        Benjamini–Hochberg false discovery rate over every series-period examined (p-value methods).
    budget
        False alarms per 100 series-periods: a score threshold calibrated on the periods before ``since``.
        Give ``fdr`` or ``budget`` (default: ``fdr`` 0.05 for p-value methods, ``budget`` 1 for the others).

    Returns
    -------
    AlertsResult
        One row per alert: where, what, when, observed, expected with its 95% interval, p-value, q-value or
        score, the method, and since when the series has been elevated.

    References
    ----------
    Benjamini & Hochberg (1995) for FDR control; each method's references in :mod:`crimelens.alerts.detectors`.
    """
    if method not in METHODS:
        raise ConfigError(f"--method: expected one of {', '.join(METHODS)}; got {method!r}")
    if fdr is not None and budget is not None:
        raise ConfigError(f"--fdr and --budget: expected one of them, got both ({fdr} and {budget})")
    if fdr is None and budget is None:
        if method in P_VALUE_METHODS:
            fdr = 0.05
        else:
            budget = 1.0
    if fdr is not None:
        fdr = check_fdr(fdr)
        if method not in P_VALUE_METHODS:
            raise ConfigError(
                f"--fdr: method {method} gives a score, not a p-value; expected --budget with it "
                f"(or a p-value method: {', '.join(P_VALUE_METHODS)})"
            )
    if budget is not None:
        budget = check_budget(budget)
    start = _since_index(panel, since)
    n, t = panel.counts.shape
    examined = np.zeros((n, t), dtype=bool)
    examined[:, start:] = True
    examined &= ~np.isnan(panel.counts)
    # the GLM is fitted per series and period: under FDR only the periods examined need it
    det = detect(panel, method, history_end=start, glm_cells=examined if fdr is not None else None)
    threshold: float | None = None
    qvals = np.full((n, t), np.nan)
    if fdr is not None:
        assert det.pvalue is not None
        alarms, qvals = fdr_alarms(det.pvalue, fdr, examined)
    else:
        history = np.zeros((n, t), dtype=bool)
        history[:, :start] = True
        threshold = calibrate_threshold(det.score, float(budget or 1.0), history)
        alarms = budget_alarms(det.score, threshold) & examined
    rows = []
    for i, j in zip(*np.nonzero(alarms), strict=True):
        k = j
        while k > 0 and det.elevated[i, k - 1]:
            k -= 1
        key = panel.keys.iloc[i]
        period = panel.period_label(int(j))
        rows.append({
            "alert_key": alert_key(panel.source, panel.unit, panel.where_label, str(key["where"]),
                                   str(key["offence"]), period, method),
            "source": panel.source,
            "unit": panel.unit,
            "where_kind": panel.where_label,
            "where_id": str(key["where"]),
            "where_name": str(key["name"]),
            "offence": str(key["offence"]),
            "period": period,
            "method": method,
            "observed": float(panel.counts[i, j]),
            "expected": _num(det.expected[i, j]),
            "expected_low": _num(det.lower[i, j]),
            "expected_high": _num(det.upper[i, j]),
            "p_value": None if det.pvalue is None else _num(det.pvalue[i, j]),
            "q_value": _num(qvals[i, j]),
            "score": _num(det.score[i, j]),
            "elevated_since": panel.period_label(int(k)),
            "control": f"fdr {fdr:g}" if fdr is not None else f"budget {budget:g} per 100",
            "data_version": panel.data_version,
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=list(ALERT_TABLE_COLUMNS))
    if not table.empty:
        table = table.sort_values(["score", "period"], ascending=[False, True], kind="stable").reset_index(drop=True)
    periods = tuple(panel.period_label(j) for j in range(start, t))
    cells = int(examined.sum())
    control = (
        f"Benjamini–Hochberg FDR {fdr:g} over {cells:,} series-periods"
        if fdr is not None
        else f"a budget of {budget:g} false alarms per 100 series-periods, threshold {threshold:.3g} calibrated on "
        f"the {int((~np.isnan(det.score[:, :start])).sum()):,} series-periods before {periods[0]}"
    )
    notes = [
        f"{METHOD_LABELS[method]}; false alarms held down by {control}.",
        *panel.notes,
        CAVEAT,
    ]
    title = (
        f"{len(table)} alert{'s' if len(table) != 1 else ''}: {panel.source}, {panel.where_label} × offence × "
        f"{panel.unit}, {periods[0]}{' to ' + periods[-1] if len(periods) > 1 else ''} ({method})"
    )
    return AlertsResult(
        title=title,
        table=table,
        params={
            "source": panel.source,
            "method": method,
            "unit": panel.unit,
            "since": periods[0],
            "fdr": fdr,
            "budget": budget,
            "where": panel.where_label,
        },
        notes=tuple(notes),
        source=panel.source,
        method=method,
        unit=panel.unit,
        control="fdr" if fdr is not None else "budget",
        fdr=fdr,
        budget=budget,
        threshold=threshold,
        series=n,
        periods_examined=periods,
        cells_examined=cells,
        data_version=panel.data_version,
    )


def _num(v: Any) -> float | None:
    f = float(v)
    return None if math.isnan(f) or math.isinf(f) else f


def build_panel(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    unit: str | None = None,
    area: str | None = None,
    offences: Sequence[str] = (),
) -> SeriesPanel:
    """The series of ``source``: area × offence × week/month for incidents, jurisdiction × offence × year for UCR."""
    src, kind = source_kind(con, source)
    if kind == "ucr":
        if unit not in (None, "year"):
            raise ConfigError(f"--period: {src!r} holds jurisdiction-years; expected year, got {unit!r}")
        if len(offences) > 1:
            raise ConfigError(f"--offence: for jurisdiction-years give one offence, got {', '.join(offences)}")
        return ucr_series(con, src, offences[0] if offences else "violent_crime")
    if unit not in (None, "week", "month"):
        raise ConfigError(f"--period: incident series are counted by week or month; got {unit!r}")
    return incident_series(con, src, unit=unit or "week", area=area, offences=tuple(offences))


def run_alerts(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    method: str = "pooled",
    unit: str | None = None,
    area: str | None = None,
    offences: Sequence[str] = (),
    since: str | int | dt.date | None = None,
    fdr: float | None = None,
    budget: float | None = None,
    store: bool = True,
) -> AlertsResult:
    """Detect spikes in a warehouse dataset and store the new alerts (each once, with its data version).

    Parameters
    ----------
    con
        A warehouse connection (writable when ``store``).
    source
        The dataset (None: the only one loaded).
    method, since, fdr, budget
        As :func:`find_alerts`.
    unit
        ``week`` or ``month`` for incidents, ``year`` for UCR data (the default for each).
    area
        Incident area column (default: the ``area`` setting's choice).
    offences
        Incidents: one series per offence given (default: all offences together). UCR: one offence (default
        violent_crime).
    store
        Insert the alerts into the ``alerts`` table (those already there are kept as first stored).

    Returns
    -------
    AlertsResult
        The alerts, ``new_alerts`` holding the keys stored for the first time.
    """
    panel = build_panel(con, source, unit=unit, area=area, offences=offences)
    result = find_alerts(panel, method, since=since, fdr=fdr, budget=budget)
    if not store:
        return result
    from crimelens.warehouse.alerts import store_alerts

    new = store_alerts(con, result.table)
    return _replace(result, new_alerts=tuple(new))


def _replace(result: AlertsResult, **changes: Any) -> AlertsResult:
    import dataclasses

    return dataclasses.replace(result, **changes)


def run_after_batch(
    con: duckdb.DuckDBPyConnection,
    source: str,
    *,
    method: str = "pooled",
    unit: str | None = None,
    lookback: int = 2,
    fdr: float | None = None,
    budget: float | None = None,
    channels: Sequence[Channel] = (),
) -> tuple[AlertsResult, DeliveryReport]:
    """What a live feed calls after each batch it loads: detect, store, and notify alerts not sent before.

    The latest ``lookback`` whole periods are examined (a batch can complete last week and add late records to
    the one before). Alerts are stored once by their stable key and sent once per channel, so calling this after
    every poll re-sends nothing. A failing channel (dead webhook) is recorded and reported, never raised.

    Parameters
    ----------
    con
        A writable warehouse connection (the one the feed loads through).
    source
        The dataset the batch was loaded into.
    method, fdr, budget
        As :func:`find_alerts`.
    unit
        ``week`` (default for incidents) or ``month``; ``year`` for UCR data.
    lookback
        Whole periods examined, the latest last.
    channels
        Where alerts go (:mod:`crimelens.alerts.notify`).

    Returns
    -------
    tuple
        The :class:`AlertsResult` and the :class:`~crimelens.alerts.notify.DeliveryReport`.

    Examples
    --------
    >>> from crimelens.alerts import run_after_batch  # doctest: +SKIP
    >>> from crimelens.alerts.notify import JsonlChannel, WebhookChannel  # doctest: +SKIP
    >>> result, sent = run_after_batch(con, "chicago", channels=[JsonlChannel("alerts.jsonl")])  # doctest: +SKIP
    """
    from crimelens.alerts.notify import deliver

    if not isinstance(lookback, int) or lookback < 1:
        raise ConfigError(f"lookback: expected a whole number of periods ≥ 1, got {lookback!r}")
    panel = build_panel(con, source, unit=unit)
    start = max(0, len(panel.periods) - lookback)
    since: str | int = int(panel.periods[start]) if panel.unit == "year" else panel.period_label(start)
    result = find_alerts(panel, method, since=since, fdr=fdr, budget=budget)
    from crimelens.warehouse.alerts import store_alerts

    new = store_alerts(con, result.table)
    report = deliver(con, result.table, channels)
    return _replace(result, new_alerts=tuple(new), delivery=report.to_dict()), report
