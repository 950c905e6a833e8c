"""The report's hotspot-forecast section (report/forecast.py) on a small seeded city, and its hook in build.py."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import seeded_city_warehouse
from crimelens import warehouse
from crimelens.report.blocks import Runner
from crimelens.report.forecast import (
    FORECAST_CARD,
    ForecastReportParams,
    evaluation_frame,
    forecast_section,
    ranked_frame,
)


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 seeded incidents over 2021–2022, half in a tight hot spot in the West End."""
    return seeded_city_warehouse(tmp_path_factory.mktemp("frep"), n=2000, seed=11, spread_deg=0.001, hot_lon=-79.41)


def test_forecast_section_map_tables_and_card(city_db: Path) -> None:
    con = duckdb.connect(str(city_db), read_only=True)
    run = Runner(con, "city")
    params = ForecastReportParams(weeks=6, cell_m=300.0, methods=("naive", "sepp"), n_boot=50, top=5)
    (section,) = forecast_section(run, ["city"], params)
    block, card = section.blocks
    assert block.unavailable is None, block.unavailable
    assert "forecast.evaluate[city]" in run.analyses
    # the map is a Vega-Lite grid map figure (drawn by the browser); the evaluation and ranked tables are there
    maps = [str(f) for f in block.figures if "map-figure" in str(f)]
    assert len(maps) == 1 and "data-vega" in maps[0] and '"kind":"grid_map"' in maps[0]
    html = "".join(str(t) for t in block.tables)
    assert "Hit rate 5%" in html and "vs naive at 5%" in html and "90% interval" in html
    assert "West End" in html  # the hottest cells lie in the West End hot spot
    assert any("6 weeks" in p for p in block.paragraphs)
    assert card.paragraphs[: len(FORECAST_CARD)] == list(FORECAST_CARD)
    text = " ".join(card.paragraphs)
    for must in ("Police-recorded", "Feedback loops", "Place-based only", "Uncertainty"):
        assert must in text
    con.close()


def test_frames_show_every_method_and_ranked_cells_with_intervals(city_db: Path) -> None:
    from crimelens.models.hotspots import evaluate_forecasts, predict_hotspots

    con = duckdb.connect(str(city_db), read_only=True)
    res = evaluate_forecasts(con, "city", cell_m=300.0, train_days=120, start="2022-10-01", end="2022-11-30",
                             methods=("naive", "sepp"), n_boot=50)  # fmt: skip
    frame = evaluation_frame(res)
    assert list(frame["method"]) == ["naive", "sepp"]
    assert frame.loc[0, "vs_naive_0.05"] == "—"
    assert frame.loc[1, "vs_naive_0.05"].startswith(("+", "-"))
    pred = predict_hotspots(con, "city", method="naive", cell_m=300.0, train_days=120)
    ranked = ranked_frame(pred, 3)
    assert list(ranked["rank"]) == [1, 2, 3]
    lo, hi = pred.table.loc[0, "low"], pred.table.loc[0, "high"]
    assert ranked.loc[0, "interval"] == f"{int(lo)}–{int(hi)}"
    assert lo <= pred.table.loc[0, "expected"] <= hi
    con.close()


def test_too_little_history_says_so_and_the_report_goes_on(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 200
    days = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 40, n), unit="D")
    pd.DataFrame(
        {"id": np.arange(n), "date": days.strftime("%Y-%m-%d"), "offence": "Theft",
         "lat": rng.uniform(43.68, 43.72, n), "lon": rng.uniform(-79.44, -79.36, n)}
    ).to_csv(tmp_path / "short.csv", index=False)  # fmt: skip
    (tmp_path / "short.toml").write_text(
        'source = "short"\n[columns]\nkey = "id"\ndate = "date"\noffence = "offence"\nlatitude = "lat"\n'
        'longitude = "lon"\n[options]\ntimezone = "America/Toronto"\n[offences]\nTheft = "larceny"\n'
    )
    con = warehouse.connect(tmp_path / "short.duckdb")
    warehouse.load_incidents(con, tmp_path / "short.csv", "mapped-csv", mapping=tmp_path / "short.toml")
    (section,) = forecast_section(Runner(con, "short"), ["short"], ForecastReportParams(weeks=8))
    assert section.blocks[0].unavailable is not None
    assert "at least 28 days" in section.blocks[0].unavailable
    assert forecast_section(Runner(con, "short"), []) == []
    con.close()


@pytest.mark.slow
def test_report_with_models_includes_the_forecast_section(city_db: Path, tmp_path: Path) -> None:
    from crimelens.report import build_report

    db = tmp_path / "copy.duckdb"
    db.write_bytes(city_db.read_bytes())
    con = duckdb.connect(str(db))
    out = build_report(con, tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    assert 'id="forecast"' in html
    assert "Model card: the hotspot forecast" in html
    out2 = build_report(con, tmp_path / "r2.html", models=False)
    assert 'id="forecast"' not in out2.read_text(encoding="utf-8")
    con.close()


def test_simulated_data_are_labelled_in_the_forecast_section(city_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "sim.duckdb"
    db.write_bytes(city_db.read_bytes())
    con = duckdb.connect(str(db))
    con.execute("UPDATE incident_sources SET simulated = true WHERE source = 'city'")
    params = ForecastReportParams(weeks=4, cell_m=300.0, methods=("naive",), n_boot=20)
    (section,) = forecast_section(Runner(con, "city"), ["city"], params)
    block = section.blocks[0]
    assert block.title.endswith("(SIMULATED DATA)")
    assert "SIMULATED" in block.paragraphs[0]
    assert any("SIMULATED" in str(f) for f in block.figures)  # on the map too
    con.close()
