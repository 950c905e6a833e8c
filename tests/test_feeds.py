"""Live feeds against a real HTTP server on 127.0.0.1 serving real Chicago records, with injected faults.

After every scenario the warehouse must hold exactly the records the server serves at that moment, once each:
the same count, the same keys, and each key's values equal to the served record's (compared field by field
with values parsed here, independently of the feed code). Retries wait briefly through the retry policy's
parameters (no time is mocked).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crimelens import warehouse
from crimelens.cli import app
from crimelens.errors import ConfigError, SourceError
from crimelens.feeds import Feed, PollSummary, RetryPolicy, WatchResult, get_preset, poll, preset_names, watch
from crimelens.feeds.soda import parse_timestamp
from feed_server import FeedServer, chicago_records

N = 1500  # real records served (the first rows of the Chicago 2022 slim extract)
PAGE = 250  # 6 pages per full poll
SOURCE = "chicago-feed"
POLICY = RetryPolicy(attempts=5, total=15.0, wait_initial=0.05, wait_max=1.5, timeout=1.0)
EXE = Path(sys.executable).with_name("crimelens")


@pytest.fixture(scope="module")
def records(real_data: Path) -> list[dict[str, Any]]:
    return chicago_records(real_data, N + 20)


@pytest.fixture
def server(records: list[dict[str, Any]]) -> Iterator[FeedServer]:
    s = FeedServer(records[:N])
    s.start()
    yield s
    s.stop()


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = warehouse.connect(tmp_path / "feed.duckdb")
    yield c
    c.close()


def chicago_feed(server: FeedServer, paging: str = "keyset", page_size: int = PAGE) -> Feed:
    # ids are listed 400 to a page (50,000 by default), so that reconciliations here read several pages
    return Feed(get_preset("chicago"), SOURCE, server.url, page_size, paging, ids_page_size=400)


def run(
    con: duckdb.DuckDBPyConnection,
    server: FeedServer,
    *,
    reconcile: bool = False,
    paging: str = "keyset",
    policy: RetryPolicy = POLICY,
    notes: list[str] | None = None,
) -> PollSummary:
    feed = chicago_feed(server, paging)
    with feed.client(policy=policy, notify=None if notes is None else notes.append) as client:
        return poll(con, feed, client, reconcile=reconcile)


def served_valid(server: FeedServer) -> dict[str, dict[str, Any]]:
    """The served records a valid incident can be made of (a date that parses and an offence)."""
    out = {}
    for key, rec in server.store.by_key().items():
        try:
            dt.datetime.strptime(rec.get("date", ""), "%Y-%m-%dT%H:%M:%S.%f")
        except ValueError:
            continue
        if rec.get("primary_type"):
            out[key] = rec
    return out


def assert_exact(db: duckdb.DuckDBPyConnection | Path, server: FeedServer) -> None:
    """The warehouse holds exactly the server's current (valid) records, once each, with the served values."""
    c = duckdb.connect(str(db), read_only=True) if isinstance(db, Path) else db
    try:
        rows = c.execute(
            "SELECT incident_key, occurred_at, offence_raw, offence_detail, community_area, premise, arrest, domestic "
            "FROM incidents WHERE source = ?",
            [SOURCE],
        ).fetchall()
    finally:
        if isinstance(db, Path):
            c.close()
    served = served_valid(server)
    keys = [r[0] for r in rows]
    assert len(rows) == len(served), (len(rows), len(served))
    assert len(set(keys)) == len(keys), "a record is held twice"
    assert set(keys) == set(served)
    for key, occurred, raw, detail, area, premise, arrest, domestic in rows:
        rec = served[key]
        assert occurred == dt.datetime.strptime(rec["date"], "%Y-%m-%dT%H:%M:%S.%f"), key
        assert raw == rec["primary_type"], key
        assert detail == rec.get("description"), key
        assert area == (str(int(rec["community_area"])) if "community_area" in rec else None), key
        assert premise == rec.get("location_description"), key
        assert arrest == rec.get("arrest") and domestic == rec.get("domestic"), key


def watermark(con: duckdb.DuckDBPyConnection) -> dt.datetime | None:
    row = con.execute("SELECT watermark FROM feed_state WHERE source = ?", [SOURCE]).fetchone()
    return None if row is None else row[0]


