"""Spike detectors, expectations and false-alarm control: hand-computed cases, FDR on pure noise, injected spikes,
and the Marshall data checked against the raw CSV."""

from __future__ import annotations

import csv
import doctest
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimelens.alerts import glm as glm_module
from crimelens.alerts.control import alarm_rate_per_100, budget_alarms, calibrate_threshold, fdr_alarms
from crimelens.alerts.detectors import (
    compstat_change,
    detect,
    ewma_chart,
    nb_cusum,
    nb_upper_p,
    poisson_upper_p,
    poisson_z,
    tail_score,
)
from crimelens.alerts.expectations import (
    dispersion,
    pooled_expectation,
    recent_expectation,
    seasonal_expectation,
)
from crimelens.alerts.glm import GlmSettings, glm_expectation, noufaily_levels
from crimelens.alerts.run import alert_key, find_alerts, run_alerts
from crimelens.alerts.series import SeriesPanel
from crimelens.errors import ConfigError, DataError


def _panel(counts: np.ndarray, unit: str = "week", start: str = "2015-01-05") -> SeriesPanel:
    n, t = counts.shape
    if unit == "year":
        periods = pd.Index(range(1990, 1990 + t), dtype="int64")
    else:
        periods = pd.date_range(start, periods=t, freq="W-MON" if unit == "week" else "MS")
    keys = pd.DataFrame({"where": [f"A{i}" for i in range(n)], "name": [f"Area {i}" for i in range(n)],
                         "offence": "all"})  # fmt: skip
    return SeriesPanel("sim", "incidents" if unit != "year" else "ucr", unit, counts.astype(float), keys, periods)


# -- tests and tails, by hand -------------------------------------------------------------------------------
def test_poisson_z_by_hand() -> None:
    # (9 − 4) / √4 = 2.5; μ = 0 has no z
    z = poisson_z(np.array([9.0, 1.0]), np.array([4.0, 0.0]))
    assert z[0] == pytest.approx(2.5) and math.isnan(z[1])


def test_exact_poisson_upper_tail_by_hand() -> None:
    # P(Y ≥ 3 | μ = 1) = 1 − e⁻¹ (1 + 1 + 1/2) = 1 − 2.5/e = 0.0803013970713942
    # P(Y ≥ 1 | μ = 2) = 1 − e⁻² = 0.8646647167633873; P(Y ≥ 0) = 1
    p = poisson_upper_p(np.array([3.0, 1.0, 0.0]), np.array([1.0, 2.0, 2.0]))
    assert p[0] == pytest.approx(1 - 2.5 / math.e, rel=1e-12)
    assert p[1] == pytest.approx(1 - math.exp(-2), rel=1e-12)
    assert p[2] == 1.0


def test_negative_binomial_tail_by_hand() -> None:
    # mean 2, variance φμ = 4 → size r = μ/(φ − 1) = 2, success prob r/(r + μ) = 1/2: P(Y = k) = (k + 1)/2^(k+2)
    # P(Y ≥ 3) = 1 − (1/4 + 2/8 + 3/16) = 5/16; with φ = 1 it is the Poisson tail
    assert nb_upper_p(np.array([3.0]), np.array([2.0]), np.array([2.0]))[0] == pytest.approx(5 / 16, rel=1e-12)
    pois = poisson_upper_p(np.array([3.0]), np.array([1.0]))[0]
    assert nb_upper_p(np.array([3.0]), np.array([1.0]), np.array([1.0]))[0] == pytest.approx(pois)


def test_tail_score_stays_ordered_where_p_underflows() -> None:
    # 100 counts against 1 expected: p underflows (< 1e-250), 200 even more so; the scores stay ordered
    y, mu = np.array([20.0, 2000.0, 4000.0]), np.array([1.0, 1.0, 1.0])
    s = tail_score(poisson_upper_p(y, mu), y, mu)
    assert s[0] == pytest.approx(-math.log10(poisson_upper_p(np.array([20.0]), np.array([1.0]))[0]))
    assert 250 <= s[1] < s[2]


