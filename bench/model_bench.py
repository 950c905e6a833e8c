"""Time a full `crimelens model classify` evaluation against a plain scikit-learn notebook on the same features.

``make bench-models`` runs ``.venv/bin/python bench/model_bench.py``. It loads, with the real loaders, into a
temporary warehouse the Marshall Project UCR file and Chicago 2022 incidents (from ``$CRIMELENS_DATA``, default
``../shared/data`` beside the repository), then times, each as a fresh process and the median of 3 runs:

- **crimelens**: ``crimelens model classify --json`` on Marshall (target rise ≥ 10 %, and top quartile; predicted
  years 2000–2014, the protocol of issue 10) and on Chicago 2022 community-area weeks (top 20 %, every week with
  8 weeks of history). This is the whole job: reading the warehouse, building the features, every baseline, both
  models on every fold, F1 thresholds chosen on earlier folds, 1,000 period-bootstrap replicates of every metric,
  the paired gains and the calibration table.
- **notebook**: what an analyst would write with scikit-learn alone (:func:`notebook`): read the feature matrix
  crimelens built (written to Parquet before the clock starts, so both fit the same features), the same
  rolling-origin folds (train on every earlier period, test on the next), the same two models with the same
  settings (median imputation, standardisation and ``LogisticRegression``; ``LGBMClassifier``), and pooled
  ROC-AUC and AUPRC from ``sklearn.metrics``. No baselines, no intervals, no thresholds, no calibration: the
  floor of what the models themselves cost. Its time excludes reading the warehouse and building features.

Both give the models' pooled ROC-AUC and AUPRC; they must agree (same features, folds and models), and the
section says whether they do. The section "## Model evaluation" of ``bench/RESULTS.md`` is replaced (appended
when absent); every other section is kept. Targets (issue 10): ≤ 30 s on Marshall, ≤ 60 s on Chicago weeks.
``--quick`` (one run each, fewer test periods) is the smoke-test form and measures nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
HEADING = "## Model evaluation"
CHICAGO = "chicago_crimes_2022_slim/crimes-2022-slim.csv.gz"
MARSHALL = "marshall_ucr_crime_1975_2015/ucr_crime_1975_2015.csv"
REPEAT = 3
MODELS = ("logistic", "lightgbm")
#: LightGBM's settings in crimelens (models/classify.py, LightGBMClassifier's defaults), written out as a notebook
#: would write them.
LGBM = {
    "n_estimators": 150, "learning_rate": 0.05, "num_leaves": 7, "min_child_samples": 20, "subsample": 0.8,
    "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0, "n_jobs": 1, "random_state": 0,
    "deterministic": True, "force_col_wise": True, "verbose": -1,
}  # fmt: skip


@dataclass
class Case:
    """One evaluation: the dataset, the target, the periods tested, and the issue's time target."""

    key: str
    label: str
    source: str
    target: str
    target_seconds: float
    min_train: int
    start: Any = None
    end: Any = None
    crimelens_s: list[float] = field(default_factory=list)
    notebook_s: list[float] = field(default_factory=list)
    crimelens_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    notebook_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    tested: int = 0
    rows: int = 0
    features: int = 0
    error: str = ""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cases(quick: bool) -> list[Case]:
    """The three evaluations of issue 10's speed target (fewer test periods in quick mode)."""
    if quick:
        return [
            Case("marshall-rise", "Marshall agencies, rise ≥ 10 % next year", "ucr-marshall", "rise", 30, 10,
                 2012, 2014),
            Case("chicago-weeks", "Chicago 2022 community-area weeks, top 20 % next week", "chicago", "top-share",
                 60, 8, "2022-11-07", "2022-11-21"),
        ]  # fmt: skip
    return [
        Case("marshall-rise", "Marshall agencies, rise ≥ 10 % next year", "ucr-marshall", "rise", 30, 10, 2000, 2014),
        Case("marshall-top", "Marshall agencies, top quartile next year", "ucr-marshall", "top-quartile", 30, 10,
             2000, 2014),
        Case("chicago-weeks", "Chicago 2022 community-area weeks, top 20 % next week", "chicago", "top-share", 60, 8),
    ]  # fmt: skip


