"""Spatial analyses: concentration curve, kernel density, Getis-Ord Gi* (checked against esda) and
persistent grid hot spots."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimelens.analysis.incidents.hotspots import getis_ord_gi_star, grid_weights, persistent_cells
from crimelens.analysis.incidents.spatial import concentration_curve, kernel_density, scott_bandwidth
from crimelens.errors import DataError, SchemaError, SparseDataWarning


def _grid(values: np.ndarray) -> pd.DataFrame:
    """A (ny, nx) array of counts as a grid frame, row y = cell_y."""
    ny, nx = values.shape
    xs, ys = np.meshgrid(np.arange(nx), np.arange(ny))
    return pd.DataFrame({"cell_x": xs.ravel(), "cell_y": ys.ravel(), "incidents": values.ravel()})


@pytest.fixture(scope="module")
def toronto_xy(real_data: Path) -> pd.DataFrame:
    """Toronto MCI incidents 2014–2019 projected to local metres (equirectangular about the mean latitude;
    the aggregation layer's projection is tested in test_aggregate)."""
    path = real_data / "toronto_mci_2014_2019" / "toronto_mci_2014_2019.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    raw = pd.read_csv(path, usecols=["occurrencedate", "occurrencehour", "Lat", "Long"])
    raw = raw[raw["Lat"].between(43.5, 43.9) & raw["Long"].between(-79.7, -79.1)]
    lat0 = np.radians(raw["Lat"].mean())
    r = 6371007.181
    x = r * np.cos(lat0) * np.radians(raw["Long"] - raw["Long"].min())
    y = r * np.radians(raw["Lat"] - raw["Lat"].min())
    when = pd.to_datetime(raw["occurrencedate"].str[:10]) + pd.to_timedelta(raw["occurrencehour"], unit="h")
    return pd.DataFrame({"x_m": x.to_numpy(), "y_m": y.to_numpy(), "occurred_at": when.to_numpy()})


def _bin(points: pd.DataFrame, cell_m: float) -> pd.DataFrame:
    cx = np.floor(points["x_m"] / cell_m).astype("int64")
    cy = np.floor(points["y_m"] / cell_m).astype("int64")
    out = pd.DataFrame({"cell_x": cx, "cell_y": cy}).value_counts().rename("incidents").reset_index()
    out["x_m"] = (out["cell_x"] + 0.5) * cell_m
    out["y_m"] = (out["cell_y"] + 0.5) * cell_m
    return out


# -- concentration ---------------------------------------------------------------------------------------
def test_concentration_hand_computed() -> None:
    # 3 units with incidents 5, 3, 2 and 7 units with none: N = 10, total 10.
    # top 10% = 1 unit = 5/10 = 0.5; top 5% and top 1% also round up to 1 unit = 0.5.
    # half the incidents are in the busiest unit: units_for_half = 1/10 = 0.1.
    # Gini, ascending y = 0×7, 2, 3, 5: Σ i·y = 8·2 + 9·3 + 10·5 = 93; G = 2·93/(10·10) − 11/10 = 0.76.
    counts = pd.DataFrame({"unit": ["a", "b", "c"], "incidents": [3, 5, 2]})
    res = concentration_curve(counts, units_total=10)
    assert res.top_10pct == pytest.approx(0.5)
    assert res.top_1pct == pytest.approx(0.5)
    assert res.units_for_half == pytest.approx(0.1)
    assert res.gini == pytest.approx(0.76)
    # curve: (0,0), (0.1,0.5), (0.2,0.8), (0.3,1.0), (1,1)
    assert res.table["unit_share"].tolist() == pytest.approx([0, 0.1, 0.2, 0.3, 1.0])
    assert res.table["incident_share"].tolist() == pytest.approx([0, 0.5, 0.8, 1.0, 1.0])
    assert "7 of 10" in " ".join(res.notes)
    assert res.chart().kind == "line"


def test_concentration_even_spread_has_gini_zero_and_grid_default_rectangle() -> None:
    # a 2 × 3 grid with 4 incidents in every cell: perfectly even, Gini 0, half of units for half
    res = concentration_curve(_grid(np.full((2, 3), 4)))
    assert res.units_total == 6
    assert res.gini == pytest.approx(0.0)
    assert res.units_for_half == pytest.approx(0.5)
    assert "bounding rectangle" in res.notes[0]


def test_concentration_warns_with_more_places_than_crimes() -> None:
    with pytest.warns(SparseDataWarning, match="fewer incidents than places"):
        concentration_curve(pd.DataFrame({"area": ["1"], "incidents": [3]}), units_total=100)


def test_concentration_rejects_bad_input() -> None:
    with pytest.raises(SchemaError, match="unit column"):
        concentration_curve(pd.DataFrame({"x": [1], "incidents": [1]}))
    with pytest.raises(DataError, match="units_total"):
        concentration_curve(pd.DataFrame({"unit": ["a", "b"], "incidents": [1, 1]}), units_total=1)
    with pytest.raises(DataError, match=r"row 1: expected a whole number ≥ 0, got '-2'"):
        concentration_curve(pd.DataFrame({"unit": ["a", "b"], "incidents": [1, -2]}))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=40).filter(lambda v: sum(v) > 0),
    st.integers(0, 30),
)
def test_concentration_curve_is_monotone_concave_and_ends_at_one(values: list[int], extra: int) -> None:
    counts = pd.DataFrame({"unit": [str(i) for i in range(len(values))], "incidents": values})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SparseDataWarning)
        res = concentration_curve(counts, units_total=len(values) + extra)
    u, s = res.table["unit_share"].to_numpy(), res.table["incident_share"].to_numpy()
    assert (np.diff(u) >= 0).all() and (np.diff(s) >= -1e-12).all()
    assert u[-1] == 1 and s[-1] == pytest.approx(1.0)
    assert (s >= u - 1e-12).all()  # busiest first: never below the diagonal
    assert 0 <= res.gini < 1
    assert res.top_1pct <= res.top_5pct <= res.top_10pct <= 1


