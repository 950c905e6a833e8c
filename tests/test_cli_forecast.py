"""`crimelens forecast evaluate | predict` through the real entry point, on a small seeded warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import seeded_city_warehouse
from crimelens.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded city of 3,000 incidents over 2021–2022 in two neighbourhoods, hot spots in the west one."""
    return seeded_city_warehouse(tmp_path_factory.mktemp("fcli"), n=3000, seed=7, spread_deg=0.002, hot_lon=-79.40)


def test_evaluate_json_shape(city_db: Path) -> None:
    args = ["forecast", "evaluate", "--db", str(city_db), "--start", "2022-06-01", "--end", "2022-07-31",
            "--methods", "naive,prospective,sepp", "--cell-size", "300", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["command"] == "forecast evaluate"
    assert set(data["methods"]) == {"naive", "prospective", "sepp"}
    naive = data["methods"]["naive"]
    assert set(naive["hit_rate"]) == {"0.01", "0.05", "0.1", "0.2"}
    for key in ("hit_rate_ci", "pai", "pei", "pei_star", "seconds_per_forecast"):
        assert key in naive
    # coverage of the 90% count intervals: all cell-periods, the top 5% flagged, and the randomised PIT
    for key in ("interval_coverage_90", "interval_coverage_90_top5", "pit_coverage_90"):
        assert 0.0 <= naive[key] <= 1.0, key
    assert naive["interval_coverage_90"] >= 0.9  # a whole-number interval holds at least 90%: mostly zeros here
    assert set(data["paired_vs_naive"]) == {"prospective", "sepp"}
    assert {"diff", "ci"} <= set(data["paired_vs_naive"]["sepp"]["0.05"])
    assert data["periods"] == 9 and data["study_area_cells"] > 0
    # the terminal table shows the same figures
    table = runner.invoke(app, args[:-1])
    assert table.exit_code == 0, table.output
    assert f"{naive['hit_rate']['0.05']:.3f}" in table.stdout


def test_evaluate_grid_offsets(city_db: Path) -> None:
    args = ["forecast", "evaluate", "--db", str(city_db), "--start", "2022-09-01", "--end", "2022-09-30",
            "--methods", "naive", "--grid-offsets", "2", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    offsets = json.loads(result.stdout)["offsets"]
    assert sorted({r["offset"] for r in offsets}) == [0.0, 0.5]


def test_predict_exports_geojson_and_csv(city_db: Path, tmp_path: Path) -> None:
    gj, csv = tmp_path / "f.geojson", tmp_path / "f.csv"
    args = ["forecast", "predict", "--db", str(city_db), "--method", "naive", "--cell-size", "300",
            "--geojson", str(gj), "--csv-file", str(csv), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["period_start"] == "2023-01-01" or data["period_start"] >= "2022-12-30"
    rows = data["rows"]
    assert rows[0]["rank"] == 1 and rows[0]["place"] in ("West End", "East End")
    assert all(r["low"] <= r["expected"] <= r["high"] or r["expected"] < 1 for r in rows)
    features = json.loads(gj.read_text())["features"]
    assert len(features) == len(rows)
    ring = features[0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    frame = pd.read_csv(csv)
    assert list(frame["rank"][:3]) == [1, 2, 3]
    table = runner.invoke(app, args[:-1])
    assert table.exit_code == 0 and "West End" in table.stdout


def test_bad_options_are_one_line(city_db: Path) -> None:
    result = runner.invoke(app, ["forecast", "evaluate", "--db", str(city_db), "--methods", "naive,oracle"])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "oracle" in result.stderr
    result = runner.invoke(app, ["forecast", "evaluate", "--db", str(city_db), "--horizon", "fortnight", "--json"])
    assert result.exit_code == 1 and json.loads(result.stderr)["error"]["type"] == "ConfigError"
    result = runner.invoke(app, ["forecast", "evaluate", "--db", str(city_db), "--start", "2021-02-01"])
    assert result.exit_code == 1 and "--train-days" in result.stderr


def test_boundary_study_area_when_polygons_are_loaded(city_db: Path, tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "b.duckdb"
    shutil.copy(city_db, db)

    def box(w: float, e: float, name: str, code: str) -> dict[str, object]:
        ring = [[w, 43.68], [e, 43.68], [e, 43.72], [w, 43.72], [w, 43.68]]
        return {"type": "Feature", "properties": {"id": name, "label": code},
                "geometry": {"type": "Polygon", "coordinates": [ring]}}  # fmt: skip

    # only the west part (-79.44 … -79.39) is loaded as a boundary: it holds the hot spot (at -79.40 ± 0.002,
    # half of the incidents) and 5/8 of the uniform ones (-79.44 … -79.36): about 0.5 + 0.5 · 5/8 ≈ 81 %, more than
    # half, so `auto` uses it; the cells whose centre lies east of -79.39 are left out
    gj = tmp_path / "west.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": [box(-79.44, -79.39, "West End", "W")]}))
    loaded = runner.invoke(app, ["areas", str(gj), "--set", "hoods", "--kind", "neighbourhood", "--id", "id",
                                 "--name", "label", "--db", str(db)])  # fmt: skip
    assert loaded.exit_code == 0, loaded.output
    base = ["forecast", "evaluate", "--db", str(db), "--start", "2022-09-01", "--end", "2022-09-30",
            "--methods", "naive", "--cell-size", "300", "--json"]  # fmt: skip
    auto = json.loads(runner.invoke(app, base).stdout)
    hist = json.loads(runner.invoke(app, [*base, "--study-area", "incidents"]).stdout)
    assert "inside the hoods polygons" in auto["study_area"]
    assert "at least one incident" in hist["study_area"]
    assert 0 < auto["study_area_cells"] < hist["study_area_cells"]
    # the place name comes from the polygons' name property
    pred = json.loads(
        runner.invoke(app, ["forecast", "predict", "--db", str(db), "--cell-size", "300", "--json"]).stdout
    )
    assert {r["place"] for r in pred["rows"]} <= {"W", "East End", ""}


def test_offence_filter(city_db: Path) -> None:
    base = ["forecast", "evaluate", "--db", str(city_db), "--start", "2022-09-01", "--end", "2022-09-30",
            "--methods", "naive", "--cell-size", "300", "--json"]  # fmt: skip
    every = json.loads(runner.invoke(app, base).stdout)
    robbery = json.loads(runner.invoke(app, [*base, "--offence", "robbery"]).stdout)
    # 30% of the incidents are robberies: fewer cells ever held one
    assert 0 < robbery["study_area_cells"] < every["study_area_cells"]
    assert robbery["params"]["offence"] == ["robbery"]
    bad = runner.invoke(app, [*base[:-1], "--offence", "robery"])
    assert bad.exit_code == 1 and "robery" in bad.stderr and "robbery" in bad.stderr
