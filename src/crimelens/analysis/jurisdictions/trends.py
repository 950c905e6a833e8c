"""Trends through time: tested year-over-year changes, long-run slopes and turning points.

Every change is judged with a test rather than a bare percent: consecutive years with the exact
conditional Poisson test, long runs with the Theil–Sen slope and the Mann–Kendall test.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crimelens.analysis.inference import (
    benjamini_hochberg,
    binom_test,
    clopper_pearson,
    kendall_tau,
    normal_ppf,
    normal_sf,
    theil_sen,
)
from crimelens.analysis.jurisdictions.panel import offence_years, panel
from crimelens.analysis.jurisdictions.ranking import find_jurisdiction
from crimelens.analysis.jurisdictions.statistics import (
    check_whole,
    national_series,
    offence_frame,
    period_label,
    resolve_years,
    skipped_note,
)
from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.config import SETTINGS
from crimelens.errors import DataError, PartialReportingWarning
from crimelens.schema import OFFENCE_LABELS

__all__ = [
    "LongRunTrends",
    "TurningPoints",
    "YearOverYear",
    "find_turning_points",
    "long_run_trends",
    "turning_points",
    "year_over_year",
]

_ALPHA: float = SETTINGS["alpha"].default


def _check_alpha(alpha: object) -> float:
    if not isinstance(alpha, float | int) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise DataError(f"alpha: expected a significance level between 0 and 1 (e.g. 0.05), got {alpha!r}")
    return float(alpha)


def _series(
    of: pd.DataFrame, frame: pd.DataFrame, jurisdiction: str | None, offence: str
) -> tuple[pd.DataFrame, str, str, list[str]]:
    """(yearly series, its name, its id or '', notes) for a jurisdiction or, when None, the nation."""
    if jurisdiction is None:
        series, what, note = national_series(of)
        nation = of[of["kind"] == "nation"]
        if what == "national" and not nation.empty:
            return series, str(nation["name"].iloc[0]), str(nation["jurisdiction_id"].iloc[0]), []
        return series, "All jurisdictions", "", [note] if note else []
    jid, name, _ = find_jurisdiction(frame, jurisdiction)
    own = of[of["jurisdiction_id"] == jid]
    notes = [n for n in [skipped_note(int(own["count"].isna().sum()), offence)] if n]
    own = own[own["count"].notna()]
    cols = ["year", "count", "population", "rate_per_100k", "partial"]
    return own[cols].sort_values("year").reset_index(drop=True), name, jid, notes


_YOY_COLUMNS = [
    "year", "count", "population", "rate_per_100k", "prev_count", "change_pct", "rate_ratio", "ci_low",
    "ci_high", "p_value", "q_value", "p_poisson", "significant", "direction", "poisson_disagrees", "partial",
]  # fmt: skip

#: Fewest pairs of consecutive fully reported years from which a series' own overdispersion is estimated.
MIN_YEARS_FOR_DISPERSION = 6
#: The median of the χ² distribution with 1 degree of freedom (scipy.stats.chi2(1).median()).
_CHI2_1_MEDIAN = 0.454936423119572


def series_dispersion(counts: np.ndarray, exposures: np.ndarray, years: np.ndarray) -> float:
    """A yearly series' own overdispersion, from its consecutive-year changes (NaN when it cannot be estimated).

    For each pair of consecutive years with counts c1, c2 and exposures e1, e2, z = ln(RR) / √(1/c1 + 1/c2)
    with RR = (c2/e2)/(c1/e1) is about N(0, 1) for Poisson counts with an unchanged rate; for quasi-Poisson
    counts (variance φ·μ; Wedderburn 1974, Biometrika 61; McCullagh & Nelder 1989, §4.5) its variance is about φ.
    φ is estimated robustly as median(z²) / 0.4549 (0.4549 is the median of χ² with 1 degree of freedom), so a
    few genuine jumps do not inflate it (Hampel 1974, JASA 69, on median-based scale estimates). So the test
    asks whether a change is unusual *for this series*: φ ≈ 1 for Poisson counts; crime counts vary more from
    year to year (policy, reporting, shocks), and large jurisdictions' φ is often in the tens or hundreds. Needs
    :data:`MIN_YEARS_FOR_DISPERSION` consecutive pairs with positive counts and exposures.
    """
    c = np.asarray(counts, dtype=float)
    e = np.asarray(exposures, dtype=float)
    t = np.asarray(years, dtype=float)
    order = np.argsort(t, kind="stable")
    c, e, t = c[order], e[order], t[order]
    ok = np.isfinite(c) & np.isfinite(e) & (e > 0) & (c > 0)
    pair = ok[1:] & ok[:-1] & (np.diff(t) == 1)
    if int(pair.sum()) < MIN_YEARS_FOR_DISPERSION:
        return float("nan")
    c1, c2, e1, e2 = c[:-1][pair], c[1:][pair], e[:-1][pair], e[1:][pair]
    z2 = np.log((c2 / e2) / (c1 / e1)) ** 2 / (1 / c1 + 1 / c2)
    return float(np.median(z2) / _CHI2_1_MEDIAN)


# -- year over year ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class YearOverYear(Result):
    """Consecutive-year changes in one series, each with an exact test."""

    def chart(self) -> ChartSpec:
        data = self.table[["year", "rate_per_100k", "significant", "partial"]].copy()
        data["significant"] = data["significant"].fillna(False).astype(bool)
        return ChartSpec(
            kind="line",
            data=data[data["rate_per_100k"].notna()].reset_index(drop=True),
            x="year",
            y="rate_per_100k",
            title=self.title,
            x_label="year",
            y_label="per 100,000 residents",
            highlight="significant",
            note=(
                "Highlighted: change from the year before significant (Benjamini–Hochberg q < "
                f"{self.params.get('alpha')})."
            ),
        )


def _poisson_pair(
    c1: int, e1: float, c2: int, e2: float, alpha: float, *, interval: bool = True
) -> tuple[float, float, float, float]:
    """(rate ratio, CI low, CI high, p) of rate 2 against rate 1 by the exact conditional test (the interval NaN
    when not asked for: the overdispersed test brings its own)."""
    n = c1 + c2
    if n == 0 or e1 <= 0 or e2 <= 0:
        return (float("nan"),) * 4
    p_value = binom_test(c2, n, e2 / (e1 + e2))
    low, high = clopper_pearson(c2, n, 1 - alpha) if interval else (float("nan"), float("nan"))

    def to_ratio(p: float) -> float:
        return float("inf") if p >= 1 else p / (1 - p) * e1 / e2

    ratio = (c2 / e2) / (c1 / e1) if c1 > 0 else float("inf")
    return ratio, to_ratio(low), to_ratio(high), p_value


def _quasi_pair(c1: int, e1: float, c2: int, e2: float, phi: float, alpha: float) -> tuple[float, float, float]:
    """(CI low, CI high, p) of the rate ratio with the Poisson variance inflated by φ (Wald on the log ratio)."""
    if c1 <= 0 or c2 <= 0:
        return (float("nan"),) * 3
    log_rr = np.log((c2 / e2) / (c1 / e1))
    se = np.sqrt(phi * (1 / c1 + 1 / c2))
    z = normal_ppf(1 - alpha / 2)
    p = float(2 * normal_sf(abs(log_rr) / se))
    return float(np.exp(log_rr - z * se)), float(np.exp(log_rr + z * se)), min(p, 1.0)


def _pair_sums(local: pd.DataFrame) -> dict[int, tuple[float, float, float, float]]:
    """Per year y: (count, population) in y − 1 and in y summed over the jurisdictions in ``local`` (one row per
    jurisdiction-year) in both years. The counts and populations are whole numbers, so the sums are exact."""
    count = local.pivot(index="jurisdiction_id", columns="year", values="count")
    population = local.pivot(index="jurisdiction_id", columns="year", values="population")
    years = [int(y) for y in count.columns]
    c, e = count.to_numpy(dtype=np.float64), population.to_numpy(dtype=np.float64)
    present = ~np.isnan(c) & ~np.isnan(e)
    column = {y: k for k, y in enumerate(years)}
    out: dict[int, tuple[float, float, float, float]] = {}
    for y in years:
        if y - 1 not in column:
            continue
        before, now = column[y - 1], column[y]
        both = present[:, before] & present[:, now]
        out[y] = (
            float(c[both, before].sum()),
            float(e[both, before].sum()),
            float(c[both, now].sum()),
            float(e[both, now].sum()),
        )
    return out


def _span_panel(
    con: duckdb.DuckDBPyConnection, source: str | None, offence: str, start: int | None, end: int | None
) -> tuple[str, pd.DataFrame]:
    """The panel of one offence over the years ``start``–``end`` (each None: open), checked against the years the
    offence has counts in; the filter runs in DuckDB."""
    src, years = offence_years(con, source, offence)
    lo, hi = resolve_years(years, offence, year=None, start=start, end=end, default="all")
    return panel(con, src, offences=(offence,), start=lo, end=hi)


@records_caveats
def year_over_year(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    jurisdiction: str | None = None,
    offence: str = "violent_crime",
    start: int | None = None,
    end: int | None = None,
    alpha: float = _ALPHA,
) -> YearOverYear:
    """Each year against the year before, tested with the exact conditional Poisson test.

    Given the counts c1, c2 of two consecutive years with populations (exposures) e1, e2, under equal
    rates c2 | c1 + c2 = n ~ Binomial(n, e2 / (e1 + e2)) (Przyborowski & Wilenski 1940, "Homogeneity of
    results in testing samples from Poisson series", Biometrika 31; Ulm 1990, "A simple method to
    calculate the confidence interval of a standardized mortality ratio", Am J Epidemiol 131). The p-value
    is the two-sided exact binomial test (:func:`crimelens.analysis.inference.binom_test`, scipy's
    ``binomtest``); the rate ratio's interval is the Clopper–Pearson interval for the binomial proportion p
    (:func:`~crimelens.analysis.inference.clopper_pearson`) transformed by RR = p / (1 − p) × e1 / e2.
    Significance is judged by the p-value (the central interval can disagree at the margin). The test
    assumes Poisson counts: with the large counts of big jurisdictions even small changes are significant,
    so read ``change_pct`` too.

    ``jurisdiction`` None is the nation (its rows where the dataset has them with populations, else the
    sum over the fully reported jurisdiction-years; each pair is then tested on the jurisdictions fully
    reported in both years). Columns
    ``year, count, population, rate_per_100k, prev_count, change_pct, rate_ratio, ci_low, ci_high, p_value,
    significant, direction, partial``; ``change_pct`` is the change of the rate, (RR − 1) × 100. Only
    adjacent years are compared; the first year (and a year after a gap) has no test and no direction.
    For a single series, warns (:class:`PartialReportingWarning`) when a significant change involves a
    partially reported year.
    """
    alpha = _check_alpha(alpha)
    src, frame = _span_panel(con, source, offence, start, end)
    of = offence_frame(frame, offence)
    series, name, jid, notes = _series(of, frame, jurisdiction, offence)
    summed = jurisdiction is None and jid == ""
    local = of[(of["kind"] != "nation") & of["count"].notna() & of["population"].notna() & ~of["partial"]]
    pair_sums = _pair_sums(local) if summed else {}
    full = series[~series["partial"].astype(bool)]
    phi_raw = series_dispersion(
        full["count"].to_numpy(dtype=float),
        full["population"].to_numpy(dtype=float),
        full["year"].to_numpy(dtype=float),
    )
    # never more liberal than the exact Poisson test: φ below 1 (underdispersion, rare in crime counts) counts as 1
    phi = max(phi_raw, 1.0) if np.isfinite(phi_raw) else 1.0
    rows: list[dict[str, Any]] = []
    prev: pd.Series | None = None
    for _, cur in series.iterrows():
        row: dict[str, Any] = {
            "year": int(cur["year"]),
            "count": cur["count"],
            "population": cur["population"],
            "rate_per_100k": cur["rate_per_100k"],
            "prev_count": np.nan,
            "change_pct": np.nan,
            "rate_ratio": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "p_value": np.nan,
            "q_value": np.nan,
            "p_poisson": np.nan,
            "significant": pd.NA,
            "direction": None,
            "poisson_disagrees": pd.NA,
            "partial": bool(cur["partial"]),
        }
        if prev is not None and int(prev["year"]) == row["year"] - 1:
            row["prev_count"] = prev["count"]
            if summed:
                c1, e1, c2, e2 = pair_sums.get(row["year"], (0.0, 0.0, 0.0, 0.0))
            else:
                c1, e1, c2, e2 = prev["count"], prev["population"], cur["count"], cur["population"]
            if not any(pd.isna(v) for v in (c1, e1, c2, e2)):
                args = (round(c1), float(e1), round(c2), float(e2))
                quasi = _quasi_pair(*args, phi, alpha) if phi > 1 else (float("nan"),) * 3
                ratio, low, high, p = _poisson_pair(*args, alpha, interval=bool(np.isnan(quasi[2])))
                if not np.isnan(p):
                    p_used = p
                    if not np.isnan(quasi[2]):
                        low, high, p_used = quasi
                    row.update(
                        change_pct=(ratio - 1) * 100, rate_ratio=ratio, ci_low=low, ci_high=high, p_value=p_used,
                        p_poisson=p,
                    )  # fmt: skip
                    if not summed:
                        row["partial"] = row["partial"] or bool(prev["partial"])
        rows.append(row)
        prev = cur
    tested = [k for k, r in enumerate(rows) if not pd.isna(r["p_value"])]
    if tested:
        pv = np.array([rows[k]["p_value"] for k in tested], dtype=float)
        pp = np.array([rows[k]["p_poisson"] for k in tested], dtype=float)
        q_used, q_exact = benjamini_hochberg(pv), benjamini_hochberg(pp)
        for k, q, q_poisson in zip(tested, q_used, q_exact, strict=True):
            significant = bool(q < alpha)
            ratio = rows[k]["rate_ratio"]
            rows[k].update(
                q_value=float(q),
                significant=significant,
                direction=("up" if ratio > 1 else "down") if significant else "no significant change",
                poisson_disagrees=bool((q_poisson < alpha) != significant),
            )
    table = pd.DataFrame(rows, columns=_YOY_COLUMNS)
    for col in ("count", "population", "prev_count"):
        table[col] = table[col].astype("float64").round().astype("Int64")
    table["significant"] = table["significant"].astype("boolean")
    table["poisson_disagrees"] = table["poisson_disagrees"].astype("boolean")
    table["partial"] = table["partial"].astype(bool)
    flagged = table[table["partial"] & table["significant"].fillna(False).astype(bool)]
    if not summed and not flagged.empty:
        years = ", ".join(str(y) for y in flagged["year"])
        warnings.warn(
            f"{name}: significant change(s) in {years} involve a year with fewer than 12 months reported; "
            "part of the change may be missing months, not crime",
            PartialReportingWarning,
            stacklevel=2,
        )
    if summed:
        notes.append(
            "each pair of years is tested on the jurisdictions fully reported (12 months, count and "
            "population) in both years"
        )
    n_tested = len(tested)
    if np.isfinite(phi_raw):
        n_poisson = int(sum(1 for k in tested if rows[k]["p_poisson"] < alpha))
        notes.append(
            f"the series varies {phi_raw:.1f}× as much from year to year as Poisson counts would (its quasi-Poisson "
            f"dispersion, from its consecutive full years); "
            + (
                f"p-values and intervals allow for it (the exact Poisson test alone calls {n_poisson} of "
                f"{n_tested} changes significant at p < {alpha}: p_poisson)"
                if phi > 1
                else "the exact Poisson test is used"
            )
        )
    else:
        notes.append(
            f"fewer than {MIN_YEARS_FOR_DISPERSION} pairs of consecutive full years: the series' own dispersion "
            "cannot be estimated, so the exact Poisson test is used and may call ordinary year-to-year noise "
            "significant"
        )
    if n_tested:
        notes.append(f"{n_tested} changes tested: significant means Benjamini–Hochberg q < {alpha} across the years")
    defs = frame.loc[frame["rape_definition"].notna(), ["year", "rape_definition"]]
    if offence in ("rape", "violent_crime") and defs["rape_definition"].nunique() > 1:
        first_revised = int(defs.loc[defs["rape_definition"] == "revised", "year"].min())
        notes.append(f"the change into {first_revised} partly reflects the FBI's revised rape definition")
    return YearOverYear(
        title=f"{name}: {OFFENCE_LABELS[offence].lower()} year over year",
        table=table,
        params={
            "source": src,
            "offence": offence,
            "jurisdiction_id": jid,
            "name": name,
            "alpha": alpha,
            "dispersion": phi_raw if np.isfinite(phi_raw) else None,
        },
        notes=tuple(notes),
    )


# -- long-run trends -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LongRunTrends(Result):
    """One long-run trend per jurisdiction (and the nation), fastest rising first."""

    def chart(self) -> ChartSpec:
        t = self.table[(self.table["kind"] != "nation") & self.table["annual_change_pct"].notna()]
        n = min(5, len(t) // 2) if len(t) >= 2 else len(t)
        data = pd.concat([t.head(n), t.tail(n)]) if n else t
        data = data.drop_duplicates("jurisdiction_id").sort_values("annual_change_pct")
        data = data.assign(significant=data["direction"] != "no clear trend")
        return ChartSpec(
            kind="barh",
            data=data[["name", "annual_change_pct", "significant"]].reset_index(drop=True),
            x="name",
            y="annual_change_pct",
            title=f"Fastest rising and falling rates, {self.params.get('period', '')}",
            x_label="jurisdiction",
            y_label="compound annual change, % (Theil–Sen on the log rate)",
            highlight="significant",
            note=f"Highlighted: Mann–Kendall trend with Benjamini–Hochberg q < {self.params.get('alpha')}.",
        )


@records_caveats
def long_run_trends(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    offence: str = "violent_crime",
    start: int | None = None,
    end: int | None = None,
    alpha: float = _ALPHA,
    min_years: int = 5,
) -> LongRunTrends:
    """Theil–Sen slope of each jurisdiction's rate per 100,000 on year, with a Mann–Kendall test.

    Theil–Sen: the median of pairwise slopes (Theil 1950; Sen 1968, JASA 63), robust to outlying years,
    with its 1 − alpha interval (:func:`crimelens.analysis.inference.theil_sen`, as
    ``scipy.stats.theilslopes``). Mann–Kendall (Mann 1945; Kendall 1975) is Kendall's tau-b between year and
    rate (:func:`~crimelens.analysis.inference.kendall_tau`, as ``scipy.stats.kendalltau``); it assumes no
    serial correlation, so p-values of autocorrelated series are optimistic. ``mk_q`` adds
    Benjamini–Hochberg adjusted p-values over the jurisdictions (Benjamini & Hochberg 1995;
    :func:`~crimelens.analysis.inference.benjamini_hochberg`) for reading many tests at once.

    Columns ``jurisdiction_id, name, kind, n_years, first_year, last_year, first_rate, last_rate,
    slope_per_year, slope_low, slope_high, pct_per_year, annual_change_pct, annual_change_low,
    annual_change_high, endpoint_cagr_pct, mk_tau, mk_p, direction, mk_q, partial_years_excluded``;
    ``pct_per_year`` = slope / median rate × 100 (a straight line as a share of the median: not a growth rate);
    ``annual_change_pct`` = the compound annual change exp(b) − 1 with b the Theil–Sen slope of ln(rate) on
    year, and its interval from Sen's interval of b; ``endpoint_cagr_pct`` = (last / first)^(1 / years) − 1.
    ``direction`` 'rising' or 'falling' when mk_q < alpha (the nation: mk_p < alpha), else 'no clear trend'.
    Partially reported years (fewer than 12 months) are left out of the fit. Series with fewer than
    ``min_years`` rates are left out and counted in notes. Sorted by annual_change_pct, fastest rising first.
    """
    alpha = _check_alpha(alpha)
    min_years = check_whole("min_years", min_years, 3)
    src, years = offence_years(con, source, offence)
    lo, hi = resolve_years(years, offence, year=None, start=start, end=end, default="all")
    _, frame = panel(con, src, offences=(offence,), start=lo, end=hi)
    of = offence_frame(frame, offence)
    sel = of[(of["year"] >= lo) & (of["year"] <= hi) & of["rate_per_100k"].notna()]
    rows = []
    too_short: list[str] = []
    # one series per jurisdiction, in the groups' sorted order, sliced from numpy arrays (the panel is ordered
    # by jurisdiction and year, so a series' rows are already in year order)
    group = sel.groupby(["jurisdiction_id", "name", "kind"], sort=True).ngroup().fillna(-1).to_numpy(dtype=np.int64)
    order = np.argsort(group, kind="stable")
    edges = np.searchsorted(group[order], np.arange(int(group.max(initial=-1)) + 2))  # group −1: no key, left out
    ids, names, kinds = (sel[c].to_numpy(dtype=object) for c in ("jurisdiction_id", "name", "kind"))
    all_years = sel["year"].to_numpy(dtype=float)
    rates = sel["rate_per_100k"].to_numpy(dtype=float)
    partial = sel["partial"].to_numpy(dtype=bool)
    for k in range(edges.size - 1):
        at = order[edges[k] : edges[k + 1]]
        jid, name, kind = ids[at[0]], names[at[0]], kinds[at[0]]
        full = at[~partial[at]]
        full = full[np.argsort(all_years[full], kind="stable")]
        if len(full) < min_years:
            too_short.append(str(name))
            continue
        years = all_years[full]
        values = rates[full]
        slope, _, low, high = theil_sen(values, years, 1 - alpha)
        tau, p = kendall_tau(years, values)
        median = float(np.median(values))
        positive = values > 0
        if positive.sum() >= min_years:
            # the compound annual change: Theil–Sen on the log rate, exp(slope) − 1 (years with no crime left out)
            lslope, _, llow, lhigh = theil_sen(np.log(values[positive]), years[positive], 1 - alpha)
            annual, annual_low, annual_high = (float(np.expm1(v)) * 100 for v in (lslope, llow, lhigh))
        else:
            annual = annual_low = annual_high = float("nan")
        span = float(years[-1] - years[0])
        endpoint = (
            float((values[-1] / values[0]) ** (1 / span) - 1) * 100 if values[0] > 0 and span > 0 else float("nan")
        )
        rows.append(
            {
                "jurisdiction_id": jid,
                "name": name,
                "kind": kind,
                "n_years": len(full),
                "first_year": int(years[0]),
                "last_year": int(years[-1]),
                "first_rate": float(values[0]),
                "last_rate": float(values[-1]),
                "slope_per_year": float(slope),
                "slope_low": float(low),
                "slope_high": float(high),
                "pct_per_year": float(slope) / median * 100 if median > 0 else float("nan"),
                "annual_change_pct": annual,
                "annual_change_low": annual_low,
                "annual_change_high": annual_high,
                "endpoint_cagr_pct": endpoint,
                "mk_tau": float(tau),
                "mk_p": p,
                "direction": "rising" if tau > 0 else "falling",
                "partial_years_excluded": int(partial[at].sum()),
            }
        )
    columns = [
        "jurisdiction_id", "name", "kind", "n_years", "first_year", "last_year", "first_rate", "last_rate",
        "slope_per_year", "slope_low", "slope_high", "pct_per_year", "annual_change_pct", "annual_change_low",
        "annual_change_high", "endpoint_cagr_pct", "mk_tau", "mk_p", "direction", "mk_q", "partial_years_excluded",
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=[c for c in columns if c != "mk_q"])
    table["mk_q"] = np.nan
    local = (table["kind"] != "nation") & table["mk_p"].notna()
    if local.any():
        table.loc[local, "mk_q"] = benjamini_hochberg(table.loc[local, "mk_p"].to_numpy(dtype=float))
    # many series are tested at once: a jurisdiction's trend is labelled by its Benjamini–Hochberg q-value; the
    # nation (one series, not part of that family) by its own p
    decisive = np.where(table["kind"] == "nation", table["mk_p"], table["mk_q"])
    table["direction"] = np.where(decisive < alpha, table["direction"], "no clear trend")
    table = table[columns].sort_values("annual_change_pct", ascending=False, na_position="last").reset_index(drop=True)
    notes = []
    if too_short:
        notes.append(
            f"{len(too_short)} series with fewer than {min_years} fully reported years with rates left out"
            f" (e.g. {too_short[0]})"
        )
    tested = int(local.sum())
    if tested:
        significant = int((table.loc[table["kind"] != "nation", "mk_p"] < alpha).sum())
        after = int((table.loc[table["kind"] != "nation", "mk_q"] < alpha).sum())
        notes.append(
            f"{significant} of {tested} jurisdictions have a trend at p < {alpha}; {after} remain after "
            f"Benjamini–Hochberg correction, and only those are labelled rising or falling (mk_q < {alpha})"
        )
    notes.append(
        "annual_change_pct is the compound annual change, exp(Theil–Sen slope of the log rate) − 1, with its "
        "interval; endpoint_cagr_pct compounds the first and last years only; pct_per_year is the straight-line "
        "Theil–Sen slope as a share of the median rate"
    )
    n_partial = int(table["partial_years_excluded"].sum())
    if n_partial:
        notes.append(f"{n_partial} partially reported jurisdiction-years left out of the fits")
    label = period_label(lo, hi)
    return LongRunTrends(
        title=f"Long-run trends in {OFFENCE_LABELS[offence].lower()} rates, {label}",
        table=table,
        params={
            "source": src,
            "offence": offence,
            "start": lo,
            "end": hi,
            "period": label,
            "alpha": alpha,
            "min_years": min_years,
        },
        notes=tuple(notes),
    )


# -- turning points ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TurningPoints(Result):
    """Peaks and troughs of one rate series."""

    series: pd.DataFrame = field(default_factory=pd.DataFrame)

    def chart(self) -> ChartSpec:
        return ChartSpec(
            kind="line",
            data=self.series,
            x="year",
            y="rate_per_100k",
            title=self.title,
            x_label="year",
            y_label="per 100,000 residents",
            highlight="turning_point",
            note="Highlighted: peaks and troughs of the 3-year moving average.",
        )


def _runs(d: np.ndarray, j: int) -> tuple[int, int]:
    """Lengths of the same-sign runs of steps ``d`` ending just before ``j`` and starting at ``j``."""
    before, i = 0, j - 1
    while i >= 0 and d[i] == d[j - 1]:
        before, i = before + 1, i - 1
    after, i = 0, j
    while i < len(d) and d[i] == d[j]:
        after, i = after + 1, i + 1
    return before, after


def find_turning_points(years: np.ndarray, values: np.ndarray, min_run: int) -> pd.DataFrame:
    """Peaks and troughs of ``values`` by the rule documented in :func:`turning_points`."""
    cols = ["year", "kind", "rate_per_100k", "moving_average", "change_before_pct", "change_after_pct",
            "years_before", "years_after"]  # fmt: skip
    if len(values) < 3:
        return pd.DataFrame(columns=cols)
    ma = (values[:-2] + values[1:-1] + values[2:]) / 3  # ma[j] is centred on year index j + 1
    d = np.sign(np.diff(ma))
    rows = []
    for j in range(1, len(ma) - 1):
        if d[j - 1] == 0 or d[j] == 0 or d[j - 1] == d[j]:
            continue
        before, after = _runs(d, j)
        if before < min_run or after < min_run:
            continue
        rows.append(
            (
                int(years[j + 1]),
                "peak" if d[j - 1] > 0 else "trough",
                float(values[j + 1]),
                float(ma[j]),
                (ma[j] / ma[j - before] - 1) * 100 if ma[j - before] > 0 else float("nan"),
                (ma[j + after] / ma[j] - 1) * 100 if ma[j] > 0 else float("nan"),
                before,
                after,
            )
        )
    return pd.DataFrame(rows, columns=cols)


@records_caveats
def turning_points(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    jurisdiction: str | None = None,
    offence: str = "violent_crime",
    start: int | None = None,
    end: int | None = None,
    min_run: int = 3,
) -> TurningPoints:
    """Years where a rate series turns from a sustained rise to a sustained fall (peak) or back (trough).

    Rule: smooth the yearly rates with a centred 3-year moving average (MA); year t is a peak when the MA
    rose for at least ``min_run`` consecutive steps up to t and falls for at least ``min_run`` consecutive
    steps after it (a trough: falls, then rises). Short wiggles therefore do not count. Columns ``year,
    kind ('peak'|'trough'), rate_per_100k`` (the recorded rate that year), ``moving_average,
    change_before_pct, change_after_pct`` (MA change over the whole run before / after, in percent) and
    ``years_before, years_after`` (the run lengths). Partially reported years are left out of the series;
    the MA joins the neighbouring years that remain.

    ``jurisdiction`` None is the nation (as in :func:`year_over_year`).
    """
    min_run = check_whole("min_run", min_run)
    src, frame = _span_panel(con, source, offence, start, end)
    of = offence_frame(frame, offence)
    series, name, jid, notes = _series(of, frame, jurisdiction, offence)
    series = series[series["rate_per_100k"].notna()]
    n_partial = int(series["partial"].sum())
    full = series[~series["partial"]].sort_values("year")
    if n_partial:
        notes.append(f"{n_partial} partially reported year(s) left out of the series")
    years = full["year"].to_numpy(dtype=int)
    if len(years) > 1 and (np.diff(years) > 1).any():
        notes.append("the series has gaps: the moving average joins the years either side")
    table = find_turning_points(years, full["rate_per_100k"].to_numpy(dtype=float), min_run)
    chart_data = full[["year", "rate_per_100k"]].assign(turning_point=full["year"].isin(table["year"]))
    if len(full) < 2 * min_run + 3:
        notes.append(f"only {len(full)} years: too short to show turns with runs of {min_run} years")
    return TurningPoints(
        title=f"{name}: turning points in the {OFFENCE_LABELS[offence].lower()} rate",
        table=table,
        params={"source": src, "offence": offence, "jurisdiction_id": jid, "name": name, "min_run": min_run},
        notes=tuple(notes),
        series=chart_data.reset_index(drop=True),
    )
