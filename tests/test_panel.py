"""The grid panel (crimelens.analysis.incidents.panel): dense cells × periods counts on a pinned grid; and the
grid analyses on it keeping cell ids whatever the time window or offence filter (library and CLI)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crimelens import warehouse
from crimelens.analysis.incidents import aggregate as ag
from crimelens.analysis.incidents import panel as pn
from crimelens.analysis.incidents import scope as inc
from crimelens.analysis.incidents.hotspots import getis_ord_gi_star, persistent_cells
from crimelens.analysis.incidents.spatial import grid_density
from crimelens.cli import app
from crimelens.engine import incident_table
from crimelens.errors import DataError, SchemaError
from crimelens.geo import GridOrigin, forward
from crimelens.warehouse.grid import pin_grid_origin

pytestmark = [
    # ibis 12 still calls DuckDB 2's deprecated fetch_arrow_table(); nothing crimelens can change
    pytest.mark.filterwarnings(r"ignore:fetch_arrow_table\(\) is deprecated:DeprecationWarning"),
]

INSERT = (
    "INSERT INTO incidents (source, incident_key, occurred_at, time_precision, offence, offence_raw, latitude, "
    "longitude, load_id) VALUES (?, ?, ?, 'hour', ?, ?, ?, ?, 1)"
)
T = dt.datetime


def _warehouse(path: Path, source: str, rows: list[tuple[Any, ...]]) -> duckdb.DuckDBPyConnection:
    """rows: key, occurred_at, offence, latitude, longitude."""
    con = warehouse.connect(path)
    con.execute(
        "INSERT INTO incident_sources VALUES (?, 'mapped-csv', 'America/Chicago', false, 'test', 'test city')",
        [source],
    )
    con.executemany(INSERT, [(source, k, t, o, o.upper(), la, lo) for k, t, o, la, lo in rows])
    return con


# -- a panel by hand -------------------------------------------------------------------------------------
#: At the equator with lon0 = lat0 = 0 and x0 = y0 = 0: x = R·λ, y = R·sin φ (R = 6,371,007.181 m), so on
#: 1,000 m cells 0.005° → 556 m (cell 0), 0.012° → 1,334 m (cell 1), 0.02° → 2,224 m (cell 2).
EQUATOR = GridOrigin(lon0=0.0, lat0=0.0)
BY_HAND = [
    ("p1", T(2024, 1, 1, 9), "robbery", 0.005, 0.005),  # cell (0, 0), week of Monday 1 January
    ("p2", T(2024, 1, 3, 9), "burglary", 0.005, 0.005),  # cell (0, 0), same week
    ("p3", T(2024, 1, 9, 9), "robbery", 0.02, 0.012),  # cell (1, 2), week of 8 January
    ("p4", T(2024, 1, 9, 10), "robbery", None, None),  # no coordinates
]


@pytest.fixture
def by_hand(tmp_path: Path) -> Iterator[Any]:
    with _warehouse(tmp_path / "w.duckdb", "eq", BY_HAND) as con, incident_table(con) as t:
        yield t


def test_panel_by_hand(by_hand: Any) -> None:
    panel = pn.grid_panel(by_hand, cell_m=1000, period="week", origin=EQUATOR)
    # rectangle: cells x 0…1, y 0…2 → 2 × 3 = 6 rows, row = cell_y · 2 + cell_x; (0, 0) → 0, (1, 2) → 5
    assert panel.extent == (0, 0, 1, 2) and (panel.nx, panel.ny, panel.n_cells) == (2, 3, 6)
    assert panel.periods.tolist() == [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 8)]
    expected = np.zeros((6, 2), dtype=np.int64)
    expected[0, 0], expected[5, 1] = 2, 1
    np.testing.assert_array_equal(panel.counts, expected)
    assert panel.counts.dtype == np.int64
    assert panel.cell_x.tolist() == [0, 1, 0, 1, 0, 1] and panel.cell_y.tolist() == [0, 0, 1, 1, 2, 2]
    assert panel.study_area.tolist() == [True, False, False, False, False, True]
    assert (panel.rows_total, panel.rows_without_coordinates) == (4, 1)
    assert panel.totals().tolist() == [2, 0, 0, 0, 0, 1]
    assert panel.index([0, 1, 5], [0, 2, 0]).tolist() == [0, 5, -1]
    assert panel.as_grid(panel.totals()).tolist() == [[2, 0], [0, 0], [0, 1]]
    # centres: cell (1, 2) is centred at (1,500 m, 2,500 m)
    x, y, lon, _ = panel.centres()
    assert (x[5], y[5]) == (1500.0, 2500.0)
    assert lon[5] == pytest.approx(1500 / 6_371_007.181 * 180 / np.pi)
    whole = panel.total()
    assert whole.period is None and whole.n_periods == 1 and whole.totals().tolist() == panel.totals().tolist()
    assert panel.params["cell_extent"] == (0, 0, 1, 2) and panel.params["lon0"] == 0.0


def test_panel_views_match_grid_counts(by_hand: Any) -> None:
    for period in ("week", None):
        panel = pn.grid_panel(by_hand, cell_m=1000, period=period, origin=EQUATOR)
        grid = ag.grid_counts(by_hand, cell_m=1000, period=period, origin=EQUATOR)
        pd.testing.assert_frame_equal(panel.to_frame(), grid.table, check_dtype=False)
        assert panel.rows_without_coordinates == grid.rows_without_coordinates
        again = pn.GridPanel.from_grid_counts(grid)
        np.testing.assert_array_equal(again.counts, panel.counts)
        assert again.extent == panel.extent and again.rows_total == panel.rows_total
    cells = pn.grid_panel(by_hand, cell_m=1000, period=None, origin=EQUATOR).cells_frame()
    assert len(cells) == 6 and cells["incidents"].sum() == 3 and cells["study_area"].sum() == 2
    zeros = pn.grid_panel(by_hand, cell_m=1000, origin=EQUATOR).to_frame(zeros=True)
    assert len(zeros) == 4 and zeros["incidents"].tolist() == [2, 0, 0, 1]  # 2 study cells × 2 weeks


def test_panel_is_read_only_and_keeps_the_callers_arrays_writable() -> None:
    counts = np.array([[1, 0], [0, 2]], dtype=np.int64)
    periods = np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[us]")
    panel = pn.GridPanel(EQUATOR, 100.0, "month", (0, 0, 1, 0), periods, counts)
    assert not panel.counts.flags.writeable and not panel.study_area.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        panel.counts[0, 0] = 5
    counts[0, 0] = 7  # the caller's array is neither frozen nor shared
    assert panel.counts[0, 0] == 1


def test_panel_validates() -> None:
    periods = np.array(["2024-01-01"], dtype="datetime64[us]")
    with pytest.raises(DataError, match=r"counts: expected shape \(cells, periods\) = \(2, 1\)"):
        pn.GridPanel(EQUATOR, 100.0, "month", (0, 0, 1, 0), periods, np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(DataError, match=r"counts: expected whole numbers ≥ 0"):
        pn.GridPanel(EQUATOR, 100.0, "month", (0, 0, 1, 0), periods, -np.ones((2, 1), dtype=np.int64))
    with pytest.raises(DataError, match=r"extent: expected four integer cell indices .*got \(0, 0, -1, 0\)"):
        pn.GridPanel(EQUATOR, 100.0, "month", (0, 0, -1, 0), periods, np.zeros((2, 1), dtype=np.int64))
    twice = np.array(["2024-01-01", "2024-01-01"], dtype="datetime64[us]")
    with pytest.raises(DataError, match="strictly increasing"):
        pn.GridPanel(EQUATOR, 100.0, "month", (0, 0, 0, 0), twice, np.zeros((1, 2), dtype=np.int64))
    frame = pd.DataFrame({"cell_x": [0, 5], "cell_y": [0, 0], "incidents": [1, 1]})
    with pytest.raises(DataError, match=r"extent: expected every cell with incidents inside \(0, 0, 1, 1\), got 1"):
        pn.GridPanel.from_frame(frame, origin=EQUATOR, cell_m=100, period=None, extent=(0, 0, 1, 1))
    with pytest.raises(SchemaError, match=r"missing column.*period_start"):
        pn.GridPanel.from_frame(frame, origin=EQUATOR, cell_m=100, period="week")


def test_panel_size_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pn, "MAX_PANEL_VALUES", 100)
    frame = pd.DataFrame({"cell_x": [0, 10], "cell_y": [0, 10], "incidents": [1, 1]})
    # 11 × 11 = 121 cells > 100
    with pytest.raises(DataError, match=r"at most 100 cell-periods, got 11 × 11 cells × 1 periods = 121"):
        pn.GridPanel.from_frame(frame, origin=EQUATOR, cell_m=100, period=None)


def test_window_and_reindex() -> None:
    frame = pd.DataFrame(
        {
            "cell_x": [0, 1, 1],
            "cell_y": [0, 0, 0],
            "period_start": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
            "incidents": [3, 1, 2],
        }
    )
    panel = pn.GridPanel.from_frame(frame, origin=EQUATOR, cell_m=100, period="month")
    spring = panel.window("2024-02-01")
    assert spring.periods.tolist() == [dt.datetime(2024, 2, 1), dt.datetime(2024, 3, 1)]
    assert spring.counts.tolist() == [[0, 0], [1, 2]] and spring.rows_total == 3
    assert spring.study_area.tolist() == [True, True]  # the place's study area, not the window's
    with pytest.raises(DataError, match="window: expected at least one period"):
        panel.window("2025-01-01")
    wider = panel.reindex((-1, 0, 1, 1))
    # 3 × 2 rectangle; the old cells (0, 0) and (1, 0) are rows 1 and 2
    assert wider.n_cells == 6 and wider.totals().tolist() == [0, 3, 3, 0, 0, 0]
    assert wider.study_area.tolist() == [False, True, True, False, False, False]
    with pytest.raises(DataError, match=r"leaves out 3 incidents"):
        panel.reindex((1, 0, 1, 0))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-5, 5), st.integers(-5, 5), st.integers(0, 3), st.integers(1, 20)),
        min_size=1,
        max_size=60,
    )
)
def test_densifying_preserves_every_count(rows: list[tuple[int, int, int, int]]) -> None:
    starts = pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"])
    frame = pd.DataFrame(
        {
            "cell_x": [r[0] for r in rows],
            "cell_y": [r[1] for r in rows],
            "period_start": starts[[r[2] for r in rows]],
            "incidents": [r[3] for r in rows],
        }
    )
    panel = pn.GridPanel.from_frame(frame, origin=EQUATOR, cell_m=150, period="week")
    assert int(panel.counts.sum()) == frame["incidents"].sum() == panel.rows_total
    expected = frame.groupby(["cell_x", "cell_y", "period_start"], as_index=False).agg(incidents=("incidents", "sum"))
    tidy = panel.to_frame()[["cell_x", "cell_y", "period_start", "incidents"]]
    pd.testing.assert_frame_equal(tidy, expected, check_dtype=False)
    assert panel.study_area.sum() == len(expected.drop_duplicates(["cell_x", "cell_y"]))


# -- the analyses on the panel equal the analyses on the tidy frame ---------------------------------------
def _city_rows() -> list[tuple[Any, ...]]:
    """Three clusters in Chicago over 2023–2024, an early incident 1.5 km south-west of them and a late one 1.5 km
    north-east: a date filter drops one of them, an offence filter both, and the data's extent moves."""
    rng = np.random.default_rng(3)
    rows: list[tuple[Any, ...]] = []
    centres = [(41.8800, -87.6300), (41.8850, -87.6250), (41.8900, -87.6200)]
    for i in range(240):
        la, lo = centres[i % 3]
        when = T(2023, 1, 2) + dt.timedelta(days=int(rng.integers(0, 700)), hours=int(rng.integers(0, 24)))
        offence = ("robbery", "burglary", "larceny")[int(rng.integers(0, 3))]
        rows.append((f"k{i}", when, offence, la + rng.normal(0, 0.001), lo + rng.normal(0, 0.001)))
    rows.append(("early", T(2023, 3, 1), "homicide", 41.872, -87.643))
    rows.append(("late", T(2024, 10, 1), "homicide", 41.902, -87.609))
    return rows


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("panel") / "city.duckdb"
    con = _warehouse(path, "city", _city_rows())
    assert pin_grid_origin(con, "city") is not None
    con.close()
    return path