# -- expectations, by hand ----------------------------------------------------------------------------------
def test_recent_expectation_by_hand() -> None:
    y = np.array([[1.0, 2.0, 3.0, 10.0, 4.0]])
    mu = recent_expectation(y, k=3)
    # t = 3: mean(1, 2, 3) = 2; t = 4: mean(2, 3, 10) = 5; t = 0: no history
    assert mu[0, 3] == pytest.approx(2.0) and mu[0, 4] == pytest.approx(5.0) and math.isnan(mu[0, 0])
    guarded = recent_expectation(y, k=2, guard=1)
    # t = 4, guard 1: periods 1 and 2 → mean(2, 3) = 2.5 (the 10 at t = 3 is left out)
    assert guarded[0, 4] == pytest.approx(2.5)


def test_seasonal_expectation_by_hand() -> None:
    season = 4
    y = np.array([[30, 0, 0, 0, 60, 0, 0, 0, 90, 0, 0, 0, 1]], dtype=float)
    # t = 12, window 0: same period one, two, three years back = 90, 60, 30 → a line through (−1, 90), (−2, 60),
    # (−3, 30) reaches 120 at 0. Its slope 30 has variance Σ (x − x̄)² m_j / n_j / Sxx² = (90 + 30) / 2² = 30,
    # z = 30 / √30 = 5.5 > 1.96: kept. Without trend their mean is 60.
    assert seasonal_expectation(y, season, years=3, window=0)[0, 12] == pytest.approx(120.0)
    assert seasonal_expectation(y, season, years=3, window=0, trend=False)[0, 12] == pytest.approx(60.0)
    # t = 8: two prior years (60, 30): no trend with fewer than three → 45
    assert seasonal_expectation(y, season, years=3, window=0)[0, 8] == pytest.approx(45.0)
    # window 1 at t = 9: years back centred on 5 and 1: mean(60, 0, 0) = 20 and mean(30, 0, 0) = 10 → 15
    assert seasonal_expectation(y, season, years=2, window=1)[0, 9] == pytest.approx(15.0)
    # 9, 6, 3: slope 3, variance (9 + 3) / 4 = 3, z = 1.73 < 1.96: not significant, the plain mean 6
    small = np.array([[3, 0, 0, 0, 6, 0, 0, 0, 9, 0, 0, 0, 1]], dtype=float)
    assert seasonal_expectation(small, season, years=3, window=0)[0, 12] == pytest.approx(6.0)


def test_seasonal_trend_floor() -> None:
    # years back = 30, 60, 90 (falling): the line reaches 0 at j = 0; floored at half the plain mean 60 → 30
    y = np.array([[90, 0, 0, 0, 60, 0, 0, 0, 30, 0, 0, 0, 1]], dtype=float)
    assert seasonal_expectation(y, 4, years=3, window=0)[0, 12] == pytest.approx(30.0)


def test_pooled_expectation_by_hand() -> None:
    # two areas, yearly, level from the 2 periods before a guard of 1, total's expectation = previous 2 years' mean
    # (seasonal with years=2, no trend with 2 years); at t = 4: total = [4, 8, 12, 16, 99]
    y = np.array([[1, 2, 3, 4, 90], [3, 6, 9, 12, 9]], dtype=float)
    mu = pooled_expectation(y, 1, level_periods=2, guard=1, years=2, window=0, recent=2)
    # total expectation: mean(12, 16) = 14; area 0's share over periods 1–2: (2 + 3)/(8 + 12) = 0.25 → 3.5;
    # area 1's: (6 + 9)/20 = 0.75 → 10.5
    assert mu[0, 4] == pytest.approx(3.5) and mu[1, 4] == pytest.approx(10.5)


def test_dispersion_by_hand() -> None:
    y = np.array([[2.0, 6.0] * 4, [4.0] * 8])
    mu = np.full(y.shape, 4.0)
    # series 0: (y − μ)²/μ = 1 each → φ = 1; series 1: 0 → floored at 1; a noisier one: (0, 8) → 4 each → φ = 4
    assert dispersion(y, mu).tolist() == [1.0, 1.0]
    assert dispersion(np.array([[0.0, 8.0] * 4]), mu[:1])[0] == pytest.approx(4.0)


