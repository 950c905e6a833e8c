"""`crimelens model …`: which places will be high-crime next period, measured on later periods the models never saw."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape

from crimelens.cli.options import CsvOpt, DbOpt, JsonOpt, LimitOpt, SeedOpt, SourceOpt
from crimelens.cli.render import busy, emit, out, show_table
from crimelens.cli.support import guarded, open_warehouse
from crimelens.config import get_setting
from crimelens.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["model_app"]

model_app = typer.Typer(
    name="model",
    help=(
        "Predictive models, always evaluated on later periods than they were trained on and shown beside naive "
        "baselines with intervals: `crimelens model classify` asks which places will be high-crime next period."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])

TargetOpt = Annotated[
    str,
    typer.Option(
        "--target",
        help="What to predict for next period: top-quartile (in the top 25% of units), top-share (in the top "
        "--threshold share, default 0.2) or rise (the rate rises by at least --threshold, default 0.10 = 10%).",
    ),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option("--threshold", help="The share of units on top (top-share), or the relative rise (rise)."),
]
UnitOpt = Annotated[
    str | None,
    typer.Option(
        "--unit",
        help="The places compared: 'jurisdiction' for jurisdiction-year data; for incidents an area column "
        "(community_area, neighbourhood, district, beat, census_tract; default: the one with loaded areas).",
    ),
]
PeriodOpt = Annotated[
    str | None,
    typer.Option(
        "--period",
        help="year for jurisdiction-year data; week or month for incidents (default: week under two years of "
        "data, else month).",
    ),
]
FirstOpt = Annotated[
    str | None,
    typer.Option(
        "--start", help="First predicted period tested: a year (2000) or, for incidents, a date (2022-06-01)."
    ),
]
LastOpt = Annotated[
    str | None,
    typer.Option("--end", help="Last predicted period tested: a year (2014) or, for incidents, a date (2022-10-31)."),
]
CovariatesOpt = Annotated[
    str,
    typer.Option(
        "--covariates",
        help="on: also fit each model with the loaded socio-economic covariates of the places (`crimelens "
        "covariates load`) and show the ablation, with and without them on the same folds; off (default).",
    ),
]
PredictOpt = Annotated[
    bool,
    typer.Option("--predict", help="Also rank the places for the period after the data, with probabilities."),
]

#: The metrics the terminal shows per method (all of them, with intervals, are in --json and --csv).
METRICS = ("roc_auc", "auprc", "f1", "brier")


def _command(name: str) -> Callable[[F], F]:
    return guarded(model_app, name)


def _period_value(value: str | None, option: str) -> Any:
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option}: expected a year (2000) or a date YYYY-MM-DD, got {value!r}") from None


def _with_interval(frame: pd.DataFrame, metrics: tuple[str, ...], *, signed: bool = False) -> pd.DataFrame:
    """Each metric as 'value [low, high]' text, for reading (``signed``: differences, shown with their sign)."""
    shown = frame[[c for c in ("method", "kind", "baseline", "without") if c in frame.columns]].copy()
    fmt = "{:+.3f}" if signed else "{:.3f}"
    for m in metrics:
        if m in frame.columns:
            shown[m] = [
                f"{fmt.format(v)} [{fmt.format(lo)}, {fmt.format(hi)}]"
                for v, lo, hi in zip(frame[m], frame[f"{m}_low"], frame[f"{m}_high"], strict=True)
            ]
    return shown


def _periods_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Periods read as labels (2014, 2022-03-07), not as quantities (2,014)."""
    shown = frame.copy()
    for col in ("test_period", "train_start", "train_end", "period"):
        if col in shown.columns:
            shown[col] = shown[col].astype(str)
    return shown


@_command("classify")
def classify_cmd(
    source: SourceOpt = None,
    target: TargetOpt = "top-quartile",
    threshold: ThresholdOpt = None,
    unit: UnitOpt = None,
    period: PeriodOpt = None,
    start: FirstOpt = None,
    end: LastOpt = None,
    covariates: CovariatesOpt = "off",
    seed: SeedOpt = None,
    predict: PredictOpt = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Which places will be high-crime next period: logistic regression and LightGBM against naive baselines.

    Every period tested is predicted by methods trained on earlier periods only; ROC-AUC, AUPRC (beside the
    base rate), F1 and Brier score come with 95% intervals that resample whole periods, and the gain of the
    best model over the best baseline with its interval.
    """
    from crimelens.models.classify import classify

    if covariates not in ("on", "off"):
        raise ConfigError(f"--covariates: expected on or off, got {covariates!r}")
    with open_warehouse(db) as con, busy("Evaluating the classifier through time", quiet=as_json or as_csv):
        result = classify(
            con,
            source,
            target=target,
            threshold=threshold,
            unit=unit,
            period=period,
            start=_period_value(start, "--start"),
            end=_period_value(end, "--end"),
            seed=int(get_setting("seed", seed)),
            predict=predict,
            covariates=covariates == "on",
        )
    if as_json or as_csv:
        emit(result, as_json=as_json, as_csv=as_csv)
        return
    show_table(_with_interval(result.table, METRICS), result.title, None)
    if not result.gains.empty:
        gains = _with_interval(result.gains, ("roc_auc", "auprc"), signed=True)
        show_table(gains, "Gain over the best baseline (paired)", None)
    models = [m for m, v in result.methods.items() if v["kind"] == "model"]
    fold_cols = ["test_period", "n_train", "n_test", "positives", "base_rate", *(f"roc_auc_{m}" for m in models)]
    best = result.best_gain.get("baseline")
    if best:
        fold_cols.append(f"roc_auc_{best}")
    if not result.ablation.empty:
        show_table(
            _with_interval(result.ablation, ("roc_auc", "auprc"), signed=True),
            "Ablation: with covariates minus without (paired, same folds)",
            None,
        )
    show_table(_periods_as_text(result.folds), "Per test period", None if limit == 0 else limit, columns=fold_cols)
    if result.predictions is not None:
        show_table(
            _periods_as_text(result.predictions),
            f"Ranked for the next {result.period} (probability: {result.best_gain.get('method', 'best model')})",
            None if limit == 0 else limit,
            columns=["rank", "unit", "name", "period", "value_now", "probability"],
        )
    for note in result.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]")
