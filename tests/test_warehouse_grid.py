"""Grid origins pinned per incident source (crimelens.warehouse.grid, schema migration 3): pinned once from the
source's whole extent, unmoved by later loads, kept across reopening, backfilled on older warehouses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb

from crimelens import warehouse
from crimelens.geo import origin_for_extent
from crimelens.schema import MIGRATIONS
from crimelens.warehouse.grid import grid_origin, pin_grid_origin

INSERT = (
    "INSERT INTO incidents (source, incident_key, occurred_at, time_precision, offence, offence_raw, latitude, "
    "longitude, load_id) VALUES (?, ?, ?, 'hour', 'robbery', 'ROBBERY', ?, ?, 1)"
)
#: source, key, latitude, longitude: 'city' spans 41.70–41.96 N, 87.80–87.56 W; 'dark' has no coordinates.
ROWS: list[tuple[Any, ...]] = [
    ("city", "a", 41.70, -87.80),
    ("city", "b", 41.96, -87.56),
    ("city", "c", 41.80, -87.65),
    ("city", "d", None, None),
    ("dark", "e", None, None),
]


def _insert(con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]]) -> None:
    con.executemany(INSERT, [(s, k, dt.datetime(2024, 1, 1), la, lo) for s, k, la, lo in rows])


def test_pin_computes_from_the_whole_extent_once(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    _insert(con, ROWS)
    assert grid_origin(con, "city") is None  # nothing pinned yet
    origin = pin_grid_origin(con, "city")
    # the located rows' extent: lon −87.80 … −87.56, lat 41.70 … 41.96 (d has no coordinates)
    assert origin == origin_for_extent(-87.80, -87.56, 41.70, 41.96)
    assert origin is not None and (origin.lon0, origin.lat0) == (-87.68, 41.83)  # midpoints of the extent
    assert grid_origin(con, "city") == origin
    # a later load far outside the first extent leaves the origin where it was
    _insert(con, [("city", "far", 42.50, -88.50)])
    assert pin_grid_origin(con, "city") == origin and grid_origin(con, "city") == origin
    rows = con.execute("SELECT count(*), min(min_lon), max(max_lat) FROM grid_origins").fetchone()
    assert rows == (1, -87.80, 41.96)  # one row, the extent it was computed from
    con.close()


def test_a_source_without_coordinates_pins_nothing(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    _insert(con, ROWS)
    assert pin_grid_origin(con, "dark") is None and grid_origin(con, "dark") is None
    assert pin_grid_origin(con, "absent") is None
    assert con.execute("SELECT count(*) FROM grid_origins").fetchone() == (0,)
    # coordinates arrive with a later load: then it is pinned
    _insert(con, [("dark", "f", 43.65, -79.40)])
    assert pin_grid_origin(con, "dark") == origin_for_extent(-79.40, -79.40, 43.65, 43.65)
    con.close()


def test_the_origin_survives_reopening_read_only(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    con = warehouse.connect(path)
    _insert(con, ROWS)
    origin = pin_grid_origin(con, "city")
    con.close()
    ro = warehouse.connect(path, read_only=True)
    assert grid_origin(ro, "city") == origin
    ro.close()
    again = warehouse.connect(path)
    assert pin_grid_origin(again, "city") == origin
    again.close()


def _warehouse_before_migration_3(path: Path) -> None:
    """A warehouse file as crimelens made it before grid origins existed (migrations 1 and 2 only)."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMP NOT NULL)"
    )
    for m in MIGRATIONS:
        if m.version < 3:
            con.execute(m.sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [m.version, m.name, dt.datetime.now()])
    _insert(con, ROWS)
    con.close()


def test_backfill_on_a_warehouse_made_before_migration_3(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _warehouse_before_migration_3(path)
    # even a read-only open brings it up to date first (a short writable open): migration 3 runs and backfills
    # every located source
    warehouse.connect(path, read_only=True).close()
    con = warehouse.connect(path)
    assert 3 in {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    stored = con.execute("SELECT source, lon0, min_lon, max_lon, min_lat, max_lat FROM grid_origins").fetchall()
    assert stored == [("city", None, -87.80, -87.56, 41.70, 41.96)]  # 'dark' has no coordinates
    con.close()
    # read-only analyses find the origin of the extent recorded at migration time ...
    ro = warehouse.connect(path, read_only=True)
    expected = origin_for_extent(-87.80, -87.56, 41.70, 41.96)
    assert grid_origin(ro, "city") == expected
    ro.close()
    # ... which the next load keeps, even when it widens the extent, and writes into the row
    con = warehouse.connect(path)
    _insert(con, [("city", "far", 42.50, -88.50)])
    assert pin_grid_origin(con, "city") == expected
    row = con.execute("SELECT lon0, lat0, x0, y0 FROM grid_origins WHERE source = 'city'").fetchone()
    assert row == (expected.lon0, expected.lat0, expected.x0, expected.y0)
    assert grid_origin(con, "city") == expected
    con.close()
