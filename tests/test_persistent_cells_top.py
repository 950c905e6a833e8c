"""Property test of crimelens.analysis.incidents.hotspots.persistent_cells(method='top'): in each period the hot
cells are those with a count > 0 and at least the ⌈top_share · n⌉-th largest count of the rectangle, found here
by sorting every cell (sparse periods with fewer busy cells than that included)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crimelens.analysis.incidents.hotspots import persistent_cells


def _hot_by_sorting(counts: np.ndarray, top_share: float) -> np.ndarray:
    """cells × periods: hot when > 0 and ≥ the k-th largest count of the period (all cells sorted)."""
    n = counts.shape[0]
    k = max(1, math.ceil(top_share * n - 1e-9))
    kth = np.sort(counts, axis=0)[::-1][k - 1]
    return (counts >= kth[None, :]) & (counts > 0)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    nx=st.integers(1, 12),
    ny=st.integers(1, 12),
    periods=st.integers(1, 6),
    rate=st.sampled_from([0.02, 0.2, 1.0, 6.0]),
    top_share=st.floats(0.01, 1.0),
)
def test_top_cells_are_those_at_or_above_the_kth_count(
    seed: int, nx: int, ny: int, periods: int, rate: float, top_share: float
) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate, (nx * ny, periods))
    counts[-1, :] += 1  # the far corner in every period, and the near corner's rows below, fix the rectangle
    cell = np.arange(nx * ny)
    frame = pd.DataFrame(
        {
            "cell_x": np.repeat(cell % nx, periods),
            "cell_y": np.repeat(cell // nx, periods),
            "period_start": np.tile(pd.date_range("2022-01-01", periods=periods, freq="MS"), nx * ny),
            "incidents": counts.ravel(),
        }
    )
    frame = frame[(frame["incidents"] > 0) | (frame["cell_x"] == 0) & (frame["cell_y"] == 0)]  # zeros as no row
    result = persistent_cells(frame, method="top", top_share=top_share, min_periods_share=1.0)
    hot = _hot_by_sorting(counts.astype(float), top_share)
    want = hot.sum(axis=1)
    got = np.zeros(nx * ny, dtype=np.int64)
    rows = result.table["cell_y"].to_numpy() * nx + result.table["cell_x"].to_numpy()
    got[rows] = result.table["periods_hot"].to_numpy()
    assert np.array_equal(got, want)
    assert result.params["n_periods"] == periods
