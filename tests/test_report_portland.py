"""A Portland map when Portland districts are loaded: incidents placed in areas by their coordinates.

NIJ Portland calls carry census tracts, not police districts, so the report counts each located call inside the
loaded district polygons (:func:`crimelens.analysis.incidents.places.points_in_areas`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import data_dir
from crimelens import warehouse
from crimelens.analysis.incidents.places import points_in_areas
from crimelens.report import build_report
from crimelens.warehouse import load_areas

PORTLAND = data_dir() / "portland_nij_cfs_2016_aug_sep"


def _square(x0: float, y0: float, size: float) -> str:
    ring = [[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def test_points_in_areas_by_hand() -> None:
    areas = pd.DataFrame(
        {"area_id": ["a", "b"], "name": ["West", None], "geometry": [_square(0, 0, 1), _square(1, 0, 1)]}
    )
    # (0.5, 0.5) and (0.2, 0.9) in a; (1.5, 0.5) in b; (1.0, 0.5) on the shared border: counted once, in a;
    # (3, 3) outside both; a missing latitude is not counted anywhere
    lon = [0.5, 0.2, 1.5, 1.0, 3.0, 0.5]
    lat = [0.5, 0.9, 0.5, 0.5, 3.0, math.nan]
    table, outside = points_in_areas(lon, lat, areas)
    assert table["area"].tolist() == ["a", "b"]
    assert table["name"].tolist() == ["West", "b"]  # no name: the id
    assert table["incidents"].tolist() == [3, 1]
    assert table["share"].tolist() == [0.75, 0.25]
    assert outside == 1


@pytest.fixture(scope="module")
def portland_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """NIJ Portland calls (Aug–Sep 2016) and the 60 police districts, loaded once for this module."""
    path = tmp_path_factory.mktemp("pdx") / "w.duckdb"
    con = warehouse.connect(path)
    warehouse.load_incidents(con, PORTLAND / "portland_cfs_2016_08_09.csv.gz", "nij-portland", source="portland")
    load_areas(
        con, PORTLAND / "portland_police_districts.geojson", area_set="portland-districts", area_kind="district",
        id_property="DISTRICT",
    )  # fmt: skip
    con.close()
    yield path


def test_real_portland_counts_match_a_geopandas_spatial_join(portland_db: Path) -> None:
    import geopandas as gpd

    with duckdb.connect(str(portland_db), read_only=True) as con:
        pts = con.execute(
            "SELECT longitude, latitude FROM incidents WHERE source = 'portland' AND latitude IS NOT NULL"
        ).df()
        areas = con.execute(
            "SELECT area_id, name, geometry FROM areas WHERE area_set = 'portland-districts' ORDER BY area_id"
        ).df()
    table, outside = points_in_areas(pts["longitude"], pts["latitude"], areas)
    assert len(table) == 60
    # independently: geopandas' spatial join on the district file itself (not the warehouse's copy)
    districts = gpd.read_file(PORTLAND / "portland_police_districts.geojson")[["DISTRICT", "geometry"]]
    districts = districts.assign(DISTRICT=districts["DISTRICT"].astype(str)).sort_values("DISTRICT")
    districts = districts.reset_index(drop=True)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(pts["longitude"], pts["latitude"]), crs=districts.crs)
    joined = gpd.sjoin(points, districts, how="left", predicate="intersects").reset_index(names="point")
    # a point in two districts (a shared border, or overlapping slivers) counts once, in the first by id
    joined = joined.sort_values(["point", "index_right"]).drop_duplicates("point")
    expected = joined["DISTRICT"].dropna().astype(str).value_counts()
    got = table.set_index("area")["incidents"]
    got = got[got > 0]
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    assert outside == int(joined["DISTRICT"].isna().sum()) > 0
    assert (joined.groupby("point").size() == 1).all()
    assert int(table["incidents"].sum()) + outside == len(pts)
    assert float(table["share"].sum()) == pytest.approx(1.0)
    assert np.all(table["incidents"].to_numpy() >= 0)


def test_report_draws_the_portland_district_map(portland_db: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(portland_db), read_only=True) as con:
        located = con.execute("SELECT count(*) FROM incidents WHERE latitude IS NOT NULL").fetchone()
        build_report(con, tmp_path / "r.html", models=False)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Incidents by district (portland-districts)" in html
    specs = [
        json.loads(s.split("</script>")[0])
        for s in html.split('<script type="application/json" class="vega-spec">')[1:]
    ]
    maps = [s for s in specs if s.get("title", {}).get("text") == "Incidents by district, portland-districts"]
    assert len(maps) == 1
    features = maps[0]["layer"][0]["data"]["values"]
    assert len(features) == 60
    inside = sum(f["properties"]["incidents"] for f in features)
    assert located is not None
    assert f"{located[0] - inside:,} of {located[0]:,} located incidents fall outside every district" in html
