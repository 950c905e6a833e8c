"""Gi*'s neighbourhood sums (crimelens.analysis.incidents.hotspots): the shifted slices equal the product with the
sparse binary weights of grid_weights, for queen, rook and distance neighbourhoods on any rectangle."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from crimelens.analysis.incidents.hotspots import _neighbourhood_sums, _offsets, grid_weights


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    nx=st.integers(1, 25),
    ny=st.integers(1, 25),
    kind=st.sampled_from(["queen", "rook", "distance"]),
    distance=st.floats(0, 600),
    rate=st.sampled_from([0.1, 2.0, 50.0]),
)
def test_neighbourhood_sums_equal_the_sparse_weights(
    seed: int, nx: int, ny: int, kind: str, distance: float, rate: float
) -> None:
    y = np.random.default_rng(seed).poisson(rate, nx * ny).astype(np.float64)
    options = {"distance_m": distance, "cell_m": 100.0} if kind == "distance" else {}
    w = grid_weights(nx, ny, neighbours=kind, **options)  # type: ignore[arg-type]
    lag, card = _neighbourhood_sums(y, nx, ny, _offsets(kind, options.get("distance_m"), options.get("cell_m")))
    assert np.array_equal(lag, w @ y)  # whole counts: the same sums exactly, whatever the order of additions
    assert np.array_equal(card, np.asarray(w.sum(axis=1)).ravel())


def test_neighbourhood_sums_by_hand() -> None:
    # 3 × 2 grid (rows from the south-west), queen: the corner (0, 0) sees (0,0), (1,0), (0,1), (1,1)
    y = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    lag, card = _neighbourhood_sums(y, 3, 2, _offsets("queen", None, None))
    assert lag[0] == 1 + 2 + 8 + 16 and card[0] == 4
    assert lag[4] == 1 + 2 + 4 + 8 + 16 + 32 and card[4] == 6  # (1, 1) touches every cell