def test_concentration_on_toronto_cells(toronto_xy: pd.DataFrame) -> None:
    res = concentration_curve(_bin(toronto_xy, 250.0))
    # real city crime is concentrated: far fewer than half the cells hold half the incidents
    assert res.units_for_half < 0.1
    assert 0.6 < res.gini < 1


# -- kernel density --------------------------------------------------------------------------------------
def test_kde_matches_scipy_gaussian_kde() -> None:
    from scipy.stats import gaussian_kde

    # 12 random points and their rotations by 90°, 180°, 270° about the origin: the sample covariance is
    # then c·I exactly, so gaussian_kde with factor h/√c is the isotropic kernel of sd h.
    rng = np.random.default_rng(3)
    base = rng.normal(0, 400, size=(12, 2))
    pts = np.vstack([base, base @ [[0, -1], [1, 0]], -base, base @ [[0, 1], [-1, 0]]])
    c = np.cov(pts.T)
    assert c[0, 1] == pytest.approx(0, abs=1e-6) and c[0, 0] == pytest.approx(c[1, 1])
    h, cell = 300.0, 20.0
    res = kernel_density(
        pd.DataFrame({"x_m": pts[:, 0], "y_m": pts[:, 1]}),
        bandwidth_m=h,
        cell_m=cell,
        extent=(-3000, -3000, 3000, 3000),
    )
    kde = gaussian_kde(pts.T, bw_method=h / np.sqrt(c[0, 0]))
    centres = res.table[["x_m", "y_m"]].to_numpy().T
    exact = kde(centres) * len(pts) * 1e6  # density per m² × n → incidents per km²
    got = res.table["density"].to_numpy()
    # binning moves each point ≤ 10 m (cell/2 diagonal ≈ 14 m) against h = 300 m: under 2% of the peak
    assert np.abs(got - exact).max() < 0.02 * exact.max()
    # the whole mass is inside the ±3 km extent: Σ density × cell area = n incidents
    assert got.sum() * (cell * cell) / 1e6 == pytest.approx(len(pts), rel=1e-3)
    assert res.shape == (300, 300) and res.table["relative"].max() == pytest.approx(1.0)


