"""`crimelens watch` runs spike alerts after each committed batch, against the real local SODA server.

The server (tests/feed_server.py) serves every 70th row of the real Chicago 2022 extract (3,080 records spread
over January–November 2022, as the extract is). Between two polls a spike is added to the served records: 20
records of community area 25 dated Tuesday 2022-11-22, inside the last whole week of the data (2022-11-21 to
2022-11-27; the data end on Wednesday 2022-11-30, so that week is complete and the next one is not). The watch
must show and write exactly one alert for it, never resend it, and keep ingesting while the webhook is dead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from crimelens import warehouse
from crimelens.alerts.notify import WebhookChannel
from crimelens.cli import app
from crimelens.cli.feed_alerts import FeedAlerts
from crimelens.feeds import BatchSummary, Feed, get_preset, poll
from feed_server import FeedServer, chicago_records

EXE = Path(sys.executable).with_name("crimelens")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "feeds.md"
STEP = 70
SPIKE_AREA = "25"
SPIKE_WEEK = "2022-11-21"
SPIKE = 20


@pytest.fixture(scope="module")
def spread(real_data: Path) -> list[dict[str, Any]]:
    return chicago_records(real_data, 4000, step=STEP)


@pytest.fixture(scope="module")
def spike(real_data: Path) -> list[dict[str, Any]]:
    """20 real records (rows 1-20 of the extract, none of them served) moved to area 25 on 2022-11-22."""
    out = []
    for i, r in enumerate(chicago_records(real_data, SPIKE + 1)[1:]):
        out.append({**r, "id": str(13_000_000 + i), "community_area": SPIKE_AREA,
                    "date": f"2022-11-22T{i:02d}:15:00.000"})  # fmt: skip
    return out


@pytest.fixture
def server(spread: list[dict[str, Any]]) -> Iterator[FeedServer]:
    s = FeedServer(spread)
    s.start()
    yield s
    s.stop()


def dead_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("CRIMELENS_")}
    out.update(CRIMELENS_FEED_PAGE_SIZE="1000", CRIMELENS_FEED_WAIT_INITIAL="0.05", CRIMELENS_FEED_WAIT_MAX="1",
               COLUMNS="200")  # fmt: skip
    out.update(extra)
    return out


def week_count(records: list[dict[str, Any]], area: str, monday: str) -> int:
    """Records of ``area`` whose date falls in the week starting ``monday`` (counted here from the records)."""
    start = dt.datetime.fromisoformat(monday)
    end = start + dt.timedelta(days=7)
    return sum(
        1 for r in records if r.get("community_area") == area and start <= dt.datetime.fromisoformat(r["date"]) < end
    )


class Receiver:
    """A webhook receiver on 127.0.0.1 that records each POSTed JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_spike_between_polls_fires_one_alert_sent_once_and_a_dead_webhook_never_stops_ingest(
    tmp_path: Path, server: FeedServer, spread: list[dict[str, Any]], spike: list[dict[str, Any]]
) -> None:
    db, jsonl, port = tmp_path / "w.duckdb", tmp_path / "alerts.jsonl", dead_port()
    base = week_count(spread, SPIKE_AREA, SPIKE_WEEK)
    server.before_poll[2] = lambda: server.store.add(spike)  # exactly between poll 1 and poll 2
    args = [str(EXE), "watch", "chicago", "--url", server.url, "--db", str(db), "--interval", "0", "--max-polls",
            "3", "--jsonl", str(jsonl), "--webhook", f"http://127.0.0.1:{port}/hook"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env())
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    # one alert on the terminal over three polls: poll 1 (3,080 real records) raised none, poll 2 raised the
    # spike's, and poll 3 found it again without showing it again
    alerts = [line for line in done.stdout.splitlines() if line.startswith("ALERT")]
    assert alerts == [
        f"ALERT community_area {SPIKE_AREA}: all {base + SPIKE} in week {SPIKE_WEEK}, expected "
        + alerts[0].split(", expected ")[1]
    ], done.stdout
    # and one line in the JSON-lines file, holding the counts made here from the served records
    lines = jsonl.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert (record["where_id"], record["period"], record["observed"]) == (SPIKE_AREA, SPIKE_WEEK, base + SPIKE)
    assert record["expected"] < base + SPIKE and record["p_value"] < 0.05 and record["method"] == "pooled"
    # the dead webhook: said on stderr at poll 2 and again at poll 3 (one try a poll), never fatal
    refused = [line for line in done.stderr.splitlines() if "Alerts not sent to the webhook" in line]
    assert len(refused) == 2, done.stderr
    assert "Ingest goes on; they are tried again on the next poll." in refused[0]
    assert "poll 3 · page 1:" in done.stderr and "Summary: 3 polls" in done.stderr
    assert "Alerts: 1 new alert in" in done.stderr
    c = duckdb.connect(str(db), read_only=True)
    try:
        held, distinct = c.execute("SELECT count(*), count(DISTINCT incident_key) FROM incidents").fetchone() or (0, 0)
        stored = c.execute("SELECT where_id, period FROM alerts").fetchall()
        deliveries = dict(c.execute("SELECT channel, status || ' ' || attempts FROM alert_deliveries").fetchall())
    finally:
        c.close()
    assert held == distinct == len(spread) + SPIKE  # every served record, once: ingest went on
    assert stored == [(SPIKE_AREA, SPIKE_WEEK)]
    assert deliveries == {
        "stdout": "sent 1",
        f"jsonl:{jsonl.resolve()}": "sent 1",
        f"webhook:http://127.0.0.1:{port}/hook": "failed 2",
    }
    # docs/feeds.md shows this run: every line it prints on stderr is there word for word (durations aside)
    doc = DOCS.read_text()
    shown = done.stderr.replace(server.url, "http://127.0.0.1:8765").replace(f"127.0.0.1:{port}", "127.0.0.1:8799")
    shown = shown.replace(str(jsonl.resolve()), "/tmp/demo/alerts.jsonl")
    for line in shown.splitlines():
        if line.strip() and not re.match(r"Poll \d done in", line):
            assert line in doc, line
    for line in done.stdout.splitlines():
        assert line in doc, line

    # the next run, with the webhook up: only the pending webhook delivery is made; nothing is shown again
    receiver = Receiver()
    try:
        again = subprocess.run(
            [*args[:5], "--db", str(db), "--once", "--jsonl", str(jsonl), "--webhook", receiver.url, "--json"],
            capture_output=True, text=True, timeout=120, env=env(),
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        # the alert was never sent to this URL: it goes there now, once
        assert [[a["where_id"] for a in b["alerts"]] for b in receiver.bodies] == [[SPIKE_AREA]]
        data = json.loads(again.stdout)  # under --json stdout holds the JSON document only
        assert data["alerts"]["new"] == [] and data["alerts"]["runs"] >= 1 and data["alerts"]["failed"] == {}
        assert data["alerts"]["channels"] == ["stdout", f"jsonl:{jsonl.resolve()}", f"webhook:{receiver.url}"]
        assert "ALERT" not in again.stderr and len(jsonl.read_text().splitlines()) == 1
        third = subprocess.run(again.args, capture_output=True, text=True, timeout=120, env=env())
        assert third.returncode == 0, third.stderr
        assert len(receiver.bodies) == 1  # sent once, not on every poll
    finally:
        receiver.stop()


def test_a_failing_channel_is_tried_once_a_poll(
    tmp_path: Path, server: FeedServer, spike: list[dict[str, Any]]
) -> None:
    server.store.add(spike)
    con = warehouse.connect(tmp_path / "w.duckdb")
    try:
        feed = Feed(get_preset("chicago"), "chicago-feed", server.url, 1000)
        with feed.client() as client:
            poll(con, feed, client, hooks=[])
        said: list[str] = []
        dead = WebhookChannel(f"http://127.0.0.1:{dead_port()}/hook", attempts=1)
        hook = FeedAlerts(channels=[dead], say=said.append)
        page = BatchSummary("chicago-feed", "page", 5, 1, 10, new=10)
        for batch in (page, page, BatchSummary("chicago-feed", "page", 5, 2, 10, updated=3)):
            hook(con, "chicago-feed", batch)  # three runs in poll 5: the webhook is tried at the first only
        hook(con, "chicago-feed", BatchSummary("chicago-feed", "page", 5, 3, 10, unchanged=10))  # not due
        attempts = con.execute("SELECT attempts FROM alert_deliveries").fetchall()
        assert (hook.runs, attempts, len(said)) == (3, [(1,)], 1)
        hook(con, "chicago-feed", BatchSummary("chicago-feed", "page", 6, 1, 5, unchanged=5, last=True))
        assert con.execute("SELECT attempts FROM alert_deliveries").fetchall() == [(2,)]  # tried again next poll
        assert [a["where_id"] for a in hook.new] == [SPIKE_AREA] and dead.name in hook.failed
    finally:
        con.close()


def test_too_little_data_is_said_once_and_ingest_goes_on(tmp_path: Path, spread: list[dict[str, Any]]) -> None:
    # ten records of one week: no whole week before the one they fall in, so no series can be formed yet
    week = [r for r in spread if r["date"].startswith("2022-11-0")][:10]
    s = FeedServer(week)
    s.start()
    try:
        done = subprocess.run(
            [str(EXE), "watch", "chicago", "--url", s.url, "--db", str(tmp_path / "w.duckdb"), "--interval", "0",
             "--max-polls", "2"],
            capture_output=True, text=True, timeout=120, env=env(),
        )  # fmt: skip
    finally:
        s.stop()
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if "Alerts could not run" in line]
    assert len(notices) == 1 and "expected at least 2 whole weeks" in notices[0], done.stderr
    assert "Dataset chicago-feed holds 10 incidents." in done.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--no-alerts", "--webhook", "http://x"], "Error: --no-alerts: no alert is run, so none can be sent"),
        (["--alert-method", "magic"], "Error: --alert-method: expected auto or one of compstat"),
        (["--alert-method", "cusum", "--fdr", "0.1"], "Error: --fdr: method cusum gives a score, not a p-value"),
        (["--fdr", "2"], "Error: --fdr: expected a false discovery rate between 0 and 1"),
        (["--fdr", "0.1", "--budget", "1"], "Error: --fdr and --budget: expected one of them"),
        (["--alert-period", "year"], "Error: --alert-period: a feed's incidents are counted by week or month"),
        (["--webhook", "ftp://x"], "Error: --webhook: expected an http:// or https:// URL, got 'ftp://x'"),
    ],
)
def test_bad_alert_options_are_one_line_before_any_request(tmp_path: Path, extra: list[str], message: str) -> None:
    # the URL is a dead port: the options are refused before anything is fetched (no retry line, no wait)
    url = f"http://127.0.0.1:{dead_port()}"
    result = CliRunner().invoke(app, ["watch", "chicago", "--url", url, "--once", "--db", str(tmp_path / "w"), *extra])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