def test_gi_star_and_persistence_on_a_panel_equal_the_frame_path(city: Path) -> None:
    with incident_table(city, source="city") as t:
        grid = ag.grid_counts(t, cell_m=250, period=None)
        by_month = ag.grid_counts(t, cell_m=250, period="month")
    gi_frame = getis_ord_gi_star(grid.table, cell_m=250, permutations=99, seed=1)
    gi_panel = getis_ord_gi_star(pn.GridPanel.from_grid_counts(grid), permutations=99, seed=1)
    # both test the same study area (the cells with incidents), so every cell has its place in both
    same = [c for c in gi_frame.table.columns if c not in ("lat", "lon")]
    pd.testing.assert_frame_equal(gi_panel.table[same], gi_frame.table[same])
    assert len(gi_frame.table) == len(grid.table) and gi_frame.table[["lat", "lon"]].notna().all().all()
    pd.testing.assert_frame_equal(gi_panel.table[["lat", "lon"]], gi_frame.table[["lat", "lon"]])
    assert gi_panel.params == gi_frame.params and gi_panel.notes == gi_frame.notes
    for method in ("top", "gi"):
        frame = persistent_cells(by_month.table, method=method, min_periods_share=0.3)  # type: ignore[arg-type]
        panel = persistent_cells(
            pn.GridPanel.from_grid_counts(by_month),
            method=method,  # type: ignore[arg-type]
            min_periods_share=0.3,
        )
        coords = ["x_m", "y_m", "lat", "lon"]
        same = [c for c in frame.table.columns if c not in coords]
        pd.testing.assert_frame_equal(panel.table[same], frame.table[same])
        known = frame.table["x_m"].notna()  # Gi* can call a cell without incidents hot: the frame lacks its centre
        assert panel.table[coords].notna().all().all()
        pd.testing.assert_frame_equal(panel.table.loc[known, coords], frame.table.loc[known, coords])
        assert panel.params == frame.params and panel.notes == frame.notes
    with pytest.raises(DataError, match=r"expected the counts of one period, got a panel of \d+ periods"):
        getis_ord_gi_star(pn.GridPanel.from_grid_counts(by_month))


