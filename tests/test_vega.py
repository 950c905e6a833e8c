"""The ChartSpec → Vega-Lite builder (crimelens.analysis.vega) and grid cells as GeoJSON (analysis/incidents/places)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimelens.analysis.incidents.places import cell_bounds, cells_geojson, write_cells_geojson
from crimelens.analysis.result import ChartSpec
from crimelens.analysis.vega import (
    GI_CLASSES,
    MAX_LABELS,
    MIN_FONT_PX,
    area_map,
    chart_to_vegalite,
    declutter_labels,
    flat_line_sentence,
    grid_map,
    matrix_chart,
)
from crimelens.errors import DataError
from crimelens.geo import GridOrigin

_YEARS = pd.DataFrame(
    {
        "year": [2010, 2011, 2012, 2013] * 2,
        "rate": [1.0, 2.5, 2.0, 3.0, 4.0, 3.5, None, 5.0],
        "name": ["A"] * 4 + ["B"] * 4,
        "flag": [False, True, False, False, False, False, False, True],
    }
)
_BARS = pd.DataFrame({"name": ["Alpha", "Beta", "Gamma"], "v": [0.8, 1.3, 1.0], "flag": [True, False, False]})
SPECS = {
    "line": ChartSpec("line", _YEARS, "year", "rate", "Lines", series="name", highlight="flag"),
    "bar": ChartSpec("bar", _BARS, "name", "v", "Bars", highlight="flag", reference=1.0),
    "barh": ChartSpec("barh", _BARS, "name", "v", "Horizontal bars", highlight="flag"),
    "stacked_barh": ChartSpec(
        "stacked_barh",
        pd.DataFrame({"w": ["A", "A", "B"], "s": ["x", "y", "x"], "v": [1, 2, 3]}),
        "w",
        "v",
        "S",
        series="s",
    ),
    "small_multiples": ChartSpec("small_multiples", _YEARS, "year", "rate", "Panels", facet="name"),
    "scatter": ChartSpec("scatter", _YEARS, "year", "rate", "Points", series="name", diagonal=True),
}


def _validate(spec: dict[str, Any]) -> None:
    """Validate against the Vega-Lite JSON schema that altair ships (an independent check of the builder)."""
    import altair as alt

    if "layer" in spec:
        alt.LayerChart.from_dict(spec, validate=True)
    elif "facet" in spec:
        alt.FacetChart.from_dict(spec, validate=True)
    else:
        alt.Chart.from_dict(spec, validate=True)


def _fonts(value: Any) -> list[float]:
    """Every font size set anywhere in a spec (config and marks)."""
    found: list[float] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k.lower().endswith("fontsize") and isinstance(v, int | float):
                found.append(float(v))
            found += _fonts(v)
    elif isinstance(value, list):
        for v in value:
            found += _fonts(v)
    return found


@pytest.mark.parametrize("kind", list(SPECS))
def test_every_kind_is_valid_vega_lite_with_its_own_data(kind: str) -> None:
    spec = SPECS[kind]
    vl = chart_to_vegalite(spec)
    _validate(vl)
    # the data inline are the spec's rows, in order, every column: what "Download CSV" writes
    assert vl["usermeta"]["columns"] == list(spec.data.columns)
    rows = vl["data"]["values"]
    assert [r[spec.y] for r in rows] == [None if pd.isna(v) else v for v in spec.data[spec.y]]
    assert min(_fonts(vl)) >= MIN_FONT_PX >= 10


def test_interactions_tooltips_legend_toggle_and_zoom() -> None:
    vl = chart_to_vegalite(SPECS["line"])
    main = vl["layer"][0]
    names = {p["name"]: p for p in main["params"]}
    assert names["legend"]["bind"] == "legend" and names["legend"]["select"]["fields"] == ["name"]
    assert names["zoom"]["bind"] == "scales" and names["zoom"]["select"]["encodings"] == ["x"]
    assert [t["field"] for t in main["encoding"]["tooltip"]] == ["year", "rate", "name", "flag"]
    # the highlight is a second layer of the flagged rows only
    assert vl["layer"][1]["transform"] == [{"filter": {"field": "flag", "equal": True}}]


def test_reference_line_and_bars_from_it() -> None:
    vl = chart_to_vegalite(SPECS["bar"])
    bars, rule = vl["layer"][0], vl["layer"][-1]
    assert bars["encoding"]["y2"] == {"datum": 1.0}  # ratios grow up or down from 1
    assert rule["mark"]["type"] == "rule" and rule["encoding"]["y"] == {"datum": 1.0}


def test_diagonal_spans_both_axes() -> None:
    vl = chart_to_vegalite(SPECS["scatter"])
    diag = vl["layer"][-1]
    # data span 1.0..5.0 on y, 2010..2013 on x; the diagonal runs from min(0, ...) = 0 to the max, 2013
    assert diag["data"]["values"] == [{"d": 0.0}, {"d": 2013.0}]


def test_rank_axis_reads_top_down() -> None:
    data = pd.DataFrame({"year": [2010, 2011, 2012], "rank": [3, 1, 2]})
    vl = chart_to_vegalite(ChartSpec("line", data, "year", "rank", "Rank"))
    y = vl["layer"][0]["encoding"]["y"]
    assert y["scale"]["reverse"] is True and y["scale"]["domain"] == [1, 5.0]


def test_flat_line_sentence() -> None:
    flat = pd.DataFrame({"year": [2010, 2011], "rank": [1, 1], "who": ["A", "A"]})
    assert flat_line_sentence(ChartSpec("line", flat, "year", "rank", "Rank", series="who")) == (
        "Rank: rank stayed at 1 from 2010 to 2011 (a flat line, so not charted)."
    )
    assert flat_line_sentence(SPECS["line"]) is None
    assert flat_line_sentence(SPECS["bar"]) is None


def test_bad_column_is_named() -> None:
    with pytest.raises(ValueError, match=r"chart 'Bad': every role must name a column of its data; allowed: year"):
        chart_to_vegalite(ChartSpec("line", _YEARS, "year", "nope", "Bad"))


def test_matrix_labels_are_legible() -> None:
    table = pd.DataFrame(
        [{"weekday_name": d, "hour": h, "incidents": h} for d in ("Monday", "Tuesday") for h in range(24)]
    )
    vl = matrix_chart(table, row="weekday_name", column="hour", value="incidents", title="Week")
    _validate(vl)
    # 24 hours: every second hour labelled (12 labels), text never below the floor
    assert vl["encoding"]["x"]["axis"]["values"] == list(range(0, 24, 2))
    assert min(_fonts(vl)) >= MIN_FONT_PX


def _cells() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x_m": [50.0, 150.0, 250.0, 50.0],
            "y_m": [50.0, 50.0, 150.0, 350.0],
            "incidents": [9, 4, 1, 2],
            "hotspot": ["hot", "hot", "not significant", "cold"],
            "lat": [0.1, 0.2, 0.3, 0.4],
            "lon": [1.0, 2.0, 3.0, 4.0],
        }
    )


def test_grid_map_footprint_labels_and_csv_columns() -> None:
    labels = pd.DataFrame({"x_m": [50.0], "y_m": [50.0], "label": ["Loop"]})
    vl = grid_map(
        _cells(), value="hotspot", cell_m=100, title="Gi*", categorical=GI_CLASSES, labels=labels,
        tooltip=["incidents"], simulated=True,
    )  # fmt: skip
    _validate(vl)
    hull, cells = vl["layer"][0], vl["layer"][1]
    assert hull["mark"]["fill"] and "footprint" in " ".join(vl["title"]["subtitle"])
    # the convex hull of the cells' corners: x 0..300, y 0..400, minus the empty corners
    ring = hull["data"]["values"][0]["geometry"]["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    assert (min(xs), max(xs), min(ys), max(ys)) == (0.0, 300.0, 0.0, 400.0)
    # the first cell is the square 0..100 × 0..100
    first = cells["data"]["values"][0]
    assert sorted(map(tuple, first["geometry"]["coordinates"][0])) == sorted(
        [(0.0, 0.0), (0.0, 100.0), (100.0, 100.0), (100.0, 0.0), (0.0, 0.0)]
    )
    assert vl["usermeta"]["columns"] == ["incidents", "hotspot", "lat", "lon"]
    assert first["properties"] == {"incidents": 9, "hotspot": "hot", "lat": 0.1, "lon": 1.0}
    assert vl["layer"][-1]["data"]["values"] == [{"x_m": 50.0, "y_m": 50.0, "label": "Loop"}]
    assert vl["title"]["subtitle"][0] == "SIMULATED DATA"


def test_grid_map_keeps_the_top_cells_and_says_so() -> None:
    vl = grid_map(_cells(), value="incidents", cell_m=100, title="Counts", max_cells=2)
    drawn = [f["properties"]["incidents"] for f in vl["layer"][-1]["data"]["values"]]
    assert drawn == [9, 4]
    assert "The 2 top cells of 4 are drawn." in vl["title"]["subtitle"]


def test_area_map_marks_missing_values_and_names_the_top_areas() -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
    other = {"type": "Polygon", "coordinates": [[[2, 0], [2, 1], [3, 1], [3, 0], [2, 0]]]}
    table = pd.DataFrame({"name": ["West", "East"], "rate": [5.0, None]})
    vl = area_map([square, other], table, value="rate", title="Rates", labels=1)
    _validate(vl)
    (label,) = vl["layer"][1]["data"]["values"]
    assert label["label"] == "West" and 0 < label["lon"] < 1 and 0 < label["lat"] < 1
    # a missing value is left out of the feature (no "rate: null" tooltip) and drawn white
    assert "rate" not in vl["layer"][0]["data"]["values"][1]["properties"]
    assert vl["layer"][0]["data"]["values"][1]["properties"]["name"] == "East"


def test_declutter_labels_by_hand() -> None:
    # at 1 px per unit a 2-letter label is 2 × 7 + 6 = 20 px wide and 32 px tall: boxes overlap when centres are
    # closer than 20 px across AND 32 px up or down
    x = [0.0, 10.0, 25.0, 0.0, float("nan"), 100.0, 200.0]
    y = [0.0, 5.0, 0.0, 40.0, 0.0, 0.0, 0.0]
    texts = ["AB"] * 7
    assert declutter_labels(x, y, texts, 1.0) == [0, 2, 3, 5, 6]  # (10, 5) overlaps (0, 0); NaN is skipped
    assert declutter_labels(x, y, texts, 1.0, max_labels=2) == [0, 2]
    # at half the scale, (25, 0) is 12.5 px from (0, 0): too close; (0, 40) is 20 px below it: too close
    assert declutter_labels(x, y, texts, 0.5) == [0, 5, 6]


def test_grid_map_leaves_missing_places_out_of_tooltips_and_spaces_labels() -> None:
    cells = _cells().assign(place=["Loop", None, None, None])
    vl = grid_map(cells, value="incidents", cell_m=100, title="Counts", tooltip=["place", "incidents"])
    props = [f["properties"] for f in vl["layer"][-1]["data"]["values"]]
    assert props[0]["place"] == "Loop" and all("place" not in p for p in props[1:])
    assert vl["usermeta"]["columns"][0] == "place"  # still a column of the CSV (empty where unknown)
    # 20 labels on a 40-cell-wide map: one on top of another is dropped, and never more than MAX_LABELS
    wide = pd.DataFrame({"x_m": [i * 100.0 + 50 for i in range(40)], "y_m": [50.0] * 40, "incidents": range(40)})
    labels = pd.DataFrame({"x_m": [50.0, 60.0] + [i * 400.0 + 50 for i in range(1, 10)], "y_m": 50.0})
    labels["label"] = [f"P{i}" for i in range(len(labels))]
    vl = grid_map(wide, value="incidents", cell_m=100, title="Counts", labels=labels)
    kept = [p["label"] for p in vl["layer"][-1]["data"]["values"]]
    assert "P1" not in kept and kept[0] == "P0"
    assert len(kept) == MAX_LABELS


def test_cells_geojson_matches_hand_computed_corners(tmp_path: Path) -> None:
    # origin at (0°, 0°): a 2,000 m cell centred on (0, 0) spans ±1,000 m; λ = x / R and sin φ = y / R, so each
    # edge lies at (180/π) · 1000 / 6,371,007.181 = 0.0089932161° (asin differs from its argument by ~1e-13 here)
    origin = GridOrigin(lon0=0.0, lat0=0.0)
    cells = pd.DataFrame({"x_m": [0.0], "y_m": [0.0], "z": [3.2], "hotspot": ["hot"]})
    collection = cells_geojson(cells, 2000.0, origin)
    (feature,) = collection["features"]
    e = 0.0089932
    assert feature["geometry"]["coordinates"] == [[[-e, -e], [e, -e], [e, e], [-e, e], [-e, -e]]]
    assert feature["properties"] == {"z": 3.2, "hotspot": "hot"}
    path = tmp_path / "cells.geojson"
    assert write_cells_geojson(path, cells, 2000.0, origin) == 1
    assert json.loads(path.read_text())["type"] == "FeatureCollection"
    with pytest.raises(DataError, match="expected a positive cell size"):
        cells_geojson(cells, -5.0, origin)
    with pytest.raises(DataError, match="expected cell centres in columns x_m and y_m"):
        cells_geojson(cells.drop(columns="x_m"), 100.0, origin)


@settings(max_examples=40, deadline=None)
@given(
    lat0=st.floats(-60, 60),
    lon0=st.floats(-170, 170),
    x=st.floats(-20_000, 20_000),
    y=st.floats(-20_000, 20_000),
    cell=st.floats(10, 1000),
)
def test_cell_bounds_are_ordered_and_contain_the_centre(
    lat0: float, lon0: float, x: float, y: float, cell: float
) -> None:
    from crimelens.geo import forward

    origin = GridOrigin(lon0=lon0, lat0=lat0)
    b = cell_bounds(pd.DataFrame({"x_m": [x], "y_m": [y]}), cell, origin).iloc[0]
    assert b["west"] < b["east"] and b["south"] < b["north"]
    # the corners project back to the cell's edges (cylindrical: x from longitude, y from latitude)
    fx, fy = forward([b["west"], b["east"]], [b["south"], b["north"]], lon0, lat0)
    assert math.isclose(fx[1] - fx[0], cell, rel_tol=1e-6) and math.isclose(fy[1] - fy[0], cell, rel_tol=1e-6)


def test_columns_with_dots_are_escaped_field_names() -> None:
    # Vega-Lite reads "hit_rate_0.05" as field "hit_rate_0", key "05" (nested access) unless the dot is escaped:
    # the forecast's per-period chart came out empty before
    data = pd.DataFrame(
        {"period.start": ["2019-01-07", "2019-01-14"], "hit_rate_0.05": [0.3, 0.4], "m[1]": ["naive", "naive"]}
    )
    spec = ChartSpec(kind="line", data=data, x="period.start", y="hit_rate_0.05", series="m[1]", title="t")
    vl = chart_to_vegalite(spec)
    _validate(vl)
    enc = vl["layer"][0]["encoding"]
    assert enc["y"]["field"] == "hit_rate_0\\.05" and enc["x"]["field"] == "period\\.start"
    assert enc["color"]["field"] == "m\\[1\\]"
    assert vl["layer"][0]["params"][0]["select"]["fields"] == ["m\\[1\\]"]
    assert [t["field"] for t in enc["tooltip"]] == ["period\\.start", "hit_rate_0\\.05", "m\\[1\\]"]
    # the data and the CSV columns keep the names as they are
    assert vl["usermeta"]["columns"] == ["period.start", "hit_rate_0.05", "m[1]"]
    assert vl["data"]["values"][0]["hit_rate_0.05"] == 0.3
