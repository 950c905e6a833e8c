"""Aggregations over incidents (crimelens.analysis.aggregate, .projection) on DuckDB: small hand-made cases.

Engine parity with Spark on real data is in test_engine.py.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import duckdb
import h3
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimelens import warehouse
from crimelens.analysis.incidents import aggregate as ag
from crimelens.engine import incident_table
from crimelens.errors import ConfigError, DataError
from crimelens.geo import AUTHALIC_RADIUS_M, GridOrigin, forward, inverse, origin_for_extent

pytestmark = [
    # ibis 12 still calls DuckDB 2's deprecated fetch_arrow_table(); nothing crimelens can change
    pytest.mark.filterwarnings(r"ignore:fetch_arrow_table\(\) is deprecated:DeprecationWarning"),
]

INSERT = (
    "INSERT INTO incidents (source, incident_key, occurred_at, time_precision, offence, offence_raw, latitude, "
    "longitude, community_area, load_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
)


def insert(con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], source: str = "test") -> None:
    """rows: (occurred_at, offence, lat, lon, community_area[, time_precision])."""
    con.executemany(
        INSERT,
        [
            (source, f"k{i}", r[0], r[5] if len(r) > 5 else "minute", r[1], r[1], r[2], r[3], r[4])
            for i, r in enumerate(rows)
        ],
    )


# A dozen incidents in Chicago. 2024-01-01 is a Monday; 2023-12-31 a Sunday.
CHI = (41.88, -87.63)
DOZEN: list[tuple[Any, ...]] = [
    (dt.datetime(2023, 12, 31, 23, 59), "robbery", *CHI, "32"),  # week of Mon 2023-12-25
    (dt.datetime(2024, 1, 1, 0, 0), "robbery", *CHI, "32"),  # week of Mon 2024-01-01
    (dt.datetime(2024, 1, 1, 13, 5), "burglary", *CHI, "32"),
    (dt.datetime(2024, 1, 3, 8, 0), "robbery", *CHI, "8"),
    (dt.datetime(2024, 1, 7, 23, 59), "robbery", *CHI, "8"),  # Sunday: still the week of 2024-01-01
    (dt.datetime(2024, 1, 8, 0, 0), "robbery", *CHI, "8"),  # Monday: new week
    (dt.datetime(2024, 1, 8, 0, 30), "larceny", None, None, "8"),  # no coordinates
    (dt.datetime(2024, 1, 9, 12, 0), "larceny", None, None, None),  # no area, no coordinates
    (dt.datetime(2024, 2, 29, 18, 0), "homicide", 41.80, -87.60, "40"),
    (dt.datetime(2024, 3, 1, 0, 0), "homicide", 41.80, -87.60, "40", "day"),
    (dt.datetime(2024, 12, 31, 23, 0), "arson", 41.90, -87.70, "24"),
    (dt.datetime(2025, 1, 1, 1, 0), "arson", 41.90, -87.70, "24"),
]


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = warehouse.connect(tmp_path / "w.duckdb")
    insert(c, DOZEN)
    yield c
    c.close()


@pytest.fixture
def t(con: duckdb.DuckDBPyConnection) -> Iterator[Any]:
    with incident_table(con) as table:
        yield table


# -- areas and periods ---------------------------------------------------------------------------------
def test_weekly_bins_start_on_monday(t: Any) -> None:
    got = ag.area_counts(t, "community_area", "week", by_offence=False)
    assert list(got.columns) == ["area", "period_start", "incidents"]
    assert (got["period_start"].dt.day_of_week == 0).all()  # 0 = Monday
    assert (got["period_start"] == got["period_start"].dt.normalize()).all()  # at midnight
    rows = {(a, p.date().isoformat()): n for a, p, n in got.itertuples(index=False) if a == "32" or a == "8"}
    # area 32: Sun 2023-12-31 -> week of Mon 12-25; Mon 01-01 00:00 and 13:05 -> week of 01-01 (2)
    # area 8: Wed 01-03 and Sun 01-07 23:59 -> week of 01-01 (2); Mon 01-08 00:00 and 00:30 -> week of 01-08 (2)
    assert rows == {("32", "2023-12-25"): 1, ("32", "2024-01-01"): 2, ("8", "2024-01-01"): 2, ("8", "2024-01-08"): 2}


def test_area_counts_by_offence_and_null_area(t: Any) -> None:
    got = ag.area_counts(t, "community_area", "month")
    assert list(got.columns) == ["area", "period_start", "offence", "incidents"]
    assert got["incidents"].sum() == 12  # every incident counted once
    # the incident without an area counts under a missing area, sorted last
    last = got.iloc[-1]
    assert pd.isna(last["area"]) and last["offence"] == "larceny" and last["incidents"] == 1
    area8 = got[(got["area"] == "8") & (got["offence"] == "robbery")]
    # area 8 robberies: 01-03, 01-07, 01-08 -> all January 2024
    assert area8["period_start"].tolist() == [pd.Timestamp("2024-01-01")] and area8["incidents"].tolist() == [3]


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        # 2024-12-31 23:00 and 2025-01-01 01:00, area 24
        ("hour", ["2024-12-31 23:00", "2025-01-01 01:00"]),
        ("day", ["2024-12-31", "2025-01-01"]),
        ("week", ["2024-12-30", "2024-12-30"]),  # Tue 12-31 and Wed 01-01: one ISO week, from Mon 12-30
        ("month", ["2024-12-01", "2025-01-01"]),
        ("year", ["2024-01-01", "2025-01-01"]),
    ],
)
def test_periods(t: Any, period: ag.Period, expected: list[str]) -> None:
    got = ag.area_counts(t, "community_area", period, by_offence=False)
    got = got[got["area"] == "24"]
    want = Counter(pd.Timestamp(e) for e in expected)
    assert dict(zip(got["period_start"], got["incidents"], strict=True)) == dict(want)


def test_source_filter(con: duckdb.DuckDBPyConnection) -> None:
    insert(con, DOZEN[:3], source="other")
    with incident_table(con, source="other") as t:
        assert ag.area_counts(t, "community_area", "year", by_offence=False)["incidents"].sum() == 3
    message = r"'nowhere' is not in the warehouse; incident sources loaded: other, test"
    with pytest.raises(DataError, match=message), incident_table(con, source="nowhere"):
        pass


def test_temporal_profiles(t: Any) -> None:
    wh = ag.weekday_hour_counts(t)
    # 12 incidents, one known only to the day (2024-03-01) is left out
    assert wh["incidents"].sum() == 11 and wh.attrs["rows_excluded"] == 1
    # Monday 00:xx: 2024-01-01 00:00, 2024-01-08 00:00, 2024-01-08 00:30
    assert wh[(wh["weekday"] == 0) & (wh["hour"] == 0)]["incidents"].tolist() == [3]
    # Sunday 23:xx: 2023-12-31 23:59, 2024-01-07 23:59
    assert wh[(wh["weekday"] == 6) & (wh["hour"] == 23)]["incidents"].tolist() == [2]
    months = ag.month_of_year_counts(t)
    # January: 8 incidents in Jan 2024 (01-01 x2, 01-03, 01-07, 01-08 x2, 01-09) + 2025-01-01 = 8; Feb 1; Mar 1; Dec 2
    assert dict(zip(months["month"], months["incidents"], strict=True)) == {1: 8, 2: 1, 3: 1, 12: 2}


# -- grid ----------------------------------------------------------------------------------------------
def test_grid_hand_computed_at_equator(tmp_path: Path) -> None:
    c = warehouse.connect(tmp_path / "eq.duckdb")
    # origin lon0 = lat0 = 0, x0 = y0 = 0: x = R·λ, y = R·sin φ (R = 6,371,007.181 m)
    # (lat 0, lon 1°):  x = R·π/180 = 111,195.05 m -> cell_x = floor(111195.05 / 150) = floor(741.30) = 741
    # (lat 1°, lon 0):  y = R·sin(1°) = 111,189.41 m -> cell_y = floor(741.26) = 741
    # (lat -0.0001°, lon -0.0001°): x = y ≈ -11.1 m -> cell (-1, -1)
    insert(c, [(dt.datetime(2024, 1, 1), "other", 0.0, 1.0, None), (dt.datetime(2024, 1, 1), "other", 1.0, 0.0, None)])
    c.execute(INSERT, ["test", "k9", dt.datetime(2024, 1, 1), "minute", "other", "x", -0.0001, -0.0001, None])
    with incident_table(c) as t:
        got = ag.grid_counts(t, 150, period=None, origin=GridOrigin(0.0, 0.0)).table
    assert sorted(zip(got["cell_x"], got["cell_y"], strict=True)) == [(-1, -1), (0, 741), (741, 0)]
    row = got[got["cell_x"] == 741].iloc[0]
    # centre x = (741 + 0.5) * 150 = 111,225 m -> lon = 111225 / R rad = 1.000270°
    assert row["x_m"] == 111_225.0 and row["y_m"] == 75.0
    assert row["lon"] == pytest.approx(111_225 / AUTHALIC_RADIUS_M * 180 / math.pi, abs=1e-12)
    c.close()


def test_grid_counts_columns_origin_and_missing_coordinates(t: Any) -> None:
    res = ag.grid_counts(t, 150, period="week")
    assert list(res.table.columns) == ["cell_x", "cell_y", "x_m", "y_m", "lat", "lon", "period_start", "incidents"]
    assert res.rows_total == 12 and res.rows_without_coordinates == 2
    assert res.table["incidents"].sum() == 10
    # origin: extent 41.80–41.90 N, 87.70–87.60 W -> centre (41.85, -87.65); SW corner snapped down to 1 km
    assert (res.origin.lat0, res.origin.lon0) == (41.85, -87.65)
    assert res.origin.x0 % 1000 == 0 and res.origin.y0 % 1000 == 0
    assert (res.table[["cell_x", "cell_y"]] >= 0).all().all()
    # the back-projected centre is within half a cell diagonal of the points it counts
    chi = res.table[res.table["period_start"] == pd.Timestamp("2023-12-25")].iloc[0]
    x, y = forward([CHI[1]], [CHI[0]], res.origin.lon0, res.origin.lat0)
    assert abs(x[0] - chi["x_m"]) <= 75 and abs(y[0] - chi["y_m"]) <= 75
    assert abs(chi["lat"] - CHI[0]) < 0.001 and abs(chi["lon"] - CHI[1]) < 0.001


def test_grid_known_distances_land_in_the_right_cells(tmp_path: Path) -> None:
    origin = GridOrigin(lon0=-87.65, lat0=41.85, x0=-10_000.0, y0=5_800_000.0)
    # points placed in projected metres relative to the origin, then back-projected to lon/lat
    offsets = [(75.0, 75.0), (149.5, 0.5), (150.5, 0.5), (375.0, 1125.0), (-0.5, -0.5)]
    # expected cells: floor(dx / 150), floor(dy / 150) -> (0,0) (0,0) (1,0) (2,7) (-1,-1)
    lon, lat = inverse(
        [origin.x0 + dx for dx, _ in offsets], [origin.y0 + dy for _, dy in offsets], origin.lon0, origin.lat0
    )
    c = warehouse.connect(tmp_path / "d.duckdb")
    insert(c, [(dt.datetime(2024, 1, 1), "other", float(la), float(lo), None) for la, lo in zip(lat, lon, strict=True)])
    with incident_table(c) as t:
        got = ag.grid_counts(t, 150, period=None, origin=origin).table
    cells = dict(zip(zip(got["cell_x"], got["cell_y"], strict=True), got["incidents"], strict=True))
    assert cells == {(0, 0): 2, (1, 0): 1, (2, 7): 1, (-1, -1): 1}
    c.close()


def test_engine_projection_equals_numpy_and_proj(con: duckdb.DuckDBPyConnection) -> None:
    """x, y computed inside DuckDB (Ibis arithmetic) = numpy formula = PROJ's cea on the authalic sphere."""
    from pyproj import Transformer

    from crimelens.geo import forward_expr

    lon0, lat0 = -87.65, 41.85
    rng = np.random.default_rng(7)
    lats, lons = rng.uniform(41.6, 42.1, 200), rng.uniform(-87.95, -87.5, 200)
    con.execute("DELETE FROM incidents")
    insert(con, [(dt.datetime(2024, 1, 1), "other", float(a), float(b), None) for a, b in zip(lats, lons, strict=True)])
    with incident_table(con) as t:
        x, y = forward_expr(t.longitude, t.latitude, lon0, lat0)
        got = ag.execute(t.select(lat=t.latitude, lon=t.longitude, x=x, y=y), ["lat", "lon"])
    nx, ny = forward(got["lon"], got["lat"], lon0, lat0)
    np.testing.assert_allclose(got["x"], nx, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["y"], ny, rtol=0, atol=1e-6)
    proj = Transformer.from_crs(
        "EPSG:4326", f"+proj=cea +lat_ts={lat0} +lon_0={lon0} +R=6371007.181 +units=m", always_xy=True
    )
    px, py = proj.transform(got["lon"].to_numpy(), got["lat"].to_numpy())
    np.testing.assert_allclose(nx, px, rtol=0, atol=1e-6)  # micrometres
    np.testing.assert_allclose(ny, py, rtol=0, atol=1e-6)
    back_lon, back_lat = inverse(nx, ny, lon0, lat0)
    np.testing.assert_allclose(back_lon, got["lon"], atol=1e-10)
    np.testing.assert_allclose(back_lat, got["lat"], atol=1e-10)