# -- a clean feed ------------------------------------------------------------------------------------------------
def test_served_records_are_all_valid_real_rows(server: FeedServer) -> None:
    # the precondition of the exact comparisons: the first 1,500 rows of the extract are complete records
    assert len(served_valid(server)) == N


def test_first_poll_loads_every_record_once_in_ordered_pages(
    con: duckdb.DuckDBPyConnection, server: FeedServer
) -> None:
    summary = run(con, server)
    # 1,500 records in pages of 250: 6 full pages, then an empty one ends the poll
    assert (summary.pages, summary.rows, summary.new, summary.updated) == (6, 1500, 1500, 0)
    assert_exact(con, server)
    assert watermark(con) == server.store.newest()
    pages = server.page_requests()
    assert pages and all(r.params["$order"] == ":id" for r in pages)
    # offence mapping through the Chicago adapter's taxonomy (TYPE:ROBBERY|* -> robbery, TYPE:BURGLARY|* -> burglary)
    mapped = dict(
        con.execute(
            "SELECT offence_raw, any_value(offence) FROM incidents WHERE offence_raw IN ('ROBBERY', 'BURGLARY') "
            "GROUP BY 1"
        ).fetchall()
    )
    assert mapped == {"ROBBERY": "robbery", "BURGLARY": "burglary"}


def test_a_second_poll_reads_only_the_watermark_instant_again(
    con: duckdb.DuckDBPyConnection, server: FeedServer
) -> None:
    run(con, server)
    again = run(con, server)
    # records share :updated_at 50 to a second; the newest second holds records 1450-1499 (1500 // 50 = 30 groups):
    # the inclusive lower bound reads those 50 again, unchanged, and nothing is duplicated
    assert (again.rows, again.new, again.updated, again.unchanged) == (50, 0, 0, 50)
    assert_exact(con, server)


def test_app_token_is_sent_as_x_app_token(con: duckdb.DuckDBPyConnection, server: FeedServer) -> None:
    feed = chicago_feed(server)
    with feed.client(app_token="token-123", policy=POLICY) as client:
        poll(con, feed, client)
    assert {r.headers.get("x-app-token") for r in server.log} == {"token-123"}


# -- injected faults ---------------------------------------------------------------------------------------------
def test_server_errors_are_retried(con: duckdb.DuckDBPyConnection, server: FeedServer) -> None:
    server.inject("status", times=3, arg=500, after=2)
    notes: list[str] = []
    run(con, server, notes=notes)
    assert [r.status for r in server.page_requests()].count(500) == 3
    assert len(notes) == 3 and "500" in notes[0] and "attempt 2 of 5" in notes[0]
    assert_exact(con, server)


def test_429_waits_as_long_as_retry_after_asks(con: duckdb.DuckDBPyConnection, server: FeedServer) -> None:
    server.inject("throttle", times=1, arg=1, after=1)
    run(con, server)
    log = server.page_requests()
    i = next(n for n, r in enumerate(log) if r.status == 429)
    # Retry-After: 1 -> the next request comes at least a second later (the policy's own first wait is 0.05 s)
    assert log[i + 1].at - log[i].at >= 0.95
    assert_exact(con, server)


def test_slow_answers_within_the_timeout_are_kept_and_slower_ones_retried(
    con: duckdb.DuckDBPyConnection, server: FeedServer
) -> None:
    server.inject("slow", times=1, arg=0.3, after=1)  # within the 1 s timeout: read as is
    server.inject("slow", times=1, arg=2.0, after=3)  # past it: abandoned and asked again
    started = time.monotonic()
    run(con, server)
    assert time.monotonic() - started < 10
    assert [r.fault for r in server.page_requests()].count("slow") == 2
    assert len(server.page_requests()) == 7 + 1  # 6 pages + the empty one, and one retry
    assert_exact(con, server)


def test_truncated_and_cut_answers_are_retried(con: duckdb.DuckDBPyConnection, server: FeedServer) -> None:
    server.inject("truncate", times=2, after=1)
    server.inject("cut", times=1, after=4)
    run(con, server)
    assert_exact(con, server)


