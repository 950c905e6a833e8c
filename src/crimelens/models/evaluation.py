"""Evaluation through time: rolling-origin splits, metrics, period-bootstrap intervals, gains over baselines.

General: nothing here knows what a unit, a target or a model is. A forecaster's predictions are arrays that
share one ``period`` label per row (the period predicted); every fold tests one period, trained on every
earlier one (an expanding window, as scikit-learn's ``TimeSeriesSplit``: test periods always come after the
training periods). Intervals resample whole *periods* with replacement (rows within a period are dependent:
same year, same city-wide conditions), never rows.

The metric interface is :class:`MetricSpec`: a function ``(y, values, period) -> float`` over the pooled rows
of any set of periods. Pooled metrics (ROC-AUC, AUPRC, Brier, F1) ignore ``period``; a per-period metric,
such as a grid forecaster's hit rate or PAI at fixed coverage, is one that groups by it
(:func:`per_period_mean`). In a bootstrap replicate, a period drawn twice carries two distinct labels.

References
----------
Tashman, L. J. (2000). Out-of-sample tests of forecasting accuracy: an analysis and review. *International
Journal of Forecasting* 16(4), 437-450 (rolling-origin evaluation).
Hanley, J. A. & McNeil, B. J. (1982). The meaning and use of the area under a ROC curve. *Radiology* 143(1),
29-36 (ROC-AUC as the Mann-Whitney statistic).
Saito, T. & Rehmsmeier, M. (2015). The precision-recall plot is more informative than the ROC plot when
evaluating binary classifiers on imbalanced datasets. *PLoS ONE* 10(3) (AUPRC against the base rate).
Chainey, S., Tompson, L. & Uhlig, S. (2008). The utility of hotspot mapping for predicting spatial patterns
of crime. *Security Journal* 21, 4-28 (hit rate and the predictive accuracy index, PAI).
Brier, G. W. (1950). Verification of forecasts expressed in terms of probability. *Monthly Weather Review*
78(1), 1-3.
Künsch, H. R. (1989). The jackknife and the bootstrap for general stationary observations. *Annals of
Statistics* 17(3), 1217-1241 (resampling blocks, not observations, of dependent data).
Hunt, J. M. (2016). Do crime hot spots move? Exploring the effects of the modifiable areal unit problem and
modifiable temporal unit problem on crime hot spot stability. PhD thesis, American University (the predictive
efficiency index, PEI, used by the NIJ Real-Time Crime Forecasting Challenge).
White, V. M., Hunt, J. M. & Green, B. (2023). A discussion of current crime forecasting indices and an
improvement to the prediction efficiency index for applications. *Security Journal* (PEI*: the forecast's PAI
over the PAI of the smallest area holding the same crimes, i.e. that area over the area flagged).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from crimelens.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_METRICS",
    "Estimator",
    "Evaluation",
    "Fold",
    "FoldRun",
    "MetricSpec",
    "PeriodScores",
    "average_precision",
    "best_f1_threshold",
    "brier_score",
    "calibration_table",
    "f1_score",
    "hit_rate_at",
    "hit_rate_metric",
    "pai_at",
    "pai_metric",
    "pei_at",
    "pei_metric",
    "pei_star_at",
    "pei_star_metric",
    "per_period_mean",
    "roc_auc",
    "rolling_origin_splits",
    "run_folds",
    "score_methods",
    "score_periods",
]

#: Bootstrap replicates of every interval.
N_BOOT = 1000
#: Coverage of every interval.
LEVEL = 0.95


# -- splits -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fold:
    """One rolling-origin fold: train on ``train_periods`` (every period before the test one), test on one."""

    index: int
    train_periods: tuple[Any, ...]
    test_period: Any


def rolling_origin_splits(
    periods: Sequence[Any],
    *,
    min_train: int = 3,
    start: Any = None,
    end: Any = None,
) -> list[Fold]:
    """Expanding-window folds over ordered periods: each tests one period, trained on all earlier ones.

    Parameters
    ----------
    periods
        The periods (years, week starts, …): any sortable values; duplicates are ignored.
    min_train
        Fewest training periods a fold needs; earlier periods are never tested.
    start, end
        Test only periods from ``start`` to ``end`` (inclusive; None leaves that side open).

    Returns
    -------
    list of Fold
        In time order. Every training period is strictly before its test period.

    References
    ----------
    Tashman (2000), rolling-origin evaluation; scikit-learn ``TimeSeriesSplit``.
    """
    if not isinstance(min_train, int) or isinstance(min_train, bool) or min_train < 1:
        raise ConfigError(f"min_train: expected a whole number of periods ≥ 1, got {min_train!r}")
    ordered = sorted(set(periods))
    folds: list[Fold] = []
    for i, p in enumerate(ordered):
        if i < min_train or (start is not None and p < start) or (end is not None and p > end):
            continue
        folds.append(Fold(len(folds), tuple(ordered[:i]), p))
    if not folds:
        span = f"{ordered[0]}–{ordered[-1]}" if ordered else "none"
        raise DataError(
            f"no period can be tested: expected a test period with at least {min_train} earlier periods"
            f"{'' if start is None else f' from {start}'}{'' if end is None else f' to {end}'}; "
            f"got {len(ordered)} periods ({span})"
        )
    return folds


# -- metrics ----------------------------------------------------------------------------------------------
def _arrays(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=float)
    sa = np.asarray(s, dtype=float)
    if ya.shape != sa.shape:
        raise DataError(f"labels and scores: expected arrays of one length, got {ya.shape} and {sa.shape}")
    return ya, sa


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank (as ``scipy.stats.rankdata``)."""
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    avg = upper - (counts - 1) / 2.0
    out: np.ndarray = avg[inverse]
    return out


