"""`crimelens incidents …` through the real entry point: tables, --json, filters, --out, one-line errors, --help;
and one Spark run that must print exactly what DuckDB prints."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from crimelens import engine, warehouse
from crimelens.cli import app
from crimelens.cli.incidents import incidents_app
from crimelens.errors import ConfigError

pytestmark = [
    # ibis 12 still calls DuckDB 2's deprecated fetch_arrow_table(); nothing crimelens can change
    pytest.mark.filterwarnings(r"ignore:fetch_arrow_table\(\) is deprecated:DeprecationWarning"),
]

runner = CliRunner()
COMMANDS = sorted(get_command(incidents_app).commands)  # type: ignore[attr-defined]

T = dt.datetime
A, B, C = (41.8800, -87.6300), (41.8850, -87.6250), (41.8900, -87.6200)
#: key, occurred_at, precision, offence, lat, lon, community area. Per area: 1 → 4, 2 → 4, 3 → 3, none → 1.
INCIDENTS: list[tuple[Any, ...]] = [
    ("k1", T(2024, 1, 1, 10), "hour", "robbery", A[0], A[1], "1"),
    ("k2", T(2024, 1, 2, 11), "hour", "burglary", A[0] + 1e-4, A[1], "1"),
    ("k3", T(2024, 1, 3, 12), "hour", "larceny", A[0], A[1] + 1e-4, "1"),
    ("k4", T(2024, 1, 5, 23, 30), "minute", "robbery", A[0] + 1e-4, A[1] + 1e-4, "1"),
    ("k5", T(2024, 1, 10, 9), "hour", "burglary", B[0], B[1], "2"),
    ("k6", T(2024, 1, 15, 14), "hour", "larceny", B[0] + 1e-4, B[1], "2"),
    ("k7", T(2024, 1, 31, 23, 59), "minute", "larceny", B[0], B[1] + 1e-4, "2"),
    ("k8", T(2024, 2, 1, 0, 0), "minute", "robbery", B[0] + 1e-4, B[1] + 1e-4, "2"),
    ("k9", T(2024, 2, 10), "day", "burglary", C[0], C[1], "3"),
    ("k10", T(2024, 2, 20, 18), "hour", "homicide", C[0] + 1e-4, C[1], "3"),
    ("k11", T(2024, 3, 1, 8), "hour", "larceny", None, None, "3"),  # no coordinates
    ("k12", T(2024, 3, 5, 20), "hour", "robbery", A[0] + 5e-4, A[1] - 5e-4, None),  # no area
]
POPULATIONS = {"1": 1000, "2": 2000, "3": 500, "4": 4000}
SQUARE = '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}'


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse file with INCIDENTS (source 'city') and the area set 'city-areas' (area 4 has none)."""
    path = tmp_path_factory.mktemp("incidents") / "w.duckdb"
    con = warehouse.connect(path)
    con.execute(
        "INSERT INTO incident_sources VALUES ('city', 'mapped-csv', 'America/Chicago', false, 'test', 'test city')"
    )
    con.executemany(
        "INSERT INTO incidents (source, incident_key, occurred_at, time_precision, offence, offence_raw, latitude, "
        "longitude, community_area, load_id) VALUES ('city', ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        [(k, t, p, o, o.upper(), la, lo, ca) for k, t, p, o, la, lo, ca in INCIDENTS],
    )
    con.executemany(
        "INSERT INTO areas (area_set, area_kind, area_id, name, geometry, population, load_id) "
        "VALUES ('city-areas', 'community_area', ?, ?, ?, ?, 2)",
        [(a, f"Area {a}", SQUARE, pop) for a, pop in POPULATIONS.items()],
    )
    con.close()
    return path


def run(db: Path, *args: str) -> Any:
    result = runner.invoke(app, ["incidents", *args, "--db", str(db)])
    assert result.exit_code == 0, result.output
    return result


