"""The US state map (crimelens.report.states): shipped shapes, matching jurisdictions to states, the choropleth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import data_dir
from crimelens.analysis.jurisdictions.ranking import rank
from crimelens.report import build_report
from crimelens.report.states import match_states, state_shapes, state_table
from crimelens.sources.states import STATE_NAMES

SHAPES = Path(__file__).resolve().parents[1] / "src" / "crimelens" / "data" / "us_states.geojson"


def test_shipped_shapes_are_the_50_states_and_dc_small_and_wound_for_vega() -> None:
    from shapely.geometry import shape

    assert 100_000 <= SHAPES.stat().st_size <= 300_000
    shapes = state_shapes()
    assert sorted(shapes) == sorted(STATE_NAMES)  # 50 states + DC, no territories
    assert shapes["IL"]["properties"] == {"fips": "17", "postal": "IL", "name": "Illinois"}
    assert shapes["DC"]["properties"]["fips"] == "11"
    for postal, feature in shapes.items():
        geom = shape(feature["geometry"])
        assert geom.is_valid, postal
        polys = getattr(geom, "geoms", [geom])
        # d3-geo (Vega) wants exterior rings clockwise: shapely's is_ccw is False for them
        assert all(not p.exterior.is_ccw for p in polys), postal
    # Illinois spans 87°30′ W to 91°31′ W and 36°58′ N to 42°30′ N (its published extent); simplification keeps
    # that within ~0.05°
    minx, miny, maxx, maxy = shape(shapes["IL"]["geometry"]).bounds
    assert minx == pytest.approx(-(91 + 31 / 60), abs=0.05) and maxx == pytest.approx(-87.5, abs=0.05)
    assert miny == pytest.approx(36 + 58 / 60, abs=0.05) and maxy == pytest.approx(42.5, abs=0.05)


def test_match_states_by_postal_id_or_name_and_names_the_rest() -> None:
    table = pd.DataFrame(
        {
            "jurisdiction_id": ["US-IL", "x-ohio", "ORI123", "dc-city", "US-ZZ"],
            "name": ["Illinois", "ohio", "Chicago", "Washington, D.C.", "Nowhere"],
            "kind": ["state", "agency", "city", "city", "state"],
        }
    )
    postal, unmatched = match_states(table)
    assert postal.tolist() == ["IL", "OH", None, None, None]
    # a city that bears a state's name is not that state
    assert unmatched == ["Chicago", "Nowhere", "Washington, D.C."]


def test_no_state_map_for_a_city_dataset(marshall_con: duckdb.DuckDBPyConnection) -> None:
    ranking = rank(marshall_con, "ucr-marshall", by="rate", year=2015).table
    assert state_table(ranking) is None


def test_state_table_rates_match_the_fbi_file(fbi_con: duckdb.DuckDBPyConnection) -> None:
    found = state_table(rank(fbi_con, "fbi-estimates", by="rate", year=2019).table)
    assert found is not None
    table, geometries, unmatched = found
    assert unmatched == [] and len(table) == len(geometries) == 51
    assert table["postal"].tolist() == sorted(STATE_NAMES)
    # expected values straight from the CSV: rate = violent_crime / population × 100,000
    with (data_dir() / "fbi_estimated_crimes_1979_2019" / "estimated_crimes_1979_2019.csv").open() as f:
        raw = {r["state_abbr"]: r for r in csv.DictReader(f) if r["year"] == "2019"}
    for postal in ("IL", "DC", "AK"):
        row = table[table["postal"] == postal].iloc[0]
        count, pop = int(raw[postal]["violent_crime"]), int(raw[postal]["population"])
        assert row["count"] == count and row["population"] == pop
        assert row["rate_per_100k"] == pytest.approx(count / pop * 1e5, abs=0.05)
        assert row["rate_low"] < row["rate_per_100k"] < row["rate_high"]
        assert row["partial_year"] == "no"
    assert json.loads(json.dumps(geometries[0]))["type"] in {"Polygon", "MultiPolygon"}


def test_report_draws_the_state_choropleth_in_albers_usa(fbi_con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    build_report(fbi_con, out, models=False)
    html = out.read_text(encoding="utf-8")
    assert 'id="state-map"' in html
    specs = [s for s in html.split('<script type="application/json" class="vega-spec">')[1:]]
    maps = [json.loads(s.split("</script>")[0]) for s in specs if '"albersUsa"' in s.split("</script>")[0]]
    assert len(maps) == 1
    spec = maps[0]
    assert spec["projection"] == {"type": "albersUsa"}
    features = spec["layer"][0]["data"]["values"]
    assert len(features) == 51
    tip_fields = [t["field"] for t in spec["layer"][0]["encoding"]["tooltip"]]
    for col in ("state", "rate_per_100k", "count", "population", "partial_year"):
        assert f"properties.{col}" in tip_fields
