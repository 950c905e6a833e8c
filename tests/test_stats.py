"""Tests for crimelens.analysis.stats: totals, shares, rates and period selection.

Also defines ``make_warehouse``, an in-memory warehouse built from hand-written rows through the real
load path, which the other analysis test modules import.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimelens import warehouse
from crimelens.analysis.jurisdictions import statistics as stats
from crimelens.errors import DataError
from crimelens.schema import COUNT_COLUMNS
from crimelens.sources.base import JY_COLUMNS, ParsedFile


def make_warehouse(
    rows: Sequence[Mapping[str, Any]],
    *,
    kinds: Mapping[str, str] | None = None,
    source: str = "test",
) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse holding ``rows`` (jurisdiction_id, year, counts...) as dataset ``source``.

    Jurisdictions are named after their ids; ``kinds`` maps ids to kinds (default 'city').
    """
    con = duckdb.connect()
    warehouse.migrate(con)
    frame = pd.DataFrame(list(rows)).reindex(columns=list(JY_COLUMNS))
    for col in ("year", "population", "months_reported", *COUNT_COLUMNS, "rape_legacy"):
        frame[col] = frame[col].astype("Int64")
    frame["jurisdiction_id"] = frame["jurisdiction_id"].astype("object")
    frame["rape_definition"] = frame["rape_definition"].astype("object")
    ids = list(dict.fromkeys(frame["jurisdiction_id"]))
    kinds = kinds or {}
    jur = pd.DataFrame(
        {
            "jurisdiction_id": ids,
            "name": ids,
            "kind": [kinds.get(j, "city") for j in ids],
            "state": [None] * len(ids),
            "ori": [None] * len(ids),
        }
    )
    parsed = ParsedFile(
        path=Path("test.csv"),
        format="test",
        default_source=source,
        rows=frame,
        jurisdictions=jur,
        issues=[],
        rows_read=len(frame),
    )
    warehouse.load_parsed(con, parsed, sha256="0" * 64)
    return con


