"""Polling a live feed into the warehouse: incremental pulls by ``:updated_at``, reconciliation of deleted ids.

One poll reads the records updated since the watermark, page by page in ``:id`` order, and commits each page
with the poll's progress in one transaction (:func:`crimelens.warehouse.feeds.write_feed_page`). The poll's
upper bound is fixed when it starts (the feed's newest ``:updated_at``), so a record updated while the poll
runs is read by the next poll rather than skipped; the lower bound is inclusive, so records sharing the
watermark's instant are read again (as unchanged) rather than missed. A crash at any point resumes the same
poll after its last committed page.

Deleted records never appear in an ``:updated_at`` pull: every ``reconcile_every`` polls (and on a run's first
poll), every id the feed serves is listed, and rows whose ids are gone are removed, counted and recorded.

After each committed batch, every hook in ``hooks`` is called with ``(con, source, batch)``; :func:`on_batch`
is the place where later work (spike alerts) plugs in. A failing hook is logged and never stops ingest.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import duckdb

from crimelens.errors import ConfigError
from crimelens.feeds.presets import FeedPreset
from crimelens.feeds.soda import Notify, Page, RetryPolicy, SodaClient, format_timestamp
from crimelens.sources.incident_spec import IncidentSpec, q
from crimelens.sources.incidents import drop_staged, map_incidents
from crimelens.warehouse import feeds as store

__all__ = [
    "BatchHook",
    "BatchSummary",
    "Feed",
    "PollSummary",
    "WatchResult",
    "on_batch",
    "poll",
    "watch",
]

log = logging.getLogger(__name__)

_PAGE_TABLE = "_feed_page"


@dataclass(frozen=True)
class BatchSummary:
    """One committed batch: a page of records (``kind='page'``) or a finished reconciliation."""

    source: str
    kind: str
    poll: int
    page: int
    rows: int
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    dropped: int = 0
    deleted: int = 0
    #: the watermark committed with this batch (it moves on the last page of a poll)
    watermark: dt.datetime | None = None
    #: the poll's upper bound: the watermark once the poll ends
    upper: dt.datetime | None = None
    last: bool = False
    load_id: int | None = None
    dropped_reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: A hook called after each committed batch, with the open warehouse connection.
BatchHook = Callable[["duckdb.DuckDBPyConnection", str, BatchSummary], None]


def on_batch(con: duckdb.DuckDBPyConnection, source: str, batch: BatchSummary) -> None:
    """Called after each committed batch of a feed: where spike alerts plug in (issue 12); does nothing yet.

    Parameters
    ----------
    con
        The warehouse connection, with the batch committed (no transaction open).
    source
        The dataset the feed loads into.
    batch
        What the batch did (rows new, updated, unchanged, dropped; records deleted; the watermark).
    """
    return None


@dataclass(frozen=True)
class PollSummary:
    """What one poll did, summed over its pages (and the reconciliation that followed it, if any)."""

    poll: int
    pages: int
    rows: int
    new: int
    updated: int
    unchanged: int
    dropped: int
    deleted: int
    watermark: dt.datetime | None
    reconciled: bool
    resumed: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class WatchResult:
    """A run of ``crimelens watch``: each poll, the incidents held at the end, and why the run stopped."""

    title: str
    source: str
    preset: str
    url: str
    polls: tuple[PollSummary, ...]
    incidents: int
    stopped: str
    params: dict[str, Any]
    notes: tuple[str, ...]

    @property
    def totals(self) -> dict[str, int]:
        keys = ("pages", "rows", "new", "updated", "unchanged", "dropped", "deleted")
        return {k: sum(int(getattr(p, k)) for p in self.polls) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "source": self.source,
            "preset": self.preset,
            "url": self.url,
            "params": dict(self.params),
            "rows": [p.to_dict() for p in self.polls],
            "polls": [p.to_dict() for p in self.polls],
            "totals": self.totals,
            "incidents": self.incidents,
            "stopped": self.stopped,
            "notes": list(self.notes),
            "warnings": [],
        }


@dataclass(frozen=True)
class Feed:
    """A feed to poll: its preset, the dataset it loads into, where it is served, and how pages are read."""

    preset: FeedPreset
    source: str
    url: str
    page_size: int = 5000
    paging: str = "keyset"
    #: ids per page of a reconciliation's listing (an id is a few bytes: SODA's largest page by default)
    ids_page_size: int = 50_000

    def __post_init__(self) -> None:
        for name, size in (("page size", self.page_size), ("id listing page size", self.ids_page_size)):
            if not 1 <= size <= 50_000:
                raise ConfigError(f"feed {name}: expected 1 to 50,000 records (SODA's limit), got {size}")
        if not self.url.startswith(("http://", "https://")) or self.url.rstrip("/")[-3:] == "://":
            raise ConfigError(f"feed URL: expected http:// or https:// followed by a host, got {self.url!r}")
        if self.paging not in ("keyset", "offset"):
            raise ConfigError(f"feed paging: expected keyset or offset, got {self.paging!r}")

    @property
    def spec(self) -> IncidentSpec:
        return self.preset.spec()

    def client(
        self, *, app_token: str = "", policy: RetryPolicy | None = None, notify: Notify | None = None
    ) -> SodaClient:
        return SodaClient(
            self.url, self.preset.dataset, app_token=app_token, policy=policy, notify=notify, name=f"feed {self.source}"
        )


def poll(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    client: SodaClient,
    *,
    reconcile: bool = False,
    hooks: Sequence[BatchHook] = (on_batch,),
    progress: Callable[[BatchSummary], None] | None = None,
) -> PollSummary:
    """Run one poll, then a reconciliation if asked (or if one was interrupted).

    A poll a crash interrupted is finished first (up to the bound it started with), then a fresh poll reads what
    changed since, so the warehouse is up to date with the feed either way.

    Parameters
    ----------
    con
        A writable warehouse connection.
    feed
        The feed and the dataset it loads into.
    client
        The SODA client reading ``feed``.
    reconcile
        List every id the feed serves after the poll and remove rows whose ids are gone.
    hooks
        Called after each committed batch with ``(con, source, batch)``.
    progress
        Told about each committed batch (for display).

    Returns
    -------
    PollSummary
        Pages, rows new / updated / unchanged / dropped, records deleted, and the watermark after the poll.
    """
    started = time.monotonic()
    spec = feed.spec
    state = store.ensure_feed_state(con, feed.source, feed.preset.name, feed.url)
    resumed = state.polling
    number = state.polls + 1
    batches: list[BatchSummary] = []
    # a poll a crash interrupted ends at the upper bound it started with; a fresh poll then reads what changed since
    for _ in range(2 if resumed else 1):
        if not state.polling:
            upper = client.newest_update()
            if upper is None:
                break
            store.start_poll(con, feed.source, upper)
            state = replace(state, poll_upper=upper, poll_cursor=None, poll_offset=0)
        batches += _pull(con, feed, client, spec, state, state.polls + 1, hooks, progress)
        state = store.feed_state(con, feed.source) or state
    reconciled = False
    current = store.feed_state(con, feed.source)
    if reconcile or (current is not None and current.reconciling):
        batches.append(_reconcile(con, feed, client, spec, number, hooks, progress))
        reconciled = True
    current = store.feed_state(con, feed.source)
    pages = [b for b in batches if b.kind == "page"]
    return PollSummary(
        number, len(pages), sum(b.rows for b in pages), sum(b.new for b in pages), sum(b.updated for b in pages),
        sum(b.unchanged for b in pages), sum(b.dropped for b in pages), sum(b.deleted for b in batches),
        current.watermark if current else None, reconciled, resumed, round(time.monotonic() - started, 3),
    )  # fmt: skip


def _pull(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    client: SodaClient,
    spec: IncidentSpec,
    state: store.FeedState,
    number: int,
    hooks: Sequence[BatchHook],
    progress: Callable[[BatchSummary], None] | None,
) -> list[BatchSummary]:
    """Read and commit the poll's pages from its committed cursor to the end; the last one moves the watermark."""
    assert state.poll_upper is not None
    upper = state.poll_upper
    where = [f":updated_at <= '{format_timestamp(upper)}'"]
    if state.watermark is not None:
        where.append(f":updated_at >= '{format_timestamp(state.watermark)}'")
    cursor, offset = state.poll_cursor, state.poll_offset
    out: list[BatchSummary] = []
    page_no = 0
    while True:
        page_no += 1
        page = client.records(
            where=where,
            limit=feed.page_size,
            after=cursor,
            offset=offset if feed.paging == "offset" else None,
            what=f"poll {number}, page {page_no}",
        )
        if not page.rows:
            store.finish_poll(con, feed.source)
            if out:
                out[-1] = replace(out[-1], last=True, watermark=upper)
            else:
                batch = BatchSummary(feed.source, "page", number, page_no, 0, watermark=upper, upper=upper, last=True)
                _after(con, feed, batch, hooks, progress)
            return out
        last = len(page.rows) < feed.page_size
        cursor, offset = page.ids[-1], offset + len(page.rows)
        write = _write_page(con, feed, spec, page, number, page_no, cursor, offset, last)
        batch = BatchSummary(
            feed.source, "page", number, page_no, write.rows_read, write.new, write.updated, write.unchanged,
            write.dropped, write.removed_invalid, upper if last else state.watermark, upper, last, write.load_id,
            dict(write.reasons),
        )  # fmt: skip
        out.append(batch)
        _after(con, feed, batch, hooks, progress)
        if last:
            return out