def _cell_corners(origin: GridOrigin, i: int, j: int, cell: float) -> tuple[Any, Any]:
    xs = np.array([0, 1, 1, 0]) * cell + origin.x0 + i * cell
    ys = np.array([0, 0, 1, 1]) * cell + origin.y0 + j * cell
    return inverse(xs, ys, origin.lon0, origin.lat0)


def test_cell_area_on_the_ellipsoid_within_one_percent() -> None:
    """A 150 m cell across Chicago measured on WGS84: geodesic area and UTM 16N (EPSG:32616) area and sides."""
    from pyproj import Geod, Transformer

    origin = origin_for_extent(-87.94, -87.52, 41.64, 42.02)  # Chicago's extent
    utm = Transformer.from_crs("EPSG:4326", "EPSG:32616", always_xy=True)
    geod = Geod(ellps="WGS84")
    cell = 150.0
    ratios, side_ratios = [], []
    for lon, lat in [(-87.94, 41.64), (-87.65, 41.84), (-87.52, 42.02)]:  # SW corner, centre, NE corner
        x, y = forward([lon], [lat], origin.lon0, origin.lat0)
        i, j = int((x[0] - origin.x0) // cell), int((y[0] - origin.y0) // cell)
        clon, clat = _cell_corners(origin, i, j, cell)
        ux, uy = utm.transform(clon, clat)
        utm_area = 0.5 * abs(np.dot(ux, np.roll(uy, -1)) - np.dot(uy, np.roll(ux, -1)))  # shoelace
        geo_area, _ = geod.polygon_area_perimeter(clon, clat)
        ratios += [utm_area / cell**2, abs(geo_area) / cell**2]
        side_ratios += [np.hypot(ux[1] - ux[0], uy[1] - uy[0]) / cell, np.hypot(ux[3] - ux[0], uy[3] - uy[0]) / cell]
    assert max(abs(r - 1) for r in ratios) < 0.01, ratios
    assert max(abs(r - 1) for r in side_ratios) < 0.01, side_ratios


# -- H3 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("resolution", [0, 8, 15])
def test_h3_cells_equal_h3_library(t: Any, resolution: int) -> None:
    res = ag.h3_counts(t, resolution)
    want = Counter(h3.latlng_to_cell(r[2], r[3], resolution) for r in DOZEN if r[2] is not None)
    assert dict(zip(res.table["h3_cell"], res.table["incidents"], strict=True)) == dict(want)
    assert res.rows_without_coordinates == 2 and res.rows_total == 12


def test_h3_by_period_and_offence(t: Any) -> None:
    res = ag.h3_counts(t, 9, period="year", by_offence=True)
    assert list(res.table.columns) == ["h3_cell", "period_start", "offence", "incidents"]
    arson = res.table[res.table["offence"] == "arson"]
    # two arsons at the same place, 2024-12-31 and 2025-01-01 -> one row per year
    assert arson["period_start"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2025-01-01")]
    assert arson["h3_cell"].nunique() == 1 and arson["incidents"].tolist() == [1, 1]


# -- validation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: ag.area_counts(t, "ward"), r"area: expected one of district, .*; got 'ward'"),
        (
            lambda t: ag.area_counts(t, period=cast(Any, "fortnight")),
            r"period: expected one of hour, .*; got 'fortnight'",
        ),
        (lambda t: ag.grid_counts(t, 0), r"cell_m: expected a cell size in metres, 10–100000.*; got 0"),
        (lambda t: ag.grid_counts(t, -150), r"got -150"),
        (lambda t: ag.grid_counts(t, 5), r"got 5"),
        (lambda t: ag.grid_counts(t, float("nan")), r"got nan"),
        (
            lambda t: ag.grid_counts(t, period=cast(Any, "decade")),
            r"hour, day, week, month, year, or None; got 'decade'",
        ),
        (lambda t: ag.h3_counts(t, 16), r"resolution: expected an H3 resolution, an integer 0–15; got 16"),
        (lambda t: ag.h3_counts(t, -1), r"got -1"),
        (lambda t: ag.h3_counts(t, True), r"got True"),
    ],
)
def test_bad_parameters(t: Any, call: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call(t)


def test_grid_without_any_coordinates(tmp_path: Path) -> None:
    c = warehouse.connect(tmp_path / "n.duckdb")
    insert(c, [(dt.datetime(2024, 1, 1), "other", None, None, "1")])
    with incident_table(c) as t, pytest.raises(DataError, match="no incident has coordinates"):
        ag.grid_counts(t)
    c.close()


def test_bad_origin() -> None:
    with pytest.raises(DataError, match=r"lat0: expected a latitude between -80 and 80 .*got 89"):
        GridOrigin(0.0, 89.0)


# -- properties: aggregation preserves totals ----------------------------------------------------------
@pytest.fixture(scope="module")
def prop_con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    c = warehouse.connect(tmp_path_factory.mktemp("prop") / "p.duckdb")
    yield c
    c.close()


incident = st.tuples(
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 12, 31)),
    st.sampled_from(["robbery", "burglary", "other"]),
    st.one_of(st.none(), st.floats(41.6, 42.05)),
    st.floats(-87.95, -87.5),
    st.one_of(st.none(), st.sampled_from(["1", "2", "3"])),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(incident, min_size=1, max_size=40), cell=st.sampled_from([50.0, 150.0, 1000.0]))
