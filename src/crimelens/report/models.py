"""The model sections of the report: which places will be high-crime next period, crime and socio-economic
conditions, and the model card.

Like every section, these compute nothing of their own: they call :func:`crimelens.models.classify.classify`
and :func:`crimelens.models.covariates.covariate_regression` through the report's
:class:`~crimelens.report.blocks.Runner` and render the results (tables, the result's own calibration chart,
sentences read off the result). A dataset the classifier cannot evaluate (too few periods) gets one line saying
so; the rest of the report is unaffected.

To keep the report fast, the classifier runs here with :data:`REPORT_N_BOOT` bootstrap replicates (the command
``crimelens model classify`` uses 1,000) and, on jurisdiction-year data, tests the latest
:data:`REPORT_TEST_YEARS` predicted years only; the section says so.

References
----------
Mitchell, M. et al. (2019). Model cards for model reporting. *FAT* '19*, 220-229.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from crimelens.insights.base import Finding
from crimelens.insights.models import baseline_label, classifier_findings, target_phrase
from crimelens.models.classify import CAVEATS, ClassifyResult, classify
from crimelens.models.covariates import COVARIATE_CAVEATS, CovariateResult, covariate_regression
from crimelens.report.blocks import Block, PageSection, Runner
from crimelens.report.charts import slug
from crimelens.report.maps import area_map_figure
from crimelens.report.tables import records, render_table

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "JURISDICTION_TARGETS",
    "REPORT_N_BOOT",
    "REPORT_TEST_YEARS",
    "ModelReportParams",
    "classifier_section",
    "covariates_section",
    "model_card_section",
    "model_sections",
]

#: Bootstrap replicates of the report's intervals (the command's default is 1,000; 200 give the same
#: intervals to about ±0.01 on the demo's data and save a few seconds per dataset).
REPORT_N_BOOT = 200
#: The latest predicted years tested on jurisdiction-year data (each fold refits every method).
REPORT_TEST_YEARS = 15
#: The classifier's targets on jurisdiction-year data; incident data use ``top-share`` (top 20 %).
JURISDICTION_TARGETS: tuple[str, ...] = ("top-quartile", "rise")
INCIDENT_TARGET = "top-share"


@dataclass(frozen=True)
class ModelReportParams:
    """How the report runs the models: bootstrap replicates, tested years, seed, rows of the ranked list."""

    n_boot: int = REPORT_N_BOOT
    test_years: int = REPORT_TEST_YEARS
    seed: int = 0
    top: int = 10


# -- formatting ---------------------------------------------------------------------------------------------
def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.{digits}f}"


def _ci(point: Any, ci: Sequence[Any], digits: int = 3, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if point is None or (isinstance(point, float) and math.isnan(point)):
        return "—"
    lo, hi = ci
    return f"{float(point):{sign}.{digits}f} [{float(lo):{sign}.{digits}f}, {float(hi):{sign}.{digits}f}]"


def _sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".") if text else ""


def metrics_frame(result: ClassifyResult) -> pd.DataFrame:
    """The result's table as shown in the report: each metric with its 95 % interval (3 decimals)."""
    t = result.table
    out = pd.DataFrame({"method": t["method"].astype(str), "kind": t["kind"].astype(str)})
    for m in ("roc_auc", "auprc", "f1", "brier"):
        out[m] = [_ci(a, (b, c)) for a, b, c in zip(t[m], t[f"{m}_low"], t[f"{m}_high"], strict=True)]
    return out.reset_index(drop=True)


def gains_frame(result: ClassifyResult) -> pd.DataFrame:
    """Each model's paired gain over the best baseline, with intervals (3 decimals, signed)."""
    g = result.gains
    if g.empty:
        return pd.DataFrame(columns=["method", "baseline", "roc_auc", "auprc"])
    return pd.DataFrame(
        {
            "method": g["method"].astype(str),
            "baseline": g["baseline"].astype(str),
            "roc_auc": [_ci(r.roc_auc, (r.roc_auc_low, r.roc_auc_high), signed=True) for r in g.itertuples()],
            "auprc": [_ci(r.auprc, (r.auprc_low, r.auprc_high), signed=True) for r in g.itertuples()],
        }
    )


