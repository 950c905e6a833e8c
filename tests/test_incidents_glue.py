"""Incident analyses end to end (crimelens.analysis.incidents): filter → engine aggregation → statistic.

Small hand-made warehouses checked by hand, then real Toronto incidents for sane magnitudes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from crimelens import warehouse
from crimelens.analysis.incidents import aggregate as ag
from crimelens.analysis.incidents import scope as inc
from crimelens.engine import incident_table
from crimelens.errors import DataError, SparseDataWarning
from crimelens.schema import OFFENCES
from crimelens.warehouse import load_incidents as load_incident_file

pytestmark = [
    # ibis 12 still calls DuckDB 2's deprecated fetch_arrow_table(); nothing crimelens can change
    pytest.mark.filterwarnings(r"ignore:fetch_arrow_table\(\) is deprecated:DeprecationWarning"),
]

INSERT = (
    "INSERT INTO incidents (source, incident_key, occurred_at, time_precision, offence, offence_raw, latitude, "
    "longitude, community_area, load_id) VALUES ('city', ?, ?, ?, ?, ?, ?, ?, ?, 1)"
)
T = dt.datetime
A = (41.8800, -87.6300)  # cluster of community area 1
B = (41.8850, -87.6250)  # community area 2, about 680 m north-east of A
C = (41.8900, -87.6200)  # community area 3
#: key, occurred_at, precision, offence, lat, lon, community area. Per area: 1 → 4, 2 → 4, 3 → 3, none → 1.
INCIDENTS: list[tuple[Any, ...]] = [
    ("k1", T(2024, 1, 1, 10), "hour", "robbery", A[0], A[1], "1"),  # a Monday
    ("k2", T(2024, 1, 2, 11), "hour", "burglary", A[0] + 1e-4, A[1], "1"),
    ("k3", T(2024, 1, 3, 12), "hour", "larceny", A[0], A[1] + 1e-4, "1"),
    ("k4", T(2024, 1, 5, 23, 30), "minute", "robbery", A[0] + 1e-4, A[1] + 1e-4, "1"),
    ("k5", T(2024, 1, 10, 9), "hour", "burglary", B[0], B[1], "2"),
    ("k6", T(2024, 1, 15, 14), "hour", "larceny", B[0] + 1e-4, B[1], "2"),
    ("k7", T(2024, 1, 31, 23, 59), "minute", "larceny", B[0], B[1] + 1e-4, "2"),  # last minute of January
    ("k8", T(2024, 2, 1, 0, 0), "minute", "robbery", B[0] + 1e-4, B[1] + 1e-4, "2"),  # first minute of February
    ("k9", T(2024, 2, 10), "day", "burglary", C[0], C[1], "3"),  # known to the day only
    ("k10", T(2024, 2, 20, 18), "hour", "homicide", C[0] + 1e-4, C[1], "3"),
    ("k11", T(2024, 3, 1, 8), "hour", "larceny", None, None, "3"),  # no coordinates
    ("k12", T(2024, 3, 5, 20), "hour", "robbery", A[0] + 5e-4, A[1] - 5e-4, None),  # no area
]
#: community areas with residents; area 4 has no incidents at all.
POPULATIONS = {"1": 1000, "2": 2000, "3": 500, "4": 4000}
SQUARE = '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}'


def build(path: Path, *, areas: bool = True, extra: Sequence[tuple[Any, ...]] = ()) -> duckdb.DuckDBPyConnection:
    """A warehouse holding INCIDENTS (source 'city') and, with ``areas``, the area set 'city-areas'."""
    con = warehouse.connect(path)
    con.execute(
        "INSERT INTO incident_sources VALUES ('city', 'mapped-csv', 'America/Chicago', false, 'test', 'test city')"
    )
    con.executemany(INSERT, [(k, t, p, o, o.upper(), la, lo, ca) for k, t, p, o, la, lo, ca in [*INCIDENTS, *extra]])
    if areas:
        con.executemany(
            "INSERT INTO areas (area_set, area_kind, area_id, name, geometry, population, load_id) "
            "VALUES ('city-areas', 'community_area', ?, ?, ?, ?, 2)",
            [(a, f"Area {a}", SQUARE, pop) for a, pop in POPULATIONS.items()],
        )
    return con


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = build(tmp_path / "w.duckdb")
    yield c
    c.close()


@pytest.fixture
def table(con: duckdb.DuckDBPyConnection) -> Iterator[Any]:
    with incident_table(con, source="city") as t:
        yield t


def n_rows(t: Any) -> int:
    return inc.coverage(t)[2]


# -- IncidentFilter ------------------------------------------------------------------------------------
def test_filter_offences_and_inclusive_dates(table: Any) -> None:
    assert n_rows(table) == 12
    # robbery: k1, k4, k8, k12
    assert n_rows(inc.IncidentFilter(("robbery",)).apply(table)) == 4
    assert n_rows(inc.IncidentFilter(("robbery", "homicide")).apply(table)) == 5
    # --until 2024-01-31 keeps the whole day: k1..k7 (k7 at 23:59), not k8 at 2024-02-01 00:00
    january = inc.IncidentFilter(end=dt.date(2024, 1, 31)).apply(table)
    assert n_rows(january) == 7
    assert inc.coverage(january)[1] == T(2024, 1, 31, 23, 59)
    # --since 2024-02-01 starts at midnight: k8..k12
    assert n_rows(inc.IncidentFilter(start=dt.date(2024, 2, 1)).apply(table)) == 5
    one_day = inc.IncidentFilter(start=dt.date(2024, 2, 1), end=dt.date(2024, 2, 1))
    assert n_rows(one_day.apply(table)) == 1  # k8 only
    both = inc.IncidentFilter(("larceny",), dt.date(2024, 1, 10), dt.date(2024, 2, 29))
    assert n_rows(both.apply(table)) == 2  # k6, k7 (k3 too early, k11 too late)
    assert both.to_dict() == {"offences": ["larceny"], "start": "2024-01-10", "end": "2024-02-29"}
    assert both.describe() == "larceny; 2024-01-10 to 2024-02-29"
    with pytest.raises(DataError, match="no incidents match"):
        inc.coverage(inc.IncidentFilter(("arson",)).apply(table))


def test_filter_rejects_bad_offence_and_reversed_dates() -> None:
    with pytest.raises(DataError) as bad:
        inc.IncidentFilter(("robbery", "theft"))
    message = str(bad.value)
    assert message.startswith("offence: expected one of homicide, rape, robbery") and message.endswith("got theft")
    assert all(o in message for o in OFFENCES)
    with pytest.raises(DataError, match=r"--since 2024-03-01 is after --until 2024-02-01"):
        inc.IncidentFilter(start=dt.date(2024, 3, 1), end=dt.date(2024, 2, 1))


def test_filter_span_clips_the_source_days(table: Any) -> None:
    assert inc.IncidentFilter().span(table) == (dt.date(2024, 1, 1), dt.date(2024, 3, 5))
    flt = inc.IncidentFilter(("homicide",), start=dt.date(2023, 6, 1), end=dt.date(2024, 2, 15))
    assert flt.span(table) == (dt.date(2024, 1, 1), dt.date(2024, 2, 15))
    with pytest.raises(DataError, match="does not overlap"):
        inc.IncidentFilter(start=dt.date(2025, 1, 1)).span(table)


# -- areas ---------------------------------------------------------------------------------------------
def test_area_ranking_rates_with_the_area_set_found_automatically(con: duckdb.DuckDBPyConnection, table: Any) -> None:
    result = inc.area_ranking(table, con=con)  # area_set not given: 'city-areas' is the only community_area set
    assert result.params["area_set"] == "city-areas" and result.params["ranked_by"] == "rate"
    t = result.table.set_index("area")
    # incidents / population × 100,000: area 3: 3 / 500 → 600; area 1: 4 / 1,000 → 400; area 2: 4 / 2,000 → 200;
    # area 4: 0 / 4,000 → 0. k12 has no area and is not ranked: shares are of 11 incidents.
    assert t["rate"].to_dict() == pytest.approx({"3": 600.0, "1": 400.0, "2": 200.0, "4": 0.0})
    assert list(result.table["area"]) == ["3", "1", "2", "4"]
    assert list(result.table["rank"]) == [1, 2, 3, 4]
    assert t.loc["1", "rank_by_count"] == 1 and t.loc["2", "rank_by_count"] == 1  # 4 each: tied
    assert t.loc["1", "share"] == pytest.approx(4 / 11)
    assert t.loc["4", "incidents"] == 0 and t.loc["3", "name"] == "Area 3" and t.loc["2", "population"] == 2000
    # exact Poisson interval contains the rate
    assert (result.table["rate_low"] <= result.table["rate"]).all()
    assert (result.table["rate"] <= result.table["rate_high"]).all()


def test_area_ranking_without_or_with_a_wrong_area_set(con: duckdb.DuckDBPyConnection, table: Any) -> None:
    # two sets of community areas: no automatic choice, ranked by count
    con.execute("INSERT INTO areas VALUES ('other', 'community_area', '1', 'x', ?, 10, NULL, 3)", [SQUARE])
    result = inc.area_ranking(table, con=con)
    assert result.params["area_set"] is None and result.params["ranked_by"] == "incidents"
    assert list(result.table["incidents"]) == [4, 4, 3]
    # a set named explicitly is used
    assert inc.area_ranking(table, con=con, area_set="city-areas").params["area_set"] == "city-areas"
    with pytest.raises(DataError, match=r"area set 'nope' is not loaded; loaded: city-areas, other"):
        inc.area_ranking(table, con=con, area_set="nope")
    # a set of another kind joined to the community-area ids would give plausible but wrong rates: refused
    con.execute("INSERT INTO areas VALUES ('districts', 'district', '1', 'D1', ?, 10, NULL, 4)", [SQUARE])
    with pytest.raises(DataError, match=r"'districts': expected a set of community areas .*got a set of districts"):
        inc.area_ranking(table, con=con, area="community_area", area_set="districts")
    # an area column these incidents do not fill: named, with the ones they do
    with pytest.raises(DataError, match=r"no.* neighbourhood id; expected an area column they fill \(community_area\)"):
        inc.area_ranking(table, con=con, area="neighbourhood")


def test_concentration_over_areas_counts_areas_without_incidents(con: duckdb.DuckDBPyConnection, table: Any) -> None:
    result = inc.concentration(table, con=con, unit="area")
    # 4 areas of city-areas (area 4 has none); counts busiest first 4, 4, 3, 0 of 11.
    # top 1% of 4 units = ⌈0.04⌉ = 1 unit → 4/11; half: 4/11 = 0.36 < 0.5 ≤ 8/11 → 2 of 4 units = 0.5;
    # Gini with ascending y = 0, 3, 4, 4: 2·(1·0 + 2·3 + 3·4 + 4·4) / (4·11) − 5/4 = 68/44 − 1.25 = 0.2955
    assert result.units_total == 4 and result.incidents_total == 11
    assert result.top_1pct == pytest.approx(4 / 11)
    assert result.units_for_half == 0.5
    assert result.gini == pytest.approx(68 / 44 - 1.25)
    assert any("1 of 4 units (25.0%) had no incidents" in n for n in result.notes)
    assert any("Units: community areas of city-areas" in n for n in result.notes)


def test_concentration_over_areas_with_an_area_outside_the_set(tmp_path: Path) -> None:
    # an incident in area 9, which the set does not know: it is a fifth unit, not an error
    extra = [("k13", T(2024, 3, 6, 9), "hour", "arson", C[0], C[1], "9")]
    with build(tmp_path / "w.duckdb", extra=extra) as con, incident_table(con) as t:
        result = inc.concentration(t, con=con, unit="area")
    assert result.units_total == 5 and result.incidents_total == 12
    assert any("1 area id(s) with incidents are not in city-areas" in n and n.endswith(": 9") for n in result.notes)


def test_concentration_over_grid_cells(table: Any) -> None:
    result = inc.concentration(table, unit="grid", cell_m=150)
    cells = ag.grid_counts(table, cell_m=150, period=None).table
    # only cells with incidents are places; the 11 located incidents (k11 has none) are in them
    assert result.units_total == len(cells) and result.incidents_total == 11
    assert (cells["incidents"] > 0).all() and cells["incidents"].sum() == 11
    busiest = cells["incidents"].max()
    assert result.top_1pct == pytest.approx(busiest / 11)  # ⌈1% of the cells⌉ = 1 cell
    assert any("1 incidents without coordinates" in n for n in result.notes)
    with pytest.raises(DataError, match="unit: expected grid or area, got 'hexagon'"):
        inc.concentration(table, unit="hexagon")  # type: ignore[arg-type]


# -- hot spots -----------------------------------------------------------------------------------------
def test_hotspots_place_every_cell_zero_cells_included(table: Any) -> None:
    with pytest.warns(SparseDataWarning):
        result = inc.hotspots(table, cell_m=150, permutations=99, seed=1, study_area="rectangle")
    t = result.table
    cells = ag.grid_counts(table, cell_m=150, period=None).table
    assert len(t) == (cells["cell_x"].max() - cells["cell_x"].min() + 1) * (
        cells["cell_y"].max() - cells["cell_y"].min() + 1
    )
    assert (t["incidents"] == 0).sum() == len(t) - len(cells) > 0
    assert t[["x_m", "y_m", "lat", "lon"]].notna().all().all()
    # the cells with incidents sit where grid_counts puts them
    merged = cells.merge(t, on=["cell_x", "cell_y"], suffixes=("", "_gi"))
    np.testing.assert_allclose(merged["lat_gi"], merged["lat"], atol=1e-9)
    np.testing.assert_allclose(merged["lon_gi"], merged["lon"], atol=1e-9)
    assert (merged["incidents_gi"] == merged["incidents"]).all()
    # a zero cell one step east of a counted cell is one cell width (150 m) east of it
    row = cells.iloc[0]
    east = t[(t["cell_x"] == row["cell_x"] + 1) & (t["cell_y"] == row["cell_y"])].iloc[0]
    assert east["x_m"] - row["x_m"] == pytest.approx(150)
    assert east["lat"] == pytest.approx(row["lat"], abs=1e-9) and east["lon"] > row["lon"]
    assert result.params["rows_without_coordinates"] == 1 and result.params["cell_m"] == 150


def test_persistent_places_its_cells(table: Any) -> None:
    result = inc.persistent(table, cell_m=250, period="month", top_share=0.05, min_periods_share=0.5)
    assert len(result.table) > 0
    assert result.table[["lat", "lon"]].notna().all().all()
    assert result.table["lat"].between(41.87, 41.90).all() and result.table["lon"].between(-87.64, -87.61).all()
    assert result.params["period"] == "month"


# -- near repeats --------------------------------------------------------------------------------------
def test_near_repeat_limits_to_the_most_recent_points(table: Any) -> None:
    # 11 located incidents; the 5 most recent: k12 (Mar 5), k10 (Feb 20), k9 (Feb 10), k8 (Feb 1), k7 (Jan 31)
    result = inc.near_repeat(table, permutations=19, max_points=5)
    assert result.params["points"] == 5 and result.params["located"] == 11 and result.params["incidents"] == 5
    assert result.notes[-1] == "Only the 5 most recent of 11 located incidents were tested (from 2024-01-31)."
    # all 11 fit: no such note
    for limit in (11, 1000):
        every = inc.near_repeat(table, permutations=19, max_points=limit)
        assert every.params["points"] == 11
        assert not any("most recent" in n for n in every.notes)
    with pytest.raises(DataError, match=r"max_points: expected a whole number ≥ 2 .*got 1"):
        inc.near_repeat(table, max_points=1)


def test_near_repeat_keeps_the_same_points_on_ties(tmp_path: Path) -> None:
    # six incidents on the same day (day precision): which 3 are "most recent" is settled by the key
    same_day = [(f"s{i}", T(2024, 4, 1), "day", "burglary", A[0] + i * 1e-4, A[1], "1") for i in range(6)]
    with build(tmp_path / "w.duckdb", extra=same_day) as con, incident_table(con) as t:
        runs = [inc.incident_points(t, ag.data_origin(t), limit=3) for _ in range(3)]
    assert len(runs[0]) == 3
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other)
    # keys s5, s4, s3 (descending) are kept: the largest latitudes
    assert runs[0]["latitude"].tolist() == pytest.approx([A[0] + i * 1e-4 for i in (3, 4, 5)])


# -- when ----------------------------------------------------------------------------------------------
def test_weekly_profile_and_seasonality(table: Any) -> None:
    with pytest.warns(SparseDataWarning, match="mostly noise"):
        profile = inc.weekly_profile(table)
    # k9 is known to the day only: left out; 11 in the profile; k1 on Monday 2024-01-01 at 10:00
    assert profile.excluded_day_precision == 1 and profile.table["incidents"].sum() == 11
    cell = profile.table[(profile.table["weekday"] == 0) & (profile.table["hour"] == 10)]
    assert cell["incidents"].tolist() == [1]
    season = inc.seasonality(table)
    # the data cover 2024-01-01 … 2024-03-05: January (k1..k7 = 7) and February (k8..k10 = 3) are complete,
    # March is partial (an incident at 10:00 on 1 January does not make January partial)
    assert season.table["month"].tolist() == [1, 2] and season.table["incidents"].tolist() == [7, 3]
    assert any("partial month(s) left out: 2024-03" in n for n in season.notes)
    # a rare offence judged on the source's span: homicide (k10 only, 20 February) still has a complete February
    homicide = inc.IncidentFilter(("homicide",))
    rare = inc.seasonality(homicide.apply(table), span=homicide.span(table))
    assert rare.table[["month", "incidents"]].to_dict("list") == {"month": [2], "incidents": [1]}


def test_offence_and_monthly_counts(table: Any) -> None:
    offences = inc.offence_counts(table)
    # robbery 4, larceny 4, burglary 3, homicide 1 (ties by name)
    assert offences[["offence", "incidents"]].values.tolist() == [
        ["larceny", 4], ["robbery", 4], ["burglary", 3], ["homicide", 1]
    ]  # fmt: skip
    assert offences["share"].sum() == pytest.approx(1)
    assert inc.monthly_counts(table)["incidents"].tolist() == [7, 3, 2]


def test_density_has_lat_lon(table: Any) -> None:
    result = inc.density(table, cell_m=50, bandwidth_m=200)
    assert result.table[["lat", "lon"]].notna().all().all()
    top = result.table.sort_values("density").iloc[-1]
    # the densest cell is near one of the three clusters
    assert min(abs(top["lat"] - c[0]) + abs(top["lon"] - c[1]) for c in (A, B, C)) < 0.003


# -- real data: Toronto Major Crime Indicators 2014–2019 -----------------------------------------------
@pytest.fixture(scope="module")
def toronto(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    csv = real_data / "toronto_mci_2014_2019" / "toronto_mci_2014_2019.csv.gz"
    if not csv.exists():
        pytest.skip(f"real data file {csv} is absent")
    db = tmp_path_factory.mktemp("toronto") / "toronto.duckdb"
    con = warehouse.connect(db)
    load_incident_file(con, csv, "toronto-mci")
    con.close()
    with incident_table(db) as t:
        yield t


def test_toronto_concentration(toronto: Any) -> None:
    result = inc.concentration(toronto, unit="grid", cell_m=150)
    assert result.incidents_total == 180_886  # PROVENANCE.md: every row has coordinates
    # the law of crime concentration: a small share of places holds a large share of incidents
    assert result.top_10pct > 0.40 and 0.02 < result.units_for_half < 0.20
    assert 0.4 < result.gini < 0.9
    areas = inc.concentration(toronto, unit="area", area="neighbourhood")
    assert areas.units_total == 140  # Toronto's 140 social-planning neighbourhoods
    assert areas.top_10pct < result.top_10pct  # whole neighbourhoods are less concentrated than 150 m cells


def test_toronto_hotspots(toronto: Any) -> None:
    result = inc.hotspots(toronto, cell_m=250, permutations=0)
    t = result.table
    assert t[["lat", "lon"]].notna().all().all()
    assert t["lat"].between(43.5, 43.9).all() and t["lon"].between(-79.7, -79.1).all()
    hot = t[t["hotspot"] == "hot"]
    assert 0 < result.n_hot < 0.2 * len(t) and len(hot) == result.n_hot
    # the strongest hot spot is downtown (Yonge and Dundas is at 43.656, −79.381)
    best = hot.sort_values("z").iloc[-1]
    assert abs(best["lat"] - 43.656) < 0.02 and abs(best["lon"] + 79.381) < 0.03
    assert (hot["q_value"] <= 0.05).all()


def test_toronto_persistent(toronto: Any) -> None:
    recent = inc.IncidentFilter(start=dt.date(2018, 1, 1)).apply(toronto)
    result = inc.persistent(recent, cell_m=250, period="month")
    assert result.n_periods == 24  # 2018 and 2019
    stable = result.table[result.table["status"] == "stable"]
    assert 10 < len(stable) == result.n_stable
    assert (stable["share_of_periods"] >= 0.75).all()
    assert stable["lat"].between(43.5, 43.9).all()


def _box(lon0: float, lat0: float, lon1: float, lat1: float) -> str:
    ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def test_areas_without_ids_are_assigned_by_location(con: duckdb.DuckDBPyConnection) -> None:
    # two police districts: D1 holds A (k1–k4, and k12 at A + 5e-4/−5e-4), D2 holds B (k5–k8); C (k9, k10) lies in
    # neither; k11 has no coordinates. The incidents carry no district id, so they are placed by location.
    con.executemany(
        "INSERT INTO areas (area_set, area_kind, area_id, name, geometry, population, load_id) "
        "VALUES ('districts', 'district', ?, ?, ?, ?, 3)",
        [
            ("D1", "North", _box(-87.632, 41.878, -87.628, 41.882), 5000),
            ("D2", "South", _box(-87.627, 41.883, -87.623, 41.887), None),
        ],
    )
    with incident_table(con, source="city") as t:
        result = inc.area_ranking(t, con=con, area_set="districts")
    table = result.table.set_index("area")
    assert table.loc["D1", "incidents"] == 5 and table.loc["D2", "incidents"] == 4
    # rate: 5 incidents / 5,000 residents × 100,000 = 100 per 100,000
    assert table.loc["D1", "rate"] == pytest.approx(100.0)
    assert result.params["by_location"] is True and result.params["area"] == "district"
    assert any("by location" in n and "2 located incidents fall in none" in n for n in result.notes)


def test_the_area_column_defaults_to_the_one_filled_most(con: duckdb.DuckDBPyConnection) -> None:
    with incident_table(con, source="city") as t:
        assert inc.default_area(t) == "community_area"
        result = inc.area_ranking(t, con=con)
    assert result.params["area"] == "community_area" and result.params["area_set"] == "city-areas"


def test_incidents_with_no_area_ids_need_an_area_set(tmp_path: Path) -> None:
    c = build(tmp_path / "bare.duckdb", areas=False)
    c.execute("UPDATE incidents SET community_area = NULL")
    try:
        with incident_table(c, source="city") as t, pytest.raises(DataError, match="--areas SET"):
            inc.area_ranking(t, con=c)
    finally:
        c.close()


@pytest.mark.filterwarnings("ignore::crimelens.errors.SparseDataWarning")  # 11 incidents: sparse by design
def test_whole_period_grid_can_be_shared(table: Any) -> None:
    # the report counts the grid once for the concentration curve and Gi*: the same results as counting twice
    grid = ag.grid_counts(table, cell_m=250.0, period=None)
    assert inc.hotspots(table, cell_m=250.0, permutations=0, grid=grid).table.equals(
        inc.hotspots(table, cell_m=250.0, permutations=0).table
    )
    shared = inc.concentration(table, cell_m=250.0, grid=grid)
    assert shared.gini == inc.concentration(table, cell_m=250.0).gini
    with pytest.raises(DataError, match="expected whole-period counts on 150 m cells, got 250 m"):
        inc.hotspots(table, cell_m=150.0, permutations=0, grid=grid)
    weekly = ag.grid_counts(table, cell_m=250.0, period="week")
    with pytest.raises(DataError, match="by week"):
        inc.concentration(table, cell_m=250.0, grid=weekly)
