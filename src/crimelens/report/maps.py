"""Maps for the report: grid cells over area outlines, area and state choropleths, and heat maps, all offline.

The Vega-Lite specs come from :mod:`crimelens.analysis.vega`; this module gathers what a map needs from the
warehouse (every loaded area set's outline under a grid, the place most of a top cell's incidents fall in) and
wraps the spec in a figure (:func:`crimelens.report.charts.embed_figure`). No basemap or tile is fetched: the
outlines are the areas loaded into the warehouse (``crimelens areas load``), and US state shapes ship with
crimelens (:mod:`crimelens.report.states`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from markupsafe import Markup

from crimelens.analysis.vega import GI_CLASSES, PERSISTENCE_CLASSES, area_map, grid_map, matrix_chart, project_outlines
from crimelens.geo import GridOrigin, forward
from crimelens.report.charts import embed_figure

__all__ = [
    "GI_CLASSES",
    "PERSISTENCE_CLASSES",
    "AreaShape",
    "area_map_figure",
    "grid_map_figure",
    "grid_outlines",
    "load_area_shapes",
    "matrix_figure",
]

#: Outlines farther than this from the cells (metres) are not drawn under a grid map.
_MARGIN_M = 2_000.0


@dataclass(frozen=True)
class AreaShape:
    """One loaded area polygon, parsed once per report: its set, kind, id, name, GeoJSON and lon/lat box."""

    area_set: str
    kind: str
    area_id: str
    name: str | None
    geometry: dict[str, Any]
    bounds: tuple[float, float, float, float]  # west, south, east, north (degrees)


def load_area_shapes(con: duckdb.DuckDBPyConnection) -> tuple[AreaShape, ...]:
    """Every loaded area polygon, parsed (the report asks once, through its memo, and every map reuses them)."""
    rows = con.execute(
        "SELECT area_set, area_kind, area_id, name, geometry FROM areas ORDER BY area_set, area_id"
    ).fetchall()
    shapes = []
    for area_set, kind, area_id, name, text in rows:
        try:
            geometry = json.loads(text)
        except (TypeError, ValueError):
            continue
        pts = _points(geometry)
        if not pts.size:
            continue
        box = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))
        shapes.append(AreaShape(str(area_set), str(kind), str(area_id), name, geometry, box))
    return tuple(shapes)


def grid_outlines(
    con: duckdb.DuckDBPyConnection,
    cells: pd.DataFrame,
    origin: GridOrigin,
    areas: Sequence[AreaShape] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Every loaded area set's outlines that overlap the cells, in the grid's plane, and what they are.

    An area set is drawn when any of its polygons' bounding boxes meets the cells' extent (plus 2 km); the
    label names each set and its kind (e.g. "chicago-community-areas (community areas)"). ``areas``: the
    shapes already parsed (:func:`load_area_shapes`; default: read them from ``con``).
    """
    if cells.empty or not {"x_m", "y_m"} <= set(cells.columns):
        return [], ""
    x0, x1 = float(cells["x_m"].min()) - _MARGIN_M, float(cells["x_m"].max()) + _MARGIN_M
    y0, y1 = float(cells["y_m"].min()) - _MARGIN_M, float(cells["y_m"].max()) + _MARGIN_M
    kept: list[dict[str, Any]] = []
    sets: dict[str, str] = {}
    for a in load_area_shapes(con) if areas is None else areas:
        # the grid's projection is cylindrical: x depends on longitude only and y on latitude only, so the
        # box of the polygon maps to the box of its projection
        x, y = forward(
            np.array([a.bounds[0], a.bounds[2]]), np.array([a.bounds[1], a.bounds[3]]), origin.lon0, origin.lat0
        )
        if x.max() < x0 or x.min() > x1 or y.max() < y0 or y.min() > y1:
            continue
        kept.append(a.geometry)
        sets[a.area_set] = a.kind.replace("_", " ") + "s"
    label = "; ".join(f"{s} ({k})" for s, k in sets.items())
    return project_outlines(kept, origin), label


def _points(geometry: Mapping[str, Any]) -> np.ndarray:
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    polys = [coords] if kind == "Polygon" else list(coords) if kind == "MultiPolygon" else []
    pts = [pt[:2] for poly in polys if poly for pt in poly[0]]
    return np.asarray(pts, dtype="float64").reshape(-1, 2)


def grid_map_figure(
    cells: pd.DataFrame,
    *,
    chart_id: str,
    value: str,
    cell_m: float,
    title: str,
    caption: str,
    con: duckdb.DuckDBPyConnection | None = None,
    origin: GridOrigin | None = None,
    legend_label: str = "",
    categorical: Mapping[str, str] | None = None,
    labels: pd.DataFrame | None = None,
    tooltip: Sequence[str] = (),
    table: Markup | None = None,
    simulated: bool = False,
    order: str | None = None,
    footprint: pd.DataFrame | None = None,
    areas: Sequence[AreaShape] | None = None,
) -> Markup:
    """A grid map (cells over the loaded outlines, or the data's footprint) as a report figure."""
    outlines: list[dict[str, Any]] = []
    outline_label = ""
    if con is not None and origin is not None:
        outlines, outline_label = grid_outlines(con, cells, origin, areas)
    spec = grid_map(
        cells, value=value, cell_m=cell_m, title=title, legend_label=legend_label, categorical=categorical,
        outlines=outlines, outline_label=outline_label, labels=labels, tooltip=tooltip, simulated=simulated,
        order=order, footprint=footprint,
    )  # fmt: skip
    return _map_figure(spec, chart_id=chart_id, title=title, caption=caption, table=table)


def _map_figure(spec: dict[str, Any], *, chart_id: str, title: str, caption: str, table: Markup | None) -> Markup:
    """A map spec embedded as a report figure, with the data behind it as a table and no static fallback."""
    return embed_figure(
        spec, chart_id=chart_id, title=title, caption=caption, table=table, css_class="map-figure",
        table_label="Data behind this map", fallback=False,
    )  # fmt: skip


def area_map_figure(
    geometries: Sequence[Mapping[str, Any]],
    table: pd.DataFrame,
    *,
    chart_id: str,
    value: str,
    title: str,
    caption: str,
    legend_label: str = "",
    name: str = "name",
    projection: str = "mercator",
    simulated: bool = False,
    data_table: Markup | None = None,
) -> Markup:
    """A choropleth (one GeoJSON polygon per row of ``table``) as a report figure."""
    spec = area_map(
        geometries, table, value=value, title=title, legend_label=legend_label, name=name, projection=projection,
        simulated=simulated,
    )  # fmt: skip
    return _map_figure(spec, chart_id=chart_id, title=title, caption=caption, table=data_table)


def matrix_figure(
    table: pd.DataFrame,
    *,
    chart_id: str,
    row: str,
    column: str,
    value: str,
    title: str,
    caption: str,
    x_label: str = "",
    legend_label: str = "",
    fallback: bool = False,
) -> Markup:
    """A heat map of a long table (e.g. weekday × hour) as a report figure (``fallback``: with a static SVG)."""
    spec = matrix_chart(
        table, row=row, column=column, value=value, title=title, x_label=x_label, legend_label=legend_label
    )
    return embed_figure(
        spec, chart_id=chart_id, title=title, caption=caption, css_class="map-figure", fallback=fallback
    )