def ranking_frame(result: ClassifyResult, top: int) -> pd.DataFrame:
    """The first ``top`` rows of next period's ranked list, probabilities to 3 decimals."""
    p = result.predictions
    if p is None or p.empty:
        return pd.DataFrame(columns=["rank", "name", "value_now", "probability"])
    head = p.head(top)
    digits = 1 if result.period == "year" else 0
    out = pd.DataFrame(
        {
            "rank": head["rank"].astype(int),
            "name": head["name"].astype(str),
            "value_now": [_num(v, digits) for v in head["value_now"]],
            "probability": [_num(v) for v in head["probability"]],
        }
    )
    for m in ("logistic", "lightgbm"):
        if m in head.columns:
            out[m] = [_num(v) for v in head[m]]
    return out


def _next_period(result: ClassifyResult) -> str:
    """The period the ranked list predicts (the list's ``period`` is the predicted period)."""
    p = result.predictions
    if p is None or p.empty:
        return f"the next {result.period}"
    nxt = p["period"].iloc[0]
    return str(nxt) if result.period == "year" else f"the {result.period} starting {nxt}"


# -- which places will be high-crime next period ----------------------------------------------------------
def _classifier_block(
    run: Runner, source: str, target: str, start: Any, params: ModelReportParams
) -> tuple[Block, ClassifyResult | None]:
    out = run.run(
        f"models.classify[{source}:{target}]",
        classify,
        run.con,
        source,
        target=target,
        start=start,
        seed=params.seed,
        predict=True,
        n_boot=params.n_boot,
    )
    title = f"{source}: {target.replace('-', ' ')}"
    block = Block(title, anchor=f"model-{slug(source)}-{target}")
    res = out.value
    if res is None:
        block.unavailable = out.unavailable(f"The classifier ({target})")
        block.caveats.extend(out.caveats)
        return block, None
    what = target_phrase(res.target, res.threshold)
    units = res.unit.replace("_", " ") + "s"
    block.title = f"{source}: which {units} will be {what} next {res.period}"
    tested = res.test_periods
    block.paragraphs.append(
        f"Tested on {len(tested)} {res.period}s ({tested[0]}–{tested[-1]}), each predicted by methods trained "
        f"on earlier {res.period}s only. Base rate {res.base_rate:.3f}: the share of {units} {what} on those "
        f"{res.period}s, and the AUPRC of a forecast with no skill."
    )
    g = res.best_gain
    if g:
        plain = baseline_label(str(g["baseline"]), res.period)
        lo, hi = g["roc_auc_ci"]
        gain = _ci(g["roc_auc"], g["roc_auc_ci"], signed=True)
        if lo > 0:
            verdict = f"{g['method']} beats {plain} (the best simple baseline, {g['baseline']}): ROC-AUC gain {gain}."
        elif hi < 0:
            verdict = f"No model beats {plain} ({g['baseline']}): the best, {g['method']}, does worse by {gain}."
        elif float(g["roc_auc"]) <= 0:
            verdict = f"No model beats {plain} ({g['baseline']}): the best, {g['method']}, ties it at {gain}."
        else:
            verdict = (
                f"No model is shown to beat {plain} ({g['baseline']}): the best, {g['method']}, is ahead by "
                f"{gain}, but the interval includes 0."
            )
        block.paragraphs.append(verdict + " The gain is paired: both are scored on the same resampled periods.")
    block.figures += run.figure(res.chart(), caption="Calibration of the best model and the best baseline.")
    block.tables.append(
        render_table(
            metrics_frame(res),
            max_rows=None,
            caption="Every method on the test periods, with 95 % intervals",
            labels={
                "method": "Method",
                "kind": "Kind",
                "roc_auc": "ROC-AUC [95% CI]",
                "auprc": "AUPRC [95% CI]",
                "f1": "F1 [95% CI]",
                "brier": "Brier [95% CI]",
            },
            table_id=f"metrics-{slug(source)}-{target}",
        )
    )
    block.tables.append(
        render_table(
            gains_frame(res),
            max_rows=None,
            caption="Paired gain of each model over the best baseline",
            labels={"method": "Model", "baseline": "Baseline", "roc_auc": "ROC-AUC gain", "auprc": "AUPRC gain"},
            table_id=f"gains-{slug(source)}-{target}",
        )
    )
    nxt = _next_period(res)
    ranked = ranking_frame(res, params.top)
    best = g.get("method", "the best model") if g else "the best model"
    block.tables.append(
        render_table(
            ranked,
            max_rows=None,
            caption=f"Ranked list for {nxt}: the {len(ranked)} {units} likeliest to be {what}",
            labels={
                "rank": "Rank",
                "name": "Place",
                "value_now": f"Latest ({res.measure})" if res.measure else "Latest",
                "probability": f"Probability ({best})",
                "logistic": "logistic",
                "lightgbm": "lightgbm",
            },
            table_id=f"ranking-{slug(source)}-{target}",
        )
    )
    skip = {*CAVEATS}
    for note in res.notes:
        if note in skip or note.startswith("Best model "):
            continue
        text = _sentence(note)
        if text not in block.notes:
            block.notes.append(text)
    block.caveats.extend(c for c in out.caveats if c not in block.caveats)
    return block, res


