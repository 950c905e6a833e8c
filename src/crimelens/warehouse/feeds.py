"""Feed writes: a page of feed records and the feed's progress (``feed_state``) committed in one transaction.

A live feed (:mod:`crimelens.feeds`) reads records in pages. Each page is mapped by the same layer as files
(:func:`crimelens.sources.incidents.map_incidents`), then :func:`write_feed_page` upserts its rows by incident
key *and* moves the feed's cursor (or its ``:updated_at`` watermark, on the last page of a poll) in the same
transaction: a crash before the commit leaves neither, a crash after leaves both, so the next run resumes
from the last committed page and nothing is lost or written twice.

Records the publisher deletes never show up in an ``:updated_at`` pull. A reconciliation lists every id the
feed serves (:func:`add_reconcile_ids`, page by page, resumable) and :func:`finish_reconcile` removes the
rows whose ids were not listed, counted and recorded as a load. See ``docs/feeds.md``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field, fields
from typing import Any

import duckdb

from crimelens.errors import ConfigError, SourceError
from crimelens.sources.incident_spec import IncidentSpec
from crimelens.sources.incidents import ERROR_REASONS, MappedIncidents
from crimelens.warehouse.incidents import write_incident_rows
from crimelens.warehouse.loads import next_load_id
from crimelens.warehouse.transaction import transaction

__all__ = [
    "FeedState",
    "PageWrite",
    "add_reconcile_ids",
    "ensure_feed_state",
    "feed_state",
    "finish_poll",
    "finish_reconcile",
    "start_poll",
    "start_reconcile",
    "write_feed_page",
]

log = logging.getLogger(__name__)

#: The incident columns compared to tell an updated record from one served again unchanged.
_COMPARED = (
    "occurred_at", "offence", "offence_raw", "offence_detail", "latitude", "longitude", "district", "beat",
    "community_area", "neighbourhood", "census_tract", "premise", "arrest", "domestic",
)  # fmt: skip


@dataclass(frozen=True)
class FeedState:
    """One feed's progress, as committed (see the ``feed_state`` table in :mod:`crimelens.schema`)."""

    source: str
    preset: str
    url: str
    watermark: dt.datetime | None
    poll_upper: dt.datetime | None
    poll_cursor: str | None
    poll_offset: int
    polls: int
    pages: int
    last_poll_at: dt.datetime | None
    reconcile_cursor: str | None
    reconcile_load_id: int | None
    reconciliations: int
    last_reconciled_at: dt.datetime | None

    @property
    def polling(self) -> bool:
        """Whether a poll was interrupted and is to be resumed."""
        return self.poll_upper is not None

    @property
    def reconciling(self) -> bool:
        """Whether a reconciliation was interrupted and is to be resumed."""
        return self.reconcile_cursor is not None


@dataclass(frozen=True)
class PageWrite:
    """What one committed page did to the warehouse."""

    load_id: int
    rows_read: int
    new: int
    updated: int
    unchanged: int
    dropped: int
    #: earlier versions removed because the record's new version is invalid (dropped)
    removed_invalid: int
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_STATE_COLUMNS = ", ".join(f.name for f in fields(FeedState))


def feed_state(con: duckdb.DuckDBPyConnection, source: str) -> FeedState | None:
    """The committed progress of the feed loaded as ``source``, or None when it was never polled."""
    row = con.execute(f"SELECT {_STATE_COLUMNS} FROM feed_state WHERE source = ?", [source]).fetchone()
    return None if row is None else FeedState(*row)


def ensure_feed_state(con: duckdb.DuckDBPyConnection, source: str, preset: str, url: str) -> FeedState:
    """The feed's progress, created (empty) on its first poll.

    Raises :class:`ConfigError` when ``source`` holds jurisdiction-year rows, incidents loaded from files, or
    another feed's records (a feed keeps its own dataset, so that upserts by its ids cannot clash).
    """
    state = feed_state(con, source)
    if state is not None:
        if state.preset != preset:
            raise ConfigError(
                f"dataset {source!r} is fed by preset {state.preset!r}, not {preset!r}; pass another --source"
            )
        if state.url != url:
            log.info("feed %s: base URL changed from %s to %s", source, state.url, url)
            with transaction(con, what=f"feed {source} state", undone="nothing was changed"):
                con.execute("UPDATE feed_state SET url = ?, updated_at = ? WHERE source = ?", [url, _now(), source])
            state = feed_state(con, source)
            assert state is not None
        return state
    jy = con.execute("SELECT count(*) FROM jurisdiction_year WHERE source = ?", [source]).fetchone()
    files = con.execute("SELECT count(*) FROM loads WHERE source = ?", [source]).fetchone()
    if (jy and jy[0]) or (files and files[0]):
        raise ConfigError(
            f"dataset {source!r} already holds rows loaded from files; a feed needs its own dataset name "
            f"(allowed: a name not yet in `crimelens loads`), got --source {source}"
        )
    with transaction(con, what=f"feed {source} state", undone="nothing was changed"):
        con.execute(
            "INSERT INTO feed_state (source, preset, url, updated_at) VALUES (?, ?, ?, ?)",
            [source, preset, url, _now()],
        )
    state = feed_state(con, source)
    assert state is not None
    return state