# -- charts and CompStat, by hand ---------------------------------------------------------------------------
def test_poisson_cusum_by_hand() -> None:
    # μ₀ = 1, κ = 2: LLR = y ln 2 − 1: y = 0 → −1 (S = 0); y = 3 → 1.0794 (S = 1.0794); y = 2 → 0.3863 (S = 1.4657)
    s = nb_cusum(np.array([[0.0, 3.0, 2.0]]), np.ones((1, 3)), 1.0)
    ln2 = math.log(2)
    assert s[0].tolist() == pytest.approx([0.0, 3 * ln2 - 1, 5 * ln2 - 2])


def test_negative_binomial_cusum_by_hand() -> None:
    # μ₀ = 2, φ = 2 → r = 2; κ = 2: LLR(y) = y ln 2 + (2 + y) ln((2 + 2)/(2 + 4)) = y ln 2 + (2 + y) ln(2/3)
    # y = 4: 4 ln 2 + 6 ln(2/3) = 2.7726 − 2.4328 = 0.3398
    s = nb_cusum(np.array([[4.0]]), np.array([[2.0]]), np.array([2.0]))
    assert s[0, 0] == pytest.approx(4 * math.log(2) + 6 * math.log(2 / 3))


def test_ewma_by_hand() -> None:
    # λ = 0.5, μ = 4, φ = 1: e = (6 − 4)/2 = 1, then 0; Z = 0.5, 0.25; sd = √(0.5/1.5) → 0.8660, 0.4330
    z = ewma_chart(np.array([[6.0, 4.0]]), np.full((1, 2), 4.0), 1.0, lam=0.5)
    sd = math.sqrt(0.5 / 1.5)
    assert z[0].tolist() == pytest.approx([0.5 / sd, 0.25 / sd])


def test_compstat_by_hand() -> None:
    # 10 → 5: −50%; 5 → 15: +200%; 15 → 0: −100%; 0 → 3: a zero counts as one, (3 − 0)/1 → +300%
    change, prev = compstat_change(np.array([[10.0, 5.0, 15.0, 0.0, 3.0]]), 1)
    assert math.isnan(change[0, 0]) and change[0, 1:].tolist() == pytest.approx([-50.0, 200.0, -100.0, 300.0])
    assert prev[0, 1:].tolist() == [10.0, 5.0, 15.0, 0.0]


# -- the GLM -------------------------------------------------------------------------------------------------
def test_noufaily_levels_doctest() -> None:
    assert doctest.testmod(glm_module).failed == 0
    # 52-week year, window 3: 7 weeks in level 0, the other 45 in nine segments of 5
    levels = noufaily_levels(0, np.arange(52), 52, 3)
    assert (levels == 0).sum() == 7 and all((levels == k).sum() == 5 for k in range(1, 10))


def test_glm_flat_series_expects_its_level() -> None:
    # a yearly series of 10s: the intercept-only Poisson fit is their mean, 10; no dispersion beyond Poisson
    y = np.full((1, 20), 10.0)
    mu, phi = glm_expectation(y, 1, GlmSettings.for_unit("year"))
    assert mu[0, 15] == pytest.approx(10.0) and phi[0, 15] == 1.0
    assert math.isnan(mu[0, 2])  # fewer than 5 past years


def test_glm_no_trend_is_the_mean_and_a_trend_is_kept_when_significant() -> None:
    # alternating 8, 12 (mean 10, no trend): the Poisson MLE of an intercept-only model is the mean
    y = np.array([[8.0, 12.0] * 10])
    mu, _ = glm_expectation(y, 1, GlmSettings.for_unit("year"))
    assert mu[0, 12] == pytest.approx(10.0, rel=1e-6)
    # a steady fall of 10% a year from 1000: the trend is significant and kept, the prediction continues it
    # (year 15: 1000 · 0.9^15 = 205.9)
    falling = np.array([[round(1000 * 0.9**k) for k in range(20)]], dtype=float)
    mu, _ = glm_expectation(falling, 1, GlmSettings.for_unit("year"))
    assert mu[0, 15] == pytest.approx(1000 * 0.9**15, rel=0.02) and mu[0, 15] < falling[0, 14]
    # a steady rise: significant too, but the prediction would exceed every baseline count, so Farrington et al.
    # (1996) drop the trend: the expectation is the plain mean of the 10 baseline years 5–14
    rising = [round(100 * 1.1**k) for k in range(20)]
    mu, _ = glm_expectation(np.array([rising], dtype=float), 1, GlmSettings.for_unit("year"))
    assert mu[0, 15] == pytest.approx(sum(rising[5:15]) / 10, rel=1e-6)