def _latest_year(con: duckdb.DuckDBPyConnection, source: str) -> int | None:
    row = con.execute("SELECT max(year) FROM jurisdiction_year WHERE source = ?", [source]).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def classifier_section(
    run: Runner, jurisdiction_sources: Sequence[str], incident_sources: Sequence[str], params: ModelReportParams
) -> tuple[PageSection, list[ClassifyResult]]:
    """The classifier on each dataset: top quartile and rise for jurisdiction-years, top 20 % for incidents."""
    section = PageSection(
        "models",
        "Which places will be high-crime next period",
        intro=[
            "For each place: will it be high-crime next period (or see crime rise)? Models (a logistic regression "
            "and LightGBM) are judged only on periods later than the data they learned from, beside simple "
            "baselines such as last period's rank. A model is worth only what it adds over the best baseline, "
            "and a gain whose interval includes 0 has not been shown.",
            f"In this report: intervals from {params.n_boot} bootstrap replicates of whole periods (seed "
            f"{params.seed}; `crimelens model classify` uses 1,000), and on jurisdiction-year data the latest "
            f"{params.test_years} predicted years only, to keep the report quick. Rerun the command for the full "
            "evaluation.",
        ],
    )
    results: list[ClassifyResult] = []
    for src in jurisdiction_sources:
        latest = _latest_year(run.con, src)
        start = None if latest is None else latest - params.test_years + 1
        for target in JURISDICTION_TARGETS:
            block, res = _classifier_block(run, src, target, start, params)
            section.blocks.append(block)
            if res is not None:
                results.append(res)
    for src in incident_sources:
        block, res = _classifier_block(run, src, INCIDENT_TARGET, None, params)
        section.blocks.append(block)
        if res is not None:
            results.append(res)
    return section, results


# -- crime and socio-economic conditions -------------------------------------------------------------------
def _how_to_load(source: str, kind: str) -> str:
    if kind == "jurisdiction":
        how = (
            "state covariates, e.g. `crimelens covariates load us_state_income_inequality_2005_2015.csv "
            "--preset state-panel` (state-years), or any CSV with `--mapping FILE.toml`"
        )
    else:
        how = (
            "area covariates with a population, e.g. `crimelens covariates load ChicagoCensusData.csv --preset "
            "chicago-hardship` and `crimelens covariates load chicago_community_areas_acs2014.csv --preset "
            "chicago-acs` (Chicago community areas), or any CSV with `--mapping FILE.toml`"
        )
    return (
        f"No socio-economic covariates are loaded for the places of {source}. Load {how}; then rebuild this "
        "report (or run `crimelens covariates regress`)."
    )