def test_totals_preserved(prop_con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], cell: float) -> None:
    prop_con.execute("DELETE FROM incidents")
    # a missing latitude means no coordinates at all
    insert(prop_con, [(r[0], r[1], r[2], None if r[2] is None else r[3], r[4]) for r in rows])
    located = sum(r[2] is not None for r in rows)
    with incident_table(prop_con) as t:
        assert ag.area_counts(t, "community_area", "week")["incidents"].sum() == len(rows)
        if located:
            grid = ag.grid_counts(t, cell, period="month")
            assert grid.table["incidents"].sum() == located
            assert grid.rows_without_coordinates == len(rows) - located
            assert (grid.table["incidents"] > 0).all()
        assert ag.h3_counts(t, 7, period="day").table["incidents"].sum() == located


# -- docs ----------------------------------------------------------------------------------------------
def test_engines_doc_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python example in docs/engines.md runs as written (on a small warehouse holding source 'toronto')."""
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "engines.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) == 1
    c = warehouse.connect(tmp_path / "crimelens.duckdb")
    insert(c, DOZEN, source="toronto")
    c.execute("UPDATE incidents SET neighbourhood = community_area")
    c.close()
    monkeypatch.chdir(tmp_path)
    names: dict[str, Any] = {"print": lambda *a: None}
    exec(compile(blocks[0], "docs/engines.md", "exec"), names)
    assert names["weekly"]["incidents"].sum() == 12
    assert names["grid"].rows_without_coordinates == 2 and names["hexes"].table["incidents"].sum() == 10