# -- the notebook: plain scikit-learn and LightGBM on the same feature matrix ---------------------------------
def notebook(matrix: Path, min_train: int, start: Any, end: Any) -> dict[str, dict[str, float]]:
    """Rolling-origin folds with scikit-learn and LightGBM only; pooled ROC-AUC and AUPRC of each model."""
    import numpy as np
    import pandas as pd
    from lightgbm import LGBMClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = pd.read_parquet(matrix)
    df = df[df["y"].notna()]
    features = [c for c in df.columns if c not in ("period", "y")]
    if start is not None and not isinstance(start, int):
        start, end = pd.Timestamp(start), pd.Timestamp(end)
    periods = sorted(df["period"].unique())
    tested = [
        p for i, p in enumerate(periods)
        if i >= min_train and (start is None or p >= start) and (end is None or p <= end)
    ]  # fmt: skip
    ys, scores = [], {m: [] for m in MODELS}
    for p in tested:
        train, test = df[df["period"] < p], df[df["period"] == p]
        X, y = train[features].to_numpy(dtype=float), train["y"].to_numpy(dtype=int)
        Xt = test[features].to_numpy(dtype=float)
        ys.append(test["y"].to_numpy(dtype=int))
        if np.unique(y).size < 2:  # one class in training: the training rate for every row
            for m in MODELS:
                scores[m].append(np.full(len(test), y.mean()))
            continue
        logistic = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                                 LogisticRegression(max_iter=2000, random_state=0))  # fmt: skip
        scores["logistic"].append(logistic.fit(X, y).predict_proba(Xt)[:, 1])
        scores["lightgbm"].append(LGBMClassifier(**LGBM).fit(X, y).predict_proba(Xt)[:, 1])
    y_all = np.concatenate(ys)
    return {
        m: {"roc_auc": float(roc_auc_score(y_all, np.concatenate(s))),
            "auprc": float(average_precision_score(y_all, np.concatenate(s))), "periods": len(tested)}
        for m, s in scores.items()
    }  # fmt: skip


# -- running ------------------------------------------------------------------------------------------------
def _warehouse(data: Path, folder: Path) -> Path:
    from crimelens import sources, warehouse

    db = folder / "models.duckdb"
    con = warehouse.connect(db)
    try:
        warehouse.load_parsed(con, sources.read(data / MARSHALL, "ucr-marshall"))
        warehouse.load_incidents(con, data / CHICAGO, "chicago", source="chicago")
    finally:
        con.close()
    return db


def _matrix(db: Path, case: Case, folder: Path) -> Path:
    """The feature matrix crimelens builds for ``case``, as Parquet: what the notebook starts from."""
    from crimelens import warehouse
    from crimelens.models.classify import load_panel
    from crimelens.models.features import build_design

    con = warehouse.connect(db, read_only=True)
    try:
        design = build_design(load_panel(con, case.source), case.target)
    finally:
        con.close()
    out = folder / f"{case.key}.parquet"
    design.frame[["period", "y", *design.features]].to_parquet(out, index=False)
    case.features = len(design.features)
    return out


def _timed(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800, cwd=REPO)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} … failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds, done.stdout


def _crimelens_args(db: Path, case: Case) -> list[str]:
    exe = Path(sys.executable).with_name("crimelens")
    args = [str(exe), "model", "classify", "--source", case.source, "--target", case.target, "--db", str(db),
            "--json"]  # fmt: skip
    if case.start is not None:
        args += ["--start", str(case.start), "--end", str(case.end)]
    return args


def run_case(db: Path, case: Case, folder: Path, repeat: int) -> None:
    matrix = _matrix(db, case, folder)
    nb_args = [sys.executable, str(Path(__file__).resolve()), "--notebook", str(matrix), "--min-train",
               str(case.min_train), "--start", json.dumps(case.start), "--end", json.dumps(case.end)]  # fmt: skip
    for r in range(repeat):  # alternate the two, so that a slow spell of the shared machine hits both
        seconds, out = _timed(_crimelens_args(db, case))
        case.crimelens_s.append(seconds)
        if r == 0:
            data = json.loads(out)
            case.crimelens_metrics = {m: {k: data["methods"][m][k] for k in ("roc_auc", "auprc")} for m in MODELS}
            case.tested = len(data["folds"])
            case.rows = int(sum(f["n_test"] for f in data["folds"]))
        seconds, out = _timed(nb_args)
        case.notebook_s.append(seconds)
        if r == 0:
            case.notebook_metrics = json.loads(out)
        _log(f"{case.key} run {r + 1}: crimelens {case.crimelens_s[-1]:.1f} s, notebook {case.notebook_s[-1]:.1f} s")


# -- the section ------------------------------------------------------------------------------------------
def _agree(case: Case) -> bool:
    return all(
        abs(case.crimelens_metrics[m][k] - case.notebook_metrics[m][k]) < 1e-9
        for m in MODELS
        for k in ("roc_auc", "auprc")
    )