# -- offence totals on the tiny panel ---------------------------------------------------------------
def test_offence_totals_latest_year_by_hand(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = stats.offence_totals(tiny_con)
    t = result.table.set_index("offence")
    # 2012: homicide 15 + 40 + 1 = 56; rape 20 + 90 + 2 = 112; robbery 35 + 270 + 4 = 309;
    # aggravated assault 50 + 500 + 6 = 556; violent 120 + 900 + 13 = 1033 (= 56 + 112 + 309 + 556)
    assert t.loc["homicide", "count"] == 56
    assert t.loc["rape", "count"] == 112
    assert t.loc["robbery", "count"] == 309
    assert t.loc["aggravated_assault", "count"] == 556
    assert t.loc["violent_crime", "count"] == 1033
    assert t.loc["aggravated_assault", "share_of_violent"] == pytest.approx(556 / 1033)
    assert t.loc["homicide", "share_of_violent"] == pytest.approx(56 / 1033)
    assert [t.loc[o, "violent_rank"] for o in ("aggravated_assault", "robbery", "rape", "homicide")] == [1, 2, 3, 4]
    assert "property_crime" not in t.index  # the tiny source has no property counts
    assert t["national_count"].isna().all()
    assert any("no national rows" in n for n in result.notes)
    assert result.params["period"] == "2012"
    chart = result.chart()
    assert chart.kind == "barh" and len(chart.data) == 4


def test_offence_totals_over_a_span(tiny_con: duckdb.DuckDBPyConnection) -> None:
    t = stats.offence_totals(tiny_con, start=2010, end=2011).table.set_index("offence")
    # homicide 2010-2011: A 10 + 12, B 50 + 45, C 1 + 1 = 119; violent: 100+110 + 1000+950 + 10+12 = 2182
    assert t.loc["homicide", "count"] == 119
    assert t.loc["violent_crime", "count"] == 2182
    shares = t.loc[["homicide", "rape", "robbery", "aggravated_assault"], "share_of_violent"]
    assert shares.sum() == pytest.approx(1.0)


def test_offence_totals_skip_missing_counts_and_say_so(tiny_con: duckdb.DuckDBPyConnection) -> None:
    tiny_con.execute("UPDATE jurisdiction_year SET homicide = NULL WHERE jurisdiction_id = 'B' AND year = 2012")
    result = stats.offence_totals(tiny_con, year=2012)
    t = result.table.set_index("offence")
    assert t.loc["homicide", "count"] == 15 + 1  # B's missing homicide is skipped, not read as zero
    assert any("1 jurisdiction-year with no homicide count skipped" in n for n in result.notes)
    # shares use only complete rows (A and C): violent parts 120 + 13 = 133
    assert t.loc["robbery", "share_of_violent"] == pytest.approx((35 + 4) / 133)


def test_offence_totals_national_count_from_nation_rows() -> None:
    con = make_warehouse(
        [
            {"jurisdiction_id": "X", "year": 2000, "population": 1000, "homicide": 1, "violent_crime": 5},
            {"jurisdiction_id": "Y", "year": 2000, "population": 1000, "homicide": 2, "violent_crime": 7},
            {"jurisdiction_id": "US", "year": 2000, "population": 5000, "homicide": 9, "violent_crime": 30},
        ],
        kinds={"US": "nation"},
    )
    t = stats.offence_totals(con).table.set_index("offence")
    assert t.loc["homicide", "count"] == 3  # the nation row is not added to the jurisdictions
    assert t.loc["homicide", "national_count"] == 9
    assert t.loc["violent_crime", "national_count"] == 30
    assert pd.isna(t.loc["rape", "count"])


# -- rates ---------------------------------------------------------------------------------------------
def test_rates_by_hand(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = stats.rates(tiny_con)
    t = result.table.set_index(["jurisdiction_id", "year"])
    assert len(t) == 9  # every year by default
    assert t.loc[("A", 2012), "rate_per_100k"] == pytest.approx(120.0)  # 120 / 100,000 × 100,000
    assert t.loc[("B", 2011), "rate_per_100k"] == pytest.approx(95.0)  # 950 / 1,000,000 × 100,000
    assert t.loc[("C", 2012), "rate_per_100k"] == pytest.approx(26.0)  # 13 / 50,000 × 100,000
    assert bool(t.loc[("C", 2012), "partial"]) and not bool(t.loc[("C", 2011), "partial"])
    assert any("fewer than 12 months" in n for n in result.notes)
    chart = result.chart()
    assert chart.kind == "line" and "Median" in chart.title  # no nation: median of the jurisdictions
    # median 2010 of 100, 100, 20 → 100
    assert chart.data.set_index("year").loc[2010, "rate_per_100k"] == pytest.approx(100.0)


def test_rates_one_year_and_offence(tiny_con: duckdb.DuckDBPyConnection) -> None:
    t = stats.rates(tiny_con, offence="homicide", year=2011).table.set_index("jurisdiction_id")
    assert list(t.index) == ["A", "B", "C"]
    assert t.loc["A", "rate_per_100k"] == pytest.approx(12.0)  # 12 / 100,000 × 100,000
    assert t.loc["C", "rate_per_100k"] == pytest.approx(2.0)  # 1 / 50,000 × 100,000


def test_rates_missing_values(tiny_con: duckdb.DuckDBPyConnection) -> None:
    tiny_con.execute("UPDATE jurisdiction_year SET violent_crime = NULL WHERE jurisdiction_id = 'B' AND year = 2011")
    tiny_con.execute("UPDATE jurisdiction_year SET population = NULL WHERE jurisdiction_id = 'A' AND year = 2011")
    result = stats.rates(tiny_con, year=2011)
    t = result.table.set_index("jurisdiction_id")
    assert "B" not in t.index
    assert t.loc["A", "count"] == 110 and pd.isna(t.loc["A", "rate_per_100k"])
    assert any("1 jurisdiction-year with no violent_crime count skipped" in n for n in result.notes)


def test_rates_chart_uses_the_national_series() -> None:
    con = make_warehouse(
        [
            {"jurisdiction_id": "X", "year": 2000, "population": 1000, "violent_crime": 5},
            {"jurisdiction_id": "US", "year": 2000, "population": 4000, "violent_crime": 20},
            {"jurisdiction_id": "US", "year": 2001, "population": 4000, "violent_crime": 30},
        ],
        kinds={"US": "nation"},
    )
    chart = stats.rates(con).chart()
    assert chart.title.startswith("National rate")
    assert chart.data["rate_per_100k"].tolist() == pytest.approx([500.0, 750.0])  # 20/4000, 30/4000 × 1e5
    assert "US" not in set(stats.rates(con, include_nation=False).table["jurisdiction_id"])


# -- period selection and validation -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"year": 2011, "start": 2010}, "either year or start/end"),
        ({"year": 1999}, re.escape("expected a year with violent_crime counts (2010–2012), got 1999")),
        ({"start": 2012, "end": 2010}, "expected start ≤ end"),
        ({"start": 2005, "end": 2011}, "start: expected a year within 2010–2012"),
        ({"start": 2020}, "start: expected a year within 2010–2012 .*, got 2020"),
        ({"end": 2009}, "end: expected a year within 2010–2012"),
        ({"year": "2011"}, "expected a whole year"),
    ],
)
def test_bad_periods_are_data_errors(tiny_con: duckdb.DuckDBPyConnection, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        stats.rates(tiny_con, **kwargs)


def test_unknown_offence_lists_the_allowed_ones(tiny_con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(DataError, match="allowed: violent_crime"):
        stats.rates(tiny_con, offence="arson_plus")


def test_offence_without_counts_is_a_data_error(tiny_con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(DataError, match="property_crime"):
        stats.rates(tiny_con, offence="property_crime")


def test_period_helpers() -> None:
    assert stats.period_label(2015, 2015) == "2015"
    assert stats.period_label(2010, 2015) == "2010–2015"


# -- properties ----------------------------------------------------------------------------------------
_row = st.tuples(
    st.integers(min_value=1, max_value=5_000_000),  # population
    st.one_of(st.none(), st.integers(min_value=0, max_value=100_000)),  # count (None = missing)
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_row, min_size=1, max_size=8))
def test_rates_are_non_negative_and_totals_are_preserved(values: list[tuple[int, int | None]]) -> None:
    rows = [
        {"jurisdiction_id": f"J{i}", "year": 2001, "population": pop, "homicide": count}
        for i, (pop, count) in enumerate(values)
    ]
    known = [c for _, c in values if c is not None]
    if not known:
        rows.append({"jurisdiction_id": "Z", "year": 2001, "population": 10, "homicide": 0})
        known = [0]
    con = make_warehouse(rows)
    t = stats.rates(con, offence="homicide").table
    assert (t["rate_per_100k"] >= 0).all()
    expected = {f"J{i}": c / p * 1e5 for i, (p, c) in enumerate(values) if c is not None}
    for jid, rate in zip(t["jurisdiction_id"], t["rate_per_100k"], strict=True):
        if jid in expected:
            assert rate == pytest.approx(expected[jid])
    totals = stats.offence_totals(con).table.set_index("offence")
    assert totals.loc["homicide", "count"] == sum(known)


# -- real data, checked against an independent computation with the csv module -------------------------
def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_fbi_2014_totals_match_the_file(fbi_con: duckdb.DuckDBPyConnection, real_file: Any) -> None:
    rows = [r for r in _csv_rows(real_file("fbi-estimates")) if r["year"] == "2014"]
    national = next(r for r in rows if r["state_abbr"] == "")
    states = [r for r in rows if r["state_abbr"] != ""]
    t = stats.offence_totals(fbi_con, year=2014).table.set_index("offence")
    columns = {
        "violent_crime": "violent_crime",
        "homicide": "homicide",
        "rape": "rape_revised",  # 2014 uses the revised definition
        "robbery": "robbery",
        "aggravated_assault": "aggravated_assault",
        "property_crime": "property_crime",
        "burglary": "burglary",
        "larceny": "larceny",
        "motor_vehicle_theft": "motor_vehicle_theft",
    }
    for offence, column in columns.items():
        assert t.loc[offence, "count"] == sum(int(r[column]) for r in states if r[column] != ""), offence
        assert t.loc[offence, "national_count"] == int(national[column]), offence
    parts = sum(
        int(states_r[c]) for states_r in states for c in ("homicide", "rape_revised", "robbery", "aggravated_assault")
    )
    assert t.loc["robbery", "share_of_violent"] == pytest.approx(sum(int(r["robbery"]) for r in states) / parts)


def test_state_rates_match_the_file(states_con: duckdb.DuckDBPyConnection, real_file: Any) -> None:
    rows = [r for r in _csv_rows(real_file("marshall-states")) if r["year"] == "2016"]
    expected = {
        r["state"]: int(r["violent.crime.total"]) / int(r["population"]) * 1e5
        for r in rows
        if r["violent.crime.total"] not in ("", "NA") and r["population"] not in ("", "NA")
    }
    t = stats.rates(states_con, year=2016).table
    got = dict(zip(t["name"], t["rate_per_100k"], strict=True))
    assert len(got) == len(expected) == 51
    for state, rate in expected.items():
        name = "District of Columbia" if state.lower().startswith("district") else state
        assert got[name] == pytest.approx(rate), state
    assert all(math.isfinite(v) and v > 0 for v in got.values())


def test_a_source_without_violent_crime() -> None:
    con = make_warehouse(
        [
            {"jurisdiction_id": "X", "year": 2000, "population": 1000, "burglary": 4, "property_crime": 10},
            {"jurisdiction_id": "Y", "year": 2000, "population": 1000, "burglary": 6, "property_crime": 30},
        ]
    )
    t = stats.offence_totals(con).table.set_index("offence")
    assert t.loc["property_crime", "count"] == 40 and t.loc["burglary", "count"] == 10
    assert "violent_crime" not in t.index and t["share_of_violent"].isna().all()
    assert stats.rates(con, offence="burglary").table["rate_per_100k"].tolist() == pytest.approx([400.0, 600.0])