def run_json(db: Path, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run(db, *args, "--json").stdout)
    return data


def area_totals(data: dict[str, Any]) -> dict[str | None, int]:
    totals: dict[str | None, int] = {}
    for row in data["rows"]:
        totals[row["area"]] = totals.get(row["area"], 0) + row["incidents"]
    return totals


# -- counts --------------------------------------------------------------------------------------------
def test_counts_by_area_json_and_filters(db: Path) -> None:
    data = run_json(db, "counts", "--period", "year")
    assert data["scope"] == {
        "source": "city",
        "engine": "duckdb",
        "filter": {"offences": [], "start": None, "end": None},
    }
    assert data["by"] == "area" and data["area"] == "community_area" and data["period"] == "year"
    assert area_totals(data) == {"1": 4, "2": 4, "3": 3, None: 1}
    assert {row["period_start"] for row in data["rows"]} == {"2024-01-01T00:00:00"}
    # robbery: k1, k4 (area 1), k8 (area 2), k12 (no area)
    robbery = run_json(db, "counts", "--period", "year", "--offence", "robbery")
    assert area_totals(robbery) == {"1": 2, "2": 1, None: 1}
    assert robbery["scope"]["filter"]["offences"] == ["robbery"]
    two = run_json(db, "counts", "--period", "year", "--offence", "robbery", "--offence", "homicide")
    assert sum(area_totals(two).values()) == 5
    # February, both ends inclusive: k8 (area 2), k9, k10 (area 3)
    february = run_json(db, "counts", "--period", "month", "--since", "2024-02-01", "--until", "2024-02-29")
    assert area_totals(february) == {"2": 1, "3": 2}
    assert february["scope"]["filter"] == {"offences": [], "start": "2024-02-01", "end": "2024-02-29"}
    # --until is the whole day: k7 at 23:59 on 31 January is in January
    january = run_json(db, "counts", "--period", "month", "--until", "2024-01-31")
    assert sum(area_totals(january).values()) == 7
    # by offence and by week
    split = run_json(db, "counts", "--period", "week", "--by-offence", "--offence", "larceny")
    assert {row["offence"] for row in split["rows"]} == {"larceny"} and len(split["rows"]) == 4
    # a filter that matches nothing gives no rows (counts only; the statistics call it an error)
    assert run_json(db, "counts", "--offence", "arson")["rows"] == []


def test_counts_table_grid_h3_and_out(db: Path, tmp_path: Path) -> None:
    table = run(db, "counts", "--period", "year").stdout
    assert "Incidents by community area and year" in table and "2024-01-01" in table
    grid = run_json(db, "counts", "--by", "grid", "--period", "none", "--cell", "200")
    assert grid["period"] is None and grid["cell_m"] == 200
    assert sum(r["incidents"] for r in grid["rows"]) == 11 and grid["rows_without_coordinates"] == 1
    assert all(41.87 < r["lat"] < 41.90 for r in grid["rows"])
    note = run(db, "counts", "--by", "grid", "--period", "none").stdout
    assert "Note: 1 incidents without coordinates are not counted." in note
    hexes = run_json(db, "counts", "--by", "h3", "--period", "none", "--resolution", "9")
    assert hexes["resolution"] == 9 and sum(r["incidents"] for r in hexes["rows"]) == 11
    assert all(len(r["h3_cell"]) == 15 for r in hexes["rows"])
    # --out writes every row, whatever --limit shows
    out = tmp_path / "counts.csv"
    result = run(db, "counts", "--period", "week", "--limit", "2", "--out", str(out))
    frame = pd.read_csv(out)
    weekly = run_json(db, "counts", "--period", "week")["rows"]
    assert len(frame) == len(weekly) > 2 and frame["incidents"].sum() == 12
    assert list(frame.columns) == ["area", "period_start", "incidents"]
    assert f"Wrote {len(frame)} rows to" in result.stderr
    assert "more rows (use --limit 0 to show all, or --json)" in result.stdout


