"""`crimelens model classify` through the real entry point: tables, the JSON shape, CSV, one-line errors."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.cli import app

runner = CliRunner()


@pytest.fixture
def marshall_db(_real_warehouses: dict[str, Path], tmp_path: Path) -> Path:
    db = tmp_path / "m.duckdb"
    shutil.copy(_real_warehouses["ucr-marshall"], db)
    return db


@pytest.mark.slow
def test_classify_json_shape_on_marshall(marshall_db: Path) -> None:
    result = runner.invoke(
        app, ["model", "classify", "--target", "top-quartile", "--start", "2005", "--json", "--db", str(marshall_db)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["command"] == "model classify"
    assert {"title", "params", "rows", "notes", "warnings"} <= set(data)
    assert data["target"] == "top-quartile" and data["unit"] == "jurisdiction"
    assert 0.2 < data["base_rate"] < 0.3
    assert [f["test_period"] for f in data["folds"]] == list(range(2005, 2016))
    for name in ("persistence_rank", "persistence_class", "historical_mean", "logistic", "lightgbm"):
        m = data["methods"][name]
        for metric in ("roc_auc", "auprc", "f1", "brier"):
            lo, hi = m[f"{metric}_ci"]
            assert lo <= m[metric] <= hi, (name, metric)
    assert data["methods"]["persistence_rank"]["kind"] == "baseline"
    assert data["methods"]["lightgbm"]["kind"] == "model"
    gain = data["best_gain"]
    assert gain["baseline"] in ("persistence_rank", "persistence_class", "historical_mean")
    assert gain["roc_auc_ci"][0] <= gain["roc_auc"] <= gain["roc_auc_ci"][1]
    assert data["params"]["seed"] == 0 and data["params"]["n_boot"] == 1000
    assert data["predictions"] is None
    assert any("Police-recorded" in n for n in data["notes"])


@pytest.mark.slow
def test_classify_table_and_csv(marshall_db: Path) -> None:
    args = ["model", "classify", "--target", "rise", "--start", "2008", "--predict", "--db", str(marshall_db)]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    out = table.stdout
    for text in ("persistence_rank", "last_change", "common_trend", "logistic", "lightgbm", "Gain over the best",
                 "Per test period", "Ranked for the next year", "Feedback loop", "Place-based only"):  # fmt: skip
        assert text in out, text
    assert "2,016" not in out and "2016" in out  # periods read as labels
    csv = runner.invoke(app, [*args, "--csv"])
    assert csv.exit_code == 0, csv.output
    frame = pd.read_csv(io.StringIO(csv.stdout))
    assert {"method", "kind", "roc_auc", "roc_auc_low", "roc_auc_high", "auprc", "brier", "f1"} <= set(frame.columns)
    assert len(frame) == 7  # five baselines for a rise, two models


def test_classify_user_errors_are_one_line(marshall_db: Path) -> None:
    db = ["--db", str(marshall_db)]
    cases = [
        (["--covariates", "on"], "covariates"),
        (["--covariates", "maybe"], "--covariates: expected on or off"),
        (["--target", "highest"], "target: expected one of top-quartile, top-share, rise"),
        (["--start", "20x0"], "--start: expected a year"),
        (["--start", "2000-01-01"], "start: expected a year"),
        (["--period", "week"], "period"),
        (["--target", "top-share", "--threshold", "2"], "between 0 and 1"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["model", "classify", *extra, *db])
        assert result.exit_code == 1, (extra, result.output)
        assert message in result.stderr and "Traceback" not in result.output, (extra, result.stderr)
        as_json = runner.invoke(app, ["model", "classify", *extra, *db, "--json"])
        assert as_json.exit_code == 1
        error = json.loads(as_json.stderr)
        assert error["command"] == "model classify" and message in error["error"]["message"]


def test_classify_help_and_fast_start() -> None:
    result = runner.invoke(app, ["model", "classify", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--source", "--target", "--threshold", "--unit", "--period", "--start", "--end", "--covariates",
                   "--seed", "--predict", "--json", "--csv", "--db"):  # fmt: skip
        assert option in result.output, option
    code = "import sys, crimelens.cli; print(sorted(m for m in ('sklearn', 'lightgbm', 'pandas') if m in sys.modules))"
    started = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "[]"
