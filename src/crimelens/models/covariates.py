"""Crime and socio-economic conditions: a negative-binomial regression of crime counts on covariates.

The counts per unit (Chicago community areas over the incident data's span; state-years of a jurisdiction-year
dataset) are regressed on the loaded covariates, with log population as the offset, so the coefficients are
rate ratios. Covariates are standardised: each incidence-rate ratio (IRR) is the multiplicative change in the
crime rate for one standard deviation more of the covariate, the others held fixed. The negative binomial
(NB2, variance μ + αμ²) allows for the overdispersion of crime counts; α is reported. State-year panels use
standard errors clustered by state (years of one state are not independent).

The residuals say which places have much more, or much less, recorded crime than their socio-economic profile
predicts (observed / expected).

Caveats: association, not cause; police-recorded crime; the ecological fallacy (area figures say nothing about
the people in them).

References
----------
Cameron, A. C. & Trivedi, P. K. (2013). *Regression Analysis of Count Data*, 2nd ed., ch. 3 (NB2, offsets).
Osgood, D. W. (2000). Poisson-based regression analysis of aggregate crime rates. *Journal of Quantitative
Criminology* 16(1), 21-43 (population as the offset for crime rates).
Robinson, W. S. (1950). Ecological correlations and the behavior of individuals. *American Sociological
Review* 15(3), 351-357.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.errors import ConfigError, DataError, SparseDataWarning

if TYPE_CHECKING:
    import duckdb

__all__ = ["COVARIATE_CAVEATS", "CovariateResult", "NegativeBinomialFit", "covariate_regression", "negative_binomial"]

COVARIATE_CAVEATS: tuple[str, ...] = (
    "Association, not cause: a rate ratio says crime is higher where a condition is, not that the condition "
    "causes it (places differ in many ways the model does not see).",
    "Police-recorded crime: differences in reporting and patrol between places enter the counts.",
    "Ecological fallacy: these are figures about places; they say nothing about the people who live in them.",
)
#: Correlation between two covariates above which their separate rate ratios are called unstable.
COLLINEAR = 0.85


@dataclass(frozen=True)
class CovariateResult(Result):
    """Rate ratios per standard deviation of each covariate (``table``), the dispersion and the residuals.

    ``table``: covariate, sd (one standard deviation, in the covariate's units), irr, irr_low, irr_high,
    p_value. ``residuals``: per unit, observed and expected counts, their ratio and the Pearson residual.
    ``more_than_expected`` / ``less_than_expected``: the units furthest above and below their prediction.
    """

    crime_source: str = ""
    covariate_sources: tuple[str, ...] = ()
    unit_kind: str = ""
    outcome: str = ""
    n: int = 0
    alpha: float = float("nan")
    alpha_ci: tuple[float, float] = (float("nan"), float("nan"))
    clustered: bool = False
    residuals: pd.DataFrame = field(default_factory=pd.DataFrame)
    more_than_expected: pd.DataFrame = field(default_factory=pd.DataFrame)
    less_than_expected: pd.DataFrame = field(default_factory=pd.DataFrame)

    def chart(self) -> ChartSpec | None:
        """Rate ratios per standard deviation (1 = no association)."""
        if self.table.empty:
            return None
        return ChartSpec(
            kind="barh",
            data=self.table,
            x="covariate",
            y="irr",
            title="Crime rate ratio per standard deviation of each covariate",
            x_label="",
            y_label="Incidence-rate ratio",
            note="Association, not cause; 1 means no association.",
        )


def _kind(con: duckdb.DuckDBPyConnection, source: str | None) -> tuple[str, str]:
    from crimelens.warehouse.queries import list_incident_sources, list_sources

    yearly, incidents = list_sources(con), list_incident_sources(con)
    if source is None:
        every = [*yearly, *incidents]
        if len(every) != 1:
            raise DataError(
                f"source: expected one crime dataset, chosen with --source when several are loaded; loaded: "
                f"{', '.join(every) or 'none'}"
            )
        source = every[0]
    if source in yearly:
        return source, "jurisdiction"
    if source in incidents:
        return source, "incidents"
    raise DataError(f"dataset {source!r} is not in the warehouse; loaded: {', '.join([*yearly, *incidents]) or 'none'}")


def _wide(values: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Long covariate rows to one column per covariate (``source:name`` where two datasets share a name)."""
    counts = values.groupby("name")["source"].nunique()
    shared = set(counts[counts > 1].index)
    label = np.where(values["name"].isin(shared), values["source"] + ":" + values["name"], values["name"])
    wide = values.assign(label=label).pivot_table(index=keys, columns="label", values="value", aggfunc="last")
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index()


def _incident_outcome(con: duckdb.DuckDBPyConnection, source: str, area: str) -> tuple[pd.DataFrame, str]:
    from crimelens.analysis.incidents.scope import area_totals, coverage
    from crimelens.engine import incident_table

    with incident_table(con, source=source) as t:
        totals = area_totals(t, area)
        first, last, _ = coverage(t)
    totals = totals.rename(columns={"area": "unit_id", "incidents": "count"})
    totals["unit_id"] = totals["unit_id"].astype(str)
    span = f"{first.date()} to {last.date()}"
    return totals, f"recorded incidents per {area.replace('_', ' ')}, {span}"


def _jurisdiction_outcome(
    con: duckdb.DuckDBPyConnection, source: str, offence: str, start: int | None, end: int | None
) -> tuple[pd.DataFrame, str]:
    from crimelens.analysis.jurisdictions.panel import panel

    _, frame = panel(con, source, offences=[offence], start=start, end=end)
    frame = frame[(frame["kind"] == "state") & ~frame["partial"].astype(bool)]
    out = pd.DataFrame(
        {
            "unit_id": frame["jurisdiction_id"].astype(str),
            "year": frame["year"].astype(int),
            "count": frame[offence].astype("Float64"),
            "population": frame["population"].astype("Float64"),
        }
    ).dropna()
    return out, f"{offence.replace('_', ' ')} per state-year"


@dataclass(frozen=True)
class NegativeBinomialFit:
    """A fitted NB2 regression: rate ratios per SD (``table``), α and its interval, the expected counts."""

    table: pd.DataFrame
    alpha: float
    alpha_ci: tuple[float, float]
    expected: np.ndarray
    sds: pd.Series
    converged: bool


def negative_binomial(
    counts: np.ndarray, X: pd.DataFrame, population: np.ndarray, *, groups: np.ndarray | None = None
) -> NegativeBinomialFit:
    """NB2 regression of ``counts`` on standardised ``X`` with ``log(population)`` as the offset.

    Returns rate ratios per standard deviation with 95 % Wald intervals (cluster-robust by ``groups`` when
    given) and the dispersion α (Cameron & Trivedi 2013, §3.3). statsmodels' ``NegativeBinomial``.
    """
    import statsmodels.api as sm  # type: ignore[import-untyped]

    means, sds = X.mean(), X.std(ddof=0)
    flat = [c for c in X.columns if not sds[c] > 0]
    if flat:
        raise DataError(f"covariate(s) {', '.join(flat)}: expected values that vary between units, got a constant")
    Z = sm.add_constant((X - means) / sds, has_constant="add")
    offset = np.log(population)
    model = sm.NegativeBinomial(counts, Z, offset=offset)
    fit_kw: dict[str, Any] = {"disp": 0, "maxiter": 500}
    if groups is not None:
        fit_kw.update(cov_type="cluster", cov_kwds={"groups": pd.factorize(groups)[0]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = model.fit(**fit_kw)
    converged = bool(fitted.mle_retvals.get("converged", True)) and not any(
        "converge" in str(w.message).lower() for w in caught
    )
    ci = np.asarray(fitted.conf_int())
    params = np.asarray(fitted.params)
    pvalues = np.asarray(fitted.pvalues)
    k = X.shape[1]
    table = pd.DataFrame(
        {
            "covariate": list(X.columns),
            "sd": [float(sds[c]) for c in X.columns],
            "irr": np.exp(params[1 : 1 + k]),
            "irr_low": np.exp(ci[1 : 1 + k, 0]),
            "irr_high": np.exp(ci[1 : 1 + k, 1]),
            "p_value": pvalues[1 : 1 + k],
        }
    )
    expected = np.asarray(fitted.predict(Z, offset=offset))
    return NegativeBinomialFit(table, float(params[-1]), (float(ci[-1, 0]), float(ci[-1, 1])), expected, sds, converged)


@records_caveats
def covariate_regression(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    covariate_sources: Sequence[str] | None = None,
    *,
    covariates: Sequence[str] | None = None,
    offence: str = "violent_crime",
    start: int | None = None,
    end: int | None = None,
    top: int = 5,
) -> CovariateResult:
    """Negative-binomial regression of crime counts on socio-economic covariates, population as the offset.

    Parameters
    ----------
    con
        The warehouse.
    source
        The crime dataset: incidents (counted per area of the covariates' unit kind, e.g. community area) or
        a state jurisdiction-year dataset (counted per state-year).
    covariate_sources
        Covariate datasets (default: every one of the matching unit kind).
    covariates
        The covariates to use (default: all but population, which is the offset).
    offence, start, end
        For jurisdiction-year data: the offence counted and the years.
    top
        How many units to list above and below their prediction.

    Returns
    -------
    CovariateResult

    References
    ----------
    Cameron & Trivedi (2013), ch. 3; Osgood (2000).
    """
    from crimelens.warehouse.covariates import covariate_values, list_covariate_sources

    src, kind = _kind(con, source)
    unit_kind = "state" if kind == "jurisdiction" else None
    loaded = list_covariate_sources(con)
    if covariate_sources is None:
        if unit_kind is None:
            from crimelens.analysis.incidents.aggregate import AREA_COLUMNS

            matching = loaded[loaded["unit_kind"].isin(AREA_COLUMNS)]
        else:
            matching = loaded[loaded["unit_kind"] == unit_kind]
        covariate_sources = list(matching["source"])
        if not covariate_sources:
            raise DataError(
                f"no covariates for {src!r} are loaded; expected a covariate dataset of "
                f"{'states' if unit_kind else 'areas'} (load one with `crimelens covariates load FILE --preset NAME`)"
            )
    values = covariate_values(con, list(covariate_sources))
    kinds = sorted(set(values["unit_kind"]))
    if len(kinds) != 1:
        raise DataError(f"covariate datasets: expected one unit kind, got {', '.join(kinds)}; choose datasets of one")
    unit_kind = kinds[0]
    names = dict(zip(values["unit_id"].astype(str), values["unit_name"].fillna(values["unit_id"]), strict=False))
    notes: list[str] = []
    if kind == "incidents":
        outcome, outcome_label = _incident_outcome(con, src, unit_kind)
        wide = _wide(values, ["unit_id"])
        data = outcome.merge(wide, on="unit_id", how="inner")
        pop_cols = [c for c in data.columns if c == "population" or c.endswith(":population")]
        if not pop_cols:
            raise DataError(
                "population: expected a covariate named population (e.g. the chicago-acs preset) for the offset, "
                "got none among " + ", ".join(covariate_sources)
            )
        data["population"] = data[pop_cols[0]]
        data = data.drop(columns=[c for c in pop_cols if c != "population"])
        groups = None
    else:
        if unit_kind != "state":
            raise DataError(f"covariates of {unit_kind}s cannot be joined to state-years; expected state covariates")
        outcome, outcome_label = _jurisdiction_outcome(con, src, offence, start, end)
        wide = _wide(values, ["unit_id", "year"])
        wide = wide.drop(columns=[c for c in wide.columns if c == "population" or c.endswith(":population")])
        data = outcome.merge(wide, on=["unit_id", "year"], how="inner")
        groups = data["unit_id"]
    available = [c for c in data.columns if c not in ("unit_id", "year", "count", "population")]
    chosen = list(covariates) if covariates else available
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise ConfigError(f"covariate: expected names among {', '.join(available)}; got {', '.join(unknown)}")
    if not chosen:
        raise DataError("covariates: expected at least one covariate besides population, got none")
    before = len(data)
    data = data.dropna(subset=[*chosen, "count", "population"])
    data = data[data["population"] > 0].reset_index(drop=True)
    if before - len(data):
        notes.append(f"{before - len(data)} unit(s) without every covariate or a population were left out.")
    if len(data) < len(chosen) + 5:
        raise DataError(f"expected at least {len(chosen) + 5} units with every covariate, got {len(data)}")
    if len(data) < 10 * len(chosen):
        warnings.warn(
            f"{len(data)} units for {len(chosen)} covariates (fewer than 10 per covariate): the rate ratios are "
            "imprecise; choose fewer with --covariate",
            SparseDataWarning,
            stacklevel=2,
        )
    X = data[chosen].astype(float)
    fit = negative_binomial(
        data["count"].astype(float).to_numpy(),
        X,
        data["population"].astype(float).to_numpy(),
        groups=None if groups is None else groups.to_numpy(),
    )
    table, alpha, alpha_ci, mu = fit.table, fit.alpha, fit.alpha_ci, fit.expected
    y = data["count"].astype(float).to_numpy()
    if not fit.converged:
        notes.append("The fit did not fully converge: read the rate ratios with extra caution.")
    resid = data[["unit_id", *(["year"] if "year" in data.columns else [])]].copy()
    resid["name"] = resid["unit_id"].map(names)
    resid["observed"] = y
    resid["expected"] = mu
    resid["ratio"] = y / mu
    resid["pearson"] = (y - mu) / np.sqrt(mu + alpha * mu**2)
    per_unit = resid.groupby(["unit_id", "name"], as_index=False)[["observed", "expected"]].sum()
    per_unit["ratio"] = per_unit["observed"] / per_unit["expected"]
    ranked = per_unit.sort_values("ratio", ascending=False, ignore_index=True)
    corr = X.corr().abs().to_numpy()
    pairs = [
        f"{chosen[i]} and {chosen[j]} (r = {X[chosen[i]].corr(X[chosen[j]]):+.2f})"
        for i in range(len(chosen))
        for j in range(i + 1, len(chosen))
        if corr[i, j] > COLLINEAR
    ]
    if pairs:
        notes.append(
            "Strongly correlated covariates, whose separate rate ratios are unstable (their joint effect is not): "
            + "; ".join(pairs)
            + "."
        )
    notes.append(
        f"Negative binomial (NB2) with log population as the offset; α = {alpha:.3f} "
        f"[{alpha_ci[0]:.3f}, {alpha_ci[1]:.3f}] (0 would be Poisson); rate ratios per standard deviation"
        + ("; standard errors clustered by state." if groups is not None else ".")
    )
    notes.extend(COVARIATE_CAVEATS)
    title = (
        f"Crime and socio-economic conditions: {outcome_label} ({src}) against "
        f"{len(chosen)} covariate{'s' if len(chosen) != 1 else ''} of {', '.join(covariate_sources)}, "
        f"{len(data)} observations"
    )
    return CovariateResult(
        title=title,
        table=table,
        params={
            "source": src,
            "covariate_sources": list(covariate_sources),
            "covariates": chosen,
            "offence": offence if kind == "jurisdiction" else None,
            "start": start,
            "end": end,
            "top": top,
        },
        notes=tuple(notes),
        crime_source=src,
        covariate_sources=tuple(covariate_sources),
        unit_kind=unit_kind,
        outcome=outcome_label,
        n=len(data),
        alpha=alpha,
        alpha_ci=alpha_ci,
        clustered=groups is not None,
        residuals=resid,
        more_than_expected=ranked.head(top),
        less_than_expected=ranked.tail(top).iloc[::-1].reset_index(drop=True),
    )
