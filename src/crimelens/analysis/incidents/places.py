"""Grid cells on the map: their outlines in longitude/latitude, GeoJSON for GIS tools, and the places they lie in.

Cells are squares in the local Lambert cylindrical equal-area plane of :mod:`crimelens.geo`. That projection
is cylindrical (x depends on longitude only, y on latitude only), so each cell is exactly a longitude/latitude
rectangle: its four corners, inverse-projected, describe it with no approximation (Snyder 1987, §10).

- :func:`cell_bounds` gives each cell's west/south/east/north edges in degrees;
- :func:`cells_geojson` writes cells (hot spots, persistent cells, ...) as a GeoJSON FeatureCollection in
  WGS84 (RFC 7946: longitude first, EPSG:4326, counter-clockwise outer rings) with every other column as
  properties;
- :func:`cell_places` names the area (community area, neighbourhood, district, ...) that most of a cell's
  incidents carry, from the incidents' own area ids, for labels and tooltips;
- :func:`points_in_areas` counts incidents per polygon of a loaded area set from their coordinates, for area
  sets the incidents carry no id of (Portland's calls name census tracts, not police districts).

References
----------
Butler, H. et al. (2016). The GeoJSON Format. RFC 7946, IETF.
Snyder, J. P. (1987). *Map Projections — A Working Manual*. USGS Professional Paper 1395.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from crimelens.analysis.result import frame_records
from crimelens.errors import DataError, SourceError
from crimelens.geo import GridOrigin, inverse

__all__ = ["cell_bounds", "cell_places", "cells_geojson", "points_in_areas", "write_cells_geojson"]


def cell_bounds(cells: pd.DataFrame, cell_m: float, origin: GridOrigin) -> pd.DataFrame:
    """West, south, east and north edges (degrees, WGS84) of cells given by their centres ``x_m``, ``y_m``."""
    if not {"x_m", "y_m"} <= set(cells.columns):
        raise DataError(
            "cell bounds: expected cell centres in columns x_m and y_m (metres, the grid's plane); "
            f"got columns {', '.join(map(str, cells.columns))}"
        )
    if not (isinstance(cell_m, int | float) and math.isfinite(cell_m) and cell_m > 0):
        raise DataError(f"cell bounds: expected a positive cell size in metres, got {cell_m!r}")
    half = cell_m / 2
    x = pd.to_numeric(cells["x_m"], errors="coerce").to_numpy(dtype="float64")
    y = pd.to_numeric(cells["y_m"], errors="coerce").to_numpy(dtype="float64")
    west, south = inverse(x - half, y - half, origin.lon0, origin.lat0)
    east, north = inverse(x + half, y + half, origin.lon0, origin.lat0)
    return pd.DataFrame({"west": west, "south": south, "east": east, "north": north}, index=cells.index)


def cells_geojson(
    cells: pd.DataFrame, cell_m: float, origin: GridOrigin, *, properties: list[str] | None = None
) -> dict[str, Any]:
    """Cells as a GeoJSON FeatureCollection in WGS84 (EPSG:4326), one square Polygon per cell.

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per cell with its centre ``x_m``, ``y_m`` in the grid's plane (as every grid result has).
    cell_m : float
        Cell size in metres.
    origin : GridOrigin
        The grid's projection centre (the source's pinned origin).
    properties : list of str, optional
        Columns to carry as feature properties (default: every column but ``x_m`` and ``y_m``).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}``; rings run counter-clockwise (RFC 7946 §3.1.6),
        coordinates are [longitude, latitude] rounded to 7 decimals (about 1 cm).
    """
    bounds = cell_bounds(cells, cell_m, origin)
    keep = properties if properties is not None else [c for c in cells.columns if c not in ("x_m", "y_m")]
    missing = [c for c in keep if c not in cells.columns]
    if missing:
        raise DataError(
            f"GeoJSON properties: expected columns of the cells ({', '.join(cells.columns)}); got {missing}"
        )
    props = frame_records(cells[keep].reset_index(drop=True))
    features = []
    for rec, (w, s, e, n) in zip(props, bounds.itertuples(index=False, name=None), strict=True):
        if not all(math.isfinite(v) for v in (w, s, e, n)):
            continue
        w, s, e, n = (round(float(v), 7) for v in (w, s, e, n))
        ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]  # counter-clockwise
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": rec})
    return {"type": "FeatureCollection", "features": features}


def write_cells_geojson(
    path: Path, cells: pd.DataFrame, cell_m: float, origin: GridOrigin, *, properties: list[str] | None = None
) -> int:
    """Write :func:`cells_geojson` to ``path`` (UTF-8); return the number of features written."""
    path = Path(path)
    if path.is_dir():
        raise SourceError(f"GeoJSON {path}: is a folder; expected a file name such as {path / 'cells.geojson'}")
    if not path.parent.is_dir():
        raise SourceError(f"GeoJSON {path}: folder {path.parent} does not exist; expected an existing folder")
    collection = cells_geojson(cells, cell_m, origin, properties=properties)
    path.write_text(json.dumps(collection, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    return len(collection["features"])


def cell_places(
    con: duckdb.DuckDBPyConnection,
    source: str,
    cells: pd.DataFrame,
    cell_m: float,
    origin: GridOrigin,
    area: str,
    area_set: str | None = None,
) -> pd.Series:
    """The place most of each cell's incidents fall in: the area's name (or its id when no names are loaded).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The warehouse.
    source : str
        The incident source.
    cells : pandas.DataFrame
        Cells with centres ``x_m``, ``y_m`` (keep this short: one query per cell, e.g. the ten busiest).
    cell_m : float
        Cell size in metres.
    origin : GridOrigin
        The grid's projection centre.
    area : str
        The incidents' area column (``community_area``, ``neighbourhood``, ``district``, ``beat`` ...).
    area_set : str, optional
        The loaded area set whose names label that column's ids.

    Returns
    -------
    pandas.Series
        One label per cell (index of ``cells``); None where the cell's incidents carry no area id.
    """
    from crimelens.analysis.incidents.aggregate import AREA_COLUMNS

    if area not in AREA_COLUMNS:
        raise DataError(f"area: expected one of {', '.join(AREA_COLUMNS)}, got {area!r}")
    names: dict[str, str] = {}
    if area_set is not None:
        rows = con.execute("SELECT area_id, name FROM areas WHERE area_set = ?", [area_set]).fetchall()
        names = {str(i): str(n) for i, n in rows if n}
    bounds = cell_bounds(cells, cell_m, origin)
    labels: list[str | None] = []
    for w, s, e, n in bounds.itertuples(index=False, name=None):
        row = con.execute(
            f"SELECT {area}, count(*) AS n FROM incidents WHERE source = ? AND {area} IS NOT NULL "
            "AND longitude >= ? AND longitude < ? AND latitude >= ? AND latitude < ? "
            f"GROUP BY {area} ORDER BY n DESC, {area} LIMIT 1",
            [source, w, e, s, n],
        ).fetchall()
        labels.append(names.get(str(row[0][0]), str(row[0][0])) if row else None)
    return pd.Series(labels, index=cells.index, dtype="object")


def points_in_areas(lon: Any, lat: Any, areas: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Count points per polygon (point in polygon, boundaries included) and the points in no polygon.

    Parameters
    ----------
    lon, lat : array-like
        Point coordinates (WGS84 degrees); pairs with a missing coordinate are not counted anywhere.
    areas : pandas.DataFrame
        ``area_id``, ``name`` and ``geometry`` (GeoJSON text or dict, WGS84) of each polygon.

    Returns
    -------
    (pandas.DataFrame, int)
        ``area``, ``name``, ``incidents`` and ``share`` (of the points inside some polygon), one row per polygon in
        the order given; and how many located points fell in no polygon. A point on a border shared by two
        polygons is counted in the first (each point is counted once).
    """
    import numpy as np
    import shapely
    from shapely.geometry import shape

    x = pd.to_numeric(pd.Series(np.asarray(lon)), errors="coerce").to_numpy(dtype="float64")
    y = pd.to_numeric(pd.Series(np.asarray(lat)), errors="coerce").to_numpy(dtype="float64")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    free = np.ones(len(x), dtype=bool)
    counts: list[int] = []
    for g in areas["geometry"]:
        geom = shape(json.loads(g) if isinstance(g, str) else g)
        shapely.prepare(geom)
        inside = free & shapely.intersects_xy(geom, x, y)
        counts.append(int(inside.sum()))
        free &= ~inside
    total = sum(counts)
    table = pd.DataFrame(
        {
            "area": areas["area_id"].astype(str).to_numpy(),
            "name": areas["name"].fillna(areas["area_id"]).astype(str).to_numpy(),
            "incidents": np.asarray(counts, dtype="int64"),
        }
    )
    table["share"] = table["incidents"] / total if total else 0.0
    return table, int(free.sum())
