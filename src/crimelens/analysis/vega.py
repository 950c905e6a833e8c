"""Chart specs as Vega-Lite: one mapping from :class:`~crimelens.analysis.result.ChartSpec` (and from grid and
area maps) to a Vega-Lite specification, shared by the HTML report and the dashboard.

This module builds plain dictionaries, no HTML and no JavaScript: the report (:mod:`crimelens.report.charts`)
and any later front end embed them with the Vega, Vega-Lite and vega-embed bundles that ship with
``vl-convert-python``, so nothing is fetched at view time. Every chart gets

- tooltips with the exact figures of every column of its data (``tooltip`` on every mark);
- a legend that toggles series (a point selection bound to the legend);
- zoom and pan on numeric or time x axes (an interval selection bound to the scales);
- its data inline (``data.values``), in the order of the spec's frame, so a "Download CSV" of
  ``data.values`` is the chart's own table.

Maps are drawn with ``geoshape`` marks. Grid cells and outlines live in the local equal-area plane of
:mod:`crimelens.geo` (metres east and north of the grid's projection centre), shown with Vega's ``identity``
projection (``reflectY``: north up), so square cells stay square and outlines sit exactly where the grid binned
the incidents. State maps are drawn in longitude/latitude with the ``albersUsa`` projection.

References
----------
Satyanarayan, A., Moritz, D., Wongsuphasawat, K. and Heer, J. (2017). Vega-Lite: a grammar of interactive
graphics. *IEEE Transactions on Visualization and Computer Graphics* 23(1), 341-350.
Okabe, M. and Ito, K. (2008). Color universal design: how to make figures and presentations that are friendly
to colorblind people (the palette below).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from crimelens.analysis.result import ChartSpec, frame_records
from crimelens.geo import GridOrigin, forward

__all__ = [
    "GI_CLASSES",
    "PALETTE",
    "PERSISTENCE_CLASSES",
    "SCHEMA",
    "area_map",
    "chart_to_vegalite",
    "declutter_labels",
    "flat_line_sentence",
    "grid_map",
    "matrix_chart",
    "project_outlines",
]

#: The Vega-Lite version these specs are written for (an identifier: it is never fetched).
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"

#: Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), blue first.
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_ACCENT = "#D55E00"
_INK = "#1f2933"
_MUTED = "#52606d"
_OUTLINE = "#7b8794"
_FOOTPRINT = "#eef0f2"

#: Gi* classes and their colours (ColorBrewer RdBu ends; grey for cells that are not significant).
GI_CLASSES: dict[str, str] = {"hot": "#b2182b", "cold": "#2166ac", "not significant": "#d9dde2"}
#: Colours of the persistent-hotspot classes.
PERSISTENCE_CLASSES: dict[str, str] = {"stable": "#b2182b", "emerging": "#ef8a62", "intermittent": "#fddbc7"}

#: Smallest font anywhere on a chart, in pixels (the report's floor for legibility).
MIN_FONT_PX = 11

CONFIG: dict[str, Any] = {
    "font": "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
    "view": {"stroke": None},
    "axis": {
        "labelFontSize": MIN_FONT_PX,
        "titleFontSize": 12,
        "labelColor": _MUTED,
        "titleColor": _INK,
        "gridColor": "#e4e7eb",
        "domainColor": _MUTED,
        "tickColor": _MUTED,
        "labelLimit": 220,
    },
    "legend": {"labelFontSize": MIN_FONT_PX, "titleFontSize": 12, "labelLimit": 260, "orient": "bottom"},
    "title": {"fontSize": 14, "anchor": "start", "color": _INK, "subtitleFontSize": 12, "subtitleColor": _MUTED},
    "header": {"labelFontSize": 12, "titleFontSize": 12},
    "text": {"fontSize": MIN_FONT_PX},
    "range": {"category": list(PALETTE)},
    "numberFormat": ",.4~f",
}


# -- column kinds --------------------------------------------------------------------------------------------
def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _is_numeric(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return False
    return bool(pd.api.types.is_numeric_dtype(values))


def _is_temporal(values: pd.Series) -> bool:
    return bool(pd.api.types.is_datetime64_any_dtype(values))


def _is_year_like(values: pd.Series, name: str) -> bool:
    if not _is_numeric(values):
        return False
    if name.lower() in {"year", "years"}:
        return True
    num = _numeric(values).dropna()
    return bool(len(num)) and bool(((num % 1 == 0) & (num >= 1800) & (num <= 2100)).all())


def _humanize(column: str) -> str:
    return column.replace("_", " ").strip()


def _field(column: str) -> str:
    """``column`` as a Vega-Lite field reference: dots and brackets escaped, so ``hit_rate_0.05`` names the
    column and is not read as nested access (``hit_rate_0`` → ``05``)."""
    return re.sub(r"([\\.\[\]])", r"\\\1", column)


def _value_format(column: str) -> str:
    return ".0%" if "share" in column.lower() else ",.4~f"


def _ordered_unique(values: pd.Series) -> list[Any]:
    return [v for v in dict.fromkeys(values.tolist()) if not (v is None or (isinstance(v, float) and math.isnan(v)))]


def _check_columns(spec: ChartSpec) -> None:
    wanted = [spec.x, spec.y, spec.series, spec.facet, spec.highlight]
    missing = [c for c in wanted if c is not None and c not in spec.data.columns]
    if missing:
        raise ValueError(
            f"chart {spec.title!r}: every role must name a column of its data; allowed: "
            f"{', '.join(map(str, spec.data.columns))}; got {missing[0]!r}"
        )


def _tooltip(data: pd.DataFrame) -> list[dict[str, Any]]:
    """Every column of the chart's data, exactly (numbers with up to four decimals, shares as percentages)."""
    tips: list[dict[str, Any]] = []
    for col in data.columns:
        values = data[col]
        tip: dict[str, Any] = {"field": _field(str(col)), "title": _humanize(str(col))}
        if _is_temporal(values):
            tip.update(type="temporal", format="%Y-%m-%d")
        elif _is_year_like(values, str(col)):
            tip.update(type="quantitative", format="d")
        elif _is_numeric(values):
            tip.update(type="quantitative", format=_value_format(str(col)))
        else:
            tip["type"] = "nominal"
        tips.append(tip)
    return tips