def roc_auc(y: Any, score: Any) -> float:
    """Area under the ROC curve: the chance a random positive scores above a random negative (ties count ½).

    NaN when only one class is present. Computed as the Mann-Whitney U statistic over average ranks
    (Hanley & McNeil 1982); equal to ``sklearn.metrics.roc_auc_score``.
    """
    ya, sa = _arrays(y, score)
    pos = ya == 1
    n1 = int(pos.sum())
    n0 = ya.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = _average_ranks(sa)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def _descending_counts(ya: np.ndarray, sa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, true positives, false positives) at each distinct score, highest first (predict ≥)."""
    order = np.argsort(-sa, kind="mergesort")
    ys, ss = ya[order], sa[order]
    last = np.r_[np.flatnonzero(np.diff(ss) != 0), ys.size - 1]  # last row of each distinct score
    tps = np.cumsum(ys)[last]
    fps = (last + 1) - tps
    return ss[last], tps, fps


def average_precision(y: Any, score: Any) -> float:
    """Area under the precision-recall curve as average precision: Σ (Rₙ − Rₙ₋₁) Pₙ over distinct thresholds.

    NaN without positives. Its no-skill value is the base rate (Saito & Rehmsmeier 2015). Equal to
    ``sklearn.metrics.average_precision_score``.
    """
    ya, sa = _arrays(y, score)
    n_pos = ya.sum()
    if ya.size == 0 or n_pos == 0:
        return float("nan")
    _, tps, fps = _descending_counts(ya, sa)
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def brier_score(y: Any, prob: Any) -> float:
    """Mean squared difference between the predicted probability and the outcome (0 perfect; Brier 1950)."""
    ya, pa = _arrays(y, prob)
    if ya.size == 0:
        return float("nan")
    return float(np.mean((pa - ya) ** 2))


def f1_score(y: Any, label: Any) -> float:
    """F1 of binary predictions: 2TP / (2TP + FP + FN); 0 when there is nothing to find and nothing flagged."""
    ya, la = _arrays(y, label)
    tp = float(np.sum((la == 1) & (ya == 1)))
    denom = 2 * tp + float(np.sum((la == 1) & (ya == 0))) + float(np.sum((la == 0) & (ya == 1)))
    return 0.0 if denom == 0 else 2 * tp / denom


def best_f1_threshold(y: Any, score: Any) -> float:
    """The score threshold (predict positive when score ≥ it) with the highest F1 on these rows.

    Ties go to the highest threshold (fewest flagged). Without positives: +inf (flag nothing).
    """
    ya, sa = _arrays(y, score)
    n_pos = ya.sum()
    if ya.size == 0 or n_pos == 0:
        return float("inf")
    thresholds, tps, fps = _descending_counts(ya, sa)
    f1 = 2 * tps / (tps + fps + n_pos)
    return float(thresholds[int(np.argmax(f1))])


def calibration_table(y: Any, prob: Any, bins: int = 10) -> pd.DataFrame:
    """Predicted against observed, in equal-width probability bins: bin, p_low, p_high, n, predicted, observed.

    Empty bins are left out. A calibrated forecast has ``observed`` close to ``predicted`` in every bin.
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
        raise ConfigError(f"bins: expected a whole number ≥ 1, got {bins!r}")
    ya, pa = _arrays(y, prob)
    which = np.clip((pa * bins).astype(int), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "y": ya, "p": pa})
    out = frame.groupby("bin", as_index=False).agg(n=("y", "size"), predicted=("p", "mean"), observed=("y", "mean"))
    out.insert(1, "p_low", out["bin"] / bins)
    out.insert(2, "p_high", (out["bin"] + 1) / bins)
    return out


