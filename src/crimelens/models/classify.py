"""Which places will be high-crime next period: classifiers evaluated through time beside naive baselines.

:func:`classify` loads a panel (jurisdiction-years, or incident areas × weeks or months), builds the design
(:mod:`crimelens.models.features`: features from earlier periods only), runs rolling-origin folds
(:mod:`crimelens.models.evaluation`) for the baselines (:mod:`crimelens.models.baselines`), a logistic
regression and LightGBM, and returns a :class:`ClassifyResult`: every metric with period-bootstrap intervals,
the per-fold table, the paired gain over the best baseline and, on request, next period's ranked list.

The estimators follow the scikit-learn contract: ``__init__`` stores parameters, ``fit`` returns self,
learned state ends in ``_``, ``predict_proba``, ``random_state``.

References
----------
Hosmer, D. W., Lemeshow, S. & Sturdivant, R. X. (2013). *Applied Logistic Regression*, 3rd ed. Wiley.
Ke, G. et al. (2017). LightGBM: a highly efficient gradient boosting decision tree. *NeurIPS* 30.
Mitchell, M. et al. (2019). Model cards for model reporting. *FAT* '19*, 220-229 (the caveats in the notes).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.errors import ConfigError, DataError, NotFittedError, SparseDataWarning
from crimelens.models.baselines import ScoreBaseline
from crimelens.models.evaluation import (
    N_BOOT,
    Estimator,
    calibration_table,
    rolling_origin_splits,
    run_folds,
    score_methods,
)
from crimelens.models.features import (
    Design,
    Panel,
    add_covariates,
    build_design,
    incident_panel,
    jurisdiction_panel,
)

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "CAVEATS",
    "ClassifyResult",
    "LightGBMClassifier",
    "LogisticClassifier",
    "classify",
    "evaluate_design",
    "load_panel",
]

#: The model card's caveats, in every result's notes.
CAVEATS: tuple[str, ...] = (
    "Police-recorded crime: the data measure reporting and patrol as well as crime, and places policed more "
    "record more.",
    "Feedback loop: sending more patrols where the model points records more crime there, which the next "
    "model learns as 'high-crime'; judge it on outcomes, not on its own recorded counts.",
    "Place-based only: these are areas and jurisdictions, never people; nothing here scores or identifies any person.",
    "Uncertainty: intervals resample whole periods; with few test periods they are wide, and a model whose "
    "interval of gain over the best baseline includes 0 has not been shown to beat it.",
)
#: Fewest training periods per period kind before a period is tested.
MIN_TRAIN = {"year": 10, "month": 12, "week": 8}
#: Fewest positive outcomes over the test periods before a SparseDataWarning.
MIN_POSITIVES = 20
#: The baselines' names in results (design columns carry a ``b_`` prefix).
BASELINE_LABELS = {
    "b_persistence_rank": "persistence_rank",
    "b_persistence_class": "persistence_class",
    "b_historical_mean": "historical_mean",
    "b_last_change": "last_change",
    "b_common_trend": "common_trend",
}


# -- estimators -------------------------------------------------------------------------------------------
class LogisticClassifier:
    """Logistic regression on standardised features (missing values take the training median).

    Parameters
    ----------
    C
        Inverse L2 regularisation strength.
    random_state
        Seed (the lbfgs solver is deterministic; recorded for the contract).
    """

    def __init__(self, C: float = 1.0, random_state: int | None = 0) -> None:
        self.C = C
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any) -> LogisticClassifier:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=2000, random_state=self.random_state),
        )
        model.fit(X.to_numpy(dtype=float), np.asarray(y, dtype=int))
        self.model_ = model
        self.classes_ = model.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise NotFittedError("LogisticClassifier: call fit before predict_proba")
        out: np.ndarray = self.model_.predict_proba(X.to_numpy(dtype=float))
        return out


class LightGBMClassifier:
    """Small, deterministic gradient-boosted trees (LightGBM): shallow trees, few rounds, seeded, one thread.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree, reg_lambda
        LightGBM's own parameters (small trees and subsampling keep it from memorising a short panel).
    n_jobs
        Threads (1 or 2: the result does not depend on it with ``deterministic=True``).
    random_state
        Seed of the row and column subsampling.
    """

    def __init__(
        self,
        n_estimators: int = 150,
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        n_jobs: int = 1,
        random_state: int | None = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any) -> LightGBMClassifier:
        from lightgbm import LGBMClassifier

        model = LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            n_jobs=self.n_jobs,
            random_state=self.random_state if self.random_state is not None else 0,
            deterministic=True,
            force_col_wise=True,
            verbose=-1,
        )
        model.fit(X.to_numpy(dtype=float), np.asarray(y, dtype=int))
        self.model_ = model
        self.classes_ = model.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise NotFittedError("LightGBMClassifier: call fit before predict_proba")
        out = np.asarray(self.model_.predict_proba(X.to_numpy(dtype=float)))
        return out


# -- result -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassifyResult(Result):
    """A classifier's evaluation through time beside its baselines.

    ``table``: one row per method (baselines first): kind, ROC-AUC, AUPRC, F1, Brier, each with its interval.
    ``methods``: the same, nested (``{"roc_auc": …, "roc_auc_ci": [lo, hi], …}``). ``folds``: one row per
    fold. ``gains``: each model minus the best baseline, paired on the same resampled periods.
    ``best_gain``: the model with the largest ROC-AUC gain. ``calibration``: predicted against observed per
    method. ``ablation`` (with covariates): each model with covariates minus the same model without them, on
    the same folds and resampled periods. ``predictions``: next period's ranked list (``--predict``), else None.
    """

    target: str = ""
    threshold: float = 0.0
    unit: str = ""
    period: str = ""
    source: str = ""
    measure: str = ""
    base_rate: float = float("nan")
    test_periods: tuple[Any, ...] = ()
    features: tuple[str, ...] = ()
    folds: pd.DataFrame = field(default_factory=pd.DataFrame)
    methods: Mapping[str, Any] = field(default_factory=dict)
    gains: pd.DataFrame = field(default_factory=pd.DataFrame)
    best_gain: Mapping[str, Any] = field(default_factory=dict)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    ablation: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame | None = None

    def chart(self) -> ChartSpec | None:
        """Calibration: the observed rate against the predicted probability, per method (best model and baseline)."""
        if self.calibration.empty:
            return None
        keep = [m for m in (self.best_gain.get("method"), self.best_gain.get("baseline")) if m]
        data = self.calibration[self.calibration["method"].isin(keep)] if keep else self.calibration
        return ChartSpec(
            kind="line",
            data=data.reset_index(drop=True),
            x="predicted",
            y="observed",
            series="method",
            title=f"Calibration on the test periods ({self.target})",
            x_label="Predicted probability",
            y_label="Observed share",
            diagonal=True,
            note="A calibrated forecast lies on the dashed diagonal.",
        )


# -- orchestration ----------------------------------------------------------------------------------------
def default_methods(seed: int) -> dict[str, Callable[[], Estimator]]:
    """The two models, seeded."""
    return {
        "logistic": lambda: LogisticClassifier(random_state=seed),
        "lightgbm": lambda: LightGBMClassifier(random_state=seed),
    }


def _baseline_factories(design: Design) -> dict[str, Callable[[], Estimator]]:
    out: dict[str, Callable[[], Estimator]] = {}
    for col in design.baselines:
        out[BASELINE_LABELS[col]] = lambda c=col: ScoreBaseline(c)  # type: ignore[misc]
    return out


def evaluate_design(
    design: Design,
    *,
    seed: int = 0,
    start: Any = None,
    end: Any = None,
    min_train: int = 10,
    n_boot: int = N_BOOT,
    models: Mapping[str, Callable[[], Estimator]] | None = None,
    model_features: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Any, Any]:
    """Run the folds and score them: (FoldRun, Evaluation). Baselines and models see the same folds.

    ``model_features``: the columns of a model, where they are not the design's features (e.g. the
    features plus covariates, for an ablation on the same folds).
    """
    frame = design.frame
    known = frame[frame["y"].notna()]
    if known.empty:
        raise DataError("no unit-period has a known outcome; the data need at least two periods")
    folds = rolling_origin_splits(known["period"].tolist(), min_train=min_train, start=start, end=end)
    baselines = _baseline_factories(design)
    methods: dict[str, Callable[[], Estimator]] = {**baselines, **(models or default_methods(seed))}
    columns = {m: [*design.features] if m not in baselines else [*design.baselines] for m in methods}
    columns.update({m: list(c) for m, c in (model_features or {}).items()})
    run = run_folds(frame, folds, methods, columns, ids=("unit", "name"))
    evaluation = score_methods(run.predictions, list(methods), baselines=list(baselines), n_boot=n_boot, seed=seed)
    return run, evaluation


def load_panel(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    unit: str | None = None,
    period: str | None = None,
) -> Panel:
    """The panel of ``source``: jurisdiction-years (unit ``jurisdiction``, period ``year``), or incidents per
    area (``unit``: an area column, default the one with loaded areas or filled most) and week or month
    (default: week when the data span under two years, else month)."""
    from crimelens.warehouse.queries import list_incident_sources, list_sources

    yearly, incidents = list_sources(con), list_incident_sources(con)
    if source is None:
        every = [*yearly, *incidents]
        if len(every) != 1:
            loaded = ", ".join(every) or "none yet; load a file with `crimelens ingest PATH`"
            raise DataError(
                f"source: expected one dataset, chosen with --source when several are loaded; loaded: {loaded}"
            )
        source = every[0]
    if source in yearly:
        if unit not in (None, "jurisdiction"):
            raise ConfigError(f"unit: a jurisdiction-year dataset's unit is 'jurisdiction', got {unit!r}")
        if period not in (None, "year"):
            raise ConfigError(f"period: a jurisdiction-year dataset's period is 'year', got {period!r}")
        return jurisdiction_panel(con, source)
    if source in incidents:
        if period is None:
            row = con.execute(
                "SELECT min(occurred_at), max(occurred_at) FROM incidents WHERE source = ?", [source]
            ).fetchone()
            span_days = (row[1] - row[0]).days if row and row[0] is not None else 0
            period = "week" if span_days < 730 else "month"
        return incident_panel(con, source, area=unit, period=period)
    loaded = ", ".join([*yearly, *incidents]) or "none yet"
    raise DataError(f"dataset {source!r} is not in the warehouse; loaded datasets: {loaded}")


def _next_period_ranking(
    design: Design,
    methods: Mapping[str, Callable[[], Estimator]],
    best: str,
    model_features: Mapping[str, Sequence[str]],
) -> pd.DataFrame:
    frame = design.frame
    known = frame[frame["y"].notna()]
    last = frame["period"].max()
    upcoming = frame[(frame["period"] == last) & frame["y"].isna()]
    if upcoming.empty:
        return pd.DataFrame(columns=["rank", "unit", "name", "period", "value_now", "probability"])
    out = upcoming[["unit", "name", "period", "value"]].rename(columns={"value": "value_now"}).copy()
    y = known["y"].to_numpy(dtype=int)
    for name, factory in methods.items():
        cols = list(model_features.get(name, design.features))
        est = factory().fit(known[cols], y)
        out[name] = np.asarray(est.predict_proba(upcoming[cols]))[:, 1]
    out["probability"] = out[best]
    out["period"] = out["period"].map(_describe)
    out = out.sort_values(["probability", "unit"], ascending=[False, True], ignore_index=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    ranked: pd.DataFrame = out
    return ranked


def _describe(p: Any) -> Any:
    return p.date().isoformat() if isinstance(p, pd.Timestamp) else p


@records_caveats
def classify(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    target: str = "top-quartile",
    threshold: float | None = None,
    unit: str | None = None,
    period: str | None = None,
    start: Any = None,
    end: Any = None,
    seed: int = 0,
    predict: bool = False,
    covariates: bool = False,
    n_boot: int = N_BOOT,
) -> ClassifyResult:
    """Will a place be high-crime (or see crime rise) next period? Models against baselines, through time.

    Parameters
    ----------
    con
        The warehouse.
    source
        A jurisdiction-year dataset (Marshall, FBI, mapped-csv) or an incident dataset.
    target, threshold
        ``top-quartile`` (top 25 % of units next period), ``top-share`` (top ``threshold``, default 0.2) or
        ``rise`` (the rate rises by ≥ ``threshold``, default 0.10).
    unit, period
        For incidents: the area column and week or month; jurisdiction-years are per jurisdiction and year.
    start, end
        The first and last predicted period tested (years, or dates for incident periods); default every
        period with enough history (10 years, 12 months, 8 weeks).
    seed
        Seed of the models and of the bootstrap.
    predict
        Also fit on every known period and rank the units for the period after the data.
    covariates
        Also fit each model with the loaded socio-economic covariates of the units added to its features
        (``logistic_cov``, ``lightgbm_cov``), on the same folds: the ablation table gives each one's paired
        gain over the same model without them.
    n_boot
        Bootstrap replicates of the intervals.

    Returns
    -------
    ClassifyResult

    References
    ----------
    Tashman (2000) for rolling-origin evaluation; Saito & Rehmsmeier (2015) for AUPRC against the base rate;
    Mitchell et al. (2019) for the model card.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed: expected a whole number ≥ 0, got {seed!r}")
    panel = load_panel(con, source, unit=unit, period=period)
    design = build_design(panel, target, threshold)
    for name, bound in (("start", start), ("end", end)):
        if bound is None:
            continue
        if panel.period_kind == "year" and (not isinstance(bound, int) or isinstance(bound, bool)):
            raise ConfigError(f"{name}: expected a year for jurisdiction-year data (e.g. 2000), got {bound!r}")
        if panel.period_kind != "year" and isinstance(bound, int):
            raise ConfigError(
                f"{name}: expected a date YYYY-MM-DD for {panel.period_kind}s of incidents, got {bound!r}"
            )
    if panel.period_kind != "year":
        start = pd.Timestamp(start) if start is not None else None
        end = pd.Timestamp(end) if end is not None else None
    models = default_methods(seed)
    model_features: dict[str, list[str]] = {}
    cov_note = None
    if covariates:
        design, cov_columns, cov_note = add_covariates(con, panel, design)
        for name in list(models):
            models[f"{name}_cov"] = models[name]
            model_features[f"{name}_cov"] = [*design.features, *cov_columns]
    run, ev = evaluate_design(
        design,
        seed=seed,
        start=start,
        end=end,
        min_train=MIN_TRAIN[panel.period_kind],
        n_boot=n_boot,
        models=models,
        model_features=model_features,
    )
    ablation = pd.DataFrame()
    if covariates:
        rows = []
        for name in ("logistic", "lightgbm"):
            pair = score_methods(run.predictions, [name, f"{name}_cov"], baselines=[name], n_boot=n_boot, seed=seed)
            rows.append(pair.gains.assign(method=f"{name}_cov", without=name).drop(columns=["baseline"]))
        ablation = pd.concat(rows, ignore_index=True)
        first = ["method", "without"]
        ablation = ablation[[*first, *[c for c in ablation.columns if c not in first]]]
    preds = run.predictions
    positives = int(preds["y"].sum())
    if positives < MIN_POSITIVES:
        warnings.warn(
            f"only {positives} positive outcomes in the test periods (expected at least {MIN_POSITIVES} for "
            "stable AUPRC and F1): read the intervals, not the points",
            SparseDataWarning,
            stacklevel=2,
        )
    calib = pd.concat(
        [calibration_table(preds["y"], preds[m]).assign(method=m) for m in run.methods], ignore_index=True
    )
    best_model = ev.best_gain.get("method") or next(iter(models))
    ranking = _next_period_ranking(design, models, best_model, model_features) if predict else None
    folds = run.folds.copy()
    for col in ("train_start", "train_end", "test_period"):
        folds[col] = folds[col].map(_describe)
    tested = tuple(_describe(p) for p in run.folds["test_period"])
    what = {
        "top-quartile": "in the top quartile",
        "top-share": f"in the top {design.threshold:.0%}",
        "rise": f"up by ≥ {design.threshold:.0%}",
    }[target]
    title = (
        f"Which {panel.unit.replace('_', ' ')}s will be {what} next {panel.period_kind} ({panel.measure}): "
        f"{len(run.methods)} methods, {len(tested)} test {panel.period_kind}s {tested[0]}–{tested[-1]}"
    )
    notes = [
        *panel.notes,
        *([cov_note] if cov_note else []),
        f"Outcome base rate on the test periods: {ev.base_rate:.3f} (the AUPRC of a no-skill forecast).",
        f"Rolling origin: each {panel.period_kind} is predicted by methods trained on every earlier one; "
        f"features use data up to the {panel.period_kind} before. Intervals: {ev.level:.0%} percentile bootstrap, "
        f"{ev.n_boot} replicates resampling test {panel.period_kind}s (seed {seed}).",
        "F1 uses a threshold chosen on earlier periods only; baselines become probabilities through a "
        "one-variable logistic fit on the training periods (its sign learned there).",
    ]
    if ev.best_gain:
        g = ev.best_gain
        lo, hi = g["roc_auc_ci"]
        verdict = "beats" if lo > 0 else ("does worse than" if hi < 0 else "is not shown to beat")
        notes.append(
            f"Best model {g['method']} {verdict} the best baseline {g['baseline']}: ROC-AUC gain "
            f"{g['roc_auc']:+.3f} [{lo:+.3f}, {hi:+.3f}]."
        )
    if run.constant_folds:
        notes.append(f"{run.constant_folds} fold(s) had one class only in training; every method predicted its rate.")
    notes.extend(CAVEATS)
    table = ev.table.copy()
    table["method"] = table["method"].astype(str)
    return ClassifyResult(
        title=title,
        table=table,
        params={
            "source": panel.source,
            "target": target,
            "threshold": design.threshold,
            "unit": panel.unit,
            "period": panel.period_kind,
            "start": _describe(start),
            "end": _describe(end),
            "seed": seed,
            "n_boot": n_boot,
            "covariates": covariates,
            "predict": predict,
        },
        notes=tuple(notes),
        target=target,
        threshold=design.threshold,
        unit=panel.unit,
        period=panel.period_kind,
        source=panel.source,
        measure=panel.measure,
        base_rate=ev.base_rate,
        test_periods=tested,
        features=design.features,
        folds=folds,
        methods=ev.methods,
        gains=ev.gains,
        best_gain=ev.best_gain,
        calibration=calib,
        ablation=ablation,
        predictions=ranking,
    )