def _x_encoding(data: pd.DataFrame, column: str, title: str) -> tuple[dict[str, Any], bool]:
    """The x encoding and whether it is continuous (and so zoomable)."""
    values = data[column]
    enc: dict[str, Any] = {"field": _field(column), "title": title or None}
    if _is_temporal(values):
        enc["type"] = "temporal"
        return enc, True
    if _is_year_like(values, column):
        enc.update(type="quantitative", axis={"format": "d", "tickMinStep": 1}, scale={"zero": False})
        return enc, True
    if _is_numeric(values):
        enc.update(type="quantitative", axis={"format": _value_format(column)}, scale={"zero": False})
        return enc, True
    enc.update(type="ordinal", sort=_ordered_unique(values.astype(str)))
    return enc, False


def _y_encoding(data: pd.DataFrame, column: str, title: str) -> dict[str, Any]:
    enc: dict[str, Any] = {"field": _field(column), "type": "quantitative", "title": title or None}
    if "rank" in column.lower():  # rank 1 (the highest) at the top, whole numbers only
        worst = _numeric(data[column]).max()
        top = max(float(worst) if math.isfinite(worst) else 1.0, 5.0)
        enc["scale"] = {"reverse": True, "domain": [1, top], "nice": False}
        enc["axis"] = {"tickMinStep": 1, "format": "d"}
    else:
        enc["axis"] = {"format": _value_format(column)}
    return enc


def _legend_param(name: str = "legend") -> dict[str, Any]:
    return {"name": name, "select": {"type": "point", "fields": []}, "bind": "legend"}


