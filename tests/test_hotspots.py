"""Gi*'s study area and p-values (crimelens.analysis.incidents.hotspots, scope.hotspots): cells outside the
data's footprint are not tested, the exact randomisation p equals a brute-force enumeration and the normal p where
counts are large, the chosen p is the one the FDR adjusts, a cold spot is found where the data allow one and
the notes say when they do not. The real-data tests reproduce issue 8 on Toronto's 250 m grid."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from crimelens.analysis.incidents.hotspots import getis_ord_gi_star, grow_study_area
from crimelens.errors import DataError, SparseDataWarning

pytestmark = [pytest.mark.filterwarnings(r"ignore:fetch_arrow_table\(\) is deprecated:DeprecationWarning")]


def _grid(values: np.ndarray, keep: np.ndarray | None = None) -> pd.DataFrame:
    """A (ny, nx) array of counts as a grid frame (row y = cell_y); ``keep``: the cells given (others: no row)."""
    ny, nx = values.shape
    xs, ys = np.meshgrid(np.arange(nx), np.arange(ny))
    frame = pd.DataFrame({"cell_x": xs.ravel(), "cell_y": ys.ravel(), "incidents": values.ravel()})
    return frame if keep is None else frame[keep.ravel()].reset_index(drop=True)


# -- study area -------------------------------------------------------------------------------------------
def _land(ny: int = 10, nx: int = 12) -> np.ndarray:
    """An L-shaped city: the west 5 columns and the south 4 rows; the rest is 'lake' (no rows)."""
    land = np.zeros((ny, nx), dtype=bool)
    land[:, :5] = True
    land[:4, :] = True
    return land


def test_cells_outside_the_study_area_are_not_tested_and_z_equals_esda_on_the_land() -> None:
    from esda.getisord import G_Local
    from libpysal.weights import W

    rng = np.random.default_rng(8)
    values = rng.negative_binomial(2, 0.1, size=(10, 12)).astype(float)
    land = _land()
    values[~land] = 0
    res = getis_ord_gi_star(_grid(values, land), permutations=0)
    t = res.table
    assert len(t) == land.sum() == res.params["n_cells"] and res.params["rectangle_cells"] == 120
    assert set(zip(t["cell_x"], t["cell_y"], strict=True)) == {(x, y) for y, x in zip(*np.nonzero(land), strict=True)}
    # reference: esda on the land cells alone, queen neighbours among them (built here from the cell indices)
    ids = list(zip(t["cell_x"], t["cell_y"], strict=True))
    where = {c: i for i, c in enumerate(ids)}
    neighbours = {
        i: [
            where[(x + dx, y + dy)]
            for dx in (-1, 0, 1)
            for dy in (-1, 0, 1)
            if (dx or dy) and (x + dx, y + dy) in where
        ]
        for i, (x, y) in enumerate(ids)
    }
    ref = G_Local(t["incidents"].to_numpy(float), W(neighbours), star=True, transform="B", permutations=0)
    assert np.allclose(t["z"], ref.Zs, rtol=1e-12, atol=1e-12)  # type: ignore[attr-defined]
    assert (t["neighbours"].to_numpy() == [1 + len(neighbours[i]) for i in range(len(ids))]).all()
    # the shore cell (6, 3) touches land at (5, 2), (6, 2), (7, 2), (5, 3), (7, 3) and itself: 6, not 9
    shore = t[(t["cell_x"] == 6) & (t["cell_y"] == 3)].iloc[0]
    assert shore["neighbours"] == 6
    # the rectangle tests the lake too, with 9 neighbours at the shore
    rect = getis_ord_gi_star(_grid(values, land), permutations=0, study_area="rectangle")
    assert len(rect.table) == 120
    assert rect.table[(rect.table["cell_x"] == 6) & (rect.table["cell_y"] == 3)].iloc[0]["neighbours"] == 9


def test_grow_study_area_by_hand() -> None:
    # 4 × 3 rectangle, one flagged cell at (0, 0): it and (1, 0), (0, 1), (1, 1) → rows 0, 1, 4, 5
    flags = np.zeros(12, dtype=bool)
    flags[0] = True
    assert np.flatnonzero(grow_study_area(flags, 4, 3)).tolist() == [0, 1, 4, 5]
    with pytest.raises(DataError, match="expected 12 flags"):
        grow_study_area(np.zeros(5, dtype=bool), 4, 3)


def test_study_area_option_is_checked() -> None:
    with pytest.raises(DataError, match="study_area: expected 'data' or 'rectangle', got 'lake'"):
        getis_ord_gi_star(_grid(np.ones((3, 3))), study_area="lake")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="p_values: expected 'exact', 'normal' or 'permutation'"):
        getis_ord_gi_star(_grid(np.ones((3, 3))), p_values="auto")  # type: ignore[arg-type]


# -- p-values -----------------------------------------------------------------------------------------------
def test_exact_p_equals_brute_force_enumeration() -> None:
    # 4 × 4 grid, rook weights (W_i ≤ 5): every W_i-tuple of the 16 counts drawn with replacement is enumerated
    rng = np.random.default_rng(4)
    values = rng.integers(0, 6, size=(4, 4)).astype(float)
    res = getis_ord_gi_star(_grid(values), neighbours="rook", permutations=0)
    y = values.ravel()
    lag = np.round(res.table["gi_star"].to_numpy() * y.sum())
    for i, (w, obs) in enumerate(zip(res.table["neighbours"], lag, strict=True)):
        sums = np.array([sum(c) for c in itertools.product(y, repeat=int(w))])
        expected = min(1.0, 2 * min((sums >= obs).mean(), (sums <= obs).mean()))
        assert res.table["p_exact"].iloc[i] == pytest.approx(expected, abs=1e-12)


def test_normal_and_exact_p_agree_where_counts_are_large_and_not_on_skewed_counts() -> None:
    rng = np.random.default_rng(3)
    big = getis_ord_gi_star(_grid(rng.poisson(400, size=(30, 30)).astype(float)), permutations=0).table
    # Poisson(400) sums of 9 are close to normal: they differ by about the mass of the observed sum counted on
    # both sides (≈ 2 / (√(2π) · 60) ≈ 0.013)
    assert (big["p_exact"] - 2 * big["p_norm"]).abs().max() < 0.03
    # 90% zeros and a long tail: the normal p is far too small for high neighbourhood sums
    skewed = np.where(rng.random((30, 30)) < 0.9, 0, rng.geometric(0.02, size=(30, 30))).astype(float)
    t = getis_ord_gi_star(_grid(skewed), permutations=0).table
    hot = t["z"] > 0
    assert ((2 * t["p_norm"] <= 0.05) & (t["p_exact"] > 0.05) & hot).sum() > 10
    assert ((2 * t["p_norm"] > 0.05) & (t["p_exact"] <= 0.05) & hot).sum() == 0


@pytest.mark.parametrize("choice", ["exact", "normal", "permutation"])
def test_the_chosen_p_is_the_one_the_fdr_adjusts(choice: str) -> None:
    from scipy.stats import false_discovery_control

    rng = np.random.default_rng(6)
    values = rng.negative_binomial(1, 0.05, size=(15, 15)).astype(float)
    values[5:8, 5:8] += 150
    res = getis_ord_gi_star(_grid(values), permutations=499, seed=3, p_values=choice)  # type: ignore[arg-type]
    t = res.table
    column = {"exact": t["p_exact"], "normal": 2 * t["p_norm"], "permutation": t["p_sim"]}[choice]
    assert np.allclose(t["p_value"], column)
    assert np.allclose(t["q_value"], false_discovery_control(column.to_numpy(), method="bh"))
    assert (t["significant"] == (t["q_value"] <= 0.05)).all()
    assert res.params["p_values"] == choice
    assert any(n.startswith("p-values: ") for n in res.notes)


def test_a_cold_spot_is_found_where_the_data_allow_one() -> None:
    # Poisson(30) counts with a 3 × 3 block of empty cells: the centre's 9 cells are all 0, and 9 random cells
    # of this grid are all 0 with chance (9/400)^9 ≈ 1.5e-15 (P(Poisson(30) = 0) ≈ 1e-13 adds nothing)
    rng = np.random.default_rng(11)
    values = rng.poisson(30, size=(20, 20)).astype(float)
    values[9:12, 9:12] = 0
    res = getis_ord_gi_star(_grid(values), permutations=0)
    centre = res.table[(res.table["cell_x"] == 10) & (res.table["cell_y"] == 10)].iloc[0]
    assert centre["hotspot"] == "cold" and centre["p_exact"] < 1e-10 and res.n_cold >= 1
    assert not any("cold spot" in n for n in res.notes)


def test_the_notes_say_when_no_cold_spot_is_possible() -> None:
    # 10 × 10 grid, 80 empty cells and 20 busy ones: the lowest neighbourhood (9 cells, all 0) has exact
    # two-sided p = 2 · (80/100)^9 = 0.2684, above 0.05 (corners and edges, 4 and 6 cells, reach less)
    values = np.zeros((10, 10))
    values.ravel()[np.random.default_rng(1).choice(100, 20, replace=False)] = 50
    res = getis_ord_gi_star(_grid(values), permutations=0)
    assert res.n_cold == 0
    note = next(n for n in res.notes if "cold spot" in n)
    assert note.startswith("No cold spot is possible here") and "p = 0.268" in note


# -- real data: issue 8 on Toronto's 250 m grid ------------------------------------------------------------
@pytest.fixture(scope="module")
def toronto(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from crimelens import warehouse

    path = tmp_path_factory.mktemp("gi-toronto") / "w.duckdb"
    con = warehouse.connect(path)
    warehouse.load_incidents(
        con, real_data / "toronto_mci_2014_2019" / "toronto_mci_2014_2019.csv.gz", source="toronto"
    )
    con.close()
    return path


@pytest.mark.slow
def test_toronto_footprint_and_exact_p_find_cold_spots_the_rectangle_cannot(toronto: Path) -> None:
    from crimelens.analysis.incidents.scope import IncidentFilter, hotspots
    from crimelens.engine import incident_table

    with incident_table(toronto, source="toronto") as t:
        before = hotspots(t, cell_m=250, permutations=0, study_area="rectangle", p_values="normal")
        after = hotspots(t, cell_m=250, permutations=0)
        robbery = hotspots(IncidentFilter(("robbery",), None, None).apply(t), cell_m=250, permutations=0, footprint=t)
    # before: the bounding rectangle, two thirds empty, where no cell can be significantly cold
    rect = before.table
    assert before.params["n_cells"] == len(rect) and (rect["incidents"] == 0).mean() > 0.5
    assert before.n_cold == 0 and any(n.startswith("No cold spot is possible here") for n in before.notes)
    # after: the cells with incidents and those touching them, nothing farther (the lake and beyond)
    busy = {(x, y) for x, y, n in zip(rect["cell_x"], rect["cell_y"], rect["incidents"], strict=True) if n > 0}
    near = {(x + dx, y + dy) for x, y in busy for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
    tested = set(zip(after.table["cell_x"], after.table["cell_y"], strict=True))
    assert busy <= tested <= near and len(tested) < 0.6 * len(rect)
    assert after.table["incidents"].sum() == rect["incidents"].sum()
    assert after.params["p_values"] == "exact" and after.params["study_area"] == "footprint"
    assert after.n_cold > 0 and after.n_hot > 0
    assert after.notes[0].startswith("Study area: the 250 m cells with at least one incident")
    # the normal p calls hot far more cells than the exact p on these skewed counts
    assert before.n_hot > 3 * after.n_hot
    # a filtered map keeps the city's study area: cells without a robbery are tested as 0
    assert set(zip(robbery.table["cell_x"], robbery.table["cell_y"], strict=True)) == tested
    assert (robbery.table["incidents"] == 0).sum() > (after.table["incidents"] == 0).sum()
    assert "of the whole dataset" in robbery.notes[0]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    nx=st.integers(1, 12),
    ny=st.integers(1, 12),
    kind=st.sampled_from(["queen", "rook"]),
    share=st.sampled_from([0.3, 0.7, 1.0]),
)
def test_study_area_neighbourhoods_equal_a_brute_force_count(
    seed: int, nx: int, ny: int, kind: str, share: float
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.poisson(3, size=(ny, nx)).astype(float)
    keep = rng.random((ny, nx)) < share
    assume(keep.any() and values[keep].sum() > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SparseDataWarning)
        res = getis_ord_gi_star(_grid(values, keep), neighbours=kind, permutations=0)  # type: ignore[arg-type]
    steps = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    if kind == "rook":
        steps = [(dx, dy) for dx, dy in steps if dx == 0 or dy == 0]
    total = values[keep].sum()
    for row in res.table.itertuples():
        near = [
            (row.cell_x + dx, row.cell_y + dy)
            for dx, dy in steps
            if 0 <= row.cell_x + dx < nx and 0 <= row.cell_y + dy < ny and keep[row.cell_y + dy, row.cell_x + dx]
        ]
        assert row.neighbours == len(near)
        assert row.gi_star * total == pytest.approx(sum(values[y, x] for x, y in near))
    assert len(res.table) == keep.sum()


def test_a_panel_study_area_is_used_and_incidents_outside_it_are_counted() -> None:
    from crimelens.analysis.incidents.panel import GridPanel
    from crimelens.geo import GridOrigin

    # 3 × 3 panel; the study area leaves out the north-east cell (row 8), which holds 7 incidents
    counts = np.array([[5], [1], [0], [2], [9], [3], [0], [4], [7]])
    study = np.ones(9, dtype=bool)
    study[8] = False
    panel = GridPanel(
        origin=GridOrigin(-79.4, 43.7), cell_m=250.0, period=None, extent=(0, 0, 2, 2),
        periods=np.array([np.datetime64("NaT", "us")]), counts=counts, study_area=study,
    )  # fmt: skip
    with pytest.warns(SparseDataWarning, match="24 incidents over 8 cells"):  # fewer than 30 incidents
        res = getis_ord_gi_star(panel, permutations=0)
    assert len(res.table) == 8 and (2, 2) not in set(zip(res.table["cell_x"], res.table["cell_y"], strict=True))
    assert res.params["incidents"] == 24 and res.params["incidents_outside_study_area"] == 7
    assert any("7 incidents in cells outside it are not tested" in n for n in res.notes)
    # the centre (1, 1) has the 8 study-area cells as its neighbourhood: 5+1+0+2+9+3+0+4 = 24
    centre = res.table[(res.table["cell_x"] == 1) & (res.table["cell_y"] == 1)].iloc[0]
    assert centre["neighbours"] == 8 and centre["gi_star"] * 24 == pytest.approx(24)