def test_density_is_laid_on_the_panels_grid(city: Path) -> None:
    with incident_table(city, source="city") as t:
        panel = pn.grid_panel(t, cell_m=100, period=None, origin=pn.source_origin(t))
    surface = grid_density(panel, bandwidth_m=300)
    # padded by ⌈2 · 300 / 100⌉ = 6 cells on every side; the cells are the panel's (same ids, same centres)
    x0, y0, x1, y1 = panel.extent
    assert surface.params["cell_extent"] == (x0 - 6, y0 - 6, x1 + 6, y1 + 6)
    inner = surface.table.merge(panel.cells_frame(), on=["cell_x", "cell_y"], suffixes=("", "_panel"))
    assert len(inner) == panel.n_cells
    np.testing.assert_allclose(inner["x_m"], inner["x_m_panel"])
    np.testing.assert_allclose(inner["lat"], inner["lat_panel"])
    # binned density integrates to the incidents: Σ density · cell area (km²) = n (the kernel stays inside)
    assert (surface.table["density"] * 0.01).sum() == pytest.approx(panel.totals().sum(), rel=1e-3)


# -- cell ids are the source's whatever the filter ---------------------------------------------------------
#: a place inside the busiest cluster
PLACE = (41.8900, -87.6200)


def _cell_of_place(origin: GridOrigin, cell_m: float) -> tuple[int, int]:
    x, y = forward([PLACE[1]], [PLACE[0]], origin.lon0, origin.lat0)
    cx, cy = origin.cell_of(x, y, cell_m)
    return int(cx[0]), int(cy[0])


