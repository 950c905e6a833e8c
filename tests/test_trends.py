"""Tests for crimelens.analysis.trends: exact year-over-year tests, long-run slopes, turning points."""

from __future__ import annotations

import csv
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from crimelens.analysis.jurisdictions import trends
from crimelens.errors import DataError, PartialReportingWarning
from test_stats import make_warehouse


def _binom_pmf(k: int, n: int, p: Fraction) -> Fraction:
    return math.comb(n, k) * p**k * (1 - p) ** (n - k)


def _exact_p(k: int, n: int, p: Fraction) -> float:
    """Two-sided exact binomial p-value in exact arithmetic: P of outcomes no more likely than k."""
    observed = _binom_pmf(k, n, p)
    pmf = [_binom_pmf(i, n, p) for i in range(n + 1)]
    return min(1.0, float(sum(q for q in pmf if q <= observed * Fraction(10_000_001, 10_000_000))))


def _series_rows(jid: str, rates: list[float], start: int = 1990, pop: int = 100_000) -> list[dict[str, Any]]:
    return [
        {"jurisdiction_id": jid, "year": start + i, "population": pop, "violent_crime": round(r * pop / 1e5)}
        for i, r in enumerate(rates)
    ]


# -- year over year ------------------------------------------------------------------------------------
def test_yoy_by_hand_on_tiny(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = trends.year_over_year(tiny_con, jurisdiction="City A")
    t = result.table.set_index("year")
    # A 2010 → 2011: c1 = 100, c2 = 110, equal populations → p0 = 1/2, n = 210; RR = 110/100 = 1.1
    row = t.loc[2011]
    assert row["prev_count"] == 100 and row["count"] == 110
    assert row["rate_ratio"] == pytest.approx(1.1)
    assert row["change_pct"] == pytest.approx(10.0)
    assert row["p_value"] == pytest.approx(_exact_p(110, 210, Fraction(1, 2)), rel=1e-6)
    # Clopper-Pearson: p_low = Beta(0.025; 110, 101), p_high = Beta(0.975; 111, 100); RR = p / (1 - p)
    p_low = sps.beta.ppf(0.025, 110, 101)
    p_high = sps.beta.ppf(0.975, 111, 100)
    assert row["ci_low"] == pytest.approx(p_low / (1 - p_low))
    assert row["ci_high"] == pytest.approx(p_high / (1 - p_high))
    assert not row["significant"] and row["direction"] == "no significant change"
    assert pd.isna(t.loc[2010, "p_value"]) and pd.isna(t.loc[2010, "direction"])
    chart = result.chart()
    assert chart.kind == "line" and chart.highlight == "significant"


def test_yoy_significant_fall_with_unequal_populations() -> None:
    con = make_warehouse(
        [
            {"jurisdiction_id": "X", "year": 2000, "population": 100_000, "violent_crime": 100},
            {"jurisdiction_id": "X", "year": 2001, "population": 200_000, "violent_crime": 100},
        ]
    )
    row = trends.year_over_year(con, jurisdiction="X").table.set_index("year").loc[2001]
    # rates 100 → 50 per 100k: RR = (100/200000) / (100/100000) = 0.5; under H0 c2 ~ Bin(200, 2/3)
    assert row["rate_ratio"] == pytest.approx(0.5)
    assert row["change_pct"] == pytest.approx(-50.0)
    assert row["p_value"] == pytest.approx(_exact_p(100, 200, Fraction(2, 3)), rel=1e-6)
    assert row["p_value"] < 0.001 and row["significant"] and row["direction"] == "down"
    assert row["ci_high"] < 1


def test_yoy_national_sum_tests_matched_full_years(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = trends.year_over_year(tiny_con)
    t = result.table.set_index("year")
    # no nation rows: the sum over A, B, C; C's 2012 is partial (6 months) and is left out
    assert t.loc[2011, "count"] == 110 + 950 + 12
    assert t.loc[2012, "count"] == 120 + 900
    # 2011 → 2012 tested on A and B only: 1060 → 1020 with equal exposure; RR = 1020 / 1060
    assert t.loc[2012, "rate_ratio"] == pytest.approx(1020 / 1060)
    assert t.loc[2012, "p_value"] == pytest.approx(_exact_p(1020, 2080, Fraction(1, 2)), rel=1e-6)
    assert any("no national rows" in n for n in result.notes)
    assert result.params["name"] == "All jurisdictions"


def test_yoy_uses_nation_rows_when_present() -> None:
    con = make_warehouse(
        [
            {"jurisdiction_id": "X", "year": 2000, "population": 1000, "violent_crime": 5},
            {"jurisdiction_id": "X", "year": 2001, "population": 1000, "violent_crime": 500},
            {"jurisdiction_id": "US", "year": 2000, "population": 1_000_000, "violent_crime": 4000},
            {"jurisdiction_id": "US", "year": 2001, "population": 1_000_000, "violent_crime": 4000},
        ],
        kinds={"US": "nation"},
    )
    result = trends.year_over_year(con)
    row = result.table.set_index("year").loc[2001]
    assert row["rate_ratio"] == pytest.approx(1.0) and row["direction"] == "no significant change"
    assert result.params["jurisdiction_id"] == "US"


def test_yoy_warns_when_a_significant_change_touches_a_partial_year() -> None:
    con = make_warehouse(
        [
            {"jurisdiction_id": "X", "year": 2000, "population": 100_000, "violent_crime": 100, "months_reported": 12},
            {"jurisdiction_id": "X", "year": 2001, "population": 100_000, "violent_crime": 40, "months_reported": 6},
        ]
    )
    with pytest.warns(PartialReportingWarning, match="fewer than 12 months"):
        result = trends.year_over_year(con, jurisdiction="X")
    assert bool(result.table.set_index("year").loc[2001, "partial"])


def test_yoy_skips_gaps() -> None:
    con = make_warehouse(
        [
            {"jurisdiction_id": "X", "year": 2000, "population": 100_000, "violent_crime": 100},
            {"jurisdiction_id": "X", "year": 2002, "population": 100_000, "violent_crime": 300},
        ]
    )
    t = trends.year_over_year(con, jurisdiction="X").table
    assert t["p_value"].isna().all()  # 2000 and 2002 are not consecutive


@pytest.mark.parametrize("alpha", [0, 1, 1.5, "0.05"])
def test_yoy_rejects_bad_alpha(tiny_con: duckdb.DuckDBPyConnection, alpha: Any) -> None:
    with pytest.raises(DataError, match="alpha: expected a significance level between 0 and 1"):
        trends.year_over_year(tiny_con, alpha=alpha)


# -- long-run trends -----------------------------------------------------------------------------------
def test_long_run_trends_by_hand() -> None:
    rows = (
        _series_rows("UP", [100 + 10 * i for i in range(10)])  # +10 per 100k a year
        + _series_rows("DOWN", [300 - 20 * i for i in range(10)])  # -20 per 100k a year
        + _series_rows("FLAT", [50.0] * 10)
        + _series_rows("SHORT", [10.0, 20.0, 30.0])
    )
    result = trends.long_run_trends(make_warehouse(rows))
    t = result.table.set_index("jurisdiction_id")
    assert list(result.table["jurisdiction_id"]) == ["UP", "FLAT", "DOWN"]  # by pct_per_year, descending
    assert t.loc["UP", "slope_per_year"] == pytest.approx(10.0)
    # median of 100..190 is 145 → 10 / 145 × 100 % a year
    assert t.loc["UP", "pct_per_year"] == pytest.approx(10 / 145 * 100)
    assert t.loc["UP", "mk_tau"] == pytest.approx(1.0) and t.loc["UP", "direction"] == "rising"
    assert t.loc["DOWN", "slope_per_year"] == pytest.approx(-20.0) and t.loc["DOWN", "direction"] == "falling"
    assert t.loc["FLAT", "direction"] == "no clear trend"
    assert "SHORT" not in t.index
    assert any("fewer than 5" in n for n in result.notes)
    assert (t.loc["UP", "first_rate"], t.loc["UP", "last_rate"]) == pytest.approx((100.0, 190.0))
    assert result.chart().kind == "barh"


def test_long_run_trends_leave_out_partial_years() -> None:
    rows = _series_rows("X", [100 + 10 * i for i in range(8)])
    rows[3]["months_reported"] = 3  # an understated partial year
    rows[3]["violent_crime"] = 1
    t = trends.long_run_trends(make_warehouse(rows)).table.set_index("jurisdiction_id")
    assert t.loc["X", "n_years"] == 7 and t.loc["X", "partial_years_excluded"] == 1
    assert t.loc["X", "slope_per_year"] == pytest.approx(10.0)  # the partial year does not bend the slope


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("ori", ["GAAPD00", "ILCPD00", "NY03030"])
def test_theil_sen_matches_scipy_on_marshall(marshall_con: duckdb.DuckDBPyConnection, real_file: Any, ori: str) -> None:
    years, rates = [], []
    for r in _csv_rows(real_file("ucr-marshall")):
        if r["ORI"] != ori or "NA" in (r["violent_crime"], r["total_pop"]):
            continue
        if r["months_reported"] not in ("", "NA") and 1 <= int(r["months_reported"]) < 12:
            continue  # partial years (1-11 months) are left out of the fit; 0 means "not stated" (documented)
        years.append(int(r["year"]))
        rates.append(int(r["violent_crime"]) / int(float(r["total_pop"])) * 1e5)
    slope, _, low, high = sps.theilslopes(rates, years, alpha=0.95)
    tau, p = sps.kendalltau(years, rates)
    row = trends.long_run_trends(marshall_con).table.set_index("jurisdiction_id").loc[ori]
    assert row["n_years"] == len(years)
    assert row["slope_per_year"] == pytest.approx(slope)
    assert (row["slope_low"], row["slope_high"]) == pytest.approx((low, high))
    assert row["pct_per_year"] == pytest.approx(slope / np.median(rates) * 100)
    assert (row["mk_tau"], row["mk_p"]) == pytest.approx((tau, p))


def test_fbi_national_trend_matches_the_file(fbi_con: duckdb.DuckDBPyConnection, real_file: Any) -> None:
    rows = [r for r in _csv_rows(real_file("fbi-estimates")) if r["state_abbr"] == ""]
    years = [int(r["year"]) for r in rows]
    rates = [int(r["violent_crime"]) / int(r["population"]) * 1e5 for r in rows]
    slope = sps.theilslopes(rates, years).slope
    t = trends.long_run_trends(fbi_con).table
    nation = t[t["kind"] == "nation"].iloc[0]
    assert nation["slope_per_year"] == pytest.approx(slope)
    # 2013 → 2014 national change, by hand from the file
    by_year = {int(r["year"]): r for r in rows}
    c1, e1 = int(by_year[2013]["violent_crime"]), int(by_year[2013]["population"])
    c2, e2 = int(by_year[2014]["violent_crime"]), int(by_year[2014]["population"])
    yoy = trends.year_over_year(fbi_con).table.set_index("year").loc[2014]
    assert yoy["rate_ratio"] == pytest.approx((c2 / e2) / (c1 / e1))
    assert yoy["p_poisson"] == pytest.approx(sps.binomtest(c2, c1 + c2, e2 / (e1 + e2)).pvalue)
    # the national series varies far more from year to year than Poisson counts of a million crimes would
    assert trends.year_over_year(fbi_con).params["dispersion"] > 10
    assert yoy["p_value"] > yoy["p_poisson"]


# -- turning points ------------------------------------------------------------------------------------
def test_turning_points_peak_and_trough() -> None:
    rates = [100 + 10 * i for i in range(11)]  # 1990-2000: 100 → 200
    rates += [190 - 10 * i for i in range(10)]  # 2001-2010: 190 → 100
    rates += [110 + 10 * i for i in range(6)]  # 2011-2016: 110 → 160
    result = trends.turning_points(make_warehouse(_series_rows("X", rates)), jurisdiction="X")
    t = result.table.set_index("year")
    assert t["kind"].to_dict() == {2000: "peak", 2010: "trough"}
    # MA at 2000 = (190 + 200 + 190) / 3; the rise runs from the MA at 1991 = (100 + 110 + 120) / 3
    assert t.loc[2000, "change_before_pct"] == pytest.approx(((580 / 3) / 110 - 1) * 100)
    assert t.loc[2000, "rate_per_100k"] == pytest.approx(200.0)
    chart = result.chart()
    assert chart.highlight == "turning_point"
    assert chart.data[chart.data["turning_point"]]["year"].tolist() == [2000, 2010]


def test_short_wiggles_are_not_turning_points() -> None:
    rates = [100 + 10 * i for i in range(12)]
    rates[6] = 250  # a one-year spike inside a steady rise
    result = trends.turning_points(make_warehouse(_series_rows("X", rates)), jurisdiction="X")
    assert result.table.empty
    longer = trends.turning_points(make_warehouse(_series_rows("X", rates)), jurisdiction="X", min_run=1)
    assert not longer.table.empty  # with runs of one year the spike does count


def test_turning_points_too_short_series(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = trends.turning_points(tiny_con)
    assert result.table.empty
    assert any("too short" in n for n in result.notes)


def test_find_turning_points_direct() -> None:
    years = np.arange(2000, 2013)
    values = np.array([1, 2, 3, 4, 5, 6, 5, 4, 3, 2, 1, 0.5, 0.2], dtype=float)
    t = trends.find_turning_points(years, values, 3)
    assert t["year"].tolist() == [2005] and t["kind"].tolist() == ["peak"]


def test_yoy_of_a_jurisdiction_without_counts_is_empty_but_complete(tiny_con: duckdb.DuckDBPyConnection) -> None:
    tiny_con.execute("UPDATE jurisdiction_year SET violent_crime = NULL WHERE jurisdiction_id = 'C'")
    result = trends.year_over_year(tiny_con, jurisdiction="C")
    assert result.table.empty and "p_value" in result.table.columns
    assert any("3 jurisdiction-years with no violent_crime count" in n for n in result.notes)
    assert result.chart().data.empty


def test_long_run_trends_compound_annual_change_by_hand() -> None:
    # a rate growing exactly 10% a year, 100 → 100 × 1.1⁹ (a large population keeps rounding negligible): the
    # compound annual change is +10%, by the log-rate Theil–Sen and by the first and last years alike
    pop = 100_000_000
    rates = [100 * 1.1**i for i in range(10)]
    t = trends.long_run_trends(make_warehouse(_series_rows("G", rates, pop=pop))).table.set_index("jurisdiction_id")
    assert t.loc["G", "annual_change_pct"] == pytest.approx(10.0, abs=1e-4)
    assert t.loc["G", "endpoint_cagr_pct"] == pytest.approx(10.0, abs=1e-4)
    observed = [round(r * pop / 1e5) / pop * 1e5 for r in rates]
    slope, _, low, high = sps.theilslopes(np.log(observed), np.arange(1990, 2000), alpha=0.95)
    assert (t.loc["G", "annual_change_pct"], t.loc["G", "annual_change_low"], t.loc["G", "annual_change_high"]) == (
        pytest.approx((math.expm1(slope) * 100, math.expm1(low) * 100, math.expm1(high) * 100))
    )


def test_trend_labels_use_the_benjamini_hochberg_q_value() -> None:
    # "T" alone has a trend at p = 0.031 (scipy's Kendall tau on 10, 12, 11, …, 12); with 19 trendless series
    # beside it, its q is 20 × 0.031 = 0.62: not labelled rising, though p < 0.05
    rows = _series_rows("T", [10, 12, 11, 14, 13, 16, 15, 18, 17, 12], pop=1_000_000)
    for k in range(19):
        rows += _series_rows(f"F{k:02d}", [50.0, 60.0] * 5, pop=1_000_000)
    result = trends.long_run_trends(make_warehouse(rows))
    row = result.table.set_index("jurisdiction_id").loc["T"]
    assert row["mk_p"] == pytest.approx(sps.kendalltau(range(10), [10, 12, 11, 14, 13, 16, 15, 18, 17, 12]).pvalue)
    assert row["mk_p"] < 0.05 < row["mk_q"]
    assert row["direction"] == "no clear trend"
    assert any("1 of 20 jurisdictions have a trend at p < 0.05; 0 remain" in n for n in result.notes)
    alone = trends.long_run_trends(make_warehouse(_series_rows("T", [10, 12, 11, 14, 13, 16, 15, 18, 17, 12])))
    assert alone.table.iloc[0]["direction"] == "rising"  # one test: q = p


def test_quasi_poisson_pair_by_hand() -> None:
    # 100 then 150 on equal exposures with φ = 4: ln RR = ln 1.5, se = √(4 (1/100 + 1/150)) = 0.2582;
    # p = 2 · P(Z > ln 1.5 / 0.2582) = 2 · P(Z > 1.570)
    low, high, p = trends._quasi_pair(100, 1.0, 150, 1.0, 4.0, 0.05)
    se = math.sqrt(4 * (1 / 100 + 1 / 150))
    assert p == pytest.approx(2 * sps.norm.sf(math.log(1.5) / se), rel=1e-9)
    z = sps.norm.ppf(0.975)
    assert (low, high) == pytest.approx((1.5 * math.exp(-z * se), 1.5 * math.exp(z * se)), rel=1e-9)


@pytest.mark.parametrize("phi", [1.0, 5.0, 30.0])
def test_series_dispersion_recovers_the_overdispersion_of_simulated_series(phi: float) -> None:
    # negative binomial yearly counts, mean 2,000 and variance φ · mean (gamma-Poisson mixture), steady rate:
    # the median estimate over 300 seeded 40-year series is within 15% of φ
    rng = np.random.default_rng(7)
    mean, years, estimates = 2000.0, np.arange(1980, 2020), []
    for _ in range(300):
        lam = rng.gamma((mean / (phi - 1)) if phi > 1 else 1e12, (phi - 1) if phi > 1 else mean / 1e12, size=40)
        counts = rng.poisson(lam)
        estimates.append(trends.series_dispersion(counts, np.full(40, 1e6), years))
    assert np.median(estimates) == pytest.approx(phi, rel=0.15)


def test_year_over_year_allows_for_overdispersion_on_a_steady_series() -> None:
    # a steady rate with φ = 25 (seeded negative binomial counts around 5,000 a year): no year really changed, so
    # the quasi-Poisson test with BH across years flags (almost) none, while the exact Poisson test flags most
    rng = np.random.default_rng(11)
    lam = rng.gamma(5000 / 24, 24, size=30)
    counts = rng.poisson(lam)
    rows = [
        {"jurisdiction_id": "S", "year": 1990 + i, "population": 1_000_000, "violent_crime": int(c)}
        for i, c in enumerate(counts)
    ]
    result = trends.year_over_year(make_warehouse(rows), jurisdiction="S")
    t = result.table.dropna(subset=["p_value"])
    assert 10 < result.params["dispersion"] < 60
    assert int(t["significant"].sum()) <= 1
    assert int((t["p_poisson"] < 0.05).sum()) > len(t) / 2
    assert t["poisson_disagrees"].sum() == (t["p_poisson"] < 0.05).sum() - t["significant"].sum()
    assert any("as much from year to year as Poisson counts" in n for n in result.notes)


def test_marshall_baltimore_year_over_year_with_its_own_dispersion(marshall_con: duckdb.DuckDBPyConnection) -> None:
    # Baltimore's yearly counts vary far more than Poisson: the exact test calls most changes significant
    result = trends.year_over_year(marshall_con, jurisdiction="MDBPD00")
    t = result.table.dropna(subset=["p_value"])
    assert result.params["dispersion"] > 10
    assert int((t["p_poisson"] < 0.05).sum()) > 2 * int(t["significant"].sum())


def test_months_reported_zero_with_annual_counts_is_kept_and_flagged(
    marshall_con: duckdb.DuckDBPyConnection, real_file: Any
) -> None:
    # The Marshall file gives Chicago 1984 60,579 violent crimes with months_reported 0: an annual figure whose
    # months the file does not state (docs/methods.md, "Reporting months"); it is neither partial nor dropped
    rows = {int(r["year"]): r for r in _csv_rows(real_file("ucr-marshall")) if r["ORI"] == "ILCPD00"}
    assert rows[1984]["months_reported"] == "0" and rows[1984]["violent_crime"] == "60579"
    assert rows[2015]["months_reported"] == "NA"
    full = [y for y, r in rows.items() if r["months_reported"] in ("0", "NA", "12") and r["violent_crime"] != "NA"]
    row = trends.long_run_trends(marshall_con).table.set_index("jurisdiction_id").loc["ILCPD00"]
    assert row["n_years"] == len(full) and row["partial_years_excluded"] == 0
    issues = marshall_con.execute(
        "SELECT code, count(*) FROM load_issues WHERE code IN ('months_not_stated', 'partial_year') GROUP BY code"
    ).fetchall()
    by_code = dict(issues)
    every = _csv_rows(real_file("ucr-marshall"))
    # 0 months with at least one count given; 1–11 months
    zero = sum(
        1 for r in every
        if r["months_reported"] == "0"
        and any(r[c] != "NA" for c in ("homs_sum", "rape_sum", "rob_sum", "agg_ass_sum", "violent_crime"))
    )  # fmt: skip
    assert by_code["months_not_stated"] == zero
    assert by_code["partial_year"] == sum(1 for r in every if r["months_reported"] not in ("0", "NA", "12"))