def test_glm_downweights_a_past_outbreak() -> None:
    # weekly Poisson(5) for 4 years with one outbreak of 60 two years back; the reweighted fit keeps the expectation
    # near 5, where an unweighted mean of the same window would be lifted by 55 / ~150 weeks
    rng = np.random.default_rng(3)
    y = rng.poisson(5.0, size=(1, 208)).astype(float)
    y[0, 100] = 60.0
    mu, phi = glm_expectation(y, 52)
    assert abs(mu[0, 200] - 5.0) < 0.8 and phi[0, 200] < 1.6


# -- false-alarm control ---------------------------------------------------------------------------------
def test_calibrate_threshold_by_hand() -> None:
    scores = np.arange(1.0, 101.0)
    # 100 cells, budget 1 per 100 → 1 alarm allowed → threshold 99 (only 100 is above it)
    h = calibrate_threshold(scores, 1.0)
    assert h == 99.0 and budget_alarms(scores, h).sum() == 1
    assert alarm_rate_per_100(budget_alarms(scores, h), np.ones(100, dtype=bool)) == 1.0
    with pytest.raises(DataError, match="at least 200 series-periods"):
        calibrate_threshold(scores, 0.5)
    with pytest.raises(ConfigError, match="--budget"):
        calibrate_threshold(scores, 0.0)


def test_fdr_alarms_are_benjamini_hochberg() -> None:
    # p = 0.01, 0.02, 0.03, 0.5 (m = 4): q = 0.04, 0.04, 0.04, 0.5 → at q 0.05 the first three alarm
    alarms, q = fdr_alarms(np.array([0.01, 0.02, 0.03, 0.5]), 0.05)
    assert alarms.tolist() == [True, True, True, False] and q.tolist() == pytest.approx([0.04, 0.04, 0.04, 0.5])
    with pytest.raises(ConfigError, match="--fdr"):
        fdr_alarms(np.array([0.1]), 1.5)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_fdr_control_holds_on_pure_noise(seed: int) -> None:
    # Under the global null every alarm is false, so FDR = P(any alarm). 40 runs of 60 pure-noise Poisson series,
    # tested by the exact test against their true mean: the share of runs with an alarm stays at most q = 0.1
    # (plus 3 binomial standard errors); the exact test on counts is conservative, so it is usually well below.
    rng = np.random.default_rng(seed)
    runs = 40
    any_alarm = 0
    for _ in range(runs):
        mu = rng.uniform(0.5, 20.0, size=(60, 1)) * np.ones((1, 5))
        y = rng.poisson(mu).astype(float)
        alarms, _ = fdr_alarms(poisson_upper_p(y, mu), 0.1)
        any_alarm += bool(alarms.any())
    assert any_alarm / runs <= 0.1 + 3 * math.sqrt(0.1 * 0.9 / runs)


def test_fdr_on_noise_with_estimated_expectations_and_a_spike_found() -> None:
    # 80 weekly Poisson series with a seasonal mean; 4 years of history estimate each expectation. Pure noise at
    # FDR 0.05: over 30 seeded runs, runs with any alarm stay near or below 5%; then a tripled week is found.
    weeks = 4 * 52 + 1
    season = 1 + 0.3 * np.sin(2 * np.pi * np.arange(weeks) / 52)
    runs, with_alarm = 30, 0
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        mu = rng.uniform(3, 15, size=(80, 1)) * season
        y = rng.poisson(mu).astype(float)
        res = find_alerts(_panel(y), "seasonal-exact", fdr=0.05)
        with_alarm += len(res.table) > 0
    assert with_alarm / runs <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)
    rng = np.random.default_rng(99)
    mu = rng.uniform(3, 15, size=(80, 1)) * season
    y = rng.poisson(mu).astype(float)
    y[7, -1] = round(3 * mu[7, -1]) + 5
    for method in ("seasonal-exact", "pooled", "glm"):
        res = find_alerts(_panel(y), method, fdr=0.05)
        assert "A7" in set(res.table["where_id"]), method
        row = res.table.loc[res.table["where_id"] == "A7"].iloc[0]
        assert row["observed"] == y[7, -1] and row["expected_low"] <= row["expected"] <= row["expected_high"]
        assert row["elevated_since"] == res.periods_examined[0]


