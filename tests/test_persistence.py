"""Tests for crimelens.analysis.persistence: persistent hotspots."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from typing import Any

import duckdb
import pytest

from crimelens.analysis.jurisdictions import hotspots as persistence
from crimelens.config import SETTINGS
from crimelens.errors import DataError
from test_stats import make_warehouse

# Rates per 100,000 (population 100,000, so counts = rates) over 2001-2004.
_RATES = {
    "H": [500, 500, 100, 500],  # top 1 in 2001, 2002, 2004
    "G": [100, 100, 600, 100],  # top 1 in 2003
    "M": [200, 200, 200, 200],
    "L": [50, 50, 50, 50],
}


def _con() -> duckdb.DuckDBPyConnection:
    return make_warehouse(
        [
            {"jurisdiction_id": j, "year": 2001 + i, "population": 100_000, "violent_crime": r}
            for j, rates in _RATES.items()
            for i, r in enumerate(rates)
        ]
    )


def test_hotspots_by_hand() -> None:
    result = persistence.persistent_hotspots(_con(), k=1, share=0.5, window=4)
    t = result.table
    assert t["jurisdiction_id"].tolist() == ["H"]
    row = t.iloc[0]
    assert row["years_in_top_k"] == 3 and row["share_of_years"] == pytest.approx(0.75)
    assert row["longest_run"] == 2  # 2001-2002, then 2004
    # medians of [500, 100, 200, 50] in 2001, 2002 and 2004 are (100 + 200) / 2 = 150; in 2003 H has 100 and
    # the median of [100, 600, 200, 50] is 150 too: over all four years (500 + 500 + 100 + 500) / 150 / 4 = 2.67,
    # over its three top years 500 / 150 = 3.33
    assert row["mean_ratio_to_median"] == pytest.approx((500 + 500 + 100 + 500) / 150 / 4)
    assert row["ratio_in_top_years"] == pytest.approx(500 / 150)
    assert row["latest_rate"] == pytest.approx(500.0) and row["latest_rank"] == 1
    assert result.params["period"] == "2001–2004"
    chart = result.chart()
    assert chart.kind == "barh" and chart.y == "share_of_years"


def test_lower_share_admits_more() -> None:
    t = persistence.persistent_hotspots(_con(), k=1, share=0.25, window=4).table
    assert t["jurisdiction_id"].tolist() == ["H", "G"]
    g = t.set_index("jurisdiction_id").loc["G"]
    assert g["share_of_years"] == pytest.approx(0.25) and g["ratio_in_top_years"] == pytest.approx(600 / 150)
    assert g["mean_ratio_to_median"] == pytest.approx((100 + 100 + 600 + 100) / 150 / 4)


def test_window_and_end() -> None:
    # window 2002-2003: H in the top 1 in 2002, G in 2003 → each 1 of 2 years
    result = persistence.persistent_hotspots(_con(), k=1, share=0.5, window=2, end=2003)
    assert sorted(result.table["jurisdiction_id"]) == ["G", "H"]
    assert result.params["start"] == 2002 and result.params["end"] == 2003
    g = result.table.set_index("jurisdiction_id").loc["G"]
    assert g["latest_rank"] == 1 and g["latest_rate"] == pytest.approx(600.0)


def test_missing_years_count_against() -> None:
    rows = [
        {"jurisdiction_id": j, "year": 2001 + i, "population": 100_000, "violent_crime": r}
        for j, rates in _RATES.items()
        for i, r in enumerate(rates)
        if not (j == "H" and i == 3)  # H has no 2004 data
    ]
    result = persistence.persistent_hotspots(make_warehouse(rows), k=1, share=0.75, window=4)
    assert result.table.empty  # H is in the top in 2 of the 4 window years, not 3
    t = persistence.persistent_hotspots(make_warehouse(rows), k=1, share=0.5, window=4).table
    h = t.set_index("jurisdiction_id").loc["H"]
    assert h["share_of_years"] == pytest.approx(0.5) and h.isna()["latest_rank"]


def test_short_data_window_is_noted() -> None:
    result = persistence.persistent_hotspots(_con(), k=1, share=0.5, window=10)
    assert result.params["n_years"] == 4
    assert any("shorter than 10" in n for n in result.notes)


def test_defaults_come_from_settings() -> None:
    import inspect

    params = inspect.signature(persistence.persistent_hotspots).parameters
    assert params["k"].default == SETTINGS["top_k"].default
    assert params["share"].default == SETTINGS["hotspot_share"].default
    assert params["window"].default == SETTINGS["hotspot_window"].default


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k: expected a whole number ≥ 1, got 0"),
        ({"share": 0}, r"share: expected a share of years in \(0, 1\]"),
        ({"share": 1.5}, r"share: expected a share of years in \(0, 1\]"),
        ({"window": 0}, "window: expected a whole number of years ≥ 1"),
        ({"end": 1990}, "year: expected a year with violent_crime counts"),
    ],
)
def test_bad_parameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        persistence.persistent_hotspots(_con(), **kwargs)


def test_marshall_hotspots_match_an_independent_count(marshall_con: duckdb.DuckDBPyConnection, real_file: Any) -> None:
    rates: dict[int, dict[str, float]] = defaultdict(dict)
    with real_file("ucr-marshall").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["department_name"] == "National" or "NA" in (r["violent_crime"], r["total_pop"]):
                continue
            rates[int(r["year"])][r["ORI"]] = int(r["violent_crime"]) / int(float(r["total_pop"])) * 1e5
    window = sorted(rates)[-10:]
    in_top: dict[str, int] = defaultdict(int)
    ratios: dict[str, list[float]] = defaultdict(list)
    all_ratios: dict[str, list[float]] = defaultdict(list)
    for y in window:
        values = sorted(rates[y].values(), reverse=True)
        median = statistics.median(values)
        for ori, rate in rates[y].items():
            all_ratios[ori].append(rate / median)
            if sum(v > rate for v in values) < 10:  # rank (min method) ≤ 10
                in_top[ori] += 1
                ratios[ori].append(rate / median)
    expected = {ori for ori, n in in_top.items() if n / len(window) >= 0.5}
    t = persistence.persistent_hotspots(marshall_con, k=10, share=0.5, window=10)
    assert set(t.table["jurisdiction_id"]) == expected
    for row in t.table.itertuples():
        assert row.years_in_top_k == in_top[row.jurisdiction_id]
        assert row.ratio_in_top_years == pytest.approx(statistics.mean(ratios[row.jurisdiction_id]))
        assert row.mean_ratio_to_median == pytest.approx(statistics.mean(all_ratios[row.jurisdiction_id]))
        assert row.mean_ratio_to_median <= row.ratio_in_top_years