def _write_page(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    spec: IncidentSpec,
    page: Page,
    number: int,
    page_no: int,
    cursor: str,
    offset: int,
    last: bool,
) -> store.PageWrite:
    """Stage a page's records as text columns, map them like a file's, and commit them with the cursor."""
    columns = ", ".join(
        f"j->>'$.\"{api.replace(chr(39), chr(39) * 2)}\"' AS {q(column)}" for api, column in feed.preset.fields.items()
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_PAGE_TABLE} AS "
        f"SELECT {columns} FROM (SELECT unnest(CAST($body AS JSON[])) AS j)",
        {"body": page.text},
    )
    name = f"feed {feed.preset.dataset} poll {number} page {page_no}"
    try:
        mapped = map_incidents(con, _PAGE_TABLE, spec, name=name)
        return store.write_feed_page(
            con, mapped, spec, source=feed.source, name=name, sha256=page.sha256, cursor=cursor, offset=offset,
            last=last,
        )  # fmt: skip
    finally:
        drop_staged(con)
        con.execute(f"DROP TABLE IF EXISTS {_PAGE_TABLE}")


def _reconcile(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    client: SodaClient,
    spec: IncidentSpec,
    number: int,
    hooks: Sequence[BatchHook],
    progress: Callable[[BatchSummary], None] | None,
) -> BatchSummary:
    """List every id the feed serves (keyset on ``:id``, each page committed), then remove the rows not listed."""
    state = store.feed_state(con, feed.source)
    assert state is not None
    if not state.reconciling:
        store.start_reconcile(con, feed.source)
        cursor: str | None = None
    else:
        cursor = state.reconcile_cursor or None
    key = feed.preset.key_field
    listed = 0
    page_no = 0
    while True:
        page_no += 1
        page = client.records(
            where=[], limit=feed.ids_page_size, after=cursor, select=f":id, {key}", what=f"id listing, page {page_no}"
        )
        if not page.rows:
            break
        keys = [str(r[key]).strip() if r.get(key) is not None else None for r in page.rows]
        cursor = page.ids[-1]
        store.add_reconcile_ids(con, feed.source, [k for k in keys if k], cursor)
        listed += len(page.rows)
        if len(page.rows) < feed.ids_page_size:
            break
    deleted = store.finish_reconcile(
        con, feed.source, fmt=spec.format, name=f"feed {feed.preset.dataset} reconciliation after poll {number}"
    )
    current = store.feed_state(con, feed.source)
    batch = BatchSummary(
        feed.source, "reconciliation", number, page_no, listed, deleted=deleted,
        watermark=current.watermark if current else None,
    )  # fmt: skip
    _after(con, feed, batch, hooks, progress)
    return batch