def _residual_map(run: Runner, res: CovariateResult) -> list[Any]:
    """A map of observed / expected when the warehouse holds areas of the covariates' unit kind, else none."""
    rows = run.con.execute(
        "SELECT area_set, area_id, name, geometry FROM areas WHERE area_kind = ? ORDER BY area_set, area_id",
        [res.unit_kind],
    ).fetchall()
    if not rows:
        return []
    ratios = dict(zip(res.residuals["unit_id"].astype(str), res.residuals["ratio"].astype(float), strict=False))
    sets: dict[str, list[tuple[str, str, str]]] = {}
    for area_set, area_id, name, geometry in rows:
        sets.setdefault(str(area_set), []).append((str(area_id), str(name or area_id), str(geometry)))
    area_set, areas = max(sets.items(), key=lambda kv: sum(a[0] in ratios for a in kv[1]))
    if not any(a[0] in ratios for a in areas):
        return []
    import pandas as pd

    table = pd.DataFrame(
        {
            "area": [a[0] for a in areas],
            "name": [a[1] for a in areas],
            "observed_over_expected": [ratios.get(a[0]) for a in areas],
        }
    )
    caption = f"{res.unit_kind.replace('_', ' ').capitalize()}s of {area_set}; above 1: more crime than predicted."
    return [
        area_map_figure(
            [json.loads(a[2]) for a in areas],
            table,
            chart_id=f"residual-map-{slug(res.crime_source)}",
            value="observed_over_expected",
            title="Recorded crime against its socio-economic prediction (observed / expected)",
            caption=caption,
            legend_label="observed / expected",
        )
    ]


def _covariate_block(
    run: Runner, source: str, kind: str, covariate_sources: list[str]
) -> tuple[Block, CovariateResult | None]:
    block = Block(f"{source}: crime and socio-economic conditions", anchor=f"covariates-{slug(source)}")
    if not covariate_sources:
        block.paragraphs.append(_how_to_load(source, kind))
        return block, None
    out = run.run(f"models.covariate_regression[{source}]", covariate_regression, run.con, source, covariate_sources)
    res = out.value
    if res is None:
        block.unavailable = out.unavailable("The socio-economic regression")
        block.caveats.extend(out.caveats)
        return block, None
    block.paragraphs.append(
        f"{res.outcome} regressed on {len(res.table)} covariate(s) of {', '.join(res.covariate_sources)}, over "
        f"{res.n:,} observations (negative binomial, population as the offset). Each rate ratio is the change in "
        "the crime rate for one standard deviation more of the covariate, the others held fixed."
    )
    rows = records(res.table)
    clear = [r for r in rows if float(r["irr_low"]) > 1 or float(r["irr_high"]) < 1]
    if clear:
        parts = [f"{r['covariate']} ({r['irr']:.2f} [{r['irr_low']:.2f}, {r['irr_high']:.2f}])" for r in clear]
        block.paragraphs.append("Rate ratios whose interval excludes 1: " + "; ".join(parts) + ".")
    else:
        block.paragraphs.append("No rate ratio's interval excludes 1: no covariate is clearly associated.")
    block.paragraphs.append(
        f"Dispersion α = {res.alpha:.3f} [{res.alpha_ci[0]:.3f}, {res.alpha_ci[1]:.3f}] (0 would be Poisson)."
    )
    block.figures += run.figure(res.chart())
    table = res.table
    block.tables.append(
        render_table(
            pd.DataFrame(
                {
                    "covariate": table["covariate"].astype(str),
                    "sd": [_num(v, 3) for v in table["sd"]],
                    "irr": [_ci(r.irr, (r.irr_low, r.irr_high)) for r in table.itertuples()],
                    "p_value": [("< 0.001" if p < 0.001 else _num(p)) for p in table["p_value"]],
                }
            ),
            max_rows=None,
            caption="Incidence-rate ratio per standard deviation, with 95 % intervals",
            labels={"covariate": "Covariate", "sd": "One SD", "irr": "Rate ratio [95% CI]", "p_value": "p"},
            table_id=f"irr-{slug(source)}",
        )
    )
    for frame, caption, which in (
        (res.more_than_expected, "Much more recorded crime than the profile predicts", "more"),
        (res.less_than_expected, "Much less recorded crime than the profile predicts", "less"),
    ):
        block.tables.append(
            render_table(
                pd.DataFrame(
                    {
                        "name": frame["name"].astype(str),
                        "observed": [f"{float(v):,.0f}" for v in frame["observed"]],
                        "expected": [f"{float(v):,.1f}" for v in frame["expected"]],
                        "ratio": [_num(v, 2) for v in frame["ratio"]],
                    }
                ),
                max_rows=None,
                caption=caption,
                table_id=f"{which}-than-expected-{slug(source)}",
                labels={
                    "name": "Place",
                    "observed": "Observed",
                    "expected": "Expected",
                    "ratio": "Observed / expected",
                },
            )
        )
    block.figures += _residual_map(run, res)
    for note in res.notes:
        if note in COVARIATE_CAVEATS:
            continue
        text = _sentence(note)
        if text not in block.notes:
            block.notes.append(text)
    block.caveats.extend(c for c in out.caveats if c not in block.caveats)
    return block, res