def test_counts_from_parquet(db: Path, tmp_path: Path) -> None:
    import duckdb

    pq = tmp_path / "incidents.parquet"
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute(f"COPY incidents TO '{pq}' (FORMAT parquet)")
    # no warehouse is opened: --db points nowhere
    data = run_json(tmp_path / "absent.duckdb", "counts", "--period", "year", "--parquet", str(pq))
    assert area_totals(data) == {"1": 4, "2": 4, "3": 3, None: 1} and data["scope"]["source"] is None
    ranked = run_json(tmp_path / "absent.duckdb", "areas", "--parquet", str(pq), "--offence", "robbery")
    assert ranked["params"]["area_set"] is None and [r["incidents"] for r in ranked["rows"]] == [2, 1]


# -- the statistics ------------------------------------------------------------------------------------
def test_when(db: Path) -> None:
    result = run(db, "when")
    assert "Incidents by weekday and hour" in result.stdout and "Mon" in result.stdout and "23:00" in result.stdout
    assert "Seasonality" in result.stdout and "January" in result.stdout
    assert "Caveat:" in result.stderr  # 11 incidents over 168 weekday-hours
    data = run_json(db, "when")
    assert data["scope"]["source"] == "city"
    assert len(data["hour_weekday"]["rows"]) == 168
    assert data["hour_weekday"]["params"] == {"incidents": 11, "excluded_day_precision": 1}
    assert [(r["month"], r["incidents"]) for r in data["seasonality"]["rows"]] == [(1, 7), (2, 3)]
    # homicide (one, on 20 February): February is still complete, judged on the source's span
    homicide = run_json(db, "when", "--offence", "homicide")
    assert [(r["month"], r["incidents"]) for r in homicide["seasonality"]["rows"]] == [(2, 1)]


def test_areas(db: Path) -> None:
    data = run_json(db, "areas")
    # rate per 100,000: area 3: 3 / 500 → 600, area 1: 4 / 1,000 → 400, area 2: 4 / 2,000 → 200, area 4: 0
    assert [(r["area"], r["rate"]) for r in data["rows"]] == [("3", 600.0), ("1", 400.0), ("2", 200.0), ("4", 0.0)]
    assert data["params"]["area_set"] == "city-areas" and data["scope"]["engine"] == "duckdb"
    robbery = run_json(db, "areas", "--offence", "robbery")
    # robbery: area 1: 2 / 1,000 → 200; area 2: 1 / 2,000 → 50
    assert [(r["area"], r["rate"]) for r in robbery["rows"][:2]] == [("1", 200.0), ("2", 50.0)]
    table = run(db, "areas", "--limit", "2").stdout
    assert "Areas ranked by rate per 100,000 residents" in table and "Area 3" in table and "Area 2" not in table


def test_concentration(db: Path) -> None:
    text = run(db, "concentration", "--unit", "area").stdout
    assert "4 places, 11 incidents" in text and "50.0% of places hold half" in text
    data = run_json(db, "concentration", "--unit", "area", "--since", "2024-01-06")
    # from 6 January: area 1 has none (its four are earlier), 2 → 4 (k5..k8), 3 → 3 (k9..k11), 4 none: 4 units;
    # busiest first 4, 3, 0, 0 of 7: the busiest of 4 areas (25%) holds 4/7 ≥ half
    summary = data["summary"]
    assert summary["units_total"] == 4 and summary["incidents_total"] == 7
    assert summary["units_for_half"] == 0.25 and summary["top_1pct"] == pytest.approx(4 / 7)
    assert data["scope"]["filter"]["start"] == "2024-01-06"
    grid = run_json(db, "concentration", "--cell", "100")
    assert grid["summary"]["incidents_total"] == 11 and grid["params"]["unit_kind"] == "grid cells"


