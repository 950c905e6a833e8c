"""models/evaluation.py: rolling-origin splits, metrics, period-bootstrap intervals, paired gains."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimelens.errors import ConfigError, DataError
from crimelens.models.evaluation import (
    MetricSpec,
    average_precision,
    best_f1_threshold,
    brier_score,
    calibration_table,
    f1_score,
    per_period_mean,
    roc_auc,
    rolling_origin_splits,
    run_folds,
    score_methods,
)


# -- metrics by hand --------------------------------------------------------------------------------------
def test_roc_auc_by_hand() -> None:
    # positives 0.35, 0.8; negatives 0.1, 0.4. Pairs won by the positive: (0.35>0.1), (0.8>0.1), (0.8>0.4);
    # lost: (0.35<0.4) → 3/4
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # a tie counts ½
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    # one class only: undefined
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_average_precision_by_hand() -> None:
    # descending: 0.8 (pos) P=1 R=.5; 0.4 (neg) P=.5 R=.5; 0.35 (pos) P=2/3 R=1; 0.1 (neg) P=.5 R=1
    # AP = .5·1 + 0·.5 + .5·(2/3) + 0·.5 = 0.8333
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.5 + 1 / 3)
    assert np.isnan(average_precision([0, 0], [0.1, 0.2]))


def test_brier_f1_and_threshold_by_hand() -> None:
    assert brier_score([0, 1], [0.2, 0.6]) == pytest.approx((0.04 + 0.16) / 2)
    # tp 1, fp 1, fn 1 → 2/(2+1+1)
    assert f1_score([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert f1_score([0, 0], [0, 0]) == 0.0
    # thresholds: .8 → tp1 fp0: 2/(1+2)=.667; .4 → tp1 fp1: 2/(2+2)=.5; .35 → tp2 fp1: 4/(3+2)=.8; .1 → 4/6
    assert best_f1_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.35)
    assert best_f1_threshold([0, 0], [0.1, 0.2]) == float("inf")


def test_calibration_table_by_hand() -> None:
    t = calibration_table([0, 1, 0, 1], [0.05, 0.15, 0.12, 0.95], bins=10)
    assert t["bin"].tolist() == [0, 1, 9]
    assert t["n"].tolist() == [1, 2, 1]
    assert t["predicted"].tolist() == pytest.approx([0.05, 0.135, 0.95])
    assert t["observed"].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert t["p_low"].tolist() == pytest.approx([0.0, 0.1, 0.9])
    with pytest.raises(ConfigError, match="bins"):
        calibration_table([0], [0.1], bins=0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=2, max_size=60).filter(
        lambda rows: len({r[0] for r in rows}) == 2
    )
)
def test_metrics_equal_scikit_learn(rows: list[tuple[int, int]]) -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.metrics import f1_score as sk_f1

    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows], dtype=float) / 6  # few distinct values: many ties
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s))
    label = (s >= 0.5).astype(int)
    assert f1_score(y, label) == pytest.approx(sk_f1(y, label, zero_division=0.0))


def test_per_period_mean_by_hand() -> None:
    # period a: hit share 1/2; period b: 1/1 → mean .75 (pooled would be 2/3)
    fn = per_period_mean(lambda y, v: float(np.mean(y[v == 1])))
    y = np.array([1, 0, 1])
    v = np.array([1, 1, 1])
    assert fn(y, v, np.array(["a", "a", "b"])) == pytest.approx(0.75)


# -- splits ----------------------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1970, 2030), min_size=1, max_size=40), st.integers(1, 6))
def test_splits_never_test_before_training(periods: list[int], min_train: int) -> None:
    distinct = sorted(set(periods))
    if len(distinct) <= min_train:
        with pytest.raises(DataError, match="no period can be tested"):
            rolling_origin_splits(periods, min_train=min_train)
        return
    folds = rolling_origin_splits(periods, min_train=min_train)
    assert len(folds) == len(distinct) - min_train
    tested = [f.test_period for f in folds]
    assert tested == sorted(tested) and len(set(tested)) == len(tested)
    for f in folds:
        assert all(p < f.test_period for p in f.train_periods)
        # expanding window: every earlier period is used
        assert list(f.train_periods) == [p for p in distinct if p < f.test_period]
        assert len(f.train_periods) >= min_train


def test_splits_start_end_and_errors() -> None:
    folds = rolling_origin_splits([2000, 2001, 2002, 2003, 2004], min_train=2, start=2003)
    assert [f.test_period for f in folds] == [2003, 2004]
    assert folds[0].train_periods == (2000, 2001, 2002)
    assert [f.test_period for f in rolling_origin_splits(range(2000, 2010), min_train=1, end=2002)] == [2001, 2002]
    with pytest.raises(ConfigError, match="min_train"):
        rolling_origin_splits([1, 2], min_train=0)
    with pytest.raises(DataError, match="from 2050"):
        rolling_origin_splits(range(2000, 2010), start=2050)
    weeks = pd.date_range("2022-01-03", periods=6, freq="W-MON")
    assert rolling_origin_splits(list(weeks), min_train=4)[0].test_period == weeks[4]


# -- bootstrap --------------------------------------------------------------------------------------------
def _predictions(seed: int = 1, periods: int = 12, per: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    period = np.repeat(np.arange(periods), per)
    y = rng.integers(0, 2, period.size)
    good = y + rng.normal(0, 0.7, y.size)
    noise = rng.normal(0, 1, y.size)
    frame = pd.DataFrame({"period": period, "y": y, "good": 1 / (1 + np.exp(-good)), "noise": 1 / (1 + np.exp(-noise))})
    for m in ("good", "noise"):
        frame[f"{m}__label"] = (frame[m] >= 0.5).astype(int)
    return frame


def test_bootstrap_resamples_periods_not_rows() -> None:
    # two periods, of 1 and 10 rows: a replicate of periods holds 2, 11 or 20 rows; one of rows always 11
    frame = pd.DataFrame({"period": [0] + [1] * 10, "y": [1] + [0, 1] * 5, "m": np.linspace(0, 1, 11)})
    rows = MetricSpec("rows", lambda y, v, p: float(y.size))
    distinct = MetricSpec("periods", lambda y, v, p: float(np.unique(p).size))
    ev = score_methods(frame, ["m"], metrics=[rows, distinct], n_boot=400, seed=3)
    lo, hi = ev.methods["m"]["rows_ci"]
    assert {lo, hi} <= {2.0, 11.0, 20.0} and lo < hi
    # a period drawn twice carries two labels: every replicate has as many periods as the data
    assert ev.methods["m"]["periods_ci"] == [2.0, 2.0]


def test_bootstrap_is_seeded_and_intervals_hold_the_point() -> None:
    frame = _predictions()
    a = score_methods(frame, ["good", "noise"], baselines=["noise"], n_boot=300, seed=7)
    b = score_methods(frame, ["good", "noise"], baselines=["noise"], n_boot=300, seed=7)
    c = score_methods(frame, ["good", "noise"], baselines=["noise"], n_boot=300, seed=8)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.table.equals(c.table)
    for _, row in a.table.iterrows():
        for m in ("roc_auc", "auprc", "brier", "f1"):
            assert row[f"{m}_low"] <= row[m] <= row[f"{m}_high"], (row["method"], m)
    assert a.base_rate == pytest.approx(frame["y"].mean())
    assert a.n_periods == 12 and a.n_rows == 360


def test_paired_gain_over_the_best_baseline() -> None:
    frame = _predictions()
    ev = score_methods(frame, ["noise", "good"], baselines=["noise"], n_boot=300, seed=0)
    g = ev.best_gain
    assert g["method"] == "good" and g["baseline"] == "noise" and ev.best_baseline == "noise"
    # the point gain is the difference of the two points, computed here independently with scikit-learn
    from sklearn.metrics import roc_auc_score

    expected = roc_auc_score(frame["y"], frame["good"]) - roc_auc_score(frame["y"], frame["noise"])
    assert g["roc_auc"] == pytest.approx(expected)
    assert g["roc_auc_ci"][0] > 0  # an informative score beats noise on every resample of 12 periods
    # Brier: a loss; its gain is the reduction
    assert g["brier"] == pytest.approx(brier_score(frame["y"], frame["noise"]) - brier_score(frame["y"], frame["good"]))
    assert list(ev.gains["method"]) == ["good"]


def test_score_methods_errors() -> None:
    frame = _predictions()
    with pytest.raises(ConfigError, match="n_boot"):
        score_methods(frame, ["good"], n_boot=-1)
    with pytest.raises(ConfigError, match="level"):
        score_methods(frame, ["good"], level=1.5)
    with pytest.raises(ConfigError, match="baselines"):
        score_methods(frame, ["good"], baselines=["persistence"])
    with pytest.raises(DataError, match="at least one"):
        score_methods(frame.iloc[:0], ["good"])


# -- folds -----------------------------------------------------------------------------------------------
class _Recorder:
    """Predicts the training rate; records the training periods it saw."""

    seen: ClassVar[list[tuple[Any, ...]]] = []

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> _Recorder:
        _Recorder.seen.append(tuple(sorted(set(X["period_copy"]))))
        self.rate_ = float(np.mean(y))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.full(len(X), self.rate_)
        return np.column_stack([1 - p, p])


def test_run_folds_trains_on_earlier_periods_only() -> None:
    rng = np.random.default_rng(0)
    design = pd.DataFrame({"period": np.repeat(np.arange(2000, 2008), 5), "y": rng.integers(0, 2, 40)})
    design["period_copy"] = design["period"]
    design.loc[design["period"] == 2007, "y"] = np.nan  # unknown outcome: never used
    _Recorder.seen = []
    folds = rolling_origin_splits(design.loc[design["y"].notna(), "period"].tolist(), min_train=3)
    run = run_folds(design, folds, {"rate": _Recorder}, ["period_copy"])
    assert list(run.folds["test_period"]) == [2003, 2004, 2005, 2006]
    for seen, test in zip(_Recorder.seen, run.folds["test_period"], strict=True):
        assert max(seen) < test and seen == tuple(range(2000, test))
    assert set(run.predictions["period"]) == {2003, 2004, 2005, 2006}
    assert {"rate", "rate__label", "y", "fold"} <= set(run.predictions.columns)
    assert (run.folds["n_test"] == 5).all()


def test_hit_rate_and_pai_per_period_by_hand() -> None:
    from crimelens.models.evaluation import hit_rate_metric, pai_metric

    # period a: 4 cells, counts 5, 3, 2, 0, scores rank them 2nd, 1st, 3rd, 4th; 25 % coverage flags 1 cell
    # (score 0.9, count 3): hit rate 3/10 = 0.3, PAI 0.3 / 0.25 = 1.2. Period b: 2 cells, counts 1, 1;
    # ceil(0.25 · 2) = 1 cell flagged: hit rate 1/2, PAI 0.5 / 0.5 = 1. Means: 0.4 and 1.1
    y = np.array([5, 3, 2, 0, 1, 1], dtype=float)
    s = np.array([0.5, 0.9, 0.2, 0.1, 0.3, 0.7])
    p = np.array(["a", "a", "a", "a", "b", "b"])
    hit, pai = hit_rate_metric(0.25), pai_metric(0.25)
    assert hit.name == "hit_rate_0.25" and pai.name == "pai_0.25"
    assert hit.fn(y, s, p) == pytest.approx(0.4)
    assert pai.fn(y, s, p) == pytest.approx(1.1)
    with pytest.raises(ConfigError, match="coverage"):
        hit_rate_metric(0)
    # it plugs into the period bootstrap like any metric
    frame = pd.DataFrame({"period": p, "y": y, "m": s})
    ev = score_methods(frame, ["m"], metrics=[hit, pai], n_boot=50, seed=1)
    assert ev.methods["m"]["hit_rate_0.25"] == pytest.approx(0.4)
