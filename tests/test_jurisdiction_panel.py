"""Tests for crimelens.analysis.jurisdictions.panel: the filtered panel is the whole panel filtered (offence
columns and years pushed into the query), and the years an offence has counts in."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimelens.analysis.jurisdictions import ranking
from crimelens.analysis.jurisdictions.panel import offence_years, panel, shared_panels
from crimelens.errors import DataError
from crimelens.schema import COUNT_COLUMNS
from test_stats import make_warehouse


def _tiny() -> duckdb.DuckDBPyConnection:
    # A: 2001–2003, no homicide count in 2002; N (the nation): 2001 and 2003; B: 2002 only, robbery only
    rows = [
        {"jurisdiction_id": "A", "year": 2001, "population": 1000, "violent_crime": 10, "homicide": 1},
        {"jurisdiction_id": "A", "year": 2002, "population": 1000, "violent_crime": 12, "months_reported": 9},
        {"jurisdiction_id": "A", "year": 2003, "population": 1100, "violent_crime": 9, "homicide": 2},
        {"jurisdiction_id": "N", "year": 2001, "population": 9000, "violent_crime": 90, "homicide": 5},
        {"jurisdiction_id": "N", "year": 2003, "population": 9100, "violent_crime": 95},
        {"jurisdiction_id": "B", "year": 2002, "population": 500, "robbery": 3},
    ]
    return make_warehouse(rows, kinds={"N": "nation"})


def test_filtered_panel_by_hand() -> None:
    con = _tiny()
    src, frame = panel(con, offences=("homicide",), start=2002, end=2003)
    assert src == "test"
    assert list(frame["jurisdiction_id"]) == ["A", "A", "B", "N"] and list(frame["year"]) == [2002, 2003, 2002, 2003]
    assert [c for c in frame.columns if c in COUNT_COLUMNS] == ["homicide"]
    assert frame["homicide"].isna().tolist() == [True, False, True, True]  # missing stays missing
    assert frame["partial"].tolist() == [True, False, False, False]
    # homicide counts in 2001 (A, N) and 2003 (A); the nation's rows count
    assert offence_years(con, None, "homicide")[1].tolist() == [2001, 2003]
    assert offence_years(con, None, "robbery")[1].tolist() == [2002]
    with pytest.raises(DataError, match="offence 'nope' is not known"):
        offence_years(con, None, "nope")
    with pytest.raises(DataError, match="offence 'nope' is not known"):
        panel(con, offences=("nope",))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offences=st.lists(st.sampled_from(COUNT_COLUMNS), min_size=1, max_size=4, unique=True),
    start=st.one_of(st.none(), st.integers(1970, 2020)),
    end=st.one_of(st.none(), st.integers(1970, 2020)),
)
def test_filtered_panel_is_the_whole_panel_filtered(
    marshall_con: duckdb.DuckDBPyConnection, offences: list[str], start: int | None, end: int | None
) -> None:
    _, whole = panel(marshall_con)
    _, part = panel(marshall_con, offences=offences, start=start, end=end)
    keep = np.ones(len(whole), dtype=bool)
    if start is not None:
        keep &= (whole["year"] >= start).to_numpy()
    if end is not None:
        keep &= (whole["year"] <= end).to_numpy()
    dropped = [c for c in COUNT_COLUMNS if c not in offences]
    want = whole.loc[keep].drop(columns=dropped).reset_index(drop=True)
    if want.empty:  # no year in range (DuckDB types the columns of an empty result more loosely)
        assert part.empty and list(part.columns) == list(want.columns)
    else:
        pd.testing.assert_frame_equal(part, want, check_exact=True)
    for offence in offences:
        expected = sorted(set(whole.loc[whole[offence].notna(), "year"].astype(int)))
        if not expected:  # an offence the dataset has no counts of: one error naming those it holds
            with pytest.raises(DataError, match=f"has no {offence} counts; offences it holds: violent_crime"):
                offence_years(marshall_con, None, offence)
            continue
        years = offence_years(marshall_con, None, offence)[1]
        assert years.tolist() == expected


def test_rank_reads_only_the_years_it_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    con = _tiny()
    asked: list[dict[str, object]] = []
    real = ranking.panel

    def spy(*args: object, **kwargs: object) -> tuple[str, pd.DataFrame]:
        asked.append(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ranking, "panel", spy)
    result = ranking.rank(con, offence="violent_crime")
    assert asked == [{"offences": ("violent_crime",), "start": 2003, "end": 2003}]
    # 2003, by rate: A 9 / 1100 · 1e5 = 818.2 (the nation is not ranked)
    assert result.table["jurisdiction_id"].tolist() == ["A"]
    assert result.table["rate_per_100k"].iloc[0] == pytest.approx(9 / 1100 * 1e5)


def test_shared_panels_read_each_slice_once() -> None:
    con = _tiny()
    with shared_panels():
        _, first = panel(con, offences=("violent_crime",), start=2001, end=2003)
        first.loc[:, "violent_crime"] = 0  # a caller's edits stay its own
        con.execute("UPDATE jurisdiction_year SET violent_crime = 99 WHERE jurisdiction_id = 'A' AND year = 2001")
        _, again = panel(con, offences=("violent_crime",), start=2001, end=2003)
        _, other = panel(con, offences=("violent_crime",), start=2001, end=2001)  # another slice: read now
    # the same slice came from the block's copy: neither the edit nor the update shows
    assert again.loc[again["jurisdiction_id"] == "A", "violent_crime"].tolist() == [10, 12, 9]
    assert other.loc[other["jurisdiction_id"] == "A", "violent_crime"].tolist() == [99]
    # outside the block every call reads the warehouse
    _, after = panel(con, offences=("violent_crime",), start=2001, end=2003)
    assert after.loc[after["jurisdiction_id"] == "A", "violent_crime"].tolist() == [99, 12, 9]