def test_kde_default_bandwidth_and_outside_points() -> None:
    pts = pd.DataFrame({"x_m": [0.0, 100.0, 200.0, 5000.0], "y_m": [0.0, 50.0, 100.0, 5000.0]})
    res = kernel_density(pts, cell_m=50, extent=(-500, -500, 1000, 1000))
    assert res.bandwidth_m == pytest.approx(scott_bandwidth(pts["x_m"].to_numpy(), pts["y_m"].to_numpy()))
    assert any("1 of 4 incidents outside the extent" in n for n in res.notes)
    with pytest.raises(DataError, match="bandwidth_m: expected a bandwidth in metres > 0"):
        kernel_density(pts, bandwidth_m=-1)
    with pytest.raises(SchemaError, match="x_m and y_m"):
        kernel_density(pd.DataFrame({"x": [1.0]}))


def test_scott_bandwidth_hand_computed() -> None:
    # x = y = 0, 1, 2, 3 (n = 4): sd = √(5/3) = 1.291; IQR = 2.25 − 0.75 = 1.5, /1.349 = 1.112 → σ̂ = 1.112;
    # h = 1.112 · 4^(−1/6) = 1.112 · 0.7937 = 0.8826
    v = np.array([0.0, 1.0, 2.0, 3.0])
    assert scott_bandwidth(v, v) == pytest.approx(1.5 / 1.349 * 4 ** (-1 / 6))


def test_kde_one_million_points_keeps_the_mass() -> None:
    # its time is measured by bench/ (kde-crimelens in bench/incident_jobs.py), not asserted here
    rng = np.random.default_rng(0)
    pts = pd.DataFrame({"x_m": rng.normal(0, 5000, 1_000_000), "y_m": rng.normal(0, 5000, 1_000_000)})
    res = kernel_density(pts, bandwidth_m=400, cell_m=150, extent=(-20_000, -20_000, 20_000, 20_000))
    assert res.table["density"].sum() * 0.15**2 == pytest.approx(1_000_000, rel=1e-3)


# -- Gi* against esda ------------------------------------------------------------------------------------
def _esda(y: np.ndarray, w: object) -> object:
    from esda.getisord import G_Local

    return G_Local(y, w, transform="B", star=True, permutations=0)


@pytest.mark.parametrize("rook", [False, True])
def test_gi_star_equals_esda_on_random_grid(rook: bool) -> None:
    from libpysal.weights import lat2W

    rng = np.random.default_rng(7)
    values = rng.poisson(3, size=(9, 11)).astype(float)
    res = getis_ord_gi_star(_grid(values), neighbours="rook" if rook else "queen", permutations=0, p_values="normal")
    ref = _esda(values.ravel(), lat2W(9, 11, rook=rook))
    assert np.allclose(res.table["z"], ref.Zs, rtol=1e-12, atol=1e-12)  # type: ignore[attr-defined]
    assert np.allclose(res.table["p_norm"], ref.p_norm, rtol=1e-12, atol=1e-15)  # type: ignore[attr-defined]
    assert np.allclose(res.table["gi_star"], ref.Gs, rtol=1e-12)  # type: ignore[attr-defined]
    assert np.allclose(res.table["p_value"], 2 * ref.p_norm)  # type: ignore[attr-defined]