def start_poll(con: duckdb.DuckDBPyConnection, source: str, upper: dt.datetime) -> None:
    """Commit the start of a poll: records updated from the watermark up to ``upper`` are to be read."""
    with transaction(con, what=f"feed {source} state", undone="nothing was changed"):
        con.execute(
            "UPDATE feed_state SET poll_upper = ?, poll_cursor = NULL, poll_offset = 0, updated_at = ? "
            "WHERE source = ?",
            [upper, _now(), source],
        )


def finish_poll(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Commit the end of a poll whose last page was already committed: the watermark moves to its upper bound."""
    with transaction(con, what=f"feed {source} state", undone="nothing was changed"):
        _finish(con, source)


def _finish(con: duckdb.DuckDBPyConnection, source: str) -> None:
    con.execute(
        "UPDATE feed_state SET watermark = coalesce(poll_upper, watermark), poll_upper = NULL, poll_cursor = NULL, "
        "poll_offset = 0, polls = polls + 1, last_poll_at = ?, updated_at = ? WHERE source = ?",
        [_now(), _now(), source],
    )


def write_feed_page(
    con: duckdb.DuckDBPyConnection,
    mapped: MappedIncidents,
    spec: IncidentSpec,
    *,
    source: str,
    name: str,
    sha256: str,
    cursor: str,
    offset: int,
    last: bool,
) -> PageWrite:
    """Upsert one page's mapped rows and move the feed's cursor, in one transaction.

    Parameters
    ----------
    con
        A writable warehouse connection holding ``mapped``'s staged rows.
    mapped
        The page's records, mapped by :func:`crimelens.sources.incidents.map_incidents` with ``spec``
        (which must key records by the feed's id).
    spec
        The feed's incident mapping.
    source, name, sha256
        The dataset, and the page's name and content digest (recorded as its load).
    cursor, offset
        The last ``:id`` of the page, and the records of the poll read so far including this page.
    last
        The page ends the poll: the watermark moves to the poll's upper bound in the same transaction.

    Returns
    -------
    PageWrite
        New, updated and unchanged records, and those dropped by validation (by reason). A record whose new
        version is dropped loses its earlier version too (``removed_invalid``): the warehouse never keeps a
        version the publisher has replaced.
    """
    if spec.key is None:
        raise ConfigError(f"feed {source}: its mapping must key records by the feed's id")
    with transaction(con, what=name, undone="nothing from this page was written"):
        new, updated, unchanged = _classify(con, mapped, source)
        removed = _remove_invalid_versions(con, mapped, source)
        load_id, _ = write_incident_rows(con, mapped, spec, source=source, name=name, sha256=sha256)
        con.execute(
            "UPDATE feed_state SET poll_cursor = ?, poll_offset = ?, pages = pages + 1, updated_at = ? "
            "WHERE source = ?",
            [cursor, offset, _now(), source],
        )
        if last:
            _finish(con, source)
    dropped = {r: n for r, n in mapped.counts.items() if r in (*ERROR_REASONS, "duplicate_in_file")}
    return PageWrite(load_id, mapped.rows_read, new, updated, unchanged, mapped.rejected, removed, dropped)


def _classify(con: duckdb.DuckDBPyConnection, mapped: MappedIncidents, source: str) -> tuple[int, int, int]:
    """(new, updated, unchanged) rows of the page against the warehouse, before it is written."""
    differs = " OR ".join(f"k.{c} IS DISTINCT FROM i.{c}" for c in _COMPARED)
    row = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE i.incident_key IS NULL),
               count(*) FILTER (WHERE i.incident_key IS NOT NULL AND ({differs})),
               count(*) FILTER (WHERE i.incident_key IS NOT NULL AND NOT ({differs}))
        FROM {mapped.view} k LEFT JOIN (SELECT * FROM incidents WHERE source = ?) i USING (incident_key)
        """,
        [source],
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _remove_invalid_versions(con: duckdb.DuckDBPyConnection, mapped: MappedIncidents, source: str) -> int:
    """Delete stored rows whose record came back invalid in this page (and not valid elsewhere in it)."""
    if not mapped.errors:
        return 0
    row = con.execute(
        f"""
        DELETE FROM incidents WHERE source = ? AND incident_key IN (
            SELECT incident_key FROM _inc_rows WHERE drop_reason IS NOT NULL AND incident_key IS NOT NULL
            EXCEPT SELECT incident_key FROM {mapped.view}
        )
        """,
        [source],
    ).fetchone()
    return int(row[0]) if row else 0


def start_reconcile(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Commit the start of a reconciliation: rows loaded up to now may be removed when their ids are not listed."""
    with transaction(con, what=f"feed {source} reconciliation", undone="nothing was changed"):
        newest = con.execute("SELECT coalesce(max(load_id), 0) FROM loads").fetchone()
        con.execute("DELETE FROM feed_reconcile_ids WHERE source = ?", [source])
        con.execute(
            "UPDATE feed_state SET reconcile_cursor = '', reconcile_load_id = ?, updated_at = ? WHERE source = ?",
            [int(newest[0]) if newest else 0, _now(), source],
        )


def add_reconcile_ids(con: duckdb.DuckDBPyConnection, source: str, keys: list[str], cursor: str) -> None:
    """Commit one page of listed ids (as incident keys) and the listing's cursor, in one transaction."""
    with transaction(con, what=f"feed {source} reconciliation", undone="nothing was changed"):
        con.execute(
            "INSERT INTO feed_reconcile_ids SELECT ?, k FROM (SELECT unnest(?::VARCHAR[]) AS k) WHERE k IS NOT NULL",
            [source, keys],
        )
        con.execute(
            "UPDATE feed_state SET reconcile_cursor = ?, updated_at = ? WHERE source = ?", [cursor, _now(), source]
        )


def finish_reconcile(con: duckdb.DuckDBPyConnection, source: str, *, fmt: str, name: str) -> int:
    """Remove the rows whose ids the finished listing did not hold; return how many (recorded as a load).

    Only rows loaded before the reconciliation started are candidates: a record added while the ids were
    listed is never removed for being missed by the listing. An empty listing of a dataset that holds rows
    removes nothing and raises :class:`SourceError` (a feed that suddenly serves nothing is a fault, not a
    mass deletion).
    """
    state = feed_state(con, source)
    if state is None or state.reconcile_load_id is None:
        return 0
    listed = con.execute("SELECT count(*) FROM feed_reconcile_ids WHERE source = ?", [source]).fetchone()
    stored = con.execute("SELECT count(*) FROM incidents WHERE source = ?", [source]).fetchone()
    n_listed, n_stored = int(listed[0]) if listed else 0, int(stored[0]) if stored else 0
    if n_listed == 0 and n_stored > 0:
        with transaction(con, what=f"feed {source} reconciliation", undone="nothing was removed"):
            _end_reconcile(con, source)
        raise SourceError(
            f"feed {source}: the reconciliation listed no record ids at all while the warehouse holds "
            f"{n_stored:,}; nothing was removed (is the dataset being republished?)"
        )
    with transaction(con, what=f"feed {source} reconciliation", undone="nothing was removed"):
        gone = con.execute(
            """
            SELECT incident_key FROM incidents WHERE source = ? AND load_id <= ?
            EXCEPT SELECT incident_key FROM feed_reconcile_ids WHERE source = ?
            ORDER BY 1
            """,
            [source, state.reconcile_load_id, source],
        ).fetchall()
        keys = [str(k) for (k,) in gone]
        if keys:
            con.execute(
                "DELETE FROM incidents WHERE source = ? AND incident_key IN (SELECT unnest(?::VARCHAR[]))",
                [source, keys],
            )
            _record_deletions(con, source, fmt, name, keys, n_listed)
        _end_reconcile(con, source)
        con.execute(
            "UPDATE feed_state SET reconciliations = reconciliations + 1, last_reconciled_at = ? WHERE source = ?",
            [_now(), source],
        )
    if keys:
        log.info("feed %s: removed %s records deleted at the source", source, len(keys))
    return len(keys)


def _end_reconcile(con: duckdb.DuckDBPyConnection, source: str) -> None:
    con.execute("DELETE FROM feed_reconcile_ids WHERE source = ?", [source])
    con.execute(
        "UPDATE feed_state SET reconcile_cursor = NULL, reconcile_load_id = NULL, updated_at = ? WHERE source = ?",
        [_now(), source],
    )


def _record_deletions(
    con: duckdb.DuckDBPyConnection, source: str, fmt: str, name: str, keys: list[str], listed: int
) -> None:
    """A ``loads`` row for the reconciliation, with the removal as a warning naming a few of the ids."""
    load_id = next_load_id(con)
    now = _now()
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    con.execute(
        "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, 0, 0, 1, ?, ?, 'loaded', NULL)",
        [load_id, source, fmt, name, digest, listed, now, now],
    )
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5:,} more" if len(keys) > 5 else "")
    con.execute(
        "INSERT INTO load_issues VALUES (?, NULL, NULL, 'warning', 'deleted_at_source', ?)",
        [load_id, f"{len(keys):,} records no longer served by the feed were removed (ids {shown})"],
    )


def _now() -> dt.datetime:
    return dt.datetime.now()