def test_density(db: Path, tmp_path: Path) -> None:
    text = run(db, "density", "--bandwidth", "200", "--cell", "50", "--limit", "3").stdout
    assert "Kernel density of incidents (bandwidth 200 m, 50 m cells)" in text
    data = run_json(db, "density", "--bandwidth", "200", "--cell", "50")
    assert data["rows"] and all(r["lat"] is not None for r in data["rows"])
    out = tmp_path / "surface.csv"
    result = run(db, "density", "--bandwidth", "200", "--cell", "50", "--out", str(out))
    assert len(pd.read_csv(out)) == len(data["rows"]) and "cells to" in result.stderr


def test_hotspots(db: Path) -> None:
    data = run_json(db, "hotspots", "--permutations", "0", "--cell", "150")
    rows = data["rows"]
    assert sum(r["incidents"] for r in rows) == 11 and any(r["incidents"] == 0 for r in rows)
    assert all(r["lat"] is not None and r["lon"] is not None for r in rows)
    assert data["params"]["fdr"] is True and data["params"]["permutations"] == 0
    assert data["scope"]["source"] == "city"
    text = run(db, "hotspots", "--permutations", "19", "--no-fdr", "--alpha", "0.1")
    assert "Getis-Ord Gi* hot spots" in text.stdout and "without correction" in text.stdout


def test_hotspots_study_area_and_p_values(db: Path) -> None:
    # 10 located incidents in 3 clusters about 600 m apart: the footprint is their cells and the cells touching
    # them, the rectangle every cell of the box around them
    foot = run_json(db, "hotspots", "--permutations", "0", "--cell", "150")
    rect = run_json(db, "hotspots", "--permutations", "0", "--cell", "150", "--study-area", "rectangle")
    assert foot["params"]["study_area"] == "footprint" and foot["params"]["p_values"] == "exact"
    assert rect["params"]["study_area"] == "rectangle" and len(rect["rows"]) == rect["params"]["rectangle_cells"]
    assert len(foot["rows"]) < len(rect["rows"])
    assert foot["notes"][0].startswith("Study area: the 150 m cells with at least one incident")
    busy = {(r["cell_x"], r["cell_y"]) for r in rect["rows"] if r["incidents"]}
    tested = {(r["cell_x"], r["cell_y"]) for r in foot["rows"]}
    assert busy <= tested and all(
        any((x + dx, y + dy) in busy for dx in (-1, 0, 1) for dy in (-1, 0, 1)) for x, y in tested
    )
    normal = run_json(db, "hotspots", "--permutations", "0", "--p-values", "normal")
    assert all(r["p_value"] == pytest.approx(2 * r["p_norm"]) for r in normal["rows"])
    bad = runner.invoke(app, ["incidents", "hotspots", "--db", str(db), "--study-area", "lake"])
    assert bad.exit_code == 1 and bad.output.strip().splitlines() == [
        "Error: study_area: expected 'footprint', 'incidents' or 'rectangle', got 'lake'"
    ]


def test_persistent(db: Path) -> None:
    data = run_json(db, "persistent", "--period", "month", "--min-share", "0.5")
    assert data["params"]["period"] == "month" and data["rows"]
    assert {r["status"] for r in data["rows"]} <= {"stable", "emerging", "intermittent"}
    assert "Persistent hot spots" in run(db, "persistent").stdout


def test_near_repeat(db: Path) -> None:
    data = run_json(db, "near-repeat", "--permutations", "9", "--max-points", "5", "--distances", "0,500,1000")
    assert data["params"]["points"] == 5 and data["params"]["located"] == 11
    assert data["params"]["distance_bands_m"] == [0.0, 500.0, 1000.0]
    assert data["notes"][-1] == "Only the 5 most recent of 11 located incidents were tested (from 2024-01-31)."
    assert len(data["rows"]) == 2 * 3  # distance bands × time bands
    text = run(db, "near-repeat", "--permutations", "9").stdout
    assert "Near-repeat (Knox) test: 11 incidents" in text