def test_gi_star_equals_esda_with_distance_band() -> None:
    from libpysal.weights import DistanceBand

    rng = np.random.default_rng(8)
    values = rng.poisson(1.5, size=(8, 10)).astype(float)
    grid = _grid(values).assign(x_m=lambda f: (f["cell_x"] + 0.5) * 150.0, y_m=lambda f: (f["cell_y"] + 0.5) * 150.0)
    # 320 m reaches (±2, 0) at 300 m and (±1, ±2) at 335 m? no: √5 · 150 = 335 > 320, so 13 cells incl. self
    res = getis_ord_gi_star(grid, neighbours="distance", distance_m=320, permutations=0)
    assert res.table["neighbours"].max() == 13
    w = DistanceBand(grid[["x_m", "y_m"]].to_numpy(), threshold=320, binary=True, silence_warnings=True)
    ref = _esda(values.ravel(), w)
    assert np.allclose(res.table["z"], ref.Zs, rtol=1e-12, atol=1e-12)  # type: ignore[attr-defined]
    assert np.allclose(res.table["p_norm"], ref.p_norm, rtol=1e-12, atol=1e-15)  # type: ignore[attr-defined]


def test_gi_star_equals_esda_on_real_toronto_window(toronto_xy: pd.DataFrame) -> None:
    from libpysal.weights import lat2W

    cells = _bin(toronto_xy, 250.0)
    # a 12 × 16 window of 250 m cells around the busiest cell (downtown), missing cells = 0
    top = cells.loc[cells["incidents"].idxmax()]
    x0, y0 = int(top["cell_x"]) - 8, int(top["cell_y"]) - 6
    window = cells[cells["cell_x"].between(x0, x0 + 15) & cells["cell_y"].between(y0, y0 + 11)]
    res = getis_ord_gi_star(window, cell_extent=(x0, y0, x0 + 15, y0 + 11), permutations=0, study_area="rectangle")
    dense = np.zeros((12, 16))
    dense[window["cell_y"] - y0, window["cell_x"] - x0] = window["incidents"]
    ref = _esda(dense.ravel(), lat2W(12, 16, rook=False))
    assert np.allclose(res.table["z"], ref.Zs, rtol=1e-12, atol=1e-12)  # type: ignore[attr-defined]
    assert np.allclose(res.table["p_norm"], ref.p_norm, rtol=1e-12, atol=1e-15)  # type: ignore[attr-defined]
    assert res.n_hot > 0
    # x_m of every cell of the rectangle, rows without incidents included, follows the 250 m grid
    assert np.allclose(np.diff(res.table["x_m"].to_numpy()[:16]), 250.0)


def test_gi_star_whole_toronto_grid(toronto_xy: pd.DataFrame) -> None:
    # its time at this scale is measured by bench/ (gi-999-crimelens in bench/incident_jobs.py), not asserted here
    cells = _bin(toronto_xy, 150.0)
    res = getis_ord_gi_star(cells, permutations=999, seed=1)
    # the study area is the cells with incidents, not the ~ 43 km × 21 km rectangle (lake and beyond the city)
    assert res.params["n_cells"] == len(cells) and res.params["rectangle_cells"] > 40_000
    hot = res.table[res.table["hotspot"] == "hot"]
    assert len(hot) > 0 and hot["incidents"].mean() > res.table["incidents"].mean()


def test_gi_star_planted_hotspot_and_weights_shape() -> None:
    # 10 × 10 grid of 1s with a 3 × 3 block of 20s centred on (5, 5): the centre's queen neighbourhood sums
    # 9 · 20 = 180 against an expected 9 · ȳ = 9 · (91 + 180)/100 = 24.4, so it is hot
    values = np.ones((10, 10))
    values[4:7, 4:7] = 20
    res = getis_ord_gi_star(_grid(values), permutations=199, seed=0, p_values="normal")
    centre = res.table[(res.table["cell_x"] == 5) & (res.table["cell_y"] == 5)].iloc[0]
    assert centre["hotspot"] == "hot" and centre["p_sim"] == pytest.approx(2 / 200)
    assert res.table["hotspot"].eq("cold").sum() == 0
    w = grid_weights(3, 2, neighbours="queen")
    # corner (0, 0) of a 3 × 2 grid: itself, (1, 0), (0, 1), (1, 1) → 4; middle bottom (1, 0) → 6
    assert w.sum(axis=1).A1.tolist() == [4, 6, 4, 4, 6, 4]


