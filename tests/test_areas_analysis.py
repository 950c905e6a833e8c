"""Area ranking: counts, shares, rates with exact Poisson intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimelens.analysis.incidents.ranking import poisson_rate_interval, rank_areas
from crimelens.errors import DataError, SchemaError


def test_rank_areas_hand_computed() -> None:
    # area 1: 30 + 10 = 40 incidents, pop 20,000 → 200 per 100k; area 2: 50, pop 100,000 → 50 per 100k;
    # area 3: 10, no population → NaN; area 4: in populations only, 0 incidents, pop 5,000 → 0.
    # total 100 → shares 0.4, 0.5, 0.1, 0. Rank by rate: 1 (200), 2 (50), 4 (0), 3 (NA).
    counts = pd.DataFrame({"area": ["1", "1", "2", "3"], "incidents": [30, 10, 50, 10]})
    pops = pd.DataFrame(
        {"area_id": [1, 2, 4], "name": ["North", "South", "Lake"], "population": [20_000, 100_000, 5_000]}
    )
    res = rank_areas(counts, pops)
    t = res.table
    assert t["area"].tolist() == ["1", "2", "4", "3"]
    assert t["rate"].iloc[:3].tolist() == pytest.approx([200, 50, 0])
    assert np.isnan(t["rate"].iloc[3]) and t["rank"].iloc[3] is pd.NA
    assert t["rank"].iloc[:3].tolist() == [1, 2, 3]
    assert t["share"].tolist() == pytest.approx([0.4, 0.5, 0.0, 0.1])
    assert t["rank_by_count"].tolist() == [2, 1, 4, 3]
    assert t["name"].iloc[0] == "North"
    # exact interval for 40 events: χ²(0.025; 80)/2 = 28.58, χ²(0.975; 82)/2 = 54.47, per 0.2 (100k units)
    assert t["rate_low"].iloc[0] == pytest.approx(28.58 / 0.2, rel=1e-3)
    assert t["rate_high"].iloc[0] == pytest.approx(54.47 / 0.2, rel=1e-3)
    # 0 events in 0.05 (100k units): [0, χ²(0.975; 2)/2 = 3.689] / 0.05 = [0, 73.78]
    assert t["rate_low"].iloc[2] == 0 and t["rate_high"].iloc[2] == pytest.approx(73.78, rel=1e-3)
    assert any("not in the population table" in n and "3" in n for n in res.notes)
    assert res.chart().y == "rate"


def test_rank_areas_without_populations_ranks_by_count_and_top() -> None:
    counts = pd.DataFrame({"area": ["a", "b", "c"], "incidents": [5, 9, 5]})
    res = rank_areas(counts, None, top=2)
    assert res.table["area"].tolist() == ["b", "a"]
    assert res.table["rank"].tolist() == [1, 2]
    assert res.params["areas"] == 3
    assert any("ranked by count" in n for n in res.notes)


def test_rank_areas_errors() -> None:
    with pytest.raises(SchemaError, match="area and incidents"):
        rank_areas(pd.DataFrame({"area": ["a"]}))
    with pytest.raises(DataError, match=r"row 1: expected a whole number ≥ 0, got '1\.5'"):
        rank_areas(pd.DataFrame({"area": ["a", "b"], "incidents": [1, 1.5]}))
    with pytest.raises(DataError, match="per: expected"):
        rank_areas(pd.DataFrame({"area": ["a"], "incidents": [1]}), per=0)
    with pytest.raises(SchemaError, match="populations"):
        rank_areas(pd.DataFrame({"area": ["a"], "incidents": [1]}), pd.DataFrame({"id": [1]}))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 500), st.floats(100, 1e7))
def test_poisson_interval_contains_the_rate(count: int, population: float) -> None:
    low, high = poisson_rate_interval(np.array([count]), np.array([population]))
    rate = count / population
    assert 0 <= low[0] <= rate <= high[0]


def test_rank_areas_real_chicago(real_data: Path) -> None:
    crimes = real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz"
    areas = real_data / "chicago_community_areas" / "chicago_community_areas_acs2014.csv"
    if not crimes.exists() or not areas.exists():
        pytest.skip("Chicago 2022 crimes or community areas absent")
    raw = pd.read_csv(crimes, usecols=["Community Area"]).dropna()
    counts = raw["Community Area"].astype(int).astype(str).value_counts().rename("incidents").reset_index()
    counts.columns = pd.Index(["area", "incidents"])
    pops = pd.read_csv(areas, usecols=["ComAreaID", "community", "Pop2014"])
    pops.columns = pd.Index(["area_id", "name", "population"])
    res = rank_areas(counts, pops)
    assert len(res.table) == 77
    assert res.table["incidents"].sum() == len(raw)
    assert res.table["rate"].notna().all()
    # the Loop (area 32: small resident population, many visitors) has one of the highest rates per resident
    assert int(res.table.set_index("area").loc["32", "rank"]) <= 5
    assert (res.table["rate_low"] <= res.table["rate"]).all() and (res.table["rate"] <= res.table["rate_high"]).all()