def covariates_section(
    run: Runner, jurisdiction_sources: Sequence[str], incident_sources: Sequence[str]
) -> tuple[PageSection, list[CovariateResult]]:
    """The negative-binomial regression of each dataset's counts on its places' covariates, where loaded."""
    from crimelens.analysis.incidents.aggregate import AREA_COLUMNS
    from crimelens.warehouse.covariates import list_covariate_sources

    loaded = list_covariate_sources(run.con)
    state = [str(s) for s in loaded.loc[loaded["unit_kind"] == "state", "source"]]
    areas = [str(s) for s in loaded.loc[loaded["unit_kind"].isin(AREA_COLUMNS), "source"]]
    section = PageSection(
        "covariates",
        "Crime and socio-economic conditions",
        intro=[
            "How much of the difference between places goes with their socio-economic conditions, and which "
            "places record much more or much less crime than their profile predicts. Read with the caveats:",
            *COVARIATE_CAVEATS,
        ],
    )
    if areas:  # one unit kind at a time (the regression refuses a mix): the kind most datasets have
        commonest = str(loaded.loc[loaded["source"].isin(areas), "unit_kind"].value_counts().index[0])
        areas = [str(s) for s in loaded.loc[loaded["unit_kind"] == commonest, "source"]]
    results: list[CovariateResult] = []
    for src, kind, chosen in [
        *((s, "jurisdiction", state) for s in jurisdiction_sources),
        *((s, "incidents", areas) for s in incident_sources),
    ]:
        block, res = _covariate_block(run, src, kind, chosen)
        section.blocks.append(block)
        if res is not None:
            results.append(res)
    return section, results


# -- the model card --------------------------------------------------------------------------------------
MODEL_CARD: tuple[str, ...] = (
    *CAVEATS[:2],
    CAVEATS[2] + " Never use these models, or their inputs, to score a person.",
    CAVEATS[3] + " The probabilities in the ranked lists are estimates, not certainties.",
    "Evaluation: every figure comes from periods later than the data each method was trained on (rolling origin, "
    "never a random split), next to naive baselines: last period's rank and class, the historical average, and "
    "for rises last period's change and the common trend.",
    "Intended use: to help decide where to look first and to plan prevention with local knowledge; not to decide "
    "anything automatically.",
    *COVARIATE_CAVEATS,
)


def model_card_section(params: ModelReportParams) -> PageSection:
    """What the models are, how they were judged and what they must not be used for."""
    card = Block("What to know before using these forecasts", anchor="model-card-items")
    card.paragraphs.extend(MODEL_CARD)
    card.paragraphs.append(
        f"Settings: seed {params.seed}; {params.n_boot} bootstrap replicates; the latest {params.test_years} "
        "predicted years on jurisdiction-year data. Models: logistic regression and LightGBM on features from "
        "earlier periods only (docs/models.md)."
    )
    return PageSection("model-card", "Model card", blocks=[card])


def model_sections(
    run: Runner,
    jurisdiction_sources: Sequence[str],
    incident_sources: Sequence[str],
    params: ModelReportParams | None = None,
) -> tuple[list[PageSection], list[Finding], dict[str, Any]]:
    """The three model sections, the findings drawn from the classifier's results, and the parameters used."""
    p = params or ModelReportParams()
    clf, results = classifier_section(run, jurisdiction_sources, incident_sources, p)
    cov, _ = covariates_section(run, jurisdiction_sources, incident_sources)
    found = [f for r in results for f in classifier_findings(r)]
    used = {
        "model_n_boot": p.n_boot,
        "model_test_years": p.test_years,
        "model_seed": p.seed,
        "model_top": p.top,
    }
    return [clf, cov, model_card_section(p)], found, used
