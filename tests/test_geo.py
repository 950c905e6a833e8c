"""The one projection and its grid geometry (crimelens.geo): binning points into cells, in numpy and in the
engine, and placing cells back on the map. The projection's own formulas are checked against PROJ in
test_aggregate.py."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimelens.analysis.incidents.aggregate import execute
from crimelens.errors import DataError
from crimelens.geo import AUTHALIC_RADIUS_M, GridOrigin, forward, inverse, origin_for_extent, pairs_within

pytestmark = [
    # ibis 12 still calls DuckDB 2's deprecated fetch_arrow_table(); nothing crimelens can change
    pytest.mark.filterwarnings(r"ignore:fetch_arrow_table\(\) is deprecated:DeprecationWarning"),
]


def test_cell_of_by_hand() -> None:
    origin = GridOrigin(lon0=0.0, lat0=0.0, x0=-100.0, y0=50.0)
    # x = −100 is the west edge of cell 0; −100.001 is in cell −1; 49.999 m east of it still cell 0 at 50 m
    # y = 50 + 3·50 = 200 is the south edge of cell 3
    cx, cy = origin.cell_of([-100.0, -100.001, -50.001, 0.0], [50.0, 49.9, 199.999, 200.0], 50.0)
    assert cx.tolist() == [0, -1, 0, 2] and cy.tolist() == [0, -1, 2, 3]
    assert cx.dtype == np.int64 and cy.dtype == np.int64


def test_cell_centres_lie_in_their_cells() -> None:
    origin = origin_for_extent(-87.94, -87.52, 41.64, 42.02)
    cells_x, cells_y = np.arange(-3, 40), np.arange(10, 53)
    x, y, lon, lat = origin.cell_centres(cells_x, cells_y, 250.0)
    back_x, back_y = origin.cell_of(x, y, 250.0)
    assert back_x.tolist() == cells_x.tolist() and back_y.tolist() == cells_y.tolist()
    # the back-projected centre projects to the same metres (to well under a millimetre)
    fx, fy = forward(lon, lat, origin.lon0, origin.lat0)
    assert np.abs(fx - x).max() < 1e-6 and np.abs(fy - y).max() < 1e-6


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-87.95, -87.5), st.floats(41.6, 42.05)),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([10.0, 150.0, 250.0, 1000.0]),
)
def test_cell_of_expr_in_the_engine_matches_numpy(points: list[tuple[float, float]], cell_m: float) -> None:
    import ibis

    origin = origin_for_extent(-87.94, -87.52, 41.64, 42.02)
    con = duckdb.connect()
    con.execute("CREATE TABLE p (i INTEGER, longitude DOUBLE, latitude DOUBLE)")
    con.executemany("INSERT INTO p VALUES (?, ?, ?)", [(i, lo, la) for i, (lo, la) in enumerate(points)])
    t = ibis.duckdb.from_connection(con).table("p")
    cx, cy = origin.cell_of_expr(t.longitude, t.latitude, cell_m)
    got = execute(t.select("i", cell_x=cx, cell_y=cy), ["i"])
    con.close()
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    ex, ey = origin.cell_of(*forward(lon, lat, origin.lon0, origin.lat0), cell_m)
    assert got["cell_x"].tolist() == ex.tolist() and got["cell_y"].tolist() == ey.tolist()


def test_cell_of_expr_gives_null_cells_without_coordinates() -> None:
    import ibis

    con = duckdb.connect()
    con.execute("CREATE TABLE p AS SELECT * FROM (VALUES (1, -87.6, 41.9), (2, NULL, NULL)) v(i, longitude, latitude)")
    t = ibis.duckdb.from_connection(con).table("p")
    cx, cy = GridOrigin(lon0=-87.6, lat0=41.9).cell_of_expr(t.longitude, t.latitude, 100.0)
    got = execute(t.select("i", cell_x=cx, cell_y=cy), ["i"])
    con.close()
    assert got["cell_x"].isna().tolist() == [False, True] and got["cell_y"].isna().tolist() == [False, True]


def test_origin_for_extent_by_hand() -> None:
    # centre (−87.73, 41.83), rounded to 0.01°; the south-west corner snapped down to whole kilometres
    origin = origin_for_extent(-87.94, -87.52, 41.64, 42.02)
    assert (origin.lon0, origin.lat0) == (-87.73, 41.83)
    k0 = math.cos(math.radians(41.83))
    x_sw = math.radians(-87.94 + 87.73) * AUTHALIC_RADIUS_M * k0  # ≈ −17,440 m
    y_sw = math.sin(math.radians(41.64)) * AUTHALIC_RADIUS_M / k0
    assert origin.x0 == math.floor(x_sw / 1000) * 1000 == -18_000.0
    assert origin.y0 == math.floor(y_sw / 1000) * 1000
    # every cell over the extent has a non-negative index
    corners = forward([-87.94, -87.52], [41.64, 42.02], origin.lon0, origin.lat0)
    cx, cy = origin.cell_of(*corners, 150.0)
    assert (cx >= 0).all() and (cy >= 0).all()


def test_inverse_undoes_forward() -> None:
    lon, lat = np.array([-79.4, -79.3, 0.0]), np.array([43.7, 43.8, 0.0])
    x, y = forward(lon, lat, -79.38, 43.72)
    back_lon, back_lat = inverse(x, y, -79.38, 43.72)
    assert np.abs(back_lon - lon).max() < 1e-9 and np.abs(back_lat - lat).max() < 1e-9


def test_grid_origin_validates() -> None:
    with pytest.raises(DataError, match=r"lat0: expected a latitude between -80 and 80 .*got 85"):
        GridOrigin(lon0=0.0, lat0=85.0)
    with pytest.raises(DataError, match=r"x0, y0: expected finite metres"):
        GridOrigin(lon0=0.0, lat0=0.0, x0=math.inf)


# -- pairs within a distance ---------------------------------------------------------------------------------
def test_pairs_within_by_hand() -> None:
    # 0 and 1 are 3-4-5 apart (5 m); 2 sits on 1 (0 m); 3 is 10.0 m from 0 exactly, 4 is 10.001 m from 0
    xy = [(0.0, 0.0), (3.0, 4.0), (3.0, 4.0), (10.0, 0.0), (0.0, -10.001)]
    got = {tuple(p) for p in pairs_within(xy, 10.0).tolist()}
    # 1–3: (7, −4) → √65 ≈ 8.06 ✓; 2–3 the same; 1–4 and 2–4: (3, 14.001) → 14.3 ✗; 3–4: 14.1 ✗
    assert got == {(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)}
    assert pairs_within(xy, 4.9).tolist() == [[1, 2]]
    assert pairs_within([(5.0, 5.0)], 1.0).shape == (0, 2)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 300),
    r=st.floats(0.5, 500),
    spread=st.floats(1, 5_000),
    seed=st.integers(0, 2**32 - 1),
)
def test_pairs_within_finds_the_pairs_a_kd_tree_finds(n: int, r: float, spread: float, seed: int) -> None:
    from scipy.spatial import cKDTree  # the reference: an independent library's tree search

    rng = np.random.default_rng(seed)
    xy = np.round(rng.uniform(-spread, spread, (n, 2)), 1)  # rounded: repeated points and exact ties occur
    if n > 4:
        xy[: n // 4] = xy[n // 4]
    got = pairs_within(xy.reshape(-1, 2), r)
    assert np.all(got[:, 0] < got[:, 1])
    want = cKDTree(xy.reshape(-1, 2)).query_pairs(r, output_type="ndarray") if n else np.empty((0, 2))
    assert len(got) == len({tuple(p) for p in got.tolist()})  # no pair twice
    assert {tuple(p) for p in got.tolist()} == {tuple(p) for p in np.asarray(want).tolist()}


def test_pairs_within_refuses_a_bad_distance() -> None:
    with pytest.raises(DataError, match="positive distance"):
        pairs_within([(0.0, 0.0), (1.0, 1.0)], 0.0)
    with pytest.raises(DataError, match=r"\(n, 2\)"):
        pairs_within([1.0, 2.0, 3.0], 1.0)


def test_pairs_within_gives_the_same_pairs_in_runs_of_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy.spatial import cKDTree

    import crimelens.geo as geo

    rng = np.random.default_rng(11)
    xy = np.round(rng.uniform(0, 3000, (2000, 2)), 0)  # dense enough for many candidates per bucket pair
    whole = pairs_within(xy, 150.0)
    monkeypatch.setattr(geo, "_CANDIDATES_PER_RUN", 97)  # many small runs, split inside every offset
    runs = pairs_within(xy, 150.0)
    np.testing.assert_array_equal(runs, whole)  # the same pairs, in the same order
    want = {tuple(p) for p in cKDTree(xy).query_pairs(150.0, output_type="ndarray").tolist()}
    assert {tuple(p) for p in whole.tolist()} == want and len(want) > 10_000