class _MetricFn(Protocol):
    def __call__(self, y: np.ndarray, values: np.ndarray, period: np.ndarray) -> float: ...


@dataclass(frozen=True)
class MetricSpec:
    """A metric over the pooled rows of some periods.

    ``fn(y, values, period)``: ``values`` are each row's probability (``uses='score'``) or its 0/1 flag at the
    fold's threshold (``uses='label'``); ``period`` labels rows so per-period metrics can group them.
    ``higher_is_better``: False for losses such as the Brier score (gains are then reported as reductions).
    """

    name: str
    fn: _MetricFn
    uses: Literal["score", "label"] = "score"
    higher_is_better: bool = True


def per_period_mean(fn: Callable[[np.ndarray, np.ndarray], float]) -> _MetricFn:
    """A per-period metric (e.g. hit rate at 5 % coverage) as the mean over the periods of its value in each."""

    def metric(y: np.ndarray, values: np.ndarray, period: np.ndarray) -> float:
        _, inverse = np.unique(period, return_inverse=True)
        per = [fn(y[inverse == k], values[inverse == k]) for k in range(int(inverse.max()) + 1)] if y.size else []
        finite = [v for v in per if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    return metric


def _flagged(values: np.ndarray, coverage: float) -> np.ndarray:
    """The ``ceil(coverage · n)`` highest-scored units of one period (ties broken by position, stably)."""
    k = max(1, math.ceil(coverage * values.size - 1e-9))
    order = np.argsort(-values, kind="mergesort")
    flags = np.zeros(values.size, dtype=bool)
    flags[order[:k]] = True
    return flags


def _check_coverage(coverage: float) -> None:
    if not isinstance(coverage, int | float) or isinstance(coverage, bool) or not 0 < coverage <= 1:
        raise ConfigError(f"coverage: expected the share of units flagged, above 0 and at most 1, got {coverage!r}")


def hit_rate_at(y: Any, score: Any, coverage: float) -> float:
    """Hit rate of one period: the share of its crimes (``y`` counts) in the top ``coverage`` share of units by
    ``score`` (``ceil(coverage · n)`` units, ties broken by position). NaN without crimes (Chainey et al. 2008)."""
    _check_coverage(coverage)
    ya, sa = _arrays(y, score)
    total = float(ya.sum())
    return float("nan") if total == 0 or ya.size == 0 else float(ya[_flagged(sa, coverage)].sum()) / total


def pai_at(y: Any, score: Any, coverage: float) -> float:
    """PAI of one period: hit rate / share of the (equal-area) units flagged (Chainey et al. 2008)."""
    ya, sa = _arrays(y, score)
    hr = hit_rate_at(ya, sa, coverage)
    if not np.isfinite(hr):
        return hr
    k = max(1, math.ceil(coverage * ya.size - 1e-9))
    return hr / (k / ya.size)


def pei_at(y: Any, score: Any, coverage: float) -> float:
    """PEI of one period (Hunt 2016): crimes in the flagged units over the most any choice of as many units could
    hold, i.e. the PAI over the PAI of a perfect forecast of the same area. 1 is perfect; NaN without crimes."""
    _check_coverage(coverage)
    ya, sa = _arrays(y, score)
    total = float(ya.sum())
    if total == 0 or ya.size == 0:
        return float("nan")
    k = max(1, math.ceil(coverage * ya.size - 1e-9))
    best = float(np.sort(ya)[::-1][:k].sum())
    return float(ya[_flagged(sa, coverage)].sum()) / best


def pei_star_at(y: Any, score: Any, coverage: float) -> float:
    """PEI* of one period (White, Hunt & Green 2023): the forecast's PAI over PAI*, the PAI of the smallest set of
    units holding as many crimes as the flagged units hold. With n crimes caught in a flagged units, and a* the
    fewest units whose crimes add up to at least n: ``PAI = (n/N)/(a/A)``, ``PAI* = (n/N)/(a*/A)``, so
    ``PEI* = a*/a``. PEI (:func:`pei_at`) instead compares the crimes caught with the most the *same* number of
    units could hold. 1 is perfect; 0 when the flagged units hold no crime; NaN without crimes."""
    _check_coverage(coverage)
    ya, sa = _arrays(y, score)
    total = float(ya.sum())
    if total == 0 or ya.size == 0:
        return float("nan")
    flags = _flagged(sa, coverage)
    caught = float(ya[flags].sum())
    if caught == 0:
        return 0.0
    needed = int(np.searchsorted(np.cumsum(np.sort(ya)[::-1]), caught - 1e-9)) + 1
    return needed / float(flags.sum())


def hit_rate_metric(coverage: float) -> MetricSpec:
    """Hit rate at fixed coverage, the mean over periods: the share of a period's crimes (``y`` counts) in the
    top ``coverage`` share of its units by score (Chainey, Tompson & Uhlig 2008). For equal-area units."""
    _check_coverage(coverage)
    return MetricSpec(f"hit_rate_{coverage:g}", per_period_mean(lambda y, v: hit_rate_at(y, v, coverage)))


def pai_metric(coverage: float) -> MetricSpec:
    """Predictive accuracy index at fixed coverage, the mean over periods: hit rate / share of the area
    flagged (equal-area units; Chainey, Tompson & Uhlig 2008). 1 is no better than chance."""
    _check_coverage(coverage)
    return MetricSpec(f"pai_{coverage:g}", per_period_mean(lambda y, v: pai_at(y, v, coverage)))


def pei_metric(coverage: float) -> MetricSpec:
    """PEI at fixed coverage (Hunt 2016), the mean over periods (:func:`pei_at`)."""
    _check_coverage(coverage)
    return MetricSpec(f"pei_{coverage:g}", per_period_mean(lambda y, v: pei_at(y, v, coverage)))


def pei_star_metric(coverage: float) -> MetricSpec:
    """PEI* at fixed coverage (White, Hunt & Green 2023), the mean over periods (:func:`pei_star_at`)."""
    _check_coverage(coverage)
    return MetricSpec(f"pei_star_{coverage:g}", per_period_mean(lambda y, v: pei_star_at(y, v, coverage)))


DEFAULT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("roc_auc", lambda y, v, p: roc_auc(y, v)),
    MetricSpec("auprc", lambda y, v, p: average_precision(y, v)),
    MetricSpec("f1", lambda y, v, p: f1_score(y, v), uses="label"),
    MetricSpec("brier", lambda y, v, p: brier_score(y, v), higher_is_better=False),
)


