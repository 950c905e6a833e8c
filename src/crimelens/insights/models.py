"""Findings on the classifier: does any model forecast high-crime places better than a simple baseline?

:func:`classifier_findings` turns a :class:`~crimelens.models.classify.ClassifyResult` already computed (the
report's section computes it) into one finding, honest either way: a model that beats the best simple baseline
by a paired ROC-AUC gain whose interval lies above 0, or "no model beats" that baseline (last period's rank,
most often). Scores follow the one scale of :mod:`crimelens.insights.base`:

- ``model_gain`` (weight 0.7): strength 0.5 + 5 × the lower end of the gain's interval, at most 1 (a gain
  shown to be at least 0.1 of ROC-AUC scores the full weight).
- ``model_no_gain`` (weight 0.6): strength = the best baseline's ROC-AUC (0.5 for a coin toss, 1 for a
  perfect ranking): that no model beats a baseline matters most where the baseline is already strong.

References
----------
Mitchell, M. et al. (2019). Model cards for model reporting. *FAT* '19*, 220-229.
Tashman, L. J. (2000). Out-of-sample tests of forecasting accuracy. *International Journal of Forecasting*
16(4), 437-450 (forecasts judged against naive ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crimelens.insights.base import Finding, make_finding

if TYPE_CHECKING:
    from crimelens.models.classify import ClassifyResult

__all__ = ["baseline_label", "classifier_findings", "target_phrase"]


def baseline_label(name: str, period: str) -> str:
    """A baseline's name as an analyst says it (``persistence_rank`` → "last year's rank")."""
    return {
        "persistence_rank": f"last {period}'s rank",
        "persistence_class": f"last {period}'s class",
        "historical_mean": "the historical average",
        "last_change": f"last {period}'s change",
        "common_trend": "the common trend",
    }.get(name, name.replace("_", " "))


def target_phrase(target: str, threshold: float) -> str:
    """What the classifier forecasts, e.g. "in the top quartile" or "up by ≥ 10%"."""
    if target == "top-quartile":
        return "in the top quartile"
    if target == "top-share":
        return f"in the top {threshold:.0%}"
    return f"up by ≥ {threshold:.0%}"


def classifier_findings(result: ClassifyResult) -> list[Finding]:
    """One finding from a classifier's evaluation: the best model's paired gain over the best baseline.

    Empty when the result has no gain (no model ran).
    """
    g = result.best_gain
    if not g:
        return []
    model, baseline = str(g["method"]), str(g["baseline"])
    gain = float(g["roc_auc"])
    lo, hi = (float(x) for x in g["roc_auc_ci"])
    model_auc = float(result.methods[model]["roc_auc"])
    base_auc = float(result.methods[baseline]["roc_auc"])
    plain = baseline_label(baseline, result.period)
    what = target_phrase(result.target, result.threshold)
    units = result.unit.replace("_", " ") + "s"
    tested = result.test_periods
    span = f"{len(tested)} test {result.period}s ({tested[0]}–{tested[-1]})" if tested else "no test period"
    evidence: dict[str, Any] = {
        "source": result.source,
        "target": result.target,
        "threshold": result.threshold,
        "model": model,
        "baseline": baseline,
        "roc_auc_gain": gain,
        "roc_auc_gain_ci": [lo, hi],
        "model_roc_auc": model_auc,
        "baseline_roc_auc": base_auc,
        "base_rate": result.base_rate,
        "test_periods": len(tested),
        "bootstrap_replicates": result.params.get("n_boot"),
    }
    interval = f"{gain:+.3f} [{lo:+.3f}, {hi:+.3f}]"
    if lo > 0:
        return [
            make_finding(
                "model_gain",
                f"{result.source}: {model} forecasts which {units} will be {what} next {result.period} better "
                f"than {plain}, by {interval} of ROC-AUC",
                f"ROC-AUC {model_auc:.3f} against {base_auc:.3f} for {plain}, on {span} later than every "
                f"{result.period} the models were trained on; the interval is paired over resampled "
                f"{result.period}s. A real but modest edge: read the ranked list with its probabilities.",
                evidence,
                0.5 + 5 * lo,
                source=result.source,
            )
        ]
    if hi < 0:
        headline, verdict = "no model beats", "does worse than it"
    elif gain <= 0:
        headline, verdict = "no model beats", "ties it"
    else:
        headline, verdict = "no model is shown to beat", "is ahead of it, but the interval includes 0"
    return [
        make_finding(
            "model_no_gain",
            f"{result.source}: {headline} {plain} at forecasting which {units} will be {what} next {result.period}",
            f"The best model, {model}, {verdict}: ROC-AUC {model_auc:.3f} against {base_auc:.3f}, a paired gain "
            f"of {interval} on {span}. {plain[0].upper() + plain[1:]} is as good on this evidence, and easier "
            "to explain.",
            evidence,
            base_auc,
            source=result.source,
        )
    ]
