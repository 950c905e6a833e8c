"""The backtest: splits, the oracle, calibrated budgets, the leakage check, and a quick run on real data."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from crimelens.alerts import backtest as bt
from crimelens.alerts.backtest import Split, default_split, run_backtest, scenario_name
from crimelens.alerts.detectors import Detection
from crimelens.alerts.series import SeriesPanel, ucr_series
from crimelens.errors import ConfigError


def _weekly(n: int = 60, weeks: int = 4 * 52, seed: int = 1) -> SeriesPanel:
    rng = np.random.default_rng(seed)
    season = 1 + 0.2 * np.sin(2 * np.pi * np.arange(weeks) / 52)
    mu = rng.uniform(2, 12, size=(n, 1)) * season
    periods = pd.date_range("2015-01-05", periods=weeks, freq="W-MON")
    keys = pd.DataFrame({"where": [f"N{i}" for i in range(n)], "name": [f"N{i}" for i in range(n)], "offence": "all"})
    return SeriesPanel("sim", "incidents", "week", rng.poisson(mu).astype(float), keys, periods)


def test_scenario_names_and_splits() -> None:
    assert scenario_name(1.0, 2) == "+100%x2" and scenario_name(0.25, 1) == "+25%x1"
    # 312 weeks: the last 104 tested, the 104 before calibrated, the first 104 warm-up
    assert default_split(_weekly(weeks=312)) == Split(104, 208, 312)
    # one year of weeks (no prior year): 17 weeks warm-up, the rest halved
    assert default_split(_weekly(weeks=51)) == Split(17, 34, 51)


def test_oracle_expectation_by_hand() -> None:
    # yearly, ± 2 years, the year itself left out: t = 2 → mean(1, 2, 4, 5) = 3; t = 0 → mean(2, 3) = 2.5
    mu = bt._oracle_mu(np.array([[1.0, 2.0, 3.0, 4.0, 5.0]]), "year")
    assert mu[0, 2] == pytest.approx(3.0) and mu[0, 0] == pytest.approx(2.5)


def test_backtest_on_simulated_series() -> None:
    panel = _weekly()
    res = run_backtest(panel, methods=("compstat", "recent-z", "pooled"), sizes=(0.5, 1.0), durations=(1, 2),
                       replicates=2, seed=4)  # fmt: skip
    assert set(res.methods) == {"compstat", "recent-z", "pooled"} and "detection" in res.oracle
    assert res.calibration_periods[0] < res.test_periods[0]
    for name, m in [*res.methods.items(), ("oracle", res.oracle)]:
        # calibrated to 1 per 100 on earlier data: on the test periods of the same kind of noise, near 1 (< 2.5)
        assert 0 <= m["false_alarms_per_100"] < 2.5, name
        det = m["detection"]
        assert set(det) == {"+50%x1", "+50%x2", "+100%x1", "+100%x2"}
        # a bigger spike is found at least as often; two weeks give two chances
        assert det["+100%x2"] >= det["+50%x2"] - 0.05 and det["+100%x2"] >= det["+100%x1"] - 0.05
    # the oracle (the true mean) finds more than the plain CompStat rule; nothing beats it beyond chance
    assert res.oracle["detection"]["+100%x2"] > res.methods["compstat"]["detection"]["+100%x2"]
    assert not any("leakage" in c for c in res.checks)
    rows = res.table
    assert len(rows) == 4 * 4 and (rows["spikes"] == 2 * 60).all()
    assert (rows["detection_low"] <= rows["detection"]).all() and (rows["detection"] <= rows["detection_high"]).all()
    assert set(res.bands["method"]) == {"compstat", "recent-z", "pooled", "oracle"}


def test_leakage_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    panel = _weekly(n=40)
    clean = panel.counts.copy()
    real_detect = bt.detect

    def cheating(p: SeriesPanel, method: str, **kwargs: object) -> Detection:
        d = real_detect(p, method, **kwargs)  # type: ignore[arg-type]
        if method != "recent-z":
            return d
        # a "method" that knows the clean counts: it sees exactly what was injected (future knowledge)
        return Detection(method, p.counts - clean, None, d.expected, d.lower, d.upper, d.elevated)

    monkeypatch.setattr(bt, "detect", cheating)
    res = run_backtest(panel, methods=("recent-z", "pooled"), sizes=(1.0,), durations=(2,), replicates=1)
    assert res.methods["recent-z"]["detection"]["+100%x2"] > res.oracle["detection"]["+100%x2"]
    assert any(c.startswith("recent-z detects") and "leakage" in c for c in res.checks)


def test_backtest_bad_options() -> None:
    panel = _weekly(n=10)
    with pytest.raises(ConfigError, match="--method"):
        run_backtest(panel, methods=("magic",))
    with pytest.raises(ConfigError, match="--budget"):
        run_backtest(panel, budget=-1)
    with pytest.raises(ConfigError, match="replicates"):
        run_backtest(panel, replicates=0)


def test_seasonal_methods_are_skipped_without_a_prior_year() -> None:
    res = run_backtest(_weekly(weeks=51), methods=("recent-z", "seasonal-exact"), sizes=(1.0,), durations=(1,))
    assert "seasonal-exact" in res.skipped and "prior year" in res.skipped["seasonal-exact"]
    assert set(res.methods) == {"recent-z"}


def test_quick_backtest_on_marshall(marshall_con: duckdb.DuckDBPyConnection) -> None:
    panel = ucr_series(marshall_con, "ucr-marshall")
    res = run_backtest(panel, methods=("compstat", "glm", "pooled"), sizes=(1.0,), durations=(1, 2), replicates=1)
    assert res.calibration_periods == ("1990", "2002") and res.test_periods == ("2003", "2015")
    # +100% of a city's violent crime in a year is far outside its year-to-year variation: the oracle finds most
    assert res.oracle["detection"]["+100%x2"] > 0.8
    assert res.methods["glm"]["detection"]["+100%x2"] > 0.6
    for m in res.methods.values():
        assert m["ppv"] is None or 0 <= m["ppv"] <= 1
        assert not math.isnan(m["false_alarms_per_100"])


@pytest.mark.slow
def test_bench_quick_writes_its_section_and_keeps_the_others(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    out.write_text(
        "# crimelens benchmarks\n\n## Ingest\n\nkept\n\n## Alerts backtest\n\nold\n\n## Everyday commands\n\nkept too\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "bench" / "alerts_backtest.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "## Ingest\n\nkept" in text and "## Everyday commands\n\nkept too" in text and "\nold\n" not in text
    assert text.count("## Alerts backtest") == 1
    for label in ("### Chicago 2022", "### Toronto MCI 2014–19", "### Marshall Project UCR"):
        assert label in text
    assert "| **oracle** |" in text and "Targets (+100%x2 found within 2 periods, budget 1 per 100" in text