# -- folds ------------------------------------------------------------------------------------------------
class Estimator(Protocol):
    """The estimator contract: ``fit(X, y)`` returns self; ``predict_proba(X)`` gives P(class 0), P(class 1)."""

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Any: ...

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class FoldRun:
    """Out-of-sample predictions of every method on every fold.

    ``predictions``: one row per tested unit-period (``period``, the design's id columns, ``y``) and, per
    method, ``<method>`` (its probability) and ``<method>__label`` (flagged at the threshold chosen on the
    training periods). ``folds``: one row per fold (periods, sizes, positives, each method's threshold).
    ``constant_folds``: folds whose training rows held one class only (every method then predicted the
    training rate).
    """

    predictions: pd.DataFrame
    folds: pd.DataFrame
    methods: tuple[str, ...]
    constant_folds: int = 0


def run_folds(
    design: pd.DataFrame,
    folds: Sequence[Fold],
    methods: Mapping[str, Callable[[], Estimator]],
    features: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    target: str = "y",
    period: str = "period",
    ids: Sequence[str] = (),
) -> FoldRun:
    """Fit every method on each fold's training periods and predict its test period.

    Parameters
    ----------
    design
        One row per unit-period: ``period`` (the period predicted), ``target`` (0/1; missing rows are never
        used), the ``features`` (built only from data before ``period``) and ``ids`` to keep beside the
        predictions.
    folds
        From :func:`rolling_origin_splits`.
    methods
        Name → a factory giving a fresh, unfitted estimator (:class:`Estimator`).
    features
        The columns handed to each estimator, or per method (name → its columns).

    Returns
    -------
    FoldRun
        The F1 threshold of a fold is chosen on training periods only: on the method's out-of-sample
        predictions of the earlier folds when they hold both classes, else on its in-sample training scores.
    """
    known = design[design[target].notna()]
    columns = {m: list(features[m] if isinstance(features, Mapping) else features) for m in methods}
    pieces: list[pd.DataFrame] = []
    fold_rows: list[dict[str, Any]] = []
    history: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {m: [] for m in methods}
    constant = 0
    for fold in folds:
        train = known[known[period].isin(fold.train_periods)]
        test = known[known[period] == fold.test_period]
        if fold.train_periods and max(fold.train_periods) >= fold.test_period:  # guarded by construction
            raise DataError(f"fold {fold.index}: a training period is not before the test period {fold.test_period}")
        if test.empty or train.empty:
            continue
        y_train = train[target].to_numpy(dtype=float)
        y_test = test[target].to_numpy(dtype=float)
        out = test[[period, *ids]].copy()
        out["y"] = y_test.astype(int)
        out["fold"] = fold.index
        row: dict[str, Any] = {
            "fold": fold.index,
            "train_start": fold.train_periods[0],
            "train_end": fold.train_periods[-1],
            "test_period": fold.test_period,
            "n_train": len(train),
            "n_test": len(test),
            "positives": int(y_test.sum()),
            "base_rate": float(y_test.mean()),
        }
        one_class = np.unique(y_train).size < 2
        constant += int(one_class)
        for name, factory in methods.items():
            cols = columns[name]
            if one_class:
                p_train = np.full(len(train), y_train.mean())
                p_test = np.full(len(test), y_train.mean())
            else:
                est = factory().fit(train[cols], y_train)
                p_train = np.asarray(est.predict_proba(train[cols]))[:, 1]
                p_test = np.asarray(est.predict_proba(test[cols]))[:, 1]
            past = history[name]
            if past:
                py = np.concatenate([h[0] for h in past])
                ps = np.concatenate([h[1] for h in past])
            if past and np.unique(py).size == 2:
                threshold = best_f1_threshold(py, ps)
            else:
                threshold = best_f1_threshold(y_train, p_train)
            past.append((y_test, p_test))
            out[name] = p_test
            out[f"{name}__label"] = (p_test >= threshold).astype(int)
            row[f"threshold_{name}"] = threshold
            row[f"roc_auc_{name}"] = roc_auc(y_test, p_test)
        pieces.append(out)
        fold_rows.append(row)
    if not pieces:
        raise DataError("no fold had both training and test rows with a known outcome; widen the period")
    predictions = pd.concat(pieces, ignore_index=True)
    return FoldRun(predictions, pd.DataFrame(fold_rows), tuple(methods), constant)


