"""Hour × weekday profile and monthly seasonality."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.analysis.incidents.temporal import hour_weekday_profile, monthly_seasonality
from crimelens.errors import DataError, SchemaError, SparseDataWarning


def test_hour_weekday_from_incidents_excludes_day_precision() -> None:
    # 2022-08-01 is a Monday. Incidents: Mon 13:05, Mon 13:40, Tue 02:00, Sun 23:59 (minute precision),
    # and Wed 00:00 recorded to the day → 4 in the profile, 1 left out.
    frame = pd.DataFrame(
        {
            "occurred_at": pd.to_datetime(
                ["2022-08-01 13:05", "2022-08-01 13:40", "2022-08-02 02:00", "2022-08-07 23:59", "2022-08-03 00:00"]
            ),
            "time_precision": ["minute", "minute", "hour", "minute", "day"],
        }
    )
    with pytest.warns(SparseDataWarning, match="168 weekday-hours"):
        res = hour_weekday_profile(frame)
    t = res.table.set_index(["weekday", "hour"])
    assert len(res.table) == 168 and res.table["incidents"].sum() == 4
    assert t.loc[(0, 13), "incidents"] == 2 and t.loc[(0, 13), "share"] == pytest.approx(0.5)
    assert t.loc[(1, 2), "incidents"] == 1 and t.loc[(6, 23), "incidents"] == 1
    assert t.loc[(2, 0), "incidents"] == 0
    # index = count / (4 / 168): Monday 13:00 → 2 / (4/168) = 84
    assert t.loc[(0, 13), "index"] == pytest.approx(84)
    assert res.excluded_day_precision == 1 and "1 incident(s) recorded to the day only" in res.notes[0]
    assert res.chart().kind == "small_multiples"


def test_hour_weekday_from_counts_equals_from_incidents() -> None:
    rng = np.random.default_rng(0)
    when = pd.Timestamp("2021-01-04") + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, 5000), unit="min")
    points = pd.DataFrame({"occurred_at": when})
    counts = (
        pd.DataFrame({"weekday": when.day_of_week, "hour": when.hour}).value_counts().rename("incidents").reset_index()
    )
    a, b = hour_weekday_profile(points), hour_weekday_profile(counts)
    pd.testing.assert_frame_equal(a.table, b.table)
    counts.attrs["rows_excluded"] = 7  # as aggregate.weekday_hour_counts reports day-precision rows
    assert hour_weekday_profile(counts).excluded_day_precision == 7


def test_hour_weekday_errors() -> None:
    with pytest.raises(SchemaError, match="occurred_at"):
        hour_weekday_profile(pd.DataFrame({"x": [1]}))
    with pytest.raises(DataError, match="column hour row 0: expected a whole number 0–23, got '24'"):
        hour_weekday_profile(pd.DataFrame({"weekday": [0], "hour": [24], "incidents": [1]}))


def test_hour_weekday_real_chicago(real_data: Path) -> None:
    path = real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    raw = pd.read_csv(path, usecols=["Date"])
    res = hour_weekday_profile(pd.DataFrame({"occurred_at": pd.to_datetime(raw["Date"])}))
    assert res.table["incidents"].sum() == 215_551
    by_hour = res.table.groupby("hour")["incidents"].sum()
    # crime in Chicago is lowest in the early morning (04:00–06:00) and high around noon and evening
    assert by_hour.loc[4:6].mean() < 0.6 * by_hour.loc[12:20].mean()


def _monthly(counts: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"period_start": pd.to_datetime(list(counts)), "incidents": list(counts.values())})


def test_seasonality_hand_computed_chi_square() -> None:
    # Two full years, 2021 and 2022 (730 days), every day 10 incidents except July with 20 a day.
    # Non-leap years: July has 31 days → 620 a July; totals: July 1240, others 10 × days.
    # Total N = 10 × 730 + 10 × 62 = 7920. Expected July = N · 62/730 = 672.66; χ² July term
    # = (1240 − 672.66)²/672.66 = 478.5; every other month m: O = 10 · D_m, E = 7920 · D_m/730 = 10.849 · D_m,
    # term = (10 − 10.849)² D_m / 10.849 = 0.06647 · D_m; Σ over 668 days = 44.40 → χ² ≈ 522.9, dof 11.
    rows = {}
    for year in (2021, 2022):
        for month in range(1, 13):
            days = pd.Period(f"{year}-{month:02d}").days_in_month
            rows[f"{year}-{month:02d}-01"] = (20 if month == 7 else 10) * days
    res = monthly_seasonality(_monthly(rows), coverage=("2021-01-01", "2022-12-31"))
    assert res.dof == 11
    assert res.chi2 == pytest.approx(
        (1240 - 7920 * 62 / 730) ** 2 / (7920 * 62 / 730) + 668 * (10 - 7920 / 730) ** 2 / (7920 / 730)
    )
    assert res.chi2 == pytest.approx(522.9, abs=0.2)
    assert res.p_value < 1e-10
    t = res.table.set_index("month")
    # July per day 20 against 7920/730 = 10.849 overall → index 1.8435
    assert t.loc[7, "seasonal_index"] == pytest.approx(20 / (7920 / 730))
    # February's index is adjusted for its 28 days: 10 a day → 10/10.849 = 0.9217, same as January
    assert t.loc[2, "seasonal_index"] == pytest.approx(t.loc[1, "seasonal_index"])
    assert t.loc[2, "raw_index"] < t.loc[1, "raw_index"]
    assert t.loc[7, "mean_incidents"] == 620 and (t["years"] == 2).all()
    assert not any("fewer than two" in n for n in res.notes)


def test_seasonality_uniform_is_not_significant_and_partial_months_dropped() -> None:
    # 10 incidents a day over 2020-03-15 … 2022-03-14: March 2020 and March 2022 are partial and left out,
    # so 2020-04 … 2022-02 remain (23 months; leap 2020 does not enter since Feb 2020 is before coverage).
    days = pd.date_range("2020-03-15", "2022-03-14", freq="D")
    monthly = pd.Series(10, index=days).groupby(days.to_period("M")).sum()
    frame = pd.DataFrame({"period_start": monthly.index.to_timestamp(), "incidents": monthly.to_numpy()})
    res = monthly_seasonality(frame, coverage=(days[0], days[-1]))
    assert res.params["months"] == 23
    assert "2020-03" in res.notes[0] and "2022-03" in res.notes[0]
    assert res.chi2 == pytest.approx(0.0, abs=1e-9) and res.p_value == pytest.approx(1.0)
    assert np.allclose(res.table["seasonal_index"], 1.0)
    assert any("fewer than two" in n for n in res.notes)  # March appears in neither kept year


def test_seasonality_fills_missing_months_and_errors() -> None:
    res = monthly_seasonality(_monthly({"2022-01-01": 31, "2022-03-01": 31}))
    assert res.params["months"] == 3  # February filled with 0
    assert res.table.set_index("month").loc[2, "incidents"] == 0
    assert any("coverage not given" in n for n in res.notes)
    with pytest.raises(SchemaError, match="period_start"):
        monthly_seasonality(pd.DataFrame({"incidents": [1]}))
    with pytest.raises(DataError, match="expected at least one complete month"):
        monthly_seasonality(_monthly({"2022-01-01": 5}), coverage=("2022-01-10", "2022-01-20"))


def test_seasonality_real_chicago(real_data: Path) -> None:
    path = real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    when = pd.to_datetime(pd.read_csv(path, usecols=["Date"])["Date"])
    monthly = when.dt.to_period("M").value_counts().sort_index()
    frame = pd.DataFrame({"period_start": monthly.index.to_timestamp(), "incidents": monthly.to_numpy()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = monthly_seasonality(frame, coverage=("2022-01-01", "2022-11-30"))
    assert res.params["months"] == 11 and len(res.table) == 11  # December not in the extract
    t = res.table.set_index("month")
    # summer above winter in Chicago
    assert t.loc[7, "seasonal_index"] > t.loc[2, "seasonal_index"]
    assert any("fewer than two" in n for n in res.notes)


def _week_counts(overrides: dict[tuple[int, int], int]) -> pd.DataFrame:
    import itertools

    cells = list(itertools.product(range(7), range(24)))
    counts = pd.DataFrame(cells, columns=["weekday", "hour"]).assign(incidents=10)
    for (wd, hr), n in overrides.items():
        counts.loc[(counts["weekday"] == wd) & (counts["hour"] == hr), "incidents"] = n
    return counts


def test_time_heap_at_midnight_against_its_neighbouring_hours() -> None:
    from scipy.stats import binom

    # every weekday-hour 10, Sunday 00:00 50: hour 00 holds 6 × 10 + 50 = 110, hours 23 and 01 hold 70 each;
    # under "no heap" 00:00 gets a third of the 250: p = P(Bin(250, 1/3) ≥ 110); hour 12 (70 vs 70, 70) is no heap
    res = hour_weekday_profile(_week_counts({(6, 0): 50}))
    heaps = res.heaps.set_index("hour")
    assert heaps.loc[0, ["observed", "neighbour_before", "neighbour_after"]].tolist() == [110, 70, 70]
    assert heaps.loc[0, "expected"] == 70 and heaps.loc[0, "excess"] == 40
    assert heaps.loc[0, "p_value"] == pytest.approx(binom.sf(109, 250, 1 / 3), rel=1e-9)
    assert heaps.loc[12, "p_value"] == pytest.approx(binom.sf(69, 210, 1 / 3), rel=1e-9)
    # BH over the two hours: q(00) = min(2 p00, p12)
    assert heaps.loc[0, "q_value"] == pytest.approx(min(2 * binom.sf(109, 250, 1 / 3), binom.sf(69, 210, 1 / 3)))
    assert res.heaped_hours == (0,)
    assert any(n.startswith("time heap at 00:00: 110 incidents against 70 expected") for n in res.notes)


def test_a_busy_night_is_not_a_time_heap() -> None:
    # midnight high, but so are 23:00 and 01:00 (nightlife, not unknown times): 110 against 105 and 105
    res = hour_weekday_profile(_week_counts({(6, 0): 50, (5, 23): 45, (6, 1): 45}))
    assert res.heaped_hours == ()
    assert not any("time heap" in n for n in res.notes)


def test_date_heap_on_the_first_of_the_month() -> None:
    from scipy.stats import binom

    # 10 incidents a day from 15 Dec 2022 to 31 Dec 2023, 30 on the 1st of February … December (11 days):
    # the 1sts hold 330 against 110 the days before and 110 the days after; 1 January 2023 (10) is no heap
    days = pd.date_range("2022-12-15", "2023-12-31", freq="D")
    counts = np.where((days.day == 1) & (days.month != 1), 30, 10)
    res = hour_weekday_profile(_week_counts({}), daily=pd.DataFrame({"date": days, "incidents": counts}))
    dh = res.day_heaps.set_index("day")
    assert dh.loc["1st of the month", ["days_tested", "observed", "neighbour_before", "neighbour_after"]].tolist() == [
        11,
        330,
        110,
        110,
    ]
    assert dh.loc["1st of the month", "p_value"] == pytest.approx(binom.sf(329, 550, 1 / 3), rel=1e-9)
    assert dh.loc["1 January", ["days_tested", "observed"]].tolist() == [1, 10]
    assert res.heaped_days == ("1st of the month",)
    # the first and last dates of the data have only one neighbour: not tested
    only_edges = pd.DataFrame({"date": pd.to_datetime(["2023-01-01", "2023-01-02"]), "incidents": [50, 1]})
    assert hour_weekday_profile(_week_counts({}), daily=only_edges).day_heaps.empty


def test_time_and_date_heaps_real_chicago(real_data: Path) -> None:
    raw = pd.read_csv(real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz", usecols=["Date"])
    when = pd.to_datetime(raw["Date"])
    daily = when.dt.normalize().value_counts().rename_axis("date").reset_index(name="incidents")
    res = hour_weekday_profile(pd.DataFrame({"occurred_at": when}), daily=daily)
    heaps = res.heaps.set_index("hour")
    # counted independently from the raw file: incidents at 00:00–00:59, 23:00–23:59 and 01:00–01:59
    assert heaps.loc[0, "observed"] == int((when.dt.hour == 0).sum())
    assert heaps.loc[0, "neighbour_before"] == int((when.dt.hour == 23).sum())
    assert heaps.loc[0, "observed"] > 2 * heaps.loc[0, "neighbour_before"]
    assert res.heaped_hours == (0, 12)
    firsts = when[(when.dt.day == 1) & (when.dt.month > 1)]
    assert res.day_heaps.set_index("day").loc["1st of the month", "observed"] == len(firsts)
    assert "1st of the month" in res.heaped_days