FILTERS = [
    inc.IncidentFilter(start=dt.date(2024, 1, 1)),
    inc.IncidentFilter(end=dt.date(2023, 6, 30)),
    inc.IncidentFilter(("robbery",)),
]


@pytest.mark.parametrize("flt", FILTERS, ids=["since", "until", "offence"])
def test_grid_analyses_keep_cell_ids_whatever_the_filter(city: Path, flt: inc.IncidentFilter) -> None:
    con = warehouse.connect(city, read_only=True)
    with incident_table(con, source="city") as t:
        origin = pn.source_origin(t, con=con, source="city")
        assert origin == pn.source_origin(t)  # pinned from the same whole extent
        filtered = flt.apply(t)
        # the filtered data alone would give another grid: without the pinned origin, ids would move
        moved = ag.data_origin(filtered)
        assert moved != origin
        assert _cell_of_place(moved, 150.0) != _cell_of_place(origin, 150.0)
        cell = _cell_of_place(origin, 150.0)
        for table in (t, filtered):
            gi = inc.hotspots(table, cell_m=150, permutations=0, origin=origin).table
            row = gi[(gi["cell_x"] == cell[0]) & (gi["cell_y"] == cell[1])]
            assert len(row) == 1 and abs(row["lat"].iloc[0] - PLACE[0]) < 0.001
            kde = inc.density(table, cell_m=150, bandwidth_m=300, origin=origin).table
            at = kde[(kde["cell_x"] == cell[0]) & (kde["cell_y"] == cell[1])]
            assert len(at) == 1 and abs(at["lon"].iloc[0] - PLACE[1]) < 0.001
            panel = pn.grid_panel(table, cell_m=150, period="month", origin=origin)
            assert panel.totals()[panel.index([cell[0]], [cell[1]])[0]] > 0
            persistent = inc.persistent(table, cell_m=150, period="month", min_periods_share=0.3, origin=origin)
            assert persistent.params["x0"] == origin.x0 and persistent.params["y0"] == origin.y0
    con.close()