def test_gi_star_fdr_reduces_significant_cells_on_noise() -> None:
    rng = np.random.default_rng(2024)
    values = rng.poisson(5, size=(40, 50)).astype(float)
    raw = getis_ord_gi_star(_grid(values), permutations=0, fdr=False)
    adjusted = getis_ord_gi_star(_grid(values), permutations=0, fdr=True)
    n_raw = int(raw.table["significant"].sum())
    n_adj = int(adjusted.table["significant"].sum())
    # 2,000 noise cells at α = 0.05: dozens significant by chance (spatially smoothed, so not exactly 5%),
    # and the FDR removes (nearly) all of them
    assert n_raw > 20
    assert n_adj < n_raw and n_adj <= 2
    assert any("by chance alone" in n for n in raw.notes)


def test_gi_star_permutations_are_reproducible_and_sane() -> None:
    rng = np.random.default_rng(5)
    values = rng.poisson(2, size=(12, 12)).astype(float)
    a = getis_ord_gi_star(_grid(values), permutations=499, seed=11, p_values="permutation")
    b = getis_ord_gi_star(_grid(values), permutations=499, seed=11, p_values="permutation")
    c = getis_ord_gi_star(_grid(values), permutations=499, seed=12, p_values="permutation")
    assert a.table["p_sim"].equals(b.table["p_sim"])
    assert not a.table["p_sim"].equals(c.table["p_sim"])
    p = a.table["p_sim"].to_numpy()
    assert ((p >= 2 / 500) & (p <= 1)).all()
    # against a brute-force conditional randomisation (each draw: the W_i − 1 neighbours sampled without
    # replacement from the other 143 cells, y_i kept) with 4,000 draws: the two-sided p's Monte Carlo sd
    # is at most 2 · √(0.25/499) ≈ 0.045 (plus 0.016 from the 4,000 draws); 0.12 is about 2.5 sd
    brute = np.random.default_rng(99)
    y = values.ravel()
    lag = a.table["gi_star"].to_numpy() * y.sum()
    card = a.table["neighbours"].to_numpy()
    for i in (0, 5, 13, 77, 143):
        others = np.delete(y, i)
        sims = np.array([brute.choice(others, card[i] - 1, replace=False).sum() for _ in range(4000)]) + y[i]
        hi, lo = (sims >= lag[i] - 1e-9).mean(), (sims <= lag[i] + 1e-9).mean()
        assert p[i] == pytest.approx(min(1.0, 2 * min(hi, lo)), abs=0.12)


def test_gi_star_errors() -> None:
    with pytest.raises(SchemaError, match="missing column"):
        getis_ord_gi_star(pd.DataFrame({"cell_x": [0], "incidents": [1]}))
    with pytest.raises(DataError, match="at least one incident"):
        getis_ord_gi_star(_grid(np.zeros((3, 3))))
    with pytest.raises(DataError, match="distance_m"):
        getis_ord_gi_star(_grid(np.ones((3, 3))), neighbours="distance", permutations=0)
    two = pd.concat([_grid(np.ones((2, 2))).assign(period_start=p) for p in ("2022-01-03", "2022-01-10")])
    with pytest.raises(DataError, match="one period"):
        getis_ord_gi_star(two)
    with pytest.raises(DataError, match="permutations ≥ 1"):
        getis_ord_gi_star(_grid(np.ones((3, 3))), permutations=0, p_values="permutation")


