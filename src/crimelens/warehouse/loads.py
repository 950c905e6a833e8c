"""Load ids and the ``loads`` rows a new load supersedes (used inside a write's transaction)."""

from __future__ import annotations

import duckdb

__all__ = ["next_load_id", "supersede_loads"]


def next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    """A new load id from the warehouse's sequence."""
    fetched = con.execute("SELECT nextval('load_id_seq')").fetchone()
    assert fetched is not None
    return int(fetched[0])


def supersede_loads(con: duckdb.DuckDBPyConnection, source: str, load_id: int) -> tuple[int, ...]:
    """Mark ``source``'s loaded loads as replaced by ``load_id``; return their ids (a load that replaces the whole
    dataset: jurisdiction-years, an area set, a covariate dataset)."""
    previous = tuple(
        int(r[0])
        for r in con.execute("SELECT load_id FROM loads WHERE source = ? AND status = 'loaded'", [source]).fetchall()
    )
    if previous:
        con.execute(
            "UPDATE loads SET status = 'replaced', replaced_by = ? WHERE source = ? AND status = 'loaded'",
            [load_id, source],
        )
    return previous
