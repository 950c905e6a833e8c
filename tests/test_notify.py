"""Notifications against a real HTTP server on 127.0.0.1: retries, a dead webhook that never raises, alerts sent
once; the JSON-lines file; and the entry point a live feed calls after each batch."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from crimelens import warehouse
from crimelens.alerts import run_after_batch
from crimelens.alerts.notify import JsonlChannel, StdoutChannel, WebhookChannel, alert_message, deliver
from crimelens.alerts.run import ALERT_TABLE_COLUMNS
from crimelens.warehouse.alerts import store_alerts


class Hook:
    """A local webhook receiver: answers the first ``fail`` POSTs with ``status`` (and Retry-After), then 200."""

    def __init__(self, fail: int = 0, status: int = 500, retry_after: str | None = None) -> None:
        self.fail, self.status, self.retry_after = fail, status, retry_after
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                hook.requests += 1
                if hook.requests <= hook.fail:
                    self.send_response(hook.status)
                    if hook.retry_after is not None:
                        self.send_header("Retry-After", hook.retry_after)
                    self.end_headers()
                    return
                hook.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a port bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def _fast(url: str, attempts: int = 4) -> WebhookChannel:
    return WebhookChannel(url, attempts=attempts, timeout=2.0, wait_initial=0.01, wait_max=0.05)


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = warehouse.connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def _alerts(n: int = 2) -> pd.DataFrame:
    rows = []
    for i in range(n):
        rows.append({
            "alert_key": f"k{i}", "source": "sim", "unit": "week", "where_kind": "neighbourhood", "where_id": f"N{i}",
            "where_name": f"Area {i}", "offence": "burglary", "period": "2019-03-04", "method": "pooled",
            "observed": 12.0 + i, "expected": 4.0, "expected_low": 1.0, "expected_high": 8.0, "p_value": 0.0004,
            "q_value": 0.01, "score": 3.4, "elevated_since": "2019-02-25", "control": "fdr 0.05", "data_version": 3,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(ALERT_TABLE_COLUMNS))


def test_alert_message_says_where_what_when_and_how_unusual() -> None:
    msg = alert_message(json.loads(_alerts(1).to_json(orient="records"))[0])
    assert msg == (
        "neighbourhood Area 0: burglary 12 in week 2019-03-04, expected 4.0 (95%: 1–8), p = 0.0004 (pooled); "
        "elevated since 2019-02-25"
    )


def test_webhook_retries_a_server_that_fails_first(con: duckdb.DuckDBPyConnection) -> None:
    alerts = _alerts()
    store_alerts(con, alerts)
    with Hook(fail=2, status=503) as hook:
        report = deliver(con, alerts, [_fast(hook.url)])
    # two 503s, then the POST that succeeds: three requests, one body holding both alerts
    assert hook.requests == 3 and len(hook.bodies) == 1
    assert [a["alert_key"] for a in hook.bodies[0]["alerts"]] == ["k0", "k1"]
    assert report.sent == {f"webhook:{hook.url}": 2} and report.failed == {}
    status = con.execute("SELECT status, attempts FROM alert_deliveries ORDER BY alert_key").fetchall()
    assert status == [("sent", 1), ("sent", 1)]


def test_webhook_honours_retry_after_on_429(con: duckdb.DuckDBPyConnection) -> None:
    alerts = _alerts(1)
    store_alerts(con, alerts)
    with Hook(fail=1, status=429, retry_after="0") as hook:
        report = deliver(con, alerts, [_fast(hook.url)])
    assert hook.requests == 2 and report.sent[f"webhook:{hook.url}"] == 1


def test_dead_webhook_never_raises_and_is_tried_again_later(con: duckdb.DuckDBPyConnection) -> None:
    alerts = _alerts()
    store_alerts(con, alerts)
    dead = _fast(_dead_url(), attempts=2)
    report = deliver(con, alerts, [dead])  # must not raise
    assert report.sent[dead.name] == 0 and "ConnectError" in report.failed[dead.name]
    assert con.execute("SELECT DISTINCT status FROM alert_deliveries").fetchall() == [("failed",)]
    # a server answering 500 every time: also recorded, not raised
    with Hook(fail=100, status=500) as hook:
        report = deliver(con, alerts, [_fast(hook.url, attempts=3)])
        assert hook.requests == 3 and hook.url in next(iter(report.failed))
    # the dead hook's alerts were not sent: the next run sends them (to a live server at that name)
    with Hook() as hook:
        live = _fast(hook.url)
        live.name = dead.name
        report = deliver(con, alerts, [live])
        assert report.sent[dead.name] == 2 and len(hook.bodies) == 1


def test_alerts_are_not_sent_again(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    alerts = _alerts()
    store_alerts(con, alerts)
    out = io.StringIO()
    path = tmp_path / "alerts.jsonl"
    with Hook() as hook:
        channels = [_fast(hook.url), JsonlChannel(path), StdoutChannel(out)]
        first = deliver(con, alerts, channels)
        second = deliver(con, alerts, channels)
        more = deliver(con, _alerts(3), channels)  # one new alert among them
    assert set(first.sent.values()) == {2} and set(second.sent.values()) == {0} and set(second.skipped.values()) == {2}
    assert set(more.sent.values()) == {1}
    assert len(hook.bodies) == 2 and [a["alert_key"] for a in hook.bodies[1]["alerts"]] == ["k2"]
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["alert_key"] for x in lines] == ["k0", "k1", "k2"] and lines[0]["observed"] == 12.0
    assert out.getvalue().count("ALERT ") == 3


def test_store_alerts_keeps_the_first_version(con: duckdb.DuckDBPyConnection) -> None:
    assert store_alerts(con, _alerts()) == ["k0", "k1"]
    later = _alerts(3).assign(data_version=4)
    assert store_alerts(con, later) == ["k2"]
    rows = con.execute("SELECT alert_key, data_version FROM alerts ORDER BY 1").fetchall()
    assert rows == [("k0", 3), ("k1", 3), ("k2", 4)]


def test_run_after_batch_notifies_once(marshall_con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with Hook() as hook:
        channels = [JsonlChannel(path), _fast(hook.url)]
        result, report = run_after_batch(marshall_con, "ucr-marshall", method="glm", lookback=16, channels=channels)
        again, report2 = run_after_batch(marshall_con, "ucr-marshall", method="glm", lookback=16, channels=channels)
    assert len(result.table) > 0 and len(result.new_alerts) == len(result.table)
    assert report.sent[channels[0].name] == len(result.table) and report.failed == {}
    assert again.new_alerts == () and set(report2.sent.values()) == {0}
    assert len(path.read_text().splitlines()) == len(result.table) and len(hook.bodies) == 1
    assert result.delivery["sent"] == report.to_dict()["sent"]
    # a dead webhook after a batch: the feed carries on
    latest, dead_report = run_after_batch(marshall_con, "ucr-marshall", channels=[_fast(_dead_url(), attempts=1)])
    assert len(latest.table) > 0 and len(dead_report.failed) == 1