# -- persistent hotspots ---------------------------------------------------------------------------------
def test_persistent_cells_top_share_hand_computed() -> None:
    # cells 0–4 × 0–3 = 20 cells, 8 weeks; top_share 0.05 → ⌈0.05 · 20⌉ = 1 cell (plus ties) hot a week.
    # (0,0) has 9 in weeks 1–7 (hot 7/8 = 0.875 ≥ 0.75: stable) and 1 in week 8 (not hot: 9s that week).
    # (4,3) has 9 in weeks 7–8 (ties (0,0) in week 7): hot in both of the latest r = ⌊8/4⌋ = 2 weeks and
    # never before: emerging. (3,2) has 9 in week 8 only: hot in 1 of the latest 2: intermittent.
    # (1,1) has 1 every week: never at the threshold (9), never hot.
    weeks = pd.date_range("2022-01-03", periods=8, freq="7D")
    rows = []
    for k, w in enumerate(weeks):
        rows.append((0, 0, w, 9 if k < 7 else 1))
        rows.append((1, 1, w, 1))
        if k == 7:
            rows.append((3, 2, w, 9))
        if k >= 6:
            rows.append((4, 3, w, 9))
    frame = pd.DataFrame(rows, columns=["cell_x", "cell_y", "period_start", "incidents"])
    res = persistent_cells(frame, top_share=0.05, min_periods_share=0.75)
    got = res.table.set_index(["cell_x", "cell_y"])
    assert got.loc[(0, 0), "status"] == "stable" and got.loc[(0, 0), "periods_hot"] == 7
    assert got.loc[(0, 0), "longest_run"] == 7 and got.loc[(0, 0), "incidents"] == 7 * 9 + 1
    assert got.loc[(4, 3), "status"] == "emerging" and got.loc[(4, 3), "periods_hot"] == 2
    assert got.loc[(3, 2), "status"] == "intermittent"
    assert (1, 1) not in got.index
    assert res.n_periods == 8 and res.n_stable == 1
    assert res.table["status"].iloc[0] == "stable"


def test_persistent_cells_gi_method_finds_planted_block() -> None:
    rng = np.random.default_rng(1)
    frames = []
    for k, w in enumerate(pd.date_range("2022-01-03", periods=6, freq="7D")):
        values = rng.poisson(1, size=(15, 15)).astype(float)
        values[6:9, 6:9] += 12  # a chronic block
        frames.append(_grid(values).assign(period_start=w))
        del k
    res = persistent_cells(pd.concat(frames), method="gi", min_periods_share=0.75)
    stable = res.table[res.table["status"] == "stable"]
    assert ((stable["cell_x"] - 7).abs() <= 2).all() and ((stable["cell_y"] - 7).abs() <= 2).all()
    assert ((stable["cell_x"] == 7) & (stable["cell_y"] == 7)).any()


def test_persistent_cells_errors() -> None:
    with pytest.raises(SchemaError, match="period_start"):
        persistent_cells(_grid(np.ones((2, 2))))
    with pytest.raises(DataError, match="top_share"):
        persistent_cells(_grid(np.ones((2, 2))).assign(period_start="2022-01-03"), top_share=2)


def test_gi_star_fdr_equals_esda_and_scipy_benjamini_hochberg(toronto_xy: pd.DataFrame) -> None:
    """FDR on real data: the cells called hot/cold are exactly those under esda's own FDR threshold
    (esda.fdr: Benjamini–Hochberg's largest i with p_(i) < i·α/n), and the q-values are scipy's BH q-values."""
    from esda import fdr
    from scipy.stats import false_discovery_control

    cells = _bin(toronto_xy, 250.0)
    res = getis_ord_gi_star(cells, permutations=0, alpha=0.05, fdr=True)
    p = res.table["p_value"].to_numpy()
    threshold = fdr(p, 0.05)
    assert threshold > 0.05 / len(p)  # esda found significant cells (it falls back to Bonferroni otherwise)
    assert (res.table["significant"].to_numpy() == (p <= threshold)).all()
    assert np.allclose(res.table["q_value"], false_discovery_control(p, method="bh"))
    assert set(res.table.loc[res.table["significant"], "hotspot"]) <= {"hot", "cold"}
    # and without FDR more cells pass at the same α (many tests: uncorrected p-values over-call hot spots)
    raw = getis_ord_gi_star(cells, permutations=0, alpha=0.05, fdr=False)
    assert int(raw.table["significant"].sum()) > int(res.table["significant"].sum())