def _after(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    batch: BatchSummary,
    hooks: Sequence[BatchHook],
    progress: Callable[[BatchSummary], None] | None,
) -> None:
    if progress is not None:
        progress(batch)
    for hook in hooks:
        try:
            hook(con, feed.source, batch)
        except Exception:  # a failing hook (e.g. an alert's webhook) never stops ingest
            log.exception("feed %s: hook %s failed after %s %s", feed.source, getattr(hook, "__name__", hook),
                          batch.kind, batch.page)  # fmt: skip


def watch(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    *,
    interval: float,
    max_polls: int | None = None,
    reconcile_every: int = 288,
    app_token: str = "",
    policy: RetryPolicy | None = None,
    hooks: Sequence[BatchHook] = (on_batch,),
    progress: Callable[[BatchSummary], None] | None = None,
    on_poll: Callable[[PollSummary], None] | None = None,
    notify: Notify | None = None,
    stop: threading.Event | None = None,
) -> WatchResult:
    """Poll ``feed`` every ``interval`` seconds until ``max_polls`` polls, ``stop`` is set, or Ctrl-C.

    Parameters
    ----------
    con
        A writable warehouse connection.
    feed
        The feed and the dataset it loads into.
    interval
        Seconds between the start of one poll and the next (at least 0).
    max_polls
        Stop after this many polls (None: run until stopped).
    reconcile_every
        Reconcile ids on the run's first poll and every N polls after it (0: never).
    app_token, policy, notify
        Passed to the :class:`~crimelens.feeds.soda.SodaClient`.
    hooks, progress
        Called after each committed batch (see :func:`poll`).
    on_poll
        Told about each poll when it ends (for display).
    stop
        Set it (from another thread) to end the run after the current poll.

    Returns
    -------
    WatchResult
        Every poll's summary, the incidents the dataset holds, and why the run stopped (``max_polls``,
        ``stopped`` or ``interrupted``). An interruption (Ctrl-C) keeps every page committed before it.
    """
    if interval < 0:
        raise ConfigError(f"--interval: expected a number of seconds of at least 0, got {interval}")
    if max_polls is not None and max_polls < 1:
        raise ConfigError(f"--max-polls: expected at least 1, got {max_polls}")
    if reconcile_every < 0:
        raise ConfigError(f"--reconcile-every: expected 0 (never) or a number of polls, got {reconcile_every}")
    stop = stop or threading.Event()
    polls: list[PollSummary] = []
    stopped = "stopped"
    with feed.client(app_token=app_token, policy=policy, notify=notify) as client:
        try:
            while not stop.is_set():
                began = time.monotonic()
                due = reconcile_every > 0 and len(polls) % reconcile_every == 0
                polls.append(poll(con, feed, client, reconcile=due, hooks=hooks, progress=progress))
                if on_poll is not None:
                    on_poll(polls[-1])
                if max_polls is not None and len(polls) >= max_polls:
                    stopped = "max_polls"
                    break
                stop.wait(max(interval - (time.monotonic() - began), 0.0))
        except (KeyboardInterrupt, duckdb.InterruptException):
            # Ctrl-C (in DuckDB it interrupts the query: the page's transaction was rolled back, nothing half-written)
            stopped = "interrupted"
    row = con.execute("SELECT count(*) FROM incidents WHERE source = ?", [feed.source]).fetchone()
    notes = tuple(feed.preset.caveats)
    if stopped == "interrupted":
        notes = ("Interrupted: every page committed before Ctrl-C is kept; the next run resumes after it.", *notes)
    return WatchResult(
        title=f"Feed {feed.preset.name} ({feed.preset.dataset}) into dataset {feed.source}",
        source=feed.source,
        preset=feed.preset.name,
        url=feed.url,
        polls=tuple(polls),
        incidents=int(row[0]) if row else 0,
        stopped=stopped,
        params={
            "preset": feed.preset.name,
            "dataset": feed.preset.dataset,
            "url": feed.url,
            "source": feed.source,
            "interval": interval,
            "max_polls": max_polls,
            "reconcile_every": reconcile_every,
            "page_size": feed.page_size,
            "paging": feed.paging,
        },
        notes=notes,
    )
