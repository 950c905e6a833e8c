"""Grid origins pinned per incident source, so grid cells keep their ids whatever the window or filter.

A grid cell ``(cell_x, cell_y)`` means a place only relative to a :class:`~crimelens.geo.GridOrigin`. Computed
from the data an analysis happens to look at (a time window, one offence), the origin moves and so do the ids.
So each incident source gets one origin, computed from the source's whole extent the first time it is pinned
(:func:`crimelens.geo.origin_for_extent`) and stored in the ``grid_origins`` table (schema migration 3); later
loads that widen the extent leave it where it is (cells outside the first extent get negative or larger
indices, which is fine).

``grid_origins`` rows backfilled by migration 3 for sources loaded before it hold the source's extent only (the
migration is SQL and the projection lives in :mod:`crimelens.geo` alone): their origin is derived from that
stored extent, with the same function, when read, and written into the row by the next :func:`pin_grid_origin`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import duckdb

from crimelens.errors import DataError
from crimelens.geo import GridOrigin, origin_for_extent

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["grid_origin", "pin_grid_origin"]

log = logging.getLogger(__name__)

_SELECT = "SELECT lon0, lat0, x0, y0, min_lon, max_lon, min_lat, max_lat FROM grid_origins WHERE source = ?"


def _stored(con: duckdb.DuckDBPyConnection, source: str) -> Sequence[float | None] | None:
    try:
        row = con.execute(_SELECT, [source]).fetchone()
    except duckdb.CatalogException:  # a warehouse older than migration 3 (opened read-only before upgrading)
        return None
    return None if row is None else tuple(row)


def _from_row(row: Sequence[float | None]) -> GridOrigin:
    lon0, lat0, x0, y0, *extent = row
    if lon0 is not None and lat0 is not None and x0 is not None and y0 is not None:
        return GridOrigin(lon0=float(lon0), lat0=float(lat0), x0=float(x0), y0=float(y0))
    # backfilled by migration 3: the extent is stored, the origin follows from it
    min_lon, max_lon, min_lat, max_lat = (float(v) for v in extent)  # type: ignore[arg-type]
    return origin_for_extent(min_lon, max_lon, min_lat, max_lat)


def grid_origin(con: duckdb.DuckDBPyConnection, source: str) -> GridOrigin | None:
    """The grid origin pinned for incident ``source``, or None when none is pinned (or the source has no
    located incident). Read-only: works on a connection opened with ``read_only=True``."""
    row = _stored(con, source)
    return None if row is None else _from_row(row)


def pin_grid_origin(con: duckdb.DuckDBPyConnection, source: str) -> GridOrigin | None:
    """Pin the grid origin of incident ``source`` (once) and return it.

    The first call for a source computes the origin from the whole extent of its located incidents in the
    warehouse and stores it; every later call returns the stored origin unchanged, whatever has been loaded
    since. Call it after the source's rows are written, inside the load's transaction: it runs no transaction of
    its own. Returns None, and stores nothing, while the source has no incident with coordinates (or only
    coordinates the projection cannot take, beyond ±80° latitude): a later load that brings some pins it.
    """
    row = _stored(con, source)
    if row is not None:
        origin = _from_row(row)
        if row[0] is None:  # backfilled extent: write the origin it gives
            con.execute(
                "UPDATE grid_origins SET lon0 = ?, lat0 = ?, x0 = ?, y0 = ? WHERE source = ? AND lon0 IS NULL",
                [origin.lon0, origin.lat0, origin.x0, origin.y0, source],
            )
        return origin
    ext = con.execute(
        "SELECT min(longitude), max(longitude), min(latitude), max(latitude) FROM incidents "
        "WHERE source = ? AND latitude IS NOT NULL AND longitude IS NOT NULL",
        [source],
    ).fetchone()
    if ext is None or any(v is None for v in ext):
        return None
    min_lon, max_lon, min_lat, max_lat = (float(v) for v in ext)
    try:
        origin = origin_for_extent(min_lon, max_lon, min_lat, max_lat)
    except DataError as exc:
        log.warning("incident source %s: no grid origin pinned (%s)", source, exc)
        return None
    con.execute(
        "INSERT INTO grid_origins (source, lon0, lat0, x0, y0, min_lon, max_lon, min_lat, max_lat, pinned_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO NOTHING",
        [source, origin.lon0, origin.lat0, origin.x0, origin.y0, min_lon, max_lon, min_lat, max_lat, dt.datetime.now()],
    )
    pinned = grid_origin(con, source)
    return pinned if pinned is not None else origin