def test_an_unreadable_page_stops_with_one_line_and_the_next_run_resumes(
    con: duckdb.DuckDBPyConnection, server: FeedServer
) -> None:
    server.inject("truncate", times=100, after=2)  # pages 1 and 2 are served, then only broken JSON
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        run(con, server)
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert "\n" not in message
    assert "poll 1, page 3 could not be read after 5 attempts" in message and "not complete JSON" in message
    held = con.execute("SELECT count(*), count(DISTINCT incident_key) FROM incidents").fetchone()
    assert held == (500, 500)  # the two committed pages, once each
    assert watermark(con) is None  # the poll did not end: the watermark did not move
    server.clear_faults()
    resumed = run(con, server)
    assert resumed.resumed and resumed.new == 1000
    assert_exact(con, server)


def test_a_repeated_page_is_noticed_and_asked_again(con: duckdb.DuckDBPyConnection, server: FeedServer) -> None:
    server.inject("repeat", times=1, after=2)  # the third page request gets the second page again
    notes: list[str] = []
    run(con, server, notes=notes)
    assert any("already read" in n for n in notes)
    assert_exact(con, server)


def test_a_repeated_page_is_noticed_with_offset_paging_too(con: duckdb.DuckDBPyConnection, server: FeedServer) -> None:
    server.inject("repeat", times=1, after=3)
    notes: list[str] = []
    run(con, server, paging="offset", notes=notes)
    assert any("already read" in n for n in notes)
    assert "$offset" in server.page_requests()[-1].params
    assert_exact(con, server)


def test_without_order_pages_overlap_and_the_client_always_orders(
    con: duckdb.DuckDBPyConnection, server: FeedServer
) -> None:
    # the fault is real: offset paging without $order returns some rows twice and misses others
    seen: list[str] = []
    for offset in range(0, N, PAGE):
        answer = httpx.get(
            f"{server.url}/resource/ijzp-q8t2.json", params={"$limit": PAGE, "$offset": offset, "$select": ":id"}
        )
        seen += [r[":id"] for r in answer.json()]
    assert len(seen) == N and len(set(seen)) < N
    server.log.clear()
    run(con, server, paging="offset")
    assert all(r.params.get("$order") == ":id" for r in server.page_requests())
    assert_exact(con, server)


def test_records_updated_and_added_between_polls_replace_the_old_versions(
    con: duckdb.DuckDBPyConnection, server: FeedServer, records: list[dict[str, Any]]
) -> None:
    run(con, server)
    changed = [k for k, r in sorted(server.store.by_key().items()) if r.get("primary_type") != "ROBBERY"][:25]
    server.store.update(changed, {"primary_type": "ROBBERY", "description": "ARMED - HANDGUN"})
    server.store.add(records[N : N + 10])
    second = run(con, server)
    # 25 updated + 10 new, plus the 50 records of the old watermark's instant read again unchanged
    assert (second.new, second.updated, second.unchanged) == (10, 25, 50)
    assert_exact(con, server)
    assert watermark(con) == server.store.newest()
    robbery = con.execute(
        "SELECT count(*) FROM incidents WHERE incident_key IN (SELECT unnest(?::VARCHAR[])) AND offence = 'robbery'",
        [changed],
    ).fetchone()
    assert robbery == (25,)


def test_deleted_records_are_removed_by_reconciliation_only(con: duckdb.DuckDBPyConnection, server: FeedServer) -> None:
    run(con, server)
    gone = sorted(server.store.by_key())[100:115]
    server.store.delete(gone)
    plain = run(con, server)
    assert plain.deleted == 0
    held = con.execute("SELECT count(*) FROM incidents").fetchone()
    assert held == (N,)  # an :updated_at pull cannot see deletions: 15 stale records remain
    reconciled = run(con, server, reconcile=True)
    assert reconciled.reconciled and reconciled.deleted == 15
    assert_exact(con, server)
    issue = con.execute("SELECT code, message FROM load_issues WHERE code = 'deleted_at_source'").fetchone()
    assert issue is not None and "15 records" in issue[1]


def test_an_interrupted_reconciliation_resumes_after_its_last_listed_page(
    con: duckdb.DuckDBPyConnection, server: FeedServer
) -> None:
    run(con, server)
    gone = sorted(server.store.by_key())[500:510]
    server.store.delete(gone)
    server.inject("truncate", times=100, target="ids", after=2)  # 1,490 ids in pages of 400: page 3 breaks
    with pytest.raises(SourceError, match="id listing, page 3 could not be read"):
        run(con, server, reconcile=True)
    assert con.execute("SELECT count(*) FROM incidents").fetchone() == (N,)  # nothing removed on a partial list
    assert con.execute("SELECT count(*) FROM feed_reconcile_ids").fetchone() == (800,)  # two pages committed
    server.clear_faults()
    server.log.clear()
    again = run(con, server)  # not asked to reconcile: the interrupted reconciliation is finished anyway
    assert again.reconciled and again.deleted == 10
    assert_exact(con, server)
    listing = [r for r in server.log if r.params.get("$select", "").startswith(":id,")]
    assert len(listing) == 2 and ":id >" in listing[0].params["$where"]  # pages 3 and 4 only, after the cursor
    assert con.execute("SELECT count(*) FROM feed_reconcile_ids").fetchone() == (0,)