# -- errors: one line, exit 1 --------------------------------------------------------------------------
def one_line_error(db: Path, *args: str) -> str:
    result = runner.invoke(app, ["incidents", *args, "--db", str(db)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def test_errors_are_one_line(db: Path, tmp_path: Path) -> None:
    line = one_line_error(db, "counts", "--source", "nope")
    assert line == "Error: incident dataset 'nope' is not in the warehouse; loaded incident datasets: city"
    line = one_line_error(db, "when", "--since", "2024-13-01")
    assert line == "Error: --since: expected a date YYYY-MM-DD, got '2024-13-01'"
    assert "--until: expected a date" in one_line_error(db, "areas", "--until", "yesterday")
    assert one_line_error(db, "counts", "--by", "hexagon") == "Error: --by: expected area, grid or h3, got 'hexagon'"
    line = one_line_error(db, "hotspots", "--offence", "theft")
    assert line.startswith("Error: offence: expected one of homicide, rape, robbery") and line.endswith("got theft")
    line = one_line_error(db, "hotspots", "--offence", "arson")
    assert line.startswith("Error: no incidents of city match the filter") and "arson" in line
    assert "is after --until" in one_line_error(db, "when", "--since", "2024-03-01", "--until", "2024-02-01")
    assert "area set 'nope' is not loaded" in one_line_error(db, "areas", "--areas", "nope")
    assert "--period none is for grid and h3" in one_line_error(db, "counts", "--period", "none")
    assert "cell_m: expected a cell size in metres" in one_line_error(db, "hotspots", "--cell", "1")
    assert "neighbourhood id" in one_line_error(db, "areas", "--area", "neighbourhood")
    assert "--distances: expected comma-separated numbers" in one_line_error(db, "near-repeat", "--distances", "a,b")
    empty = tmp_path / "empty.duckdb"
    warehouse.connect(empty).close()
    assert "holds no incident data yet" in one_line_error(empty, "counts")
    assert "not found" in one_line_error(tmp_path / "absent.duckdb", "when")


@pytest.mark.parametrize("name", COMMANDS)
def test_every_incidents_command_has_help(name: str) -> None:
    result = runner.invoke(app, ["incidents", name, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: crimelens incidents {name}")
    for option in ("--db", "--source", "--engine", "--offence", "--since", "--until", "--json"):
        assert option in result.output


def test_the_commands_are_all_there() -> None:
    expected = {"counts", "when", "areas", "concentration", "density", "hotspots", "persistent", "near-repeat"}
    assert set(COMMANDS) == expected
    result = runner.invoke(app, ["incidents", "--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.output


# -- Spark ---------------------------------------------------------------------------------------------
def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'crimelens[spark]')"
    try:
        engine.check_java()
    except ConfigError as exc:
        return str(exc)
    return None


@pytest.mark.slow
# PySpark 4.0 leaves the socket of each collect() to the garbage collector (a PySpark bug)
@pytest.mark.filterwarnings(r"ignore:unclosed <socket\.socket:ResourceWarning")
@pytest.mark.filterwarnings(r"ignore:Exception ignored in. <socket\.socket:pytest.PytestUnraisableExceptionWarning")
def test_counts_on_spark_equal_duckdb(db: Path) -> None:
    reason = _spark_missing()
    if reason is not None:
        pytest.skip(f"Spark engine unavailable: {reason}")
    args = ["counts", "--by", "area", "--period", "week", "--by-offence"]
    try:
        spark = run_json(db, *args, "--engine", "spark")
    finally:
        engine.stop_spark()
    duck = run_json(db, *args, "--engine", "duckdb")
    assert spark["scope"].pop("engine") == "spark" and duck["scope"].pop("engine") == "duckdb"
    assert spark == duck
    assert len(duck["rows"]) > 5 and sum(r["incidents"] for r in duck["rows"]) == 12