def test_cli_cells_keep_their_ids_with_since_until_and_offence(city: Path) -> None:
    runner = CliRunner()

    def rows(command: str, *extra: str) -> pd.DataFrame:
        args = ["incidents", command, "--db", str(city), "--cell", "150", "--json", *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        return pd.DataFrame(json.loads(result.stdout)["rows"])

    con = warehouse.connect(city, read_only=True)
    with incident_table(con, source="city") as t:
        cell = _cell_of_place(pn.source_origin(t, con=con, source="city"), 150.0)
    con.close()
    for extra in ([], ["--since", "2024-01-01"], ["--until", "2023-06-30"], ["--offence", "robbery"]):
        gi = rows("hotspots", "--permutations", "0", *extra)
        place = gi[(gi["cell_x"] == cell[0]) & (gi["cell_y"] == cell[1])]
        assert len(place) == 1 and abs(place["lat"].iloc[0] - PLACE[0]) < 0.001, extra
        kde = rows("density", "--bandwidth", "300", *extra)
        place = kde[(kde["cell_x"] == cell[0]) & (kde["cell_y"] == cell[1])]
        assert len(place) == 1 and abs(place["lon"].iloc[0] - PLACE[1]) < 0.001, extra
        hot = rows("persistent", "--min-share", "0.3", *extra)
        place = hot[(hot["cell_x"] == cell[0]) & (hot["cell_y"] == cell[1])]
        assert len(place) == 1 and abs(place["lat"].iloc[0] - PLACE[0]) < 0.001, extra


def test_parquet_without_a_warehouse_uses_the_unfiltered_extent(city: Path, tmp_path: Path) -> None:
    parquet = tmp_path / "city.parquet"
    con = duckdb.connect(str(city), read_only=True)
    con.execute(f"COPY (SELECT * FROM incidents) TO '{parquet}' (FORMAT parquet)")
    pinned = con.execute("SELECT lon0, lat0, x0, y0 FROM grid_origins WHERE source = 'city'").fetchone()
    con.close()
    with incident_table(None, parquet=parquet) as t:
        origin = pn.source_origin(t)
    assert pinned == (origin.lon0, origin.lat0, origin.x0, origin.y0)
    runner = CliRunner()
    result = runner.invoke(
        app, ["incidents", "hotspots", "--parquet", str(parquet), "--since", "2024-01-01", "--json", "--cell", "150"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["params"]["x0"], data["params"]["y0"]) == (origin.x0, origin.y0)