def test_a_sustained_spike_says_since_when() -> None:
    rng = np.random.default_rng(5)
    y = rng.poisson(10.0, size=(30, 120)).astype(float)
    y[4, 110:] = 40.0  # elevated from period 110 on
    res = find_alerts(_panel(y), "recent-z", fdr=0.05, since="2017-02-27")  # period 112 (2015-01-05 + 112 weeks)
    row = res.table.loc[res.table["where_id"] == "A4"].sort_values("period").iloc[0]
    assert row["period"] == "2017-02-27"
    # the run of p < 0.05 (40 against a baseline of about 10) reaches back to week 110: 2015-01-05 + 770 days
    assert row["elevated_since"] == "2017-02-13"


def test_budget_alerts_and_bad_options() -> None:
    rng = np.random.default_rng(8)
    y = rng.poisson(6.0, size=(50, 60)).astype(float)
    y[3, -1] = 40.0
    res = find_alerts(_panel(y), "cusum", budget=1.0)
    assert res.control == "budget" and res.threshold is not None and "A3" in set(res.table["where_id"])
    with pytest.raises(ConfigError, match="gives a score, not a p-value"):
        find_alerts(_panel(y), "cusum", fdr=0.05)
    with pytest.raises(ConfigError, match="expected one of them, got both"):
        find_alerts(_panel(y), "pooled", fdr=0.05, budget=1.0)
    with pytest.raises(ConfigError, match="--method"):
        find_alerts(_panel(y), "farrington")
    with pytest.raises(ConfigError, match="at least one prior year"):
        detect(_panel(y[:, :50]), "seasonal-exact")


def test_alert_key_is_stable() -> None:
    a = alert_key("chicago", "week", "community_area", "25", "all", "2022-06-06", "pooled")
    assert a == alert_key("chicago", "week", "community_area", "25", "all", "2022-06-06", "pooled")
    assert a != alert_key("chicago", "week", "community_area", "25", "all", "2022-06-13", "pooled")


# -- real data ------------------------------------------------------------------------------------------------
def _marshall_raw(real_data: Path) -> dict[tuple[str, int], tuple[str, int | None, int]]:
    """(ORI, year) → (name, violent_crime or None, months_reported), read with the csv module."""
    out = {}
    with (real_data / "marshall_ucr_crime_1975_2015" / "ucr_crime_1975_2015.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            vc = None if r["violent_crime"] in ("", "NA") else int(float(r["violent_crime"]))
            months = 12 if r["months_reported"] in ("", "NA") else int(float(r["months_reported"]))
            out[(r["ORI"], int(r["year"]))] = (r["department_name"], vc, months)
    return out


def test_marshall_violent_crime_alerts_match_the_raw_file(
    marshall_con: duckdb.DuckDBPyConnection, real_data: Path
) -> None:
    res = run_alerts(marshall_con, "ucr-marshall", method="glm", since=2000)
    assert len(res.table) > 10 and res.data_version is not None
    raw = _marshall_raw(real_data)
    for _, a in res.table.head(5).iterrows():
        name, vc, months = raw[(a["where_id"], int(a["period"]))]
        # never a partial year (1-11 months); 0 or NA means months not stated, an annual figure (docs/methods.md)
        assert a["observed"] == vc and not 1 <= months <= 11 and a["where_name"] in name
        assert a["observed"] > a["expected_high"] and a["q_value"] <= 0.05
    # stored once with the data version; a second run stores nothing new
    stored = marshall_con.execute("SELECT count(*), min(data_version) FROM alerts").fetchone()
    assert stored == (len(res.table), res.data_version) and len(res.new_alerts) == len(res.table)
    again = run_alerts(marshall_con, "ucr-marshall", method="glm", since=2000)
    assert again.new_alerts == ()
    assert marshall_con.execute("SELECT count(*) FROM alerts").fetchone() == (len(res.table),)
