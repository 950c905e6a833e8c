"""The report computes each analysis once: the key findings and the sections share results through the
report's memo (crimelens.analysis.memo), and an incident section counts the whole-period grid once."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from crimelens import warehouse
from crimelens.analysis.incidents import aggregate, panel, scope
from crimelens.analysis.jurisdictions import hotspots, ranking, statistics, trends
from crimelens.report import build_report
from crimelens.simulate import simulate
from crimelens.warehouse import load_areas

pytestmark = pytest.mark.slow


def _count(monkeypatch: pytest.MonkeyPatch, calls: Counter[str], module: Any, name: str) -> None:
    """Replace ``module.name`` by a wrapper counting each call that really runs (same name, so the memo's keys
    are unchanged)."""
    fn: Callable[..., Any] = getattr(module, name)

    @functools.wraps(fn)
    def counted(*args: Any, **kwargs: Any) -> Any:
        key = name + "(" + ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()) if k != "con") + ")"
        calls[key] += 1
        return fn(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def test_findings_and_sections_share_every_jurisdiction_analysis(
    marshall_con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    for module, names in (
        (ranking, ("rank", "top_k_concentration", "top_series", "profile")),
        (trends, ("year_over_year", "long_run_trends", "turning_points")),
        (statistics, ("offence_totals", "rates")),
        (hotspots, ("persistent_hotspots",)),
    ):
        for name in names:
            _count(monkeypatch, calls, module, name)
    build_report(marshall_con, tmp_path / "report.html", k=10)
    # every analysis ran once for its arguments: the findings asked as the sections do
    assert max(calls.values()) == 1, calls
    for name in ("year_over_year", "long_run_trends", "persistent_hotspots", "offence_totals", "top_k_concentration"):
        assert sum(v for key, v in calls.items() if key.startswith(name + "(")) == 1, (name, calls)
    # rankings: by count and by rate (ranks ≤ k, shown and cited), and by rate in full (how many are ranked)
    assert sorted(key for key in calls if key.startswith("rank(")) == [
        "rank(by=count, offence=violent_crime, top=10, year=2015)",
        "rank(by=rate, offence=violent_crime, top=10, year=2015)",
        "rank(offence=violent_crime, year=2015)",
    ]


def test_incident_section_counts_the_whole_period_grid_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv_path, areas = tmp_path / "city.csv", tmp_path / "areas.geojson"
    simulate(4_000, 1, 5, csv_path, areas_out=areas)
    con = warehouse.connect(tmp_path / "w.duckdb")
    try:
        warehouse.load_incidents(con, csv_path, "chicago", source="sim", simulated=True)
        load_areas(
            con, areas, area_set="sim-areas", area_kind="community_area", id_property="area_id",
            population_property="population",
        )  # fmt: skip
        calls: Counter[str] = Counter()
        for module, name in ((aggregate, "grid_counts"), (scope, "grid_counts"), (panel, "grid_panel")):
            _count(monkeypatch, calls, module, name)
        build_report(con, tmp_path / "report.html")
    finally:
        con.close()
    whole = {key: v for key, v in calls.items() if "period=None" in key}
    # concentration, the density surface and Gi* share one count; persistent hot spots count by month
    assert sum(whole.values()) == 1, calls
    assert sum(v for key, v in calls.items() if "period=month" in key) == 1, calls
