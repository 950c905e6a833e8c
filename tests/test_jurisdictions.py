"""Tests for crimelens.analysis.jurisdictions: rank, profile, concentration, compare, top_series."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimelens.analysis.jurisdictions import ranking as jurisdictions
from crimelens.errors import DataError
from test_stats import make_warehouse


# -- rank ----------------------------------------------------------------------------------------------
def test_rank_by_rate_latest_year(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = jurisdictions.rank(tiny_con)
    t = result.table
    # 2012 rates: A 120 / 100,000 → 120; B 900 / 1,000,000 → 90; C 13 / 50,000 → 26
    assert t["jurisdiction_id"].tolist() == ["A", "B", "C"]
    assert t["rank"].tolist() == [1, 2, 3]
    assert t["rate_per_100k"].tolist() == pytest.approx([120.0, 90.0, 26.0])
    assert t.set_index("jurisdiction_id").loc["C", "partial_years"] == 1  # C reported 6 months in 2012
    assert list(t.columns) == [
        "rank", "jurisdiction_id", "name", "kind", "count", "population", "rate_per_100k", "rate_low", "rate_high",
        "years", "partial_years",
    ]  # fmt: skip
    chart = result.chart()
    assert chart.kind == "barh" and chart.highlight == "partial"


def test_rank_by_count_differs_from_rate(tiny_con: duckdb.DuckDBPyConnection) -> None:
    t = jurisdictions.rank(tiny_con, by="count", year=2012).table
    assert t["jurisdiction_id"].tolist() == ["B", "A", "C"]  # 900 > 120 > 13
    assert t["count"].tolist() == [900, 120, 13]


def test_rank_over_a_span_uses_population_years(tiny_con: duckdb.DuckDBPyConnection) -> None:
    t = jurisdictions.rank(tiny_con, start=2010, end=2012).table.set_index("jurisdiction_id")
    # A: (100 + 110 + 120) / (3 × 100,000) × 1e5 = 110; B: 2850 / 3,000,000 × 1e5 = 95;
    # C: 35 / 150,000 × 1e5 = 23.33
    assert t.loc["A", "rate_per_100k"] == pytest.approx(110.0)
    assert t.loc["B", "rate_per_100k"] == pytest.approx(95.0)
    assert t.loc["C", "rate_per_100k"] == pytest.approx(35 / 150_000 * 1e5)
    assert t.loc["A", "count"] == 330 and t.loc["A", "years"] == 3 and t.loc["A", "population"] == 100_000


def test_ties_share_a_rank_and_top_keeps_them() -> None:
    con = make_warehouse(
        [
            {"jurisdiction_id": "P", "year": 2000, "population": 1000, "violent_crime": 10},  # 1000 per 100k
            {"jurisdiction_id": "Q", "year": 2000, "population": 2000, "violent_crime": 20},  # 1000 per 100k
            {"jurisdiction_id": "R", "year": 2000, "population": 1000, "violent_crime": 5},  # 500 per 100k
        ]
    )
    t = jurisdictions.rank(con).table
    assert t["rank"].tolist() == [1, 1, 3]
    assert len(jurisdictions.rank(con, top=1).table) == 2  # both tied at rank 1


def test_rank_without_population(tiny_con: duckdb.DuckDBPyConnection) -> None:
    tiny_con.execute("UPDATE jurisdiction_year SET population = NULL WHERE jurisdiction_id = 'A' AND year = 2012")
    by_rate = jurisdictions.rank(tiny_con)
    assert "A" not in set(by_rate.table["jurisdiction_id"])
    assert any("City A" in n and "without a population" in n for n in by_rate.notes)
    by_count = jurisdictions.rank(tiny_con, by="count")
    assert "A" in set(by_count.table["jurisdiction_id"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "size"}, "by: expected one of rate, count, got 'size'"),
        ({"top": 0}, "top: expected a whole number ≥ 1, got 0"),
    ],
)
def test_rank_bad_parameters(tiny_con: duckdb.DuckDBPyConnection, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        jurisdictions.rank(tiny_con, **kwargs)


# -- profile -------------------------------------------------------------------------------------------
def test_profile_by_hand(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = jurisdictions.profile(tiny_con, jurisdiction="city a")
    t = result.table.set_index("year")
    # rates 2010: A 100, B 100, C 20 → A and B tie at 1; 2011: A 110, B 95, C 24 → A is 1
    assert t.loc[2010, "rank_by_rate"] == 1 and t.loc[2011, "rank_by_rate"] == 1
    # counts 2010: B 1000, A 100, C 10 → A is 2
    assert t.loc[2010, "rank_by_count"] == 2
    assert t["n_jurisdictions"].tolist() == [3, 3, 3]
    assert t.loc[2012, "rate_per_100k"] == pytest.approx(120.0)
    mix = result.mix.set_index("offence")
    # A over 2010-2012: homicide 37, rape 60, robbery 95, aggravated assault 138, total 330
    assert mix.loc["homicide", "share"] == pytest.approx(37 / 330)
    assert mix["share"].sum() == pytest.approx(1.0)
    # peers: B homicide 135 of 2850, C 3 of 35 → median of two = their mean
    assert mix.loc["homicide", "peer_median_share"] == pytest.approx((135 / 2850 + 3 / 35) / 2)
    assert mix.loc["homicide", "difference"] == pytest.approx(37 / 330 - (135 / 2850 + 3 / 35) / 2)
    assert result.chart().y == "rank_by_rate"


def test_profile_flags_partial_years(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = jurisdictions.profile(tiny_con, jurisdiction="C")
    assert result.table.set_index("year")["partial"].to_dict() == {2010: False, 2011: False, 2012: True}
    assert any("fewer than 12 months" in n for n in result.notes)


def test_profile_unknown_name_lists_close_matches(tiny_con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(DataError, match="close matches: City A"):
        jurisdictions.profile(tiny_con, jurisdiction="City Aa")


def test_profile_refuses_the_nation() -> None:
    con = make_warehouse(
        [
            {"jurisdiction_id": "X", "year": 2000, "population": 1000, "violent_crime": 5},
            {"jurisdiction_id": "US", "year": 2000, "population": 4000, "violent_crime": 20},
        ],
        kinds={"US": "nation"},
    )
    with pytest.raises(DataError, match="not the national total"):
        jurisdictions.profile(con, jurisdiction="US")


# -- concentration -------------------------------------------------------------------------------------
def test_concentration_by_hand(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = jurisdictions.top_k_concentration(tiny_con, k=2)
    t = result.table
    # 2012 counts: B 900, A 120, C 13; total 1033
    assert t["jurisdiction_id"].tolist() == ["B", "A", "C"]
    assert t["share"].tolist() == pytest.approx([900 / 1033, 120 / 1033, 13 / 1033])
    assert t["cumulative_share"].tolist() == pytest.approx([900 / 1033, 1020 / 1033, 1.0])
    assert result.top_k_share == pytest.approx(1020 / 1033)
    assert result.params["top_k_share"] == pytest.approx(1020 / 1033)
    assert result.k_share_of_jurisdictions == pytest.approx(2 / 3)
    chart = result.chart()
    assert (chart.x, chart.y) == ("rank", "cumulative_share")


def test_concentration_k_larger_than_jurisdictions(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = jurisdictions.top_k_concentration(tiny_con, k=10)
    assert result.top_k_share == pytest.approx(1.0)
    assert any("more than the 3 jurisdictions" in n for n in result.notes)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=50_000), min_size=1, max_size=12), st.integers(1, 15))
def test_concentration_cumulative_share_is_monotone_and_ends_at_one(counts: list[int], k: int) -> None:
    counts = [*counts[:-1], counts[-1] + 1]  # at least one crime in total
    con = make_warehouse(
        [
            {"jurisdiction_id": f"J{i}", "year": 2005, "population": 1000, "violent_crime": c}
            for i, c in enumerate(counts)
        ]
    )
    result = jurisdictions.top_k_concentration(con, k=k)
    cum = result.table["cumulative_share"].to_numpy()
    assert (cum[1:] >= cum[:-1] - 1e-12).all()
    assert cum[-1] == pytest.approx(1.0)
    assert result.table["share"].sum() == pytest.approx(1.0)
    assert result.top_k_share == pytest.approx(sum(sorted(counts, reverse=True)[:k]) / sum(counts))


# -- compare and top series ----------------------------------------------------------------------------
def test_compare_long_table(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = jurisdictions.compare(tiny_con, jurisdictions=["City A", "c"])
    t = result.table
    assert list(t.columns) == ["year", "jurisdiction_id", "name", "value", "partial"]
    assert t[t["jurisdiction_id"] == "C"]["value"].tolist() == pytest.approx([20.0, 24.0, 26.0])
    counts = jurisdictions.compare(tiny_con, jurisdictions=["A"], measure="count").table
    assert counts["value"].tolist() == [100, 110, 120]
    chart = result.chart()
    assert chart.kind == "line" and chart.series == "name"


@pytest.mark.parametrize(
    ("names", "kwargs", "message"),
    [([], {}, "expected a list of one or more"), (["A"], {"measure": "share"}, "measure: expected one of")],
)
def test_compare_bad_parameters(
    tiny_con: duckdb.DuckDBPyConnection, names: list[str], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        jurisdictions.compare(tiny_con, jurisdictions=names, **kwargs)


def test_top_series(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = jurisdictions.top_series(tiny_con, k=2)
    assert result.params["jurisdiction_ids"] == ["A", "B"]  # highest 2012 rates: 120, 90
    assert len(result.table) == 6
    chart = result.chart()
    assert chart.kind == "small_multiples" and chart.facet == "name"
    older = jurisdictions.top_series(tiny_con, k=1, year=2010)
    assert older.params["jurisdiction_ids"] == ["A"]  # A and B tie at 100 in 2010; names break the tie


# -- real data, checked against an independent computation with the csv module -------------------------
def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_marshall_2015_rate_ranking(marshall_con: duckdb.DuckDBPyConnection, real_file: Any) -> None:
    expected = []
    for r in _csv_rows(real_file("ucr-marshall")):
        if r["year"] != "2015" or r["department_name"] == "National":
            continue
        if r["violent_crime"] in ("", "NA") or r["total_pop"] in ("", "NA"):
            continue
        expected.append((r["ORI"], int(r["violent_crime"]) / int(float(r["total_pop"])) * 1e5))
    expected.sort(key=lambda e: -e[1])
    t = jurisdictions.rank(marshall_con, year=2015).table
    assert t["jurisdiction_id"].tolist() == [ori for ori, _ in expected]
    assert t["rate_per_100k"].tolist() == pytest.approx([rate for _, rate in expected])
    assert t["rank"].tolist() == list(range(1, len(expected) + 1))  # no ties in 2015


def test_states_2017_ranking_and_concentration(states_con: duckdb.DuckDBPyConnection, real_file: Any) -> None:
    rows = [r for r in _csv_rows(real_file("marshall-states")) if r["year"] == "2017"]
    counts = {r["state"]: int(r["violent.crime.total"]) for r in rows}
    rates = {r["state"]: int(r["violent.crime.total"]) / int(r["population"]) * 1e5 for r in rows}
    top5 = sorted(rates, key=lambda s: -rates[s])[:5]
    ranked = jurisdictions.rank(states_con, top=5).table
    assert ranked["name"].tolist() == top5
    total = sum(counts.values())
    biggest = sorted(counts.values(), reverse=True)
    result = jurisdictions.top_k_concentration(states_con, k=10)
    assert result.top_k_share == pytest.approx(sum(biggest[:10]) / total)
    assert result.table["count"].tolist() == biggest


def test_marshall_profile_matches_ranking(marshall_con: duckdb.DuckDBPyConnection) -> None:
    ranking = jurisdictions.rank(marshall_con, year=2015).table
    first = ranking.iloc[0]
    prof = jurisdictions.profile(marshall_con, jurisdiction=str(first["name"])).table.set_index("year")
    assert prof.loc[2015, "rank_by_rate"] == 1
    assert prof.loc[2015, "n_jurisdictions"] == len(ranking)
    assert isinstance(prof.loc[2015, "rate_per_100k"], float)
    assert not pd.isna(prof.loc[2015, "rank_by_count"])


def test_numpy_integers_are_accepted(tiny_con: duckdb.DuckDBPyConnection) -> None:
    import numpy as np

    assert len(jurisdictions.rank(tiny_con, top=np.int64(2), year=np.int64(2012)).table) == 2
    with pytest.raises(DataError, match=r"top: expected a whole number ≥ 1, got 2\.5"):
        jurisdictions.rank(tiny_con, top=2.5)  # type: ignore[arg-type]
