"""Notifications: alerts to stdout, to a JSON-lines file and to a webhook, each alert sent once per channel.

:func:`deliver` sends the alerts not yet sent on each channel and records every delivery in the warehouse
(``alert_deliveries``): an alert sent once is never sent again on that channel, one whose delivery failed is
tried again on the next run. A failing channel (a dead webhook, an unwritable file) never raises into the
caller: its failure is logged, recorded and reported in the :class:`DeliveryReport`, so ingest goes on.

The webhook POSTs one JSON document per run, ``{"alerts": [ … ]}``, with httpx, retrying timeouts, connection
errors, 429 and 5xx with exponential backoff and jitter (stamina), honouring a 429's ``Retry-After`` up to the
backoff ceiling.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from crimelens.formatting import format_value

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

__all__ = [
    "Channel",
    "DeliveryReport",
    "JsonlChannel",
    "StdoutChannel",
    "WebhookChannel",
    "alert_message",
    "alert_records",
    "deliver",
]

log = logging.getLogger(__name__)


class Channel(Protocol):
    """Somewhere alerts go. ``name`` identifies the destination (dedupe is per name); ``send`` raises on failure."""

    name: str

    def send(self, records: list[dict[str, Any]]) -> None: ...


def alert_message(a: dict[str, Any]) -> str:
    """One line an analyst reads: where, what, when, observed vs expected with its interval, p or score, since."""
    where = a.get("where_name") or a.get("where_id")
    exp = a.get("expected")
    interval = ""
    if a.get("expected_low") is not None and a.get("expected_high") is not None:
        interval = f" (95%: {format_value(a['expected_low'], 'n')}–{format_value(a['expected_high'], 'n')})"
    stat = f"p = {a['p_value']:.2g}" if a.get("p_value") is not None else f"score {a.get('score', float('nan')):.2f}"
    since = f"; elevated since {a['elevated_since']}" if a.get("elevated_since") else ""
    expected = f"{exp:.1f}" if isinstance(exp, int | float) else "n/a"
    return (
        f"{a.get('where_kind', 'area')} {where}: {a.get('offence')} {format_value(a.get('observed'), 'n')} in "
        f"{a.get('unit')} {a.get('period')}, expected {expected}{interval}, {stat} ({a.get('method')}){since}"
    )


def alert_records(alerts: pd.DataFrame) -> list[dict[str, Any]]:
    """Alert rows as JSON-ready dicts, each with its one-line ``message``."""
    from crimelens.analysis.result import frame_records

    records = frame_records(alerts)
    for r in records:
        r["message"] = alert_message(r)
    return records


@dataclass
class StdoutChannel:
    """One line per alert on a text stream (default: standard output)."""

    stream: TextIO | None = None
    name: str = "stdout"

    def send(self, records: list[dict[str, Any]]) -> None:
        out = self.stream or sys.stdout
        for r in records:
            out.write("ALERT " + r["message"] + "\n")
        out.flush()


@dataclass
class JsonlChannel:
    """One JSON object per alert, appended to a JSON-lines file."""

    path: Path
    name: str = ""

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.name = self.name or f"jsonl:{self.path.resolve()}"

    def send(self, records: list[dict[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")


@dataclass
class WebhookChannel:
    """POST ``{"alerts": [...]}`` to a URL with httpx, retried with backoff and jitter (stamina).

    ``attempts``: tries in all; ``timeout``: seconds per try; ``wait_initial``/``wait_max``: the backoff.
    """

    url: str
    attempts: int = 4
    timeout: float = 5.0
    wait_initial: float = 0.5
    wait_max: float = 8.0
    name: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = self.name or f"webhook:{self.url}"

    def send(self, records: list[dict[str, Any]]) -> None:
        import httpx
        import stamina

        class _Retryable(Exception):
            def __init__(self, message: str, retry_after: float | None = None) -> None:
                super().__init__(message)
                self.retry_after = retry_after

        def retry_on(exc: Exception) -> bool | float:
            if isinstance(exc, _Retryable):
                return exc.retry_after if exc.retry_after is not None else True
            return isinstance(exc, httpx.TransportError)

        body = {"alerts": records}
        with httpx.Client(timeout=self.timeout) as client:
            for attempt in stamina.retry_context(
                on=retry_on,
                attempts=self.attempts,
                wait_initial=self.wait_initial,
                wait_max=self.wait_max,
                timeout=None,
            ):
                with attempt:
                    response = client.post(self.url, json=body, headers=self.headers)
                    if response.status_code == 429 or response.status_code >= 500:
                        after = _retry_after(response.headers.get("Retry-After"), self.wait_max)
                        raise _Retryable(f"HTTP {response.status_code}", after)
                    response.raise_for_status()


def _retry_after(value: str | None, ceiling: float) -> float | None:
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), ceiling)
    except ValueError:
        return None


@dataclass(frozen=True)
class DeliveryReport:
    """What :func:`deliver` did on each channel: alerts sent, skipped (sent before) and failures."""

    sent: dict[str, int]
    skipped: dict[str, int]
    failed: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"sent": dict(self.sent), "skipped": dict(self.skipped), "failed": dict(self.failed)}


def deliver(con: duckdb.DuckDBPyConnection, alerts: pd.DataFrame, channels: Sequence[Channel]) -> DeliveryReport:
    """Send each alert not yet sent on each channel, and record the deliveries; never raises for a channel.

    Parameters
    ----------
    con
        A writable warehouse connection holding the alerts (``alerts`` table, by ``alert_key``).
    alerts
        Alert rows (e.g. :attr:`crimelens.alerts.run.AlertsResult.table`).
    channels
        Where to send them.

    Returns
    -------
    DeliveryReport
        Per channel name: how many were sent, how many skipped as already sent, and the error of a failure.
    """
    from crimelens.warehouse.alerts import pending_keys, record_delivery

    sent: dict[str, int] = {}
    skipped: dict[str, int] = {}
    failed: dict[str, str] = {}
    if alerts.empty:
        return DeliveryReport(sent, skipped, failed)
    keys = [str(k) for k in alerts["alert_key"]]
    records = {r["alert_key"]: r for r in alert_records(alerts)}
    for ch in channels:
        todo = pending_keys(con, keys, ch.name)
        skipped[ch.name] = len(keys) - len(todo)
        if not todo:
            sent[ch.name] = 0
            continue
        try:
            ch.send([records[k] for k in todo])
        except Exception as exc:  # a channel's failure must not stop ingest: recorded, logged, reported
            message = f"{type(exc).__name__}: {exc}"
            log.warning("alerts could not be sent to %s: %s", ch.name, message)
            failed[ch.name] = message
            sent[ch.name] = 0
            record_delivery(con, todo, ch.name, "failed", message[:500])
            continue
        sent[ch.name] = len(todo)
        record_delivery(con, todo, ch.name, "sent")
    return DeliveryReport(sent, skipped, failed)