def test_an_empty_id_listing_removes_nothing(con: duckdb.DuckDBPyConnection, server: FeedServer) -> None:
    run(con, server)
    server.store.delete(list(server.store.by_key()))
    with pytest.raises(SourceError, match="listed no record ids at all"):
        run(con, server, reconcile=True)
    assert con.execute("SELECT count(*) FROM incidents").fetchone() == (N,)
    state = con.execute("SELECT reconcile_cursor FROM feed_state").fetchone()
    assert state == (None,)


def test_an_update_that_makes_a_record_invalid_removes_its_old_version(
    con: duckdb.DuckDBPyConnection, server: FeedServer
) -> None:
    run(con, server)
    key = sorted(server.store.by_key())[7]
    server.store.update([key], {"date": "not a date"})
    second = run(con, server)
    assert second.dropped == 1
    assert_exact(con, server)  # the served record is invalid now: neither version is held
    assert con.execute("SELECT count(*) FROM incidents WHERE incident_key = ?", [key]).fetchone() == (0,)


def test_a_server_restart_during_a_poll_is_ridden_out(con: duckdb.DuckDBPyConnection, server: FeedServer) -> None:
    timer = server.restart_after(0.6)
    try:
        started = time.monotonic()
        run(con, server)
    finally:
        timer.join()
    assert time.monotonic() - started >= 0.5
    assert_exact(con, server)


