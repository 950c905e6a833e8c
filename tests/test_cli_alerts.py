"""`crimelens alerts` and `crimelens alerts backtest` through the real entry point."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimelens.alerts.backtest import BacktestResult
from crimelens.alerts.run import AlertsResult
from crimelens.cli import app
from test_notify import Hook  # the local 127.0.0.1 webhook receiver

runner = CliRunner()


@pytest.fixture
def marshall_db(_real_warehouses: dict[str, Path], tmp_path: Path) -> Path:
    db = tmp_path / "m.duckdb"
    shutil.copy(_real_warehouses["ucr-marshall"], db)
    return db


def test_alerts_table_json_and_once_only(marshall_db: Path) -> None:
    table = runner.invoke(app, ["alerts", "--since", "2000", "--db", str(marshall_db)])
    assert table.exit_code == 0, table.output
    assert "alerts: ucr-marshall, jurisdiction × offence × year, 2000 to 2015 (glm)" in table.stdout
    assert "new alert(s) stored (data version 1)" in table.stdout and "police-recorded" in table.stdout
    result = runner.invoke(app, ["alerts", "--since", "2000", "--db", str(marshall_db), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["command"] == "alerts" and {"title", "params", "rows", "notes", "warnings"} <= set(data)
    for f in dataclasses.fields(AlertsResult):
        assert (f.name if f.name != "table" else "rows") in data, f.name
    assert data["new_alerts"] == [] and data["rows"] and data["method"] == "glm" and data["data_version"] == 1
    row = data["rows"][0]
    for key in ("where_id", "where_name", "offence", "period", "observed", "expected", "expected_low",
                "expected_high", "p_value", "q_value", "method", "elevated_since"):  # fmt: skip
        assert key in row
    assert row["observed"] > row["expected_high"] and row["q_value"] <= 0.05
    csv = runner.invoke(app, ["alerts", "--since", "2000", "--db", str(marshall_db), "--csv", "--no-store"])
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0].startswith("alert_key,source,unit")


def test_alerts_budget_method_and_notifications(marshall_db: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    with Hook(fail=1, status=500) as hook:
        args = ["alerts", "--method", "cusum", "--since", "2005", "--db", str(marshall_db), "--jsonl", str(jsonl),
                "--webhook", hook.url]  # fmt: skip
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        second = runner.invoke(app, args)
        assert second.exit_code == 0, second.output
    n = len(jsonl.read_text().splitlines())
    assert n > 0 and "a budget of 1 false alarms per 100 series-periods" in " ".join(first.stdout.split())
    assert hook.requests == 2 and len(hook.bodies) == 1 and len(hook.bodies[0]["alerts"]) == n
    assert f"Sent 0 alert(s) to webhook:{hook.url} ({n} sent before)" in second.stderr


def test_dead_webhook_is_reported_not_fatal(marshall_db: Path) -> None:
    from test_notify import _dead_url

    result = runner.invoke(app, ["alerts", "--since", "2010", "--db", str(marshall_db), "--webhook", _dead_url()])
    assert result.exit_code == 0, result.output
    assert "Not sent: webhook:" in result.stderr and "tried again on the next run" in result.stderr


def test_alerts_user_errors_are_one_line(marshall_db: Path, tmp_path: Path) -> None:
    cases = [
        (["--fdr", "2"], "--fdr: expected a false discovery rate between 0 and 1"),
        (["--method", "cusum", "--fdr", "0.05"], "gives a score, not a p-value"),
        (["--method", "nope"], "--method: expected one of"),
        (["--source", "nowhere"], "dataset 'nowhere' is not in the warehouse"),
        (["--period", "week"], "holds jurisdiction-years; expected year"),
        (["--since", "3000"], "--since: expected a period within the data"),
        (["--since", "yesterday"], "--since: expected a date YYYY-MM-DD or a year"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["alerts", "--db", str(marshall_db), *extra])
        assert result.exit_code == 1, (extra, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and message in " ".join(result.stderr.split()), extra
    as_json = runner.invoke(app, ["alerts", "--db", str(marshall_db), "--fdr", "2", "--json"])
    error = json.loads(as_json.stderr)
    assert as_json.exit_code == 1 and error["command"] == "alerts" and error["error"]["type"] == "ConfigError"
    missing = runner.invoke(app, ["alerts", "--db", str(tmp_path / "none.duckdb"), "--no-store"])
    assert missing.exit_code == 1 and "not found" in missing.stderr


def test_backtest_json_shape(marshall_db: Path) -> None:
    result = runner.invoke(app, ["alerts", "backtest", "--quick", "--method", "compstat", "--method", "glm",
                                 "--db", str(marshall_db), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["command"] == "alerts backtest"
    for f in dataclasses.fields(BacktestResult):
        assert (f.name if f.name != "table" else "rows") in data, f.name
    assert data["false_alarm_budget_per_100"] == 1.0
    assert set(data["methods"]) == {"compstat", "glm"}
    for m in data["methods"].values():
        assert set(m) >= {"detection", "median_delay", "false_alarms_per_100", "ppv"}
        assert set(m["detection"]) == {"+100%x1", "+100%x2"} and set(m["median_delay"]) == {"+100%x1", "+100%x2"}
    assert set(data["oracle"]["detection"]) == {"+100%x1", "+100%x2"}
    table = runner.invoke(app, ["alerts", "backtest", "--quick", "--method", "compstat", "--db", str(marshall_db)])
    assert table.exit_code == 0, table.output
    assert "Targets (+100%x2 found within 2 periods, budget 1 per 100" in table.stdout and "oracle" in table.stdout


def test_backtest_bad_budget_is_a_user_error(marshall_db: Path) -> None:
    result = runner.invoke(app, ["alerts", "backtest", "--budget", "0", "--db", str(marshall_db)])
    assert result.exit_code == 1 and "--budget: expected false alarms per 100" in " ".join(result.stderr.split())


def test_alerts_help_through_the_console_script() -> None:
    exe = Path(sys.executable).with_name("crimelens")
    done = subprocess.run([str(exe), "alerts", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--webhook" in done.stdout and "backtest" in done.stdout


def test_docs_example_runs_as_documented(marshall_db: Path) -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "alerts.md").read_text()
    args = ["alerts", "--source", "ucr-marshall", "--since", "2000"]
    assert "crimelens " + " ".join(args) in doc
    result = runner.invoke(app, [*args, "--db", str(marshall_db)])
    assert result.exit_code == 0, result.output
    assert "(glm)" in result.stdout and "Nassau County" in result.stdout