# -- scoring with intervals ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    """Metrics of every method on the pooled test periods, with period-bootstrap intervals.

    ``table``: one row per method (``method``, ``kind``, then per metric its value, ``_low`` and ``_high``).
    ``methods``: the same as nested dicts (``{"roc_auc": …, "roc_auc_ci": [lo, hi], …}``).
    ``gains``: per model, its paired gain over the best baseline on each metric, with intervals (for a loss
    such as the Brier score, the gain is the reduction). ``best_gain``: the model with the largest gain on
    the first metric.
    """

    table: pd.DataFrame
    methods: dict[str, dict[str, Any]]
    gains: pd.DataFrame
    best_gain: dict[str, Any]
    base_rate: float
    n_periods: int
    n_rows: int
    n_boot: int
    level: float
    seed: int
    best_baseline: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))


def score_methods(
    predictions: pd.DataFrame,
    methods: Sequence[str],
    *,
    baselines: Sequence[str] = (),
    metrics: Sequence[MetricSpec] = DEFAULT_METRICS,
    period: str = "period",
    target: str = "y",
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> Evaluation:
    """Every method's metrics on the pooled test rows, with intervals that resample periods.

    Parameters
    ----------
    predictions
        From :attr:`FoldRun.predictions`: ``period``, ``target`` and, per method, its probability column and
        (for label metrics) ``<method>__label``.
    methods
        Every method to score; ``baselines`` are those among them that are naive baselines.
    metrics
        :class:`MetricSpec` s; the first is the one the best baseline and the best model are chosen by.
    n_boot, level, seed
        Bootstrap replicates (each draws as many periods as there are, with replacement), coverage, seed.

    Returns
    -------
    Evaluation
        Point values on all test rows; percentile intervals; paired gains (the model minus the best
        baseline, both on the same resampled periods in each replicate). The best baseline is the one with
        the best point value on the test periods, which favours the baselines (a conservative gain).

    References
    ----------
    Efron, B. & Tibshirani, R. (1993). *An Introduction to the Bootstrap*, ch. 13 (percentile intervals);
    Künsch (1989), resampling blocks of dependent data.
    """
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 0:
        raise ConfigError(f"n_boot: expected a whole number of bootstrap replicates ≥ 0, got {n_boot!r}")
    if not 0 < level < 1:
        raise ConfigError(f"level: expected a coverage strictly between 0 and 1, got {level!r}")
    unknown = [m for m in baselines if m not in methods]
    if unknown:
        raise ConfigError(f"baselines: expected names among the methods ({', '.join(methods)}), got {unknown}")
    if predictions.empty:
        raise DataError("predictions: expected at least one tested row, got none")
    y = predictions[target].to_numpy(dtype=float)
    labels, inverse = np.unique(predictions[period].to_numpy(), return_inverse=True)
    groups = [np.flatnonzero(inverse == k) for k in range(labels.size)]
    values: dict[tuple[str, str], np.ndarray] = {}
    for m in methods:
        for spec in metrics:
            col = m if spec.uses == "score" else f"{m}__label"
            values[(m, spec.name)] = predictions[col].to_numpy(dtype=float)

    point = {(m, s.name): s.fn(y, values[(m, s.name)], inverse) for m in methods for s in metrics}
    reps = np.full((n_boot, len(methods), len(metrics)), np.nan)
    rng = np.random.default_rng(seed)
    sizes = np.array([g.size for g in groups])
    for b in range(n_boot):
        draw = rng.integers(0, labels.size, labels.size)
        idx = np.concatenate([groups[d] for d in draw])
        boot_period = np.repeat(np.arange(draw.size), sizes[draw])
        yb = y[idx]
        for i, m in enumerate(methods):
            for j, spec in enumerate(metrics):
                reps[b, i, j] = spec.fn(yb, values[(m, spec.name)][idx], boot_period)

    base_set = set(baselines)
    rows: list[dict[str, Any]] = []
    nested: dict[str, dict[str, Any]] = {}
    for i, m in enumerate(methods):
        row: dict[str, Any] = {"method": m, "kind": "baseline" if m in base_set else "model"}
        entry: dict[str, Any] = {"kind": row["kind"]}
        for j, spec in enumerate(metrics):
            lo, hi = _interval(reps[:, i, j], level)
            row[spec.name], row[f"{spec.name}_low"], row[f"{spec.name}_high"] = point[(m, spec.name)], lo, hi
            entry[spec.name] = point[(m, spec.name)]
            entry[f"{spec.name}_ci"] = [lo, hi]
        rows.append(row)
        nested[m] = entry
    table = pd.DataFrame(rows)

    first = metrics[0]
    sign = 1.0 if first.higher_is_better else -1.0

    def best_of(names: list[str]) -> str | None:
        scored = [n for n in names if np.isfinite(point[(n, first.name)])]
        return max(scored, key=lambda n: sign * point[(n, first.name)]) if scored else None

    best_base = best_of([m for m in methods if m in base_set])
    models = [m for m in methods if m not in base_set]
    gain_rows: list[dict[str, Any]] = []
    if best_base is not None:
        bi = list(methods).index(best_base)
        for m in models:
            mi = list(methods).index(m)
            g: dict[str, Any] = {"method": m, "baseline": best_base}
            for j, spec in enumerate(metrics):
                s = 1.0 if spec.higher_is_better else -1.0
                diff = s * (reps[:, mi, j] - reps[:, bi, j])
                lo, hi = _interval(diff, level)
                g[spec.name] = s * (point[(m, spec.name)] - point[(best_base, spec.name)])
                g[f"{spec.name}_low"], g[f"{spec.name}_high"] = lo, hi
            gain_rows.append(g)
    gains = pd.DataFrame(gain_rows)
    best_gain: dict[str, Any] = {}
    if gain_rows:
        top = max(gain_rows, key=lambda g: g[first.name] if np.isfinite(g[first.name]) else -np.inf)
        best_gain = {"method": top["method"], "baseline": top["baseline"]}
        for spec in metrics:
            best_gain[spec.name] = top[spec.name]
            best_gain[f"{spec.name}_ci"] = [top[f"{spec.name}_low"], top[f"{spec.name}_high"]]
    return Evaluation(
        table=table,
        methods=nested,
        gains=gains,
        best_gain=best_gain,
        base_rate=float(y.mean()),
        n_periods=int(labels.size),
        n_rows=int(y.size),
        n_boot=n_boot,
        level=level,
        seed=seed,
        best_baseline=best_base,
    )


# -- per-period metrics: means, period-bootstrap intervals and paired differences ------------------------
@dataclass(frozen=True)
class PeriodScores:
    """Per-period metric values summarised: the mean over periods, its interval, and paired differences.

    ``mean``, ``low``, ``high``: arrays (methods, metrics). ``diff``, ``diff_low``, ``diff_high``: each method
    minus ``baseline`` on the same resampled periods (zeros for the baseline itself).
    """

    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    baseline: str | None
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    diff: np.ndarray
    diff_low: np.ndarray
    diff_high: np.ndarray
    n_periods: int
    n_boot: int
    level: float
    seed: int


def score_periods(
    values: Any,
    methods: Sequence[str],
    metrics: Sequence[str],
    *,
    baseline: str | None = None,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> PeriodScores:
    """Mean over periods of per-period metric values, with period-bootstrap intervals and paired differences.

    The vectorised form of :func:`score_methods` for per-period metrics (hit rate, PAI, PEI at fixed coverage,
    :func:`per_period_mean`): a replicate draws as many periods as there are, with replacement, and averages
    their values; the difference against ``baseline`` uses the same draws for both methods (paired). Periods
    whose value is NaN (no crime) are left out of a replicate's mean. With one period there is no interval (NaN).

    Parameters
    ----------
    values
        Array of shape (periods, methods, metrics).
    methods, metrics
        Their names, in the order of the array's axes.
    baseline
        The method differences are taken against (e.g. ``naive``); None: no differences (NaN).

    Returns
    -------
    PeriodScores

    References
    ----------
    Efron & Tibshirani (1993), percentile intervals; Künsch (1989), resampling blocks of dependent data.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 3 or v.shape[1:] != (len(methods), len(metrics)):
        raise DataError(f"values: expected shape (periods, {len(methods)}, {len(metrics)}), got {v.shape}")
    if v.shape[0] == 0:
        raise DataError("values: expected at least one period, got none")
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 0:
        raise ConfigError(f"n_boot: expected a whole number of bootstrap replicates ≥ 0, got {n_boot!r}")
    if not 0 < level < 1:
        raise ConfigError(f"level: expected a coverage strictly between 0 and 1, got {level!r}")
    if baseline is not None and baseline not in methods:
        raise ConfigError(f"baseline: expected one of the methods ({', '.join(methods)}), got {baseline!r}")
    p = v.shape[0]
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(v, axis=0) if np.isfinite(v).any() else np.full(v.shape[1:], np.nan)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, p, (n_boot, p))
    alpha = (1 - level) / 2
    shape = v.shape[1:]
    low, high = np.full(shape, np.nan), np.full(shape, np.nan)
    diff, diff_low, diff_high = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    if n_boot and p >= 2:  # one period: nothing to resample, no interval
        finite = np.isfinite(v)
        filled = np.where(finite, v, 0.0)
        sums = filled[draws].sum(axis=1)  # (boot, methods, metrics)
        counts = finite[draws].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        with np.errstate(invalid="ignore"):
            low = np.nanquantile(reps, alpha, axis=0) if np.isfinite(reps).any() else low
            high = np.nanquantile(reps, 1 - alpha, axis=0) if np.isfinite(reps).any() else high
        if baseline is not None:
            b = list(methods).index(baseline)
            d = reps - reps[:, b : b + 1, :]
            diff = mean - mean[b : b + 1, :]
            with np.errstate(invalid="ignore"):
                diff_low = np.nanquantile(d, alpha, axis=0)
                diff_high = np.nanquantile(d, 1 - alpha, axis=0)
    if baseline is not None and not (n_boot and p >= 2):
        b = list(methods).index(baseline)
        diff = mean - mean[b : b + 1, :]
    return PeriodScores(
        methods=tuple(methods),
        metrics=tuple(metrics),
        baseline=baseline,
        mean=mean,
        low=low,
        high=high,
        diff=diff,
        diff_low=diff_low,
        diff_high=diff_high,
        n_periods=p,
        n_boot=n_boot,
        level=level,
        seed=seed,
    )