def section(results: list[Case], command: str, started: dt.datetime, quick: bool, load: float) -> str:
    n = len(results[0].crimelens_s) if results else 0
    runs = "one run" if n == 1 else f"the median of {n} runs"
    lines = [
        HEADING,
        "",
        f"Generated {started:%Y-%m-%d %H:%M} UTC by `{command}`{' (quick mode: measures nothing)' if quick else ''}"
        f" (`make bench-models`). Each time is the wall-clock time of a fresh process, {runs}, crimelens and the "
        "notebook alternating; the machine "
        f"is shared (2 cores; load average {load:.2f} at start). **crimelens**: `crimelens model classify --json`, "
        "the whole evaluation (read the warehouse, build the features, the baselines (5 for rise, else 3), logistic "
        "regression and "
        "LightGBM on every fold, F1 thresholds from earlier folds, 1,000 period-bootstrap replicates of every "
        "metric, paired gains, calibration). **notebook** (`bench/model_bench.py: notebook`): scikit-learn and "
        "LightGBM alone on the feature matrix crimelens built (read from Parquet; building it is not timed), the "
        "same rolling-origin folds and the same model settings, pooled ROC-AUC and AUPRC from `sklearn.metrics`; "
        "no baselines, intervals, thresholds or calibration. Targets from issue 10: ≤ 30 s on Marshall, ≤ 60 s on "
        "Chicago community-area weeks.",
        "",
        "| evaluation | test periods | test rows | features | crimelens (s) | runs (s) | notebook (s) | runs (s) | "
        "× notebook | target | met |",
        "|---|---:|---:|---:|---:|---|---:|---|---:|---:|---|",
    ]
    for c in results:
        if c.error:
            lines.append(f"| {c.label} | – | – | – | failed: {c.error.replace('|', '/')} | | | | | ≤ "
                         f"{c.target_seconds:g} s | **no** |")  # fmt: skip
            continue
        med, nb = statistics.median(c.crimelens_s), statistics.median(c.notebook_s)
        met = "– (quick)" if quick else ("yes" if med <= c.target_seconds else "**no**")
        lines.append(
            f"| {c.label} | {c.tested} | {c.rows:,} | {c.features} | {med:.1f} | "
            f"{', '.join(f'{s:.1f}' for s in c.crimelens_s)} | {nb:.1f} | {', '.join(f'{s:.1f}' for s in c.notebook_s)}"
            f" | {med / nb:.1f}× | ≤ {c.target_seconds:g} s | {met} |"
        )
    lines += [
        "",
        "Both give the models' pooled ROC-AUC and AUPRC over the same test periods; they must agree:",
        "",
        "| evaluation | model | ROC-AUC crimelens | ROC-AUC notebook | AUPRC crimelens | AUPRC notebook | agree |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for c in results:
        if c.error:
            continue
        ok = "yes" if _agree(c) else "**no**"
        for m in MODELS:
            a, b = c.crimelens_metrics[m], c.notebook_metrics[m]
            lines.append(
                f"| {c.label} | {m} | {a['roc_auc']:.4f} | {b['roc_auc']:.4f} | {a['auprc']:.4f} | "
                f"{b['auprc']:.4f} | {ok} |"
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time crimelens model classify against a scikit-learn notebook.")
    parser.add_argument("--quick", action="store_true", help="smoke-test form: one run each, fewer test periods")
    parser.add_argument("--repeat", type=int, default=REPEAT, help=f"fresh-process runs of each (default {REPEAT})")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("CRIMELENS_DATA", REPO.parent / "shared" / "data")),
        help="folder of the shared real data (default: $CRIMELENS_DATA, else ../shared/data beside the repository)",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md", help="results file (bench/RESULTS.md)")
    parser.add_argument("--notebook", type=Path, help=argparse.SUPPRESS)  # one notebook run (a fresh process)
    parser.add_argument("--min-train", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--start", default="null", help=argparse.SUPPRESS)
    parser.add_argument("--end", default="null", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.notebook is not None:
        print(json.dumps(notebook(args.notebook, args.min_train, json.loads(args.start), json.loads(args.end))))
        return 0
    missing = [p for p in (CHICAGO, MARSHALL) if not (args.data / p).is_file()]
    if missing:
        parser.error(f"--data: expected the shared files under {args.data}, missing: {', '.join(missing)}")
    started = dt.datetime.now(dt.UTC)
    load = os.getloadavg()[0]
    repeat = 1 if args.quick else args.repeat
    results = cases(args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        db = _warehouse(args.data, Path(tmp))
        _log(f"loaded Marshall and Chicago 2022 in {time.perf_counter() - t0:.0f} s")
        for case in results:
            try:
                run_case(db, case, Path(tmp), repeat)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                case.error = str(exc).splitlines()[0][:200]
                _log(f"{case.key}: {exc}")
    command = "python bench/model_bench.py" + (" --quick" if args.quick else "")
    sys.path.insert(0, str(BENCH))
    from everyday import replace_section

    existing = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    args.out.write_text(replace_section(existing, section(results, command, started, args.quick, load), HEADING),
                        encoding="utf-8")  # fmt: skip
    _log(f"wrote the {HEADING[3:]!r} section of {args.out}")
    return 1 if any(c.error for c in results) else 0


if __name__ == "__main__":
    sys.exit(main())