def _series_color(data: pd.DataFrame, series: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Colour by series with a legend that toggles it: (color encoding, opacity encoding, selection param)."""
    param = _legend_param()
    param["select"]["fields"] = [_field(series)]
    domain = [str(v) for v in _ordered_unique(data[series].astype(str))]
    color = {"field": _field(series), "type": "nominal", "title": None, "scale": {"domain": domain}, "sort": domain}
    opacity = {"condition": {"param": "legend", "value": 1}, "value": 0.12}
    return color, opacity, param


def _zoom_param() -> dict[str, Any]:
    return {"name": "zoom", "select": {"type": "interval", "encodings": ["x"]}, "bind": "scales"}


# -- charts -----------------------------------------------------------------------------------------------
def flat_line_sentence(spec: ChartSpec) -> str | None:
    """A sentence saying what a line chart that would be one flat line shows (None when it is not flat).

    A chart whose every series holds one value (say, a jurisdiction ranked 1st every year) shows nothing a
    sentence cannot say better.
    """
    if spec.kind not in ("line", "small_multiples") or spec.data.empty or spec.y not in spec.data.columns:
        return None
    y = _numeric(spec.data[spec.y])
    if y.isna().all() or len(spec.data) < 2:
        return None
    groups = [spec.data]
    if spec.series and spec.series in spec.data.columns:
        groups = [g for _, g in spec.data.groupby(spec.series, sort=False)]
    if any(_numeric(g[spec.y]).dropna().nunique() > 1 for g in groups):
        return None
    label = spec.y_label or _humanize(spec.y)
    first, last = spec.data[spec.x].iloc[0], spec.data[spec.x].iloc[-1]
    values = sorted({float(v) for v in y.dropna()})
    shown = ", ".join(f"{v:,.4g}" for v in values)
    return f"{spec.title}: {label} stayed at {shown} from {first} to {last} (a flat line, so not charted)."


def chart_to_vegalite(spec: ChartSpec, *, height: int | None = None) -> dict[str, Any]:
    """The chart as a Vega-Lite specification (a JSON-ready dict) that fills its container's width.

    Parameters
    ----------
    spec : ChartSpec
        The chart: its data, the column of each role, title, labels and note.
    height : int, optional
        Height of the plotting area in pixels (default: by kind and number of bars).

    Returns
    -------
    dict
        A Vega-Lite v6 specification with the data inline; ``usermeta.columns`` lists the data's columns in
        order (for the CSV download).

    Raises
    ------
    ValueError
        When a role names a column that is not in the data.
    """
    _check_columns(spec)
    data = spec.data.reset_index(drop=True)
    base: dict[str, Any] = {
        "$schema": SCHEMA,
        "title": {"text": spec.title},
        "data": {"values": frame_records(data)},
        "config": CONFIG,
        "usermeta": {"columns": [str(c) for c in data.columns], "kind": spec.kind, "note": spec.note},
        "autosize": {"type": "fit-x", "contains": "padding"},
    }
    if data.empty:
        base.update(
            width="container",
            height=60,
            mark={"type": "text", "fontSize": 13, "color": _MUTED},
            encoding={"text": {"value": "No data to show"}},
        )
        base["data"] = {"values": [{}]}
        return base
    tooltip = _tooltip(data)
    if spec.kind == "small_multiples":
        return _small_multiples(base, data, spec, tooltip)
    layers = _layers(data, spec, tooltip)
    base.update(width="container", height=height or _height(spec, data), layer=layers)
    return base


def _height(spec: ChartSpec, data: pd.DataFrame) -> int:
    if spec.kind in ("barh", "stacked_barh"):
        n = len(_ordered_unique(data[spec.x]))
        return int(min(max(22 * n, 120), 900))
    return 280


def _highlight_layer(spec: ChartSpec, x: dict[str, Any], y: dict[str, Any], tooltip: list[Any]) -> dict[str, Any]:
    assert spec.highlight is not None
    return {
        "transform": [{"filter": {"field": _field(spec.highlight), "equal": True}}],
        "mark": {"type": "point", "filled": True, "size": 70, "color": _ACCENT, "stroke": "white"},
        "encoding": {"x": x, "y": y, "tooltip": tooltip},
    }


def _reference_layers(spec: ChartSpec, data: pd.DataFrame) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = []
    if spec.reference is not None:
        axis = "x" if spec.kind in ("barh", "stacked_barh") else "y"
        layers.append(
            {
                "mark": {"type": "rule", "color": _INK, "strokeDash": [4, 3], "strokeWidth": 1.2},
                "encoding": {axis: {"datum": spec.reference}},
            }
        )
    if spec.diagonal:
        lo = float(min(_numeric(data[spec.x]).min(), _numeric(data[spec.y]).min(), 0.0))
        hi = float(max(_numeric(data[spec.x]).max(), _numeric(data[spec.y]).max(), 1.0))
        layers.append(
            {
                "data": {"values": [{"d": lo}, {"d": hi}]},
                "mark": {"type": "line", "color": _MUTED, "strokeDash": [4, 3], "strokeWidth": 1.2},
                "encoding": {
                    "x": {"field": "d", "type": "quantitative"},
                    "y": {"field": "d", "type": "quantitative"},
                },
            }
        )
    return layers


def _layers(data: pd.DataFrame, spec: ChartSpec, tooltip: list[Any]) -> list[dict[str, Any]]:
    has_series = bool(spec.series) and spec.series in data.columns
    if spec.kind in ("line", "scatter"):
        x, zoomable = _x_encoding(data, spec.x, spec.x_label)
        y = _y_encoding(data, spec.y, spec.y_label)
        enc: dict[str, Any] = {"x": x, "y": y, "tooltip": tooltip}
        params: list[dict[str, Any]] = [_zoom_param()] if zoomable else []
        if has_series:
            assert spec.series is not None
            enc["color"], enc["opacity"], legend = _series_color(data, spec.series)
            params.append(legend)
        if spec.kind == "line":
            size = 36 if len(data) <= 120 else 10  # many points: small markers (they carry the tooltips)
            mark: dict[str, Any] = {"type": "line", "strokeWidth": 2, "point": {"size": size, "filled": True}}
        else:
            mark = {"type": "point", "filled": True, "size": 40, "opacity": 0.8}
        if not has_series:
            mark["color"] = PALETTE[0]
        layers = [{"params": params, "mark": mark, "encoding": enc}]
        if spec.highlight:
            layers.append(_highlight_layer(spec, x, y, tooltip))
        return layers + _reference_layers(spec, data)
    # bars: categories in the order of the data
    horizontal = spec.kind in ("barh", "stacked_barh")
    cats = [str(v) for v in _ordered_unique(data[spec.x].astype(str))]
    if horizontal:
        cats = cats[::-1]  # as in the data: the first row is drawn at the bottom (rankings come bottom-up)
    cat: dict[str, Any] = {"field": _field(spec.x), "type": "nominal", "sort": cats, "title": spec.x_label or None}
    val = _y_encoding(data, spec.y, spec.y_label)
    val["axis"] = {"format": _value_format(spec.y)}
    if spec.reference is not None and spec.kind == "bar":
        val["scale"] = {"zero": False}
    enc = {"x": val, "y": cat} if horizontal else {"x": cat, "y": val}
    value_axis = "x" if horizontal else "y"
    if spec.reference is not None and spec.kind in ("bar", "barh"):
        enc[f"{value_axis}2"] = {"datum": spec.reference}  # bars grow from the reference (e.g. a ratio of 1)
    enc["tooltip"] = tooltip
    params = []
    if has_series:
        assert spec.series is not None
        enc["color"], enc["opacity"], legend = _series_color(data, spec.series)
        params.append(legend)
        if spec.kind == "bar":
            enc["xOffset"] = {"field": _field(spec.series), "type": "nominal", "sort": enc["color"]["sort"]}
    elif spec.highlight:
        enc["color"] = {
            "condition": {"test": {"field": _field(spec.highlight), "equal": True}, "value": _ACCENT},
            "value": PALETTE[0],
        }
    else:
        enc["color"] = {"value": PALETTE[0]}
    layers = [{"params": params, "mark": {"type": "bar", "tooltip": True}, "encoding": enc}]
    if spec.kind == "barh":
        layers.append(
            {
                "mark": {"type": "text", "align": "left", "dx": 3, "color": _MUTED},
                "encoding": {
                    "x": {"field": _field(spec.y), "type": "quantitative"},
                    "y": cat,
                    "text": {"field": _field(spec.y), "type": "quantitative", "format": _value_format(spec.y)},
                },
            }
        )
    if spec.highlight and has_series:
        layers.append(
            {
                "transform": [{"filter": {"field": _field(spec.highlight), "equal": True}}],
                "mark": {"type": "text", "text": "*", "dy": -6, "fontSize": 14, "color": _ACCENT},
                "encoding": {k: v for k, v in enc.items() if k in ("x", "y", "xOffset")},
            }
        )
    return layers + _reference_layers(spec, data)


def _small_multiples(base: dict[str, Any], data: pd.DataFrame, spec: ChartSpec, tooltip: list[Any]) -> dict[str, Any]:
    inner = ChartSpec("line", data, spec.x, spec.y, spec.title, spec.series, None, spec.x_label, spec.y_label,
                      highlight=spec.highlight, reference=spec.reference)  # fmt: skip
    layers = _layers(data, inner, tooltip)
    facets = _ordered_unique(data[spec.facet]) if spec.facet else [None]
    columns = 1 if len(facets) == 1 else 2 if len(facets) in (2, 4) else 3
    base.pop("autosize")
    base.update(
        facet={
            "field": _field(spec.facet) if spec.facet else None,
            "type": "nominal",
            "sort": [str(f) for f in facets],
            "title": None,
        },
        columns=columns,
        spec={"width": 200, "height": 130, "layer": layers},
        resolve={"scale": {"y": "shared"}},
    )
    base["usermeta"]["facet_columns"] = columns
    return base


# -- matrix (heat map) ------------------------------------------------------------------------------------
def matrix_chart(
    table: pd.DataFrame, *, row: str, column: str, value: str, title: str, x_label: str = "", legend_label: str = ""
) -> dict[str, Any]:
    """A heat map of a long table (one row per ``row`` × ``column`` cell, e.g. weekday × hour), rows in data order."""
    data = table.reset_index(drop=True)
    rows = [str(v) for v in _ordered_unique(data[row].astype(str))]
    cols = _ordered_unique(data[column])
    every = max(1, math.ceil(len(cols) / 12))  # at most about 12 column labels: each stays legible
    shown = [c for i, c in enumerate(cols) if i % every == 0]
    return {
        "$schema": SCHEMA,
        "title": {"text": title},
        "data": {"values": frame_records(data)},
        "config": CONFIG,
        "usermeta": {"columns": [str(c) for c in data.columns], "kind": "matrix"},
        "autosize": {"type": "fit-x", "contains": "padding"},
        "width": "container",
        "height": 24 * len(rows),
        "mark": {"type": "rect", "tooltip": True},
        "encoding": {
            "x": {"field": _field(column), "type": "ordinal", "sort": cols, "title": x_label or None,
                  "axis": {"values": shown, "labelAngle": 0}},
            "y": {"field": _field(row), "type": "ordinal", "sort": rows, "title": None},
            "color": {"field": _field(value), "type": "quantitative", "title": legend_label or _humanize(value),
                      "scale": {"scheme": "yelloworangered"}, "legend": {"orient": "right"}},
            "tooltip": _tooltip(data),
        },
    }  # fmt: skip


# -- maps -------------------------------------------------------------------------------------------------
def _ring_coords(geometry: Mapping[str, Any]) -> list[list[list[list[float]]]]:
    """Polygons (each a list of rings) of a GeoJSON Polygon or MultiPolygon."""
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    if kind == "Polygon":
        return [coords]
    if kind == "MultiPolygon":
        return list(coords)
    return []


def project_outlines(
    geometries: Sequence[Mapping[str, Any]], origin: GridOrigin, *, tolerance_m: float = 25.0
) -> list[dict[str, Any]]:
    """GeoJSON geometries (WGS84) moved into the grid's plane (metres), simplified to ``tolerance_m``.

    Outer rings only: an outline is a line, so holes need no fill rule.
    """
    import shapely

    out: list[dict[str, Any]] = []
    for geometry in geometries:
        polys = []
        for poly in _ring_coords(geometry):
            if not poly:
                continue
            ring = np.asarray([pt[:2] for pt in poly[0]], dtype="float64")
            if len(ring) < 4:
                continue
            x, y = forward(ring[:, 0], ring[:, 1], origin.lon0, origin.lat0)
            line = shapely.simplify(shapely.linestrings(np.column_stack([x, y])), tolerance_m)
            pts = np.round(shapely.get_coordinates(line), 0)
            if len(pts) >= 3:
                polys.append([pts.tolist()])
        if polys:
            out.append({"type": "MultiLineString", "coordinates": [p[0] for p in polys]})
    return out


def _square(x: float, y: float, half: float) -> dict[str, Any]:
    x0, x1, y0, y1 = round(x - half, 1), round(x + half, 1), round(y - half, 1), round(y + half, 1)
    # clockwise in a y-up plane: d3 draws rings of the identity projection with reflectY this way round
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x0, y1], [x1, y1], [x1, y0], [x0, y0]]]}


def _footprint(cells: pd.DataFrame, cell_m: float) -> dict[str, Any] | None:
    """The convex hull of the cells (their corners): where the data are, when no boundary is loaded."""
    import shapely

    half = cell_m / 2
    xs, ys = cells["x_m"].to_numpy(dtype="float64"), cells["y_m"].to_numpy(dtype="float64")
    corners = np.concatenate(
        [np.column_stack([xs + dx, ys + dy]) for dx in (-half, half) for dy in (-half, half)], axis=0
    )
    hull = shapely.convex_hull(shapely.multipoints(corners))
    if hull.geom_type != "Polygon":
        return None
    ring = np.round(np.asarray(hull.exterior.coords), 0)[::-1]  # clockwise
    return {"type": "Polygon", "coordinates": [ring.tolist()]}


#: Most place names written on one map; names whose boxes would overlap a busier place's are left out.
MAX_LABELS = 8
#: The label box (pixels) the collision test assumes: 12 px bold text, about 7 px a character plus a gap, and two
#: lines tall (the name and a line of air, so names never stack into a block).
_CHAR_PX, _LINE_PX, _GAP_PX = 7.0, 32.0, 6.0
#: Width (px) a map is assumed to be drawn at when placing labels (it fills its container, 600-1000 px).
_LABEL_WIDTH_PX = 600.0


def _extent(geometries: Sequence[Mapping[str, Any]]) -> tuple[float, float, float, float] | None:
    """(min x, min y, max x, max y) of every ring of the geometries, or None when there are none."""
    pts = [pt for g in geometries for poly in _ring_coords(g) for ring in poly for pt in ring]
    if not pts:
        return None
    arr = np.asarray(pts, dtype="float64")[:, :2]
    return float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 0].max()), float(arr[:, 1].max())


def declutter_labels(
    x: Sequence[float], y: Sequence[float], texts: Sequence[str], px_per_unit: float, max_labels: int = MAX_LABELS
) -> list[int]:
    """Which labels to write (positions, in order of priority) so that no two boxes overlap on the drawn map.

    Greedy: each label, in the order given (busiest first), is kept when its box (about 7 px per character plus
    6 px, by 32 px, at ``px_per_unit`` pixels per map unit) overlaps no label kept before it; at most
    ``max_labels`` are kept.
    """
    kept: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    for i, (xi, yi, text) in enumerate(zip(x, y, texts, strict=True)):
        if len(kept) >= max_labels:
            break
        if not (math.isfinite(xi) and math.isfinite(yi)):
            continue
        w, h = len(str(text)) * _CHAR_PX + _GAP_PX, _LINE_PX
        px, py = xi * px_per_unit, yi * px_per_unit
        if any(abs(px - bx) < (w + bw) / 2 and abs(py - by) < (h + bh) / 2 for bx, by, bw, bh in boxes):
            continue
        kept.append(i)
        boxes.append((px, py, w, h))
    return kept


def grid_map(
    cells: pd.DataFrame,
    *,
    value: str,
    cell_m: float,
    title: str,
    legend_label: str = "",
    categorical: Mapping[str, str] | None = None,
    outlines: Sequence[Mapping[str, Any]] = (),
    outline_label: str = "",
    labels: pd.DataFrame | None = None,
    tooltip: Sequence[str] = (),
    simulated: bool = False,
    max_cells: int = 3000,
    order: str | None = None,
    footprint: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """A map of square grid cells, coloured by ``value``, over area outlines or the data's footprint.

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per cell to draw: ``x_m``, ``y_m`` (cell centre in the grid's plane, metres), ``value`` and
        the ``tooltip`` columns.
    value : str
        The column that colours the cells: numbers on a sequential scale, or class names with ``categorical``.
    cell_m : float
        The cell size in metres.
    title, legend_label : str
        The map's title and the colour key's title.
    categorical : mapping, optional
        Class name → colour (e.g. :data:`GI_CLASSES`), in legend order.
    outlines : sequence of GeoJSON geometries
        Boundaries in the grid's plane (:func:`project_outlines`), drawn as thin lines. When empty, the data's
        footprint (the convex hull of ``cells``) is drawn in light grey instead.
    outline_label : str
        What the outlines are (said in the subtitle).
    labels : pandas.DataFrame, optional
        Place names to write on the map: ``x_m``, ``y_m`` and ``label``.
    tooltip : sequence of str
        Columns shown on hover besides ``value`` (e.g. cell ids, counts, place name).
    simulated : bool
        Say SIMULATED DATA on the map.
    max_cells : int
        Most cells drawn: the first ``max_cells`` by class (in ``categorical`` order) and then by ``order``
        (default: ``value``) descending; the subtitle says how many were left out. A page draws tens of
        thousands of shapes slowly and the file grows by megabytes.
    order : str, optional
        The column that ranks cells for ``max_cells``.
    footprint : pandas.DataFrame, optional
        The cells (``x_m``, ``y_m``) whose convex hull is the data's footprint when no outline is given: every
        cell with data, when only some are drawn (e.g. the significant cells of Gi*). Default: ``cells``.

    Returns
    -------
    dict
        A layered Vega-Lite spec (geoshape in the identity projection, north up). The cells' layer is named
        ``cells``; each cell's ``properties`` hold the ``tooltip`` columns, ``value``, ``lat`` and ``lon``, and
        ``usermeta.columns`` lists them in order: the "Download CSV" of a map is that table.
    """
    data = cells.dropna(subset=["x_m", "y_m"])
    total = len(data)
    if total > max_cells:
        rank = order if order is not None and order in data.columns else value
        keys = [data[rank]] if _is_numeric(data[rank]) else []
        ranked = data.assign(_score=keys[0] if keys else 0.0)
        if categorical is not None:
            ranked = ranked.assign(_class=data[value].map({n: i for i, n in enumerate(categorical)}).fillna(99))
            ranked = ranked.sort_values(["_class", "_score"], ascending=[True, False], kind="stable")
        else:
            ranked = ranked.sort_values("_score", ascending=False, kind="stable")
        data = ranked.head(max_cells).drop(columns=[c for c in ("_score", "_class") if c in ranked.columns])
    data = data.reset_index(drop=True)
    half = cell_m / 2
    tips = [c for c in dict.fromkeys([*tooltip, value]) if c in data.columns]
    columns = [*tips, *(c for c in ("lat", "lon") if c in data.columns and c not in tips)]
    features = []
    for row in frame_records(data[["x_m", "y_m", *columns]]):
        # a missing value (e.g. the place of a cell outside the top few) is left out, so tooltips skip it
        props = {k: row[k] for k in columns if row[k] is not None}
        features.append({"type": "Feature", "geometry": _square(row["x_m"], row["y_m"], half), "properties": props})
    tip_enc = [
        {
            "field": f"properties.{_field(c)}",
            "title": _humanize(c),
            "type": "quantitative" if _is_numeric(data[c]) else "nominal",
            **({"format": _value_format(c)} if _is_numeric(data[c]) else {}),
        }
        for c in tips
    ]
    if categorical is not None:
        present = set(data[value].astype(str))
        names = [n for n in categorical if n in present] or list(categorical)
        color: dict[str, Any] = {
            "field": f"properties.{_field(value)}",
            "type": "nominal",
            "title": legend_label or None,
            "scale": {"domain": names, "range": [categorical[n] for n in names]},
        }
    else:
        color = {
            "field": f"properties.{_field(value)}",
            "type": "quantitative",
            "title": legend_label or _humanize(value),
            "scale": {"scheme": "yelloworangered"},
            "legend": {"orient": "right"},
        }
    projection = {"type": "identity", "reflectY": True}
    layers: list[dict[str, Any]] = []
    subtitle: list[str] = []
    if outlines:
        layers.append(
            {
                "data": {"values": [{"type": "Feature", "geometry": g, "properties": {}} for g in outlines]},
                "mark": {"type": "geoshape", "filled": False, "stroke": _OUTLINE, "strokeWidth": 0.7},
            }
        )
        subtitle.append(f"Outlines: {outline_label}." if outline_label else "Thin lines: area boundaries.")
    elif not data.empty:
        around = footprint.dropna(subset=["x_m", "y_m"]) if footprint is not None and len(footprint) else data
        hull = _footprint(around, cell_m)
        if hull is not None:
            layers.append(
                {
                    "data": {"values": [{"type": "Feature", "geometry": hull, "properties": {}}]},
                    "mark": {"type": "geoshape", "fill": _FOOTPRINT, "stroke": "#cbd2d9", "strokeWidth": 0.8},
                }
            )
            subtitle.append("Grey: the data's footprint (no area boundaries are loaded).")
    legend = _legend_param()
    legend["select"]["fields"] = [f"properties.{_field(value)}"]
    cell_layer: dict[str, Any] = {
        "name": "cells",
        "data": {"values": features},
        "mark": {"type": "geoshape", "stroke": None},
        "encoding": {"color": color, "tooltip": tip_enc},
    }
    if categorical is not None:
        cell_layer["params"] = [legend]
        cell_layer["encoding"]["opacity"] = {"condition": {"param": "legend", "value": 0.95}, "value": 0.1}
    layers.append(cell_layer)
    nx = (data["x_m"].max() - data["x_m"].min()) / cell_m + 1 if len(data) else 1
    ny = (data["y_m"].max() - data["y_m"].min()) / cell_m + 1 if len(data) else 1
    height = int(min(max(560 * ny / max(nx, 1), 300), 640))
    if labels is not None and not labels.empty:
        spots = labels[["x_m", "y_m", "label"]].dropna().reset_index(drop=True)
        box = _extent(outlines) if outlines else None
        xs = [*spots["x_m"], *data["x_m"]] + ([box[0], box[2]] if box else [])
        ys = [*spots["y_m"], *data["y_m"]] + ([box[1], box[3]] if box else [])
        ext_x, ext_y = max(max(xs) - min(xs), cell_m), max(max(ys) - min(ys), cell_m)
        scale = min(_LABEL_WIDTH_PX / ext_x, height / ext_y)
        keep = declutter_labels(spots["x_m"].tolist(), spots["y_m"].tolist(), spots["label"].tolist(), scale)
        points = frame_records(spots.iloc[keep].reset_index(drop=True))
        for mark in (
            {"type": "text", "stroke": "white", "strokeWidth": 3, "strokeOpacity": 0.9, "fontSize": 12},
            {"type": "text", "color": _INK, "fontSize": 12, "fontWeight": "bold"},
        ):
            layers.append(
                {
                    "data": {"values": points},
                    "mark": {**mark, "dy": -12, "align": "center"},
                    "encoding": {
                        "longitude": {"field": "x_m", "type": "quantitative"},
                        "latitude": {"field": "y_m", "type": "quantitative"},
                        "text": {"field": "label", "type": "nominal"},
                    },
                }
            )
    if total > len(data):
        subtitle.append(f"The {len(data):,} top cells of {total:,} are drawn.")
    if simulated:
        subtitle.insert(0, "SIMULATED DATA")
    return {
        "$schema": SCHEMA,
        "title": {"text": title, **({"subtitle": subtitle} if subtitle else {})},
        "config": CONFIG,
        "width": "container",
        "height": height,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "projection": projection,
        "layer": layers,
        "usermeta": {
            "columns": columns,
            "csv_layer": "cells",
            "kind": "grid_map",
            "drawn": len(data),
            "cells": total,
            "aspect": round(float(ny / max(nx, 1)), 4),  # height / width of the cells' extent: sizes the map
        },
    }


def area_map(
    geometries: Sequence[Mapping[str, Any]],
    table: pd.DataFrame,
    *,
    value: str,
    title: str,
    legend_label: str = "",
    name: str = "name",
    projection: str = "mercator",
    labels: int = 5,
    simulated: bool = False,
) -> dict[str, Any]:
    """A choropleth of GeoJSON polygons (WGS84), one per row of ``table``, coloured by ``value``.

    Rows whose ``value`` is missing are drawn white ("no data"); the ``labels`` areas with the highest values
    carry their ``name``. ``projection``: a Vega projection type (``mercator`` for a city, ``albersUsa`` for US
    states, which moves Alaska and Hawaii beside the lower 48). Tooltips show every column of ``table``.
    """
    data = table.reset_index(drop=True)
    features = [
        {"type": "Feature", "geometry": dict(g), "properties": {k: v for k, v in rec.items() if v is not None}}
        for g, rec in zip(geometries, frame_records(data), strict=True)
    ]
    tips = [
        {
            "field": f"properties.{_field(c)}",
            "title": _humanize(str(c)),
            "type": "quantitative" if _is_numeric(data[c]) else "nominal",
            **({"format": _value_format(str(c))} if _is_numeric(data[c]) else {}),
        }
        for c in data.columns
    ]
    layers: list[dict[str, Any]] = [
        {
            "name": "areas",
            "data": {"values": features},
            "mark": {"type": "geoshape", "stroke": "#52606d", "strokeWidth": 0.5},
            "encoding": {
                "color": {
                    "condition": {"test": f"!isValid(datum.properties['{value}'])", "value": "#ffffff"},
                    "field": f"properties.{_field(value)}",
                    "type": "quantitative",
                    "title": legend_label or _humanize(value),
                    "scale": {"scheme": "yelloworangered"},
                    "legend": {"orient": "right"},
                },
                "tooltip": tips,
            },
        }
    ]
    if labels and not data.empty:
        num = _numeric(data[value])
        top = num.dropna().sort_values(ascending=False).index[: 3 * labels]
        points: list[dict[str, Any]] = []
        for i in top:
            centre = _label_point(geometries[i])
            if centre is not None:
                points.append({"lon": centre[0], "lat": centre[1], "label": str(data.at[i, name])})
        # keep the busiest names whose boxes do not overlap, in a local equirectangular plane (x shrunk by
        # cos(latitude), as Mercator and Albers draw it at this scale)
        # albersUsa moves Alaska and Hawaii beside the lower 48, whose box then sets the scale
        box = (-125.0, 24.0, -66.0, 50.0) if projection == "albersUsa" else _extent(list(geometries))
        if points and box is not None:
            shrink = math.cos(math.radians((box[1] + box[3]) / 2))
            ext_x, ext_y = max((box[2] - box[0]) * shrink, 1e-6), max(box[3] - box[1], 1e-6)
            scale = min(_LABEL_WIDTH_PX / ext_x, 420 / ext_y)
            keep = declutter_labels(
                [p["lon"] * shrink for p in points],
                [p["lat"] for p in points],
                [p["label"] for p in points],
                scale,
                max_labels=labels,
            )
            points = [points[i] for i in keep]
        for mark in (
            {"type": "text", "stroke": "white", "strokeWidth": 3, "strokeOpacity": 0.9, "fontSize": 12},
            {"type": "text", "color": _INK, "fontSize": 12, "fontWeight": "bold"},
        ):
            layers.append(
                {
                    "data": {"values": points},
                    "mark": mark,
                    "encoding": {
                        "longitude": {"field": "lon", "type": "quantitative"},
                        "latitude": {"field": "lat", "type": "quantitative"},
                        "text": {"field": "label", "type": "nominal"},
                    },
                }
            )
    subtitle = ["SIMULATED DATA"] if simulated else []
    subtitle.append("White: no data.")
    return {
        "$schema": SCHEMA,
        "title": {"text": title, "subtitle": subtitle},
        "config": CONFIG,
        "width": "container",
        "height": 420,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "projection": {"type": projection},
        "layer": layers,
        "usermeta": {"columns": [str(c) for c in data.columns], "csv_layer": "areas", "kind": "area_map"},
    }


def _label_point(geometry: Mapping[str, Any]) -> tuple[float, float] | None:
    """A point inside the largest polygon of a geometry (where its name is written)."""
    from shapely.geometry import shape as to_shape

    try:
        shape = to_shape(geometry)
    except (ValueError, TypeError, AttributeError):
        return None
    if shape.is_empty:
        return None
    if shape.geom_type == "MultiPolygon":
        shape = max(shape.geoms, key=lambda g: g.area)
    point = shape.representative_point()
    return float(point.x), float(point.y)