def test_a_server_that_stays_down_gives_one_line_within_the_retry_budget(
    con: duckdb.DuckDBPyConnection, server: FeedServer
) -> None:
    server.stop()
    policy = RetryPolicy(attempts=3, total=3.0, wait_initial=0.05, wait_max=0.2, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        run(con, server, policy=policy)
    assert time.monotonic() - started < 5
    assert "could not be read after 3 attempts" in str(caught.value) and "\n" not in str(caught.value)
    assert con.execute("SELECT count(*) FROM incidents").fetchone() == (0,)


def test_a_failing_hook_never_stops_ingest(con: duckdb.DuckDBPyConnection, server: FeedServer) -> None:
    calls: list[tuple[str, str, int]] = []

    def broken(c: duckdb.DuckDBPyConnection, source: str, batch: Any) -> None:
        calls.append((source, batch.kind, batch.rows))
        raise RuntimeError("webhook down")

    result = watch(con, chicago_feed(server), interval=0, max_polls=2, reconcile_every=2, policy=POLICY, hooks=[broken])
    assert [p.poll for p in result.polls] == [1, 2]
    # poll 1: 6 pages and a reconciliation (first poll of the run); poll 2: the 50 records of the watermark instant
    assert calls[:6] == [(SOURCE, "page", 250)] * 6 and calls[6] == (SOURCE, "reconciliation", 1500)
    assert calls[7] == (SOURCE, "page", 50)
    assert_exact(con, server)


# -- settings and presets ------------------------------------------------------------------------------------------
def test_bad_feed_options_are_config_errors(server: FeedServer) -> None:
    with pytest.raises(ConfigError, match="unknown feed 'boston'; allowed: chicago, la-crime, nyc-complaints"):
        get_preset("boston")
    with pytest.raises(ConfigError, match="page size"):
        Feed(get_preset("chicago"), SOURCE, server.url, page_size=0)
    with pytest.raises(ConfigError, match="feed_attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ConfigError, match="expected http:// or https:// followed by a host, got 'ftp://x'"):
        Feed(get_preset("chicago"), SOURCE, "ftp://x")


def test_presets_document_key_time_fields_and_caveats() -> None:
    assert preset_names() == ["chicago", "la-crime", "nyc-complaints"]
    chicago, nyc, la = (get_preset(n) for n in ("chicago", "nyc-complaints", "la-crime"))
    assert (chicago.dataset, chicago.key_field) == ("ijzp-q8t2", "id")
    assert (nyc.dataset, nyc.key_field) == ("5uac-w243", "cmplnt_num")
    assert (la.dataset, la.key_field) == ("2nrs-mtv8", "dr_no")
    assert any("seven days" in c for c in chicago.caveats)
    assert any("M/D/YY" in c for c in nyc.caveats)
    assert any("March 2024" in c and "NIBRS" in c for c in la.caveats)
    assert chicago.default_url == "https://data.cityofchicago.org"


def _poll_preset(
    tmp_path: Path, preset: str, dataset: str, key: str, rows: list[dict[str, Any]]
) -> duckdb.DuckDBPyConnection:
    server = FeedServer(rows, dataset=dataset, key=key)
    server.start()
    try:
        c = warehouse.connect(tmp_path / f"{preset}.duckdb")
        feed = Feed(get_preset(preset), f"{preset}-feed", server.url, 100)
        with feed.client(policy=POLICY) as client:
            poll(c, feed, client)
        return c
    finally:
        server.stop()


def test_nyc_preset_reads_month_day_year_text_dates(tmp_path: Path) -> None:
    rows = [  # hand-made records in the API's field names
        {"cmplnt_num": "1001", "cmplnt_fr_dt": "01/05/24", "cmplnt_fr_tm": "23:15:00", "ky_cd": "105",
         "ofns_desc": "ROBBERY", "addr_pct_cd": "075", "latitude": "40.67", "longitude": "-73.88"},
        {"cmplnt_num": "1002", "cmplnt_fr_dt": "12/31/2023", "ky_cd": "344", "ofns_desc": "ASSAULT 3"},
        {"cmplnt_num": "1003", "cmplnt_fr_dt": "13/45/24", "cmplnt_fr_tm": "10:00:00", "ky_cd": "109"},
        {"cmplnt_num": "1004", "cmplnt_fr_dt": "2024-02-29T00:00:00.000", "cmplnt_fr_tm": "06:30:00", "ky_cd": "999",
         "ofns_desc": "SOMETHING ELSE"},
    ]  # fmt: skip
    c = _poll_preset(tmp_path, "nyc-complaints", "5uac-w243", "cmplnt_num", rows)
    query = "SELECT incident_key, occurred_at, offence, district FROM incidents"
    got = {k: (t, o, d) for k, t, o, d in c.execute(query).fetchall()}
    c.close()
    assert got == {
        "1001": (dt.datetime(2024, 1, 5, 23, 15), "robbery", "75"),  # M/D/YY; precinct 075 -> 75
        "1002": (dt.datetime(2023, 12, 31, 0, 0), "other_assault", None),  # no time: midnight
        "1004": (dt.datetime(2024, 2, 29, 6, 30), "other", None),  # ISO date; code 999 unmapped -> other
    }  # 1003: month 13 is no date -> dropped (bad_date)


def test_la_preset_reads_hhmm_times_without_leading_zeros(tmp_path: Path) -> None:
    rows = [
        {"dr_no": "230100001", "date_occ": "2023-07-04T00:00:00.000", "time_occ": "5", "crm_cd": "510",
         "crm_cd_desc": "VEHICLE - STOLEN", "area": "01", "lat": "34.05", "lon": "-118.25"},
        {"dr_no": "230100002", "date_occ": "2023-07-04T00:00:00.000", "time_occ": "1330", "crm_cd": "230",
         "crm_cd_desc": "ASSAULT WITH DEADLY WEAPON", "lat": "0", "lon": "0"},
    ]  # fmt: skip
    c = _poll_preset(tmp_path, "la-crime", "2nrs-mtv8", "dr_no", rows)
    query = "SELECT incident_key, occurred_at, offence, district, latitude FROM incidents"
    got = {r[0]: r[1:] for r in c.execute(query).fetchall()}
    c.close()
    assert got == {
        "230100001": (dt.datetime(2023, 7, 4, 0, 5), "motor_vehicle_theft", "1", 34.05),  # '5' is 00:05
        "230100002": (dt.datetime(2023, 7, 4, 13, 30), "aggravated_assault", None, None),  # 0/0: no location
    }


def test_soda_timestamps() -> None:
    assert parse_timestamp("2026-01-01T00:00:39.000Z") == dt.datetime(2026, 1, 1, 0, 0, 39)
    assert parse_timestamp("2026-01-01T00:00:39.250") == dt.datetime(2026, 1, 1, 0, 0, 39, 250000)


# -- the command line ----------------------------------------------------------------------------------------------
def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIMELENS_")}
    env.update(
        CRIMELENS_FEED_PAGE_SIZE=str(PAGE), CRIMELENS_FEED_WAIT_INITIAL="0.05", CRIMELENS_FEED_WAIT_MAX="1",
        CRIMELENS_FEED_TIMEOUT="2", CRIMELENS_FEED_RETRY_TIME="10", CRIMELENS_FEED_ATTEMPTS="5",
    )  # fmt: skip
    env.update(extra)
    return env


def test_watch_once_shows_pages_and_a_summary(tmp_path: Path, server: FeedServer) -> None:
    db = tmp_path / "cli.duckdb"
    server.inject("status", times=1, arg=503, after=1)
    result = subprocess.run(
        [str(EXE), "watch", "chicago", "--url", server.url, "--once", "--db", str(db), "--json", "--no-alerts"],
        capture_output=True, text=True, timeout=120,
        env=_env(CRIMELENS_FEED_APP_TOKEN="tok", CRIMELENS_FEED_ATTEMPTS="6", COLUMNS="200"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert "poll 1 · page 1: 250 rows (250 new, 0 updated, 0 unchanged, 0 dropped)" in err
    assert "the server answered 503 Service Unavailable; retrying (attempt 2 of 6)" in err
    # docs/feeds.md shows this run: every line it prints is there, word for word (the poll's duration aside)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "feeds.md").read_text()
    for line in err.replace(server.url, "http://127.0.0.1:8765").splitlines():
        if line.strip() and not line.startswith("Poll 1 done in"):
            assert line in doc, line
    assert "poll 1 · reconciliation: 1,500 ids listed; 0 records deleted at the source removed" in err
    assert "Summary: 1 poll, 1,500 rows read in 6 pages: 1,500 new" in err
    assert "stamina" not in err
    assert "Dataset chicago-feed holds 1,500 incidents." in err
    data = json.loads(result.stdout)
    assert data["command"] == "watch" and data["incidents"] == N and data["totals"]["rows"] == N
    assert {f.name for f in dataclasses.fields(WatchResult)} <= set(data)  # every field of the result
    assert set(data["polls"][0]) == {f.name for f in dataclasses.fields(PollSummary)}
    assert data["polls"][0]["watermark"].startswith("2026-01-01")
    assert {r.headers.get("x-app-token") for r in server.log} == {"tok"}
    assert_exact(db, server)


def test_watch_errors_are_one_line(tmp_path: Path, server: FeedServer) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["watch", "boston", "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: unknown feed 'boston'; allowed: chicago, la-crime, nyc-complaints"
    server.stop()
    env = _env(CRIMELENS_FEED_ATTEMPTS="2", CRIMELENS_FEED_RETRY_TIME="2")
    result = subprocess.run(
        [str(EXE), "watch", "chicago", "--url", server.url, "--once", "--db", str(tmp_path / "w.duckdb")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "could not be read after 2 attempts" in errors[0]
    assert "Traceback" not in result.stderr


def _held(db: Path) -> tuple[int, int, tuple[Any, ...] | None]:
    """(rows, distinct keys, (poll_offset, watermark)) of a warehouse no process holds."""
    c = duckdb.connect(str(db), read_only=True)
    try:
        held, distinct = c.execute("SELECT count(*), count(DISTINCT incident_key) FROM incidents").fetchone() or (0, 0)
        state = c.execute("SELECT poll_offset, watermark FROM feed_state").fetchone()
    finally:
        c.close()
    return int(held), int(distinct), state


def _kill_after(args: list[str], env: dict[str, str], server: FeedServer, pages: int, extra: float) -> None:
    """Start `crimelens watch`, and kill -9 it ``extra`` seconds after ``pages`` more pages were served."""
    before = len([r for r in server.page_requests() if r.status == 200])
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while len([r for r in server.page_requests() if r.status == 200]) < before + pages:
        assert time.monotonic() < deadline and proc.poll() is None, "watch ended before it could be killed"
        time.sleep(0.01)
    time.sleep(extra)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_kill_9_during_watch_then_restart_loses_and_duplicates_nothing(
    tmp_path: Path, server: FeedServer, records: list[dict[str, Any]]
) -> None:
    db = tmp_path / "killed.duckdb"
    server.inject("slow", times=10_000, arg=0.3)  # every page takes a while: the first kill lands mid-poll
    env = _env()  # pages of 250
    args = [str(EXE), "watch", "chicago", "--url", server.url, "--once", "--db", str(db), "--reconcile-every", "0"]
    _kill_after(args, env, server, pages=3, extra=0.0)
    held, distinct, state = _held(db)
    assert held == distinct and 0 < held < N  # killed mid-poll: whole pages only, once each
    assert held % PAGE == 0
    assert state is not None and state[0] == held and state[1] is None  # the cursor is exactly what was committed
    # then kills at other moments, pages of 100 served at full speed: after the answer, while the page is mapped
    # and committed (a page takes about 0.1 s here), each run resuming the last one
    server.clear_faults()
    env100 = _env(CRIMELENS_FEED_PAGE_SIZE="100")
    for pages, extra in ((1, 0.0), (1, 0.03), (2, 0.07)):
        _kill_after(args, env100, server, pages, extra)
        held, distinct, state = _held(db)
        assert held == distinct
        assert (state is not None and (state[1] is None and held == state[0])) or (state[1] is not None and held == N)
    server.store.update(sorted(server.store.by_key())[:5], {"description": "UPDATED WHILE DOWN"})
    server.store.add(records[N : N + 3])
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env100)
    assert done.returncode == 0, done.stderr
    assert "(resumed after an interruption)" in done.stderr
    assert_exact(db, server)


@pytest.mark.slow
def test_ctrl_c_during_watch_ends_cleanly_and_the_next_run_resumes(tmp_path: Path, server: FeedServer) -> None:
    db = tmp_path / "interrupted.duckdb"
    server.inject("slow", times=10_000, arg=0.3)
    env = _env()  # pages of 250
    args = [str(EXE), "watch", "chicago", "--url", server.url, "--db", str(db), "--interval", "60"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while len([r for r in server.page_requests() if r.status == 200]) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Stopped by Ctrl-C: the next run resumes after the last page committed." in err
    assert "Traceback" not in err
    c = duckdb.connect(str(db), read_only=True)
    held, distinct = c.execute("SELECT count(*), count(DISTINCT incident_key) FROM incidents").fetchone() or (0, 0)
    c.close()
    assert held == distinct and held % PAGE == 0 and held < N  # whole pages, once each
    server.clear_faults()
    done = subprocess.run([*args[:-2], "--once"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert_exact(db, server)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changes_polls_and_failed_pages_end_with_exactly_the_served_records(
    records: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    n = data.draw(st.integers(15, 50), label="records")
    page_size = data.draw(st.integers(8, 30), label="page size")
    paging = data.draw(st.sampled_from(["keyset", "offset"]), label="paging")
    server = FeedServer(records[:n], seed=data.draw(st.integers(0, 99)))
    server.start()
    pool = iter(records[n : n + 30])
    c = warehouse.connect(tmp_path_factory.mktemp("prop") / "w.duckdb")
    feed = Feed(get_preset("chicago"), SOURCE, server.url, page_size, paging)
    quick = RetryPolicy(attempts=2, total=2.0, wait_initial=0.01, wait_max=0.05, timeout=1.0)
    try:
        with feed.client(policy=quick) as client:
            for _ in range(data.draw(st.integers(1, 3), label="rounds")):
                keys = sorted(server.store.by_key())
                changed = data.draw(st.lists(st.sampled_from(keys), unique=True, max_size=5), label="updated")
                server.store.update(changed, {"description": "UPDATED"})
                rest = [k for k in keys if k not in changed]
                gone = data.draw(st.lists(st.sampled_from(rest), unique=True, max_size=4), label="deleted")
                server.store.delete(gone)
                server.store.add([next(pool) for _ in range(data.draw(st.integers(0, 6), label="added"))])
                if data.draw(st.booleans(), label="a page fails"):
                    server.inject("truncate", times=100, after=data.draw(st.integers(0, 4), label="after"))
                    with contextlib.suppress(SourceError):  # the run stops at a page boundary; the next resumes
                        poll(c, feed, client, reconcile=True)
                    server.clear_faults()
                poll(c, feed, client, reconcile=True)
                assert_exact(c, server)
    finally:
        c.close()
        server.stop()
