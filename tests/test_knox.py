"""The near-repeat Knox test: hand-counted pairs, exact permutation expectation, clustered and random data."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.analysis.incidents.knox import knox_test
from crimelens.errors import DataError, SchemaError

DAY0 = pd.Timestamp("2022-03-01")

# Five events (x m, y m, day):
#   A (0, 0) day 0;  B (50, 0) day 3;  C (0, 150) day 10;  D (1000, 1000) day 1;  E (300, 0) day 20.
# Pairs within 400 m (D is > 1 km from everyone):
#   AB  50 m,  3 days → 0–100 m × 0–7 d      AC 150 m, 10 days → 100–200 m × 7–14 d
#   BC  √(50² + 150²) = 158.1 m, 7 days → 100–200 m × 0–7 d (7 is the first band's upper edge)
#   AE 300 m, 20 days → 200–400 m × 14–28 d  BE 250 m, 17 days → 200–400 m × 14–28 d
#   CE √(300² + 150²) = 335.4 m, 10 days → 200–400 m × 7–14 d
EVENTS = [(0, 0, 0), (50, 0, 3), (0, 150, 10), (1000, 1000, 1), (300, 0, 20)]
OBSERVED = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 2]])
D_EDGES, T_EDGES = (0, 100, 200, 400), (0, 7, 14, 28)


def _points(events: list[tuple[float, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x_m": [e[0] for e in events],
            "y_m": [e[1] for e in events],
            # times of day differ on purpose: days apart are counted by calendar date
            "occurred_at": [DAY0 + pd.Timedelta(days=e[2], hours=(3 * i) % 24) for i, e in enumerate(events)],
        }
    )


def _table(res_table: pd.DataFrame, col: str) -> np.ndarray:
    return res_table[col].to_numpy().reshape(3, 3)


def test_knox_observed_counts_by_hand() -> None:
    res = knox_test(_points(EVENTS), distance_bands_m=D_EDGES, time_bands_days=T_EDGES, permutations=99)
    assert (_table(res.table, "observed") == OBSERVED).all()
    assert res.n_pairs == 6
    assert res.table["distance_band"].iloc[0] == "0–100 m" and res.table["time_band"].iloc[1] == "7–14 days"


def test_knox_expectation_matches_exact_enumeration() -> None:
    # the exact expectation: the mean table over all 5! = 120 assignments of the 5 dates to the 5 places
    xy = np.array([e[:2] for e in EVENTS], dtype=float)
    days = [e[2] for e in EVENTS]
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    exact = np.zeros((3, 3))
    exact_p = np.zeros((3, 3))  # share of the 120 assignments whose cell count is ≥ the observed one
    for perm in itertools.permutations(days):
        table = np.zeros((3, 3))
        for i, j in pairs:
            d, t = np.hypot(*(xy[i] - xy[j])), abs(perm[i] - perm[j])
            if d <= 400 and t <= 28:
                a = 0 if d <= 100 else 1 if d <= 200 else 2
                b = 0 if t <= 7 else 1 if t <= 14 else 2
                table[a, b] += 1
        exact += table
        exact_p += table >= OBSERVED
    exact /= 120
    exact_p /= 120
    res = knox_test(_points(EVENTS), distance_bands_m=D_EDGES, time_bands_days=T_EDGES, permutations=9999, seed=3)
    # each cell is a mean of ≤ 3 pair indicators over 9,999 draws: Monte Carlo sd ≤ √(3·0.25/9999) ≈ 0.009
    assert np.allclose(_table(res.table, "expected"), exact, atol=0.04)
    # p-value of the AB cell (0–100 m × 0–7 d; AB is the only pair within 100 m, observed count 1):
    # P(count ≥ 1) = P(the two dates drawn for A and B are ≤ 7 days apart). Of the C(5, 2) = 10 pairs of the
    # dates {0, 1, 3, 10, 20}, four are: 0–1, 0–3, 1–3 and 3–10, so P = 4/10 = 0.4. The Monte Carlo p is
    # (#permutations ≥ 1 + 1) / (9999 + 1), sd √(0.4·0.6/9999) ≈ 0.005.
    assert exact_p[0, 0] == pytest.approx(0.4)
    assert res.table["p_value"].iloc[0] == pytest.approx(0.4, abs=0.02)
    # and every cell's p-value is the exact permutation p within Monte Carlo error (sd ≤ 0.005)
    assert np.allclose(_table(res.table, "p_value"), exact_p, atol=0.02)


def test_knox_detects_near_repeats() -> None:
    rng = np.random.default_rng(42)
    n = 400
    base = pd.DataFrame(
        {"x_m": rng.uniform(0, 10_000, n), "y_m": rng.uniform(0, 10_000, n), "day": rng.integers(0, 365, n)}
    )
    # 150 near repeats: within 60 m and 1–5 days of an earlier event
    src = base.sample(150, random_state=1)
    repeats = pd.DataFrame(
        {
            "x_m": src["x_m"].to_numpy() + rng.uniform(-40, 40, 150),
            "y_m": src["y_m"].to_numpy() + rng.uniform(-40, 40, 150),
            "day": src["day"].to_numpy() + rng.integers(1, 6, 150),
        }
    )
    events = pd.concat([base, repeats], ignore_index=True)
    points = events.assign(occurred_at=DAY0 + pd.to_timedelta(events["day"], unit="D"))
    res = knox_test(points, permutations=199, seed=0)
    near = res.table.iloc[0]  # 0–100 m × 0–7 days
    assert near["knox_ratio"] > 3 and near["p_value"] < 0.05
    assert near["p_value"] == pytest.approx(1 / 200)
    # shuffle the days: the near-repeat signal disappears
    shuffled = points.assign(occurred_at=points["occurred_at"].sample(frac=1, random_state=5).to_numpy())
    null = knox_test(shuffled, permutations=199, seed=0)
    # (one seeded shuffle: p = 0.05 here, a chance value; the ratio collapses from > 3 to near 1)
    assert null.table["p_value"].iloc[0] > 0.01
    assert null.table["knox_ratio"].iloc[0] < 2


def test_knox_p_values_roughly_uniform_without_interaction() -> None:
    # 30 data sets with independent places and dates: the 0–100 m × 0–7 d p-value is < 0.05 in about 5%
    # of them (binomial(30, 0.05): P(≥ 5) ≈ 0.02); a discrete p makes it conservative, not liberal
    rng = np.random.default_rng(7)
    ps = []
    for _ in range(30):
        pts = pd.DataFrame({"x_m": rng.uniform(0, 3000, 300), "y_m": rng.uniform(0, 3000, 300)})
        pts["occurred_at"] = DAY0 + pd.to_timedelta(rng.integers(0, 200, 300), unit="D")
        ps.append(knox_test(pts, permutations=99, seed=1).table["p_value"].iloc[0])
    assert sum(p < 0.05 for p in ps) <= 4
    assert np.mean(ps) > 0.3


def test_knox_scales_to_100k_points() -> None:
    # its time is measured by bench/ (knox-crimelens in bench/incident_jobs.py), not asserted here
    rng = np.random.default_rng(0)
    n = 100_000
    pts = pd.DataFrame({"x_m": rng.uniform(0, 25_000, n), "y_m": rng.uniform(0, 25_000, n)})
    pts["occurred_at"] = DAY0 + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    res = knox_test(pts, distance_bands_m=(0, 50, 100, 200), permutations=99)
    # two uniform points in a square of side L are within r with probability πr²/L² − 8r³/(3L³) + r⁴/(2L⁴)
    # (the last terms: fewer neighbours near the edges); r/L = 200/25,000 = 0.008 gives 1.99696e-4, so
    # E = C(100,000, 2) · 1.99696e-4 = 4.99995e9 · 1.99696e-4 ≈ 998,470 pairs (sd a few thousand)
    assert res.n_pairs == pytest.approx(998_470, rel=0.03)
    # no interaction was planted: the same-place, same-week cell is near its expectation
    assert 0.8 < res.table["knox_ratio"].iloc[0] < 1.2


def _toronto_break_and_enter(real_data: Path, year: str) -> pd.DataFrame:
    """Toronto break and enters of ``year`` in an equirectangular plane (metres)."""
    path = real_data / "toronto_mci_2014_2019" / "toronto_mci_2014_2019.csv.gz"
    raw = pd.read_csv(path, usecols=["occurrencedate", "MCI", "Lat", "Long"])
    raw = raw[(raw["MCI"] == "Break and Enter") & raw["Lat"].between(43.5, 43.9)]
    raw = raw[raw["occurrencedate"].str[:4] == year]
    lat0 = np.radians(raw["Lat"].mean())
    return pd.DataFrame(
        {
            "x_m": 6371007.181 * np.cos(lat0) * np.radians(raw["Long"]),
            "y_m": 6371007.181 * np.radians(raw["Lat"]),
            "occurred_at": pd.to_datetime(raw["occurrencedate"].str[:10]),
        }
    )


def test_knox_real_toronto_burglary_like_sample(real_data: Path) -> None:
    pts = _toronto_break_and_enter(real_data, "2018")
    res = knox_test(pts, permutations=99, seed=0)
    # burglaries are the textbook near-repeat offence; locations are snapped to intersections, so
    # "same place" pairs are common: the 0–100 m × 0–7 days band shows an excess
    assert res.table["knox_ratio"].iloc[0] > 1
    assert res.table["observed"].sum() > 100


def test_knox_errors() -> None:
    with pytest.raises(SchemaError, match="occurred_at"):
        knox_test(pd.DataFrame({"x_m": [0.0], "y_m": [0.0]}))
    with pytest.raises(DataError, match="distance_bands_m: expected at least two increasing"):
        knox_test(_points(EVENTS), distance_bands_m=(100, 50))
    with pytest.raises(DataError, match="permutations"):
        knox_test(_points(EVENTS), permutations=0)
    bad = _points(EVENTS).astype({"occurred_at": object})
    bad.loc[2, "occurred_at"] = "not a date"
    with pytest.raises(DataError, match="points row 2"):
        knox_test(bad)


def test_knox_exact_duplicates_counted_once_by_hand() -> None:
    # EVENTS plus a copy of A (same place, same day, another hour) and a copy of B one day later (not a duplicate)
    # kept: pairs within 100 m are AB, AA', A'B, AB', A'B', BB' → 0–100 m × 0–7 d holds 6 pairs
    # merged: A' goes, B' stays → AB, AB', BB' = 3 pairs
    events = [*EVENTS, (0, 0, 0), (50, 0, 4)]
    pts = _points(events)
    kept = knox_test(pts, distance_bands_m=D_EDGES, time_bands_days=T_EDGES, permutations=19, keep_duplicates=True)
    merged = knox_test(pts, distance_bands_m=D_EDGES, time_bands_days=T_EDGES, permutations=19)
    assert kept.table["observed"].iloc[0] == 6 and kept.n_merged == 0
    assert merged.table["observed"].iloc[0] == 3 and merged.n_merged == 1
    assert merged.params["incidents"] == 6 and merged.params["incidents_given"] == 7
    assert any("1 of 7 incidents were exact same-place, same-day duplicates" in note for note in merged.notes)


def test_knox_q_values_are_benjamini_hochberg_over_the_bands() -> None:
    from scipy.stats import false_discovery_control

    rng = np.random.default_rng(3)
    pts = pd.DataFrame({"x_m": rng.uniform(0, 2000, 300), "y_m": rng.uniform(0, 2000, 300)})
    pts["occurred_at"] = DAY0 + pd.to_timedelta(rng.integers(0, 120, 300), unit="D")
    res = knox_test(pts, permutations=99, seed=2)
    want = false_discovery_control(res.table["p_value"], method="bh")  # scipy, independent of the code
    assert np.allclose(res.table["q_value"], want)
    assert (res.table["significant"] == (res.table["q_value"] < 0.05)).all()
    assert any("Benjamini–Hochberg" in note for note in res.notes)


def test_knox_real_toronto_burglary_duplicates_inflate_the_near_cell(real_data: Path) -> None:
    # Toronto geocodes to intersections, so exact same-place, same-day pairs are common among break and enters
    pts = _toronto_break_and_enter(real_data, "2019")
    dupes = int(pts.assign(d=pts["occurred_at"].dt.normalize()).duplicated(["x_m", "y_m", "d"]).sum())
    kept = knox_test(pts, permutations=99, seed=0, keep_duplicates=True)
    merged = knox_test(pts, permutations=99, seed=0)
    assert merged.n_merged == dupes > 0
    # removing same-place, same-day pairs can only lower the 0–100 m × 0–7 d ratio
    assert merged.table["knox_ratio"].iloc[0] < kept.table["knox_ratio"].iloc[0]


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_knox_exact_moments_equal_enumeration_over_every_permutation(seed: int) -> None:
    # 8 events, all 8! = 40,320 assignments of their dates: the mean and variance of every cell's count over them
    # are Mantel's exact moments (up to rounding)
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 300, size=(8, 2))
    days = rng.integers(0, 40, 8)
    pts = pd.DataFrame({"x_m": xy[:, 0], "y_m": xy[:, 1], "occurred_at": DAY0 + pd.to_timedelta(days, unit="D")})
    pairs = list(itertools.combinations(range(8), 2))
    dist = np.array([np.hypot(*(xy[i] - xy[j])) for i, j in pairs])
    dband = np.where(dist <= 100, 0, np.where(dist <= 200, 1, np.where(dist <= 400, 2, -1)))
    ii = np.array([p[0] for p in pairs])
    jj = np.array([p[1] for p in pairs])
    tables = []
    for perm in itertools.permutations(range(8)):
        gap = np.abs(days[list(perm)][ii] - days[list(perm)][jj])
        tband = np.where(gap <= 7, 0, np.where(gap <= 14, 1, np.where(gap <= 28, 2, -1)))
        table = np.zeros((3, 3))
        ok = (dband >= 0) & (tband >= 0)
        np.add.at(table, (dband[ok], tband[ok]), 1)
        tables.append(table)
    exact = np.array(tables)
    res = knox_test(pts, method="moments")
    assert res.params["method"] == "moments" and res.params["permutations"] == 0
    assert np.allclose(_table(res.table, "expected"), exact.mean(axis=0), atol=1e-9)
    # p = P(Z ≥ (observed − ½ − mean) / sd): invert it for the sd the test used
    from scipy.stats import norm

    observed, mean, p = (_table(res.table, c) for c in ("observed", "expected", "p_value"))
    sd = exact.std(axis=0)
    usable = sd > 0
    assert np.allclose(p[usable], norm.sf((observed[usable] - 0.5 - mean[usable]) / sd[usable]), rtol=1e-9)


def test_knox_auto_uses_the_exact_moments_on_large_data_and_agrees_with_permutations(real_data: Path) -> None:
    pts = _toronto_break_and_enter(real_data, "2018")
    auto = knox_test(pts)
    perm = knox_test(pts, method="permutation", permutations=199, seed=0)
    assert auto.params["method"] == "moments" and perm.params["method"] == "permutation"
    assert (auto.table["expected"] >= 100).all()  # why auto chose the moments
    # the Monte Carlo mean of 199 draws estimates the exact mean: within 5 Monte Carlo standard errors
    # (sd of a cell ≈ √expected for these counts; se = sd / √199)
    se = np.sqrt(auto.table["expected"]) / np.sqrt(199)
    assert (np.abs(perm.table["expected"] - auto.table["expected"]) < 5 * se).all()
    assert (auto.table["observed"] == perm.table["observed"]).all()
    small = knox_test(pts.head(200), permutations=99)
    assert small.params["method"] == "permutation"  # too few pairs per cell for the normal approximation
