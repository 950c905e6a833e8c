"""Tests for crimelens.insights: findings come from the data loaded, never from a fixed list of places."""

from __future__ import annotations

import csv
import dataclasses
from typing import Any

import duckdb
import pytest

from crimelens.errors import DataError
from crimelens.insights import Finding, key_findings
from test_stats import make_warehouse


def _by_kind(result: Any) -> dict[str, Finding]:
    return {f.kind: f for f in result.findings}


def _panel(
    rates: dict[str, list[float]], start: int = 2000, pops: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    pops = pops or {}
    return [
        {
            "jurisdiction_id": j,
            "year": start + i,
            "population": pops.get(j, 100_000),
            "violent_crime": round(r * pops.get(j, 100_000) / 1e5),
        }
        for j, series in rates.items()
        for i, r in enumerate(series)
    ]


# -- structure -----------------------------------------------------------------------------------------
def test_findings_table_and_objects(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = key_findings(tiny_con, k=1)
    t = result.table
    assert list(t.columns[:5]) == ["rank", "kind", "headline", "detail", "evidence"]
    assert t["rank"].tolist() == list(range(1, len(t) + 1))
    assert len(result.findings) == len(t) > 0
    scores = [f.score for f in result.findings]
    assert scores == sorted(scores, reverse=True)
    for f, evidence in zip(result.findings, t["evidence"], strict=True):
        assert evidence == f.evidence  # structured, not a JSON string (issue 7)
        assert 0 <= f.score <= 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.findings[0].score = 2.0  # type: ignore[misc]
    assert result.to_dict()["rows"][0]["headline"] == result.findings[0].headline


def test_bad_k(tiny_con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(DataError, match="k: expected a whole number ≥ 1, got 0"):
        key_findings(tiny_con, k=0)


# -- tiny panel: each finding follows the data ---------------------------------------------------------
def test_counts_versus_rates_on_tiny(tiny_con: duckdb.DuckDBPyConnection) -> None:
    f = _by_kind(key_findings(tiny_con, k=1))["counts_vs_rates"]
    # 2012: City B records most (900) but City A has the highest rate (120 per 100,000)
    assert f.headline == (
        "City B records the most violent crime (900 in 2012), but City A has the highest rate "
        "(120.0 per 100,000 residents)"
    )
    assert f.detail.startswith("Most violent crime in 2012: City B. Highest rates: City A.")
    wider = _by_kind(key_findings(tiny_con, k=2))["counts_vs_rates"]
    # top 2 by count: B, A; by rate: A (120), B (90) → the same two jurisdictions
    assert "The top 2 by count and by rate are the same jurisdictions." in wider.detail


def test_changing_the_data_changes_the_findings(tiny_con: duckdb.DuckDBPyConnection) -> None:
    before = _by_kind(key_findings(tiny_con, k=1))
    tiny_con.execute(
        "UPDATE jurisdiction_year SET violent_crime = 5000, aggravated_assault = 10, robbery = 4980, "
        "months_reported = 12 WHERE jurisdiction_id = 'C' AND year = 2012"
    )
    after = _by_kind(key_findings(tiny_con, k=1))
    # C now records 5,000 crimes for 50,000 residents: most crimes and the highest rate (10,000.0)
    assert after["counts_vs_rates"].headline.startswith("City C records both the most violent crime (5,000 in 2012)")
    assert "10,000.0 per 100,000" in after["counts_vs_rates"].headline
    assert before["counts_vs_rates"].headline != after["counts_vs_rates"].headline
    # the offence mix follows too: robbery overtakes aggravated assault
    assert before["offence_mix"].headline.startswith("Aggravated assault is the most common")
    assert after["offence_mix"].headline.startswith("Robbery is the most common")
    # and the partial-year caveat disappears once C reports 12 months
    assert "City C" in before["caveats"].detail
    assert "caveats" not in after or "City C" not in after["caveats"].detail


def test_national_change_not_significant_on_tiny(tiny_con: duckdb.DuckDBPyConnection) -> None:
    f = _by_kind(key_findings(tiny_con, k=1))["national_change"]
    # 2011 → 2012 over A and B (C partial): 1060 → 1020, equal exposure, p ≈ 0.39
    assert "did not change significantly from 2011 to 2012" in f.headline
    assert f.headline.startswith("Across all jurisdictions combined")
    assert f.evidence["significant"] is False


def test_too_few_years_for_trends_is_a_note(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = key_findings(tiny_con, k=1)
    assert not any(f.kind.startswith("trend") for f in result.findings)
    assert any(n.startswith("long-run trends: not available") for n in result.notes)


def test_k_not_below_the_jurisdictions_skips_top_k_findings(tiny_con: duckdb.DuckDBPyConnection) -> None:
    result = key_findings(tiny_con, k=3)
    kinds = {f.kind for f in result.findings}
    assert "concentration" not in kinds and "hotspots" not in kinds
    assert any(n.startswith("concentration: not available") for n in result.notes)


# -- synthetic panels: trends, hotspots, national change, caveats --------------------------------------
def test_trends_hotspots_and_concentration_name_the_right_places() -> None:
    years = 12
    rates = {
        "Riser": [100 + 40 * i for i in range(years)],  # 2011: 540
        "Faller": [620 - 40 * i for i in range(years)],  # crosses Riser between 2006 and 2007
        "Steady": [300.0] * years,
        "Low": [80.0] * years,
        "Big": [200.0] * years,
        "Mid": [250.0 + (i % 2) for i in range(years)],
    }
    con = make_warehouse(_panel(rates, pops={"Big": 5_000_000}))
    result = key_findings(con, k=1)
    found = _by_kind(result)
    assert found["trend_rising"].headline.startswith("Riser's violent crime rate rose fastest")
    assert found["trend_falling"].headline.startswith("Faller's violent crime rate fell fastest")
    assert found["counts_vs_rates"].headline.startswith("Big records the most violent crime")
    assert "Riser has the highest rate (540.0 per 100,000" in found["counts_vs_rates"].headline
    # window 2002-2011: Faller is top by rate in 2002-2006 (5 of 10 years), Riser in 2007-2011 (5)
    assert found["hotspots"].headline.startswith("2 persistent hotspots: Faller and Riser ranked with the highest")
    # 2011 counts: Big 200 × 50 = 10,000; Riser 540, Faller 180, Steady 300, Low 80, Mid 251
    assert found["concentration"].headline.startswith("The jurisdiction with the most violent crime (16.7% of 6)")
    assert found["concentration"].evidence["top_k_share"] == pytest.approx(
        10_000 / (10_000 + 540 + 180 + 300 + 80 + 251)
    )


def test_significant_national_change_and_definition_caveat() -> None:
    rows = [
        {
            "jurisdiction_id": "X",
            "year": 2012,
            "population": 100_000,
            "violent_crime": 500,
            "rape_definition": "legacy",
        },
        {
            "jurisdiction_id": "Y",
            "year": 2012,
            "population": 100_000,
            "violent_crime": 300,
            "rape_definition": "legacy",
        },
        {
            "jurisdiction_id": "X",
            "year": 2013,
            "population": 100_000,
            "violent_crime": 700,
            "rape_definition": "revised",
        },
        {
            "jurisdiction_id": "Y",
            "year": 2013,
            "population": 100_000,
            "violent_crime": 400,
            "rape_definition": "revised",
        },
        {"jurisdiction_id": "US", "year": 2012, "population": 1_000_000, "violent_crime": 4000},
        {"jurisdiction_id": "US", "year": 2013, "population": 1_000_000, "violent_crime": 5000},
    ]
    found = _by_kind(key_findings(make_warehouse(rows, kinds={"US": "nation"}), k=1))
    # national rows: 4000 → 5000 with equal population: +25.0%, far beyond chance
    assert found["national_change"].headline == "Nationally, the violent crime rate rose 25.0% from 2012 to 2013"
    assert "revised" in found["caveats"].detail and found["caveats"].evidence["revised_rape_from"] == 2013


# -- real data: names come from an independent computation ---------------------------------------------
def test_marshall_findings_name_the_top_count_and_rate(marshall_con: duckdb.DuckDBPyConnection, real_file: Any) -> None:
    counts: dict[str, int] = {}
    rates: dict[str, float] = {}
    with real_file("ucr-marshall").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["year"] != "2015" or r["department_name"] == "National" or r["violent_crime"] == "NA":
                continue
            counts[r["department_name"]] = int(r["violent_crime"])
            if r["total_pop"] != "NA":
                rates[r["department_name"]] = int(r["violent_crime"]) / int(float(r["total_pop"])) * 1e5
    top_count = max(counts, key=lambda n: counts[n])
    top_rate = max(rates, key=lambda n: rates[n])
    assert top_count != top_rate
    result = key_findings(marshall_con, year=2015)
    f = _by_kind(result)["counts_vs_rates"]
    assert f.headline.startswith(f"{top_count} records the most violent crime ({counts[top_count]:,} in 2015)")
    assert f"but {top_rate} has the highest rate ({rates[top_rate]:,.1f} per 100,000" in f.headline
    assert "The lists differ" in f.detail
    top5 = sorted(counts, key=lambda n: -counts[n])[:5]
    assert [e["name"] for e in f.evidence["top_by_count"]] == top5
    assert [e["count"] for e in f.evidence["top_by_count"]] == [counts[n] for n in top5]
    caveats = _by_kind(result)["caveats"]
    assert "revised" in caveats.detail  # the Marshall file crosses the 2013 rape definition change


def test_fbi_findings_use_the_nation(fbi_con: duckdb.DuckDBPyConnection, real_file: Any) -> None:
    with real_file("fbi-estimates").open(newline="", encoding="utf-8") as fh:
        nation = {int(r["year"]): r for r in csv.DictReader(fh) if r["state_abbr"] == ""}
    r1, r2 = nation[2018], nation[2019]
    change = (int(r2["violent_crime"]) / int(r2["population"])) / (int(r1["violent_crime"]) / int(r1["population"]))
    f = _by_kind(key_findings(fbi_con))["national_change"]
    assert f.headline.startswith("Nationally, the violent crime rate")
    assert f.evidence["change_pct"] == pytest.approx((change - 1) * 100)
    assert f"{abs(change - 1) * 100:.1f}%" in f.headline


def test_findings_on_a_property_only_source() -> None:
    rows = [
        {"jurisdiction_id": j, "year": 2000 + i, "population": pop, "property_crime": c + i}
        for j, pop, c in (("Small", 10_000, 900), ("Large", 1_000_000, 20_000), ("Mid", 100_000, 3_000))
        for i in range(3)
    ]
    result = key_findings(make_warehouse(rows), k=1)
    assert result.params["offence"] == "property_crime"
    f = _by_kind(result)["counts_vs_rates"]
    # 2002: Large records 20,002 (2,000.2 per 100k); Small 902 for 10,000 residents → 9,020.0 per 100k
    assert f.headline == (
        "Large records the most property crime (20,002 in 2002), but Small has the highest rate "
        "(9,020.0 per 100,000 residents)"
    )
    assert "offence_mix" not in _by_kind(result)


def test_incident_peak_time_at_midnight_says_unknown_times_file_there() -> None:
    import itertools

    import pandas as pd

    from crimelens.analysis.incidents.temporal import hour_weekday_profile
    from crimelens.insights.incidents import IncidentResults, findings_from_results

    cells = list(itertools.product(range(7), range(24)))
    # 10 incidents in every weekday-hour; Sunday (6) 00:00 50, with Saturday 23:00 and Sunday 01:00 at 45: a busy
    # night, not a time heap (hour 00 holds 110 against 105 and 105), so the peak stays at midnight with a caveat
    counts = pd.DataFrame(cells, columns=["weekday", "hour"]).assign(incidents=10)
    for wd, hr, n in ((6, 0, 50), (5, 23, 45), (6, 1, 45)):
        counts.loc[(counts["weekday"] == wd) & (counts["hour"] == hr), "incidents"] = n
    midnight = hour_weekday_profile(counts)
    base = {"source": "city", "simulated": False, "cell_m": 150.0, "alpha": 0.05}
    (f,) = findings_from_results(IncidentResults(**base, profile=midnight))  # type: ignore[arg-type]
    assert f.headline == "city: incidents peak on Sundays at 00:00"
    # 50 of 165 × 10 + 50 + 45 + 45 = 1,790: 2.79% of incidents
    assert f.evidence["share"] == pytest.approx(50 / 1790)
    assert "no known time at 00:00" in f.detail and f.evidence["heaped_hours"] == []
    counts["incidents"] = 10
    counts.loc[(counts["weekday"] == 4) & (counts["hour"] == 22), "incidents"] = 40
    (g,) = findings_from_results(IncidentResults(**base, profile=hour_weekday_profile(counts)))  # type: ignore[arg-type]
    assert g.headline == "city: incidents peak on Fridays at 22:00" and "no known time" not in g.detail


def test_a_midnight_time_heap_is_kept_out_of_the_peak_finding() -> None:
    import itertools

    import pandas as pd

    from crimelens.analysis.incidents.temporal import hour_weekday_profile
    from crimelens.insights.incidents import IncidentResults, findings_from_results

    # every weekday-hour 10, Sunday 00:00 90 and Friday 22:00 40: hour 00 (150 against 70 and 70) is a time heap,
    # so the peak is Friday 22:00 and the 150 incidents at 00:00 are said to be left out
    counts = pd.DataFrame(list(itertools.product(range(7), range(24))), columns=["weekday", "hour"]).assign(
        incidents=10
    )
    counts.loc[(counts["weekday"] == 6) & (counts["hour"] == 0), "incidents"] = 90
    counts.loc[(counts["weekday"] == 4) & (counts["hour"] == 22), "incidents"] = 40
    base = {"source": "city", "simulated": False, "cell_m": 150.0, "alpha": 0.05}
    (f,) = findings_from_results(IncidentResults(**base, profile=hour_weekday_profile(counts)))  # type: ignore[arg-type]
    assert f.headline == "city: incidents peak on Fridays at 22:00"
    assert f.evidence["heaped_hours"] == [0] and f.evidence["incidents_in_heaped_hours"] == 150
    assert "Left out: 00:00" in f.detail and "150 incidents" in f.detail


def test_highest_rate_finding_leaves_out_small_counts_and_says_so() -> None:
    # "Tiny" records 3 offences among 200 residents (3 / 200 × 100,000 = 1,500 per 100,000, the highest rate) but
    # fewer than the min_count setting (20): it is left out of the rate list and counted. "Big": 5,000 among
    # 1,000,000 = 500 per 100,000; "Mid": 300 among 100,000 = 300 per 100,000
    rows = [
        {"jurisdiction_id": j, "year": 2020, "population": pop, "violent_crime": c}
        for j, pop, c in (("Tiny", 200, 3), ("Big", 1_000_000, 5_000), ("Mid", 100_000, 300))
    ]
    f = _by_kind(key_findings(make_warehouse(rows), k=2))["counts_vs_rates"]
    assert f.headline == (
        "Big records both the most violent crime (5,000 in 2020) and the highest rate (500.0 per 100,000 residents)"
    )
    assert f.evidence["left_out_small_counts"] == 1 and f.evidence["min_count"] == 20
    assert "1 jurisdiction(s) with fewer than 20 recorded violent crime offences were left out" in f.detail
    assert "(1 of them would have ranked above Big)" in f.detail
    # Big's exact 95% Poisson interval for 5,000 offences: χ²(0.025; 10,000)/2 and χ²(0.975; 10,002)/2 per 1,000,000
    from scipy.stats import chi2

    top = f.evidence["top_by_rate"][0]
    assert (top["rate_low"], top["rate_high"]) == pytest.approx(
        (chi2.ppf(0.025, 10_000) / 2 / 10, chi2.ppf(0.975, 10_002) / 2 / 10), rel=1e-6
    )


# -- model findings (insights/models.py) ----------------------------------------------------------------------
def _classified(gain: float, lo: float, hi: float, base_auc: float = 0.62) -> Any:
    """A classifier result built by hand: lightgbm against persistence_rank, 15 test years."""
    import pandas as pd

    from crimelens.models.classify import ClassifyResult

    return ClassifyResult(
        title="t",
        table=pd.DataFrame(),
        params={"n_boot": 200},
        target="rise",
        threshold=0.1,
        unit="jurisdiction",
        period="year",
        source="fbi",
        base_rate=0.07,
        test_periods=tuple(range(2005, 2020)),
        methods={
            "persistence_rank": {"roc_auc": base_auc, "roc_auc_ci": [base_auc - 0.08, base_auc + 0.08]},
            "lightgbm": {"roc_auc": base_auc + gain, "roc_auc_ci": [0.0, 1.0]},
        },
        best_gain={"method": "lightgbm", "baseline": "persistence_rank", "roc_auc": gain, "roc_auc_ci": [lo, hi]},
    )


def test_a_model_shown_to_beat_the_baseline() -> None:
    from crimelens.insights.models import classifier_findings

    (f,) = classifier_findings(_classified(0.08, 0.03, 0.13))
    assert f.kind == "model_gain"
    assert f.headline == (
        "fbi: lightgbm forecasts which jurisdictions will be up by ≥ 10% next year better than last year's rank, "
        "by +0.080 [+0.030, +0.130] of ROC-AUC"
    )
    assert "ROC-AUC 0.700 against 0.620" in f.detail and "15 test years (2005–2019)" in f.detail
    assert f.score == pytest.approx(0.7 * (0.5 + 5 * 0.03))  # weight 0.7 × (0.5 + 5 × lower end 0.03) = 0.455
    assert f.evidence["roc_auc_gain_ci"] == [0.03, 0.13] and f.evidence["bootstrap_replicates"] == 200


@pytest.mark.parametrize(
    ("gain", "lo", "hi", "headline", "verdict"),
    [
        (
            0.05,
            -0.02,
            0.12,
            "no model is shown to beat last year's rank",
            "is ahead of it, but the interval includes 0",
        ),
        (-0.001, -0.002, 0.001, "no model beats last year's rank", "ties it"),
        (-0.06, -0.1, -0.02, "no model beats last year's rank", "does worse than it"),
    ],
)
def test_no_model_beats_the_baseline_is_said_plainly(
    gain: float, lo: float, hi: float, headline: str, verdict: str
) -> None:
    from crimelens.insights.models import classifier_findings

    (f,) = classifier_findings(_classified(gain, lo, hi, base_auc=0.994))
    assert f.kind == "model_no_gain"
    assert f.headline.startswith(f"fbi: {headline} at forecasting which jurisdictions will be up by ≥ 10%")
    assert f"The best model, lightgbm, {verdict}" in f.detail
    assert f.score == pytest.approx(0.6 * 0.994)  # weight 0.6 × the baseline's ROC-AUC


def test_no_gain_no_model_finding() -> None:
    from crimelens.insights.models import classifier_findings

    r = dataclasses.replace(_classified(0.0, 0.0, 0.0), best_gain={})
    assert classifier_findings(r) == []
