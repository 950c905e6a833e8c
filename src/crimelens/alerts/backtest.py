"""Backtest: inject spikes of known size and duration into real series and measure who finds them, and when.

Protocol (docs/alerts.md):

1. The periods are split in three: warm-up (history only), **calibration** and **test**, in time order.
2. Each method runs on the clean data. Its threshold is calibrated on the calibration periods so that at most
   ``budget`` alarms per 100 series-periods are raised there (:func:`crimelens.alerts.control.calibrate_threshold`);
   the false-alarm rate is then *measured* on the clean test periods, where it may differ.
3. Spikes: in each replicate every series gets one spike, its onset drawn uniformly in the test periods; a spike
   of size +x for d periods adds Poisson(x · μᵢₜ) counts to each of its d periods, μᵢₜ the oracle's expected
   count of that series-period (below). Every scenario (size × duration) of a replicate uses the same onsets.
4. A spike is **detected** when the method alarms in one of its d periods; the **delay** is the first alarming
   period minus the onset (0 = the first week). Methods are compared at the same calibrated false-alarm rate,
   never at a nominal α.
5. **Oracle**: an exact Poisson test against μᵢₜ, the clean series' mean over a centred window around the period
   (± 26 weeks, ± 6 months, ± 2 years; the period itself left out): it knows the future, which no real-time
   method can. Its threshold is calibrated the same way. Detection is reported by band of μ beside the oracle's:
   small counts make spikes statistically invisible. A method above the oracle by more than sampling error points
   to leakage or a broken budget, and the backtest says so. On real series the oracle's smooth μ is an estimate
   of the true expected count (it ignores sharp seasonality), so it is a practical ceiling rather than a proof.
6. **PPV**: alarms inside spike windows ÷ (those + the false alarms expected in the other test series-periods at
   the measured clean rate), at the backtest's prevalence (one spike per series per replicate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crimelens.alerts.control import alarm_rate_per_100, budget_alarms, calibrate_threshold, check_budget
from crimelens.alerts.detectors import METHODS, Detection, detect, poisson_upper_p, tail_score
from crimelens.alerts.glm import GlmSettings, glm_expectation
from crimelens.alerts.series import SeriesPanel
from crimelens.analysis.inference import clopper_pearson
from crimelens.analysis.result import Result, records_caveats
from crimelens.errors import ConfigError, DataError

__all__ = ["BANDS", "BacktestResult", "Split", "default_split", "run_backtest", "scenario_name", "targets_text"]

#: Bands of the expected count per period (the oracle's μ) detection is reported by.
BANDS: tuple[tuple[float, float], ...] = ((0, 1), (1, 2), (2, 5), (5, 10), (10, 20), (20, math.inf))
SIZES: tuple[float, ...] = (0.25, 0.5, 1.0)
DURATIONS: tuple[int, ...] = (1, 2, 3, 4)
HEADLINE = "+100%x2"


def scenario_name(size: float, duration: int) -> str:
    """``+100%x2``: a spike of +100% lasting 2 periods."""
    return f"+{round(size * 100)}%x{duration}"


@dataclass(frozen=True)
class Split:
    """Period indices: calibration ``[calibration, test)``, test ``[test, end)``; before ``calibration``: warm-up."""

    calibration: int
    test: int
    end: int


def default_split(panel: SeriesPanel) -> Split:
    """The split of a panel: the last two years tested, the two before calibrated (yearly: 13 and 13 years).

    Data with no prior year (e.g. one year of weeks) keep ~17 weeks of warm-up and halve the rest.
    """
    t = len(panel.periods)
    if panel.unit == "year":
        span = 13
    elif panel.unit == "month":
        span = 24
    else:
        span = 104
    if t >= 2 * span + panel.season:
        return Split(t - 2 * span, t - span, t)
    warm = min(17, t // 3)
    mid = warm + (t - warm) // 2
    if mid - warm < 4 or t - mid < 4:
        raise DataError(f"backtest: expected at least 12 {panel.unit}s of data, got {t}")
    return Split(warm, mid, t)


@dataclass(frozen=True)
class BacktestResult(Result):
    """Detection of injected spikes by each method at one calibrated false-alarm budget, beside an oracle.

    ``methods``: per method, ``detection`` and ``median_delay`` per scenario (``+100%x2``: +100% for 2 periods),
    ``false_alarms_per_100`` (measured on the clean test periods), ``ppv`` and the calibrated ``threshold``;
    ``detection_at_matched_rate``: detection with thresholds set on the clean test periods themselves so every
    method has exactly the budget there (power at an equal rate; not deployable, for comparison only).
    ``oracle``: the same for the oracle Poisson test. ``bands``: detection of the headline scenario by band of
    expected count. ``checks``: detection above the oracle (leakage or a broken budget), budget overruns.
    ``targets``: the issue's targets for the headline scenario, met or not.
    """

    source: str = ""
    unit: str = ""
    false_alarm_budget_per_100: float = 1.0
    calibration_periods: tuple[str, str] = ("", "")
    test_periods: tuple[str, str] = ("", "")
    series: int = 0
    replicates: int = 0
    seed: int = 0
    methods: dict[str, Any] = field(default_factory=dict)
    oracle: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    bands: pd.DataFrame = field(default_factory=pd.DataFrame)
    checks: tuple[str, ...] = ()
    targets: dict[str, Any] = field(default_factory=dict)


#: Half-width of the oracle's centred window, in periods.
ORACLE_HALF_WIDTH: dict[str, int] = {"week": 26, "month": 6, "year": 2}


def _oracle_mu(y: np.ndarray, unit: str) -> np.ndarray:
    """μ per cell: the clean series' mean over a centred window of ± h periods, the cell itself left out.

    It uses future data (no real-time method can) and never the cell's own count (which would tell it the noise).
    """
    from crimelens.alerts.expectations import window_sums

    h = ORACLE_HALF_WIDTH.get(unit, 26)
    pos = np.arange(y.shape[1])
    sums, counts = window_sums(y, pos - h, pos + h + 1)
    own = np.nan_to_num(y, nan=0.0)
    present = ~np.isnan(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = (sums - own) / (counts - present)
    mu[(counts - present) < max(2, h // 2)] = np.nan
    return np.asarray(mu, dtype=np.float64)


def _oracle_score(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    return tail_score(poisson_upper_p(y, mu), y, mu)


def _draw_onsets(rng: np.random.Generator, y: np.ndarray, split: Split, dmax: int) -> np.ndarray:
    """One onset per series in [test, end − dmax], on a run of dmax reported periods (−1: none possible)."""
    n = y.shape[0]
    out = np.full(n, -1)
    for i in range(n):
        ok = [s for s in range(split.test, split.end - dmax + 1) if not np.isnan(y[i, s : s + dmax]).any()]
        if ok:
            out[i] = ok[int(rng.integers(len(ok)))]
    return out


@records_caveats
def run_backtest(
    panel: SeriesPanel,
    *,
    methods: tuple[str, ...] = METHODS,
    budget: float = 1.0,
    split: Split | None = None,
    sizes: tuple[float, ...] = SIZES,
    durations: tuple[int, ...] = DURATIONS,
    replicates: int = 3,
    seed: int = 0,
) -> BacktestResult:
    """Inject spikes into ``panel`` and measure each method's detection at a calibrated false-alarm budget.

    Parameters
    ----------
    panel
        Real count series (clean: nothing injected).
    methods
        Methods compared (those needing a prior year are skipped, with the reason, on data without one).
    budget
        False alarms per 100 series-periods the thresholds are calibrated to, on the calibration periods.
    split
        Calibration and test periods (default :func:`default_split`).
    sizes, durations
        Spike sizes (+0.25 = +25%) and durations in periods.
    replicates
        Independent draws of spike onsets and counts.
    seed
        Seed of the random draws (recorded in the result).

    Returns
    -------
    BacktestResult
        Detection, median delay, PPV and measured false alarms per method and scenario, the oracle's, by band.

    References
    ----------
    The protocol follows the simulation studies of Noufaily et al. (2013, §4) and Bédubourg & Le Strat (2017),
    "Evaluation and comparison of statistical methods for early temporal detection of outbreaks: a
    simulation-based study", *PLoS ONE* 12(7): e0181227: injected outbreaks of known size, methods compared at
    a common false-alarm rate, sensitivity and timeliness.
    """
    budget = check_budget(budget)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"--method: expected methods among {', '.join(METHODS)}; got {', '.join(unknown)}")
    if not isinstance(replicates, int) or replicates < 1:
        raise ConfigError(f"replicates: expected a whole number ≥ 1, got {replicates!r}")
    sp = split or default_split(panel)
    y = panel.counts
    n, t = y.shape
    calib = np.zeros((n, t), dtype=bool)
    calib[:, sp.calibration : sp.test] = True
    calib &= ~np.isnan(y)
    test = np.zeros((n, t), dtype=bool)
    test[:, sp.test : sp.end] = True
    test &= ~np.isnan(y)
    dmax = max(durations)

    # 1. clean runs: thresholds on calibration, false alarms measured on test
    clean: dict[str, Detection] = {}
    thresholds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    glm_fit: tuple[np.ndarray, np.ndarray] | None = None
    settings = GlmSettings.for_unit(panel.unit)
    for m in methods:
        try:
            if m == "glm":
                cells = np.zeros((n, t), dtype=bool)
                cells[:, sp.calibration :] = True
                glm_fit = glm_expectation(y, panel.season, settings, cells=cells)
                clean[m] = detect(panel, m, history_end=sp.test, glm_fit=glm_fit, intervals=False)
            else:
                clean[m] = detect(panel, m, history_end=sp.test, intervals=False)
            thresholds[m] = calibrate_threshold(clean[m].score, budget, calib)
        except (ConfigError, DataError) as exc:
            skipped[m] = str(exc)
            clean.pop(m, None)
    run_methods = [m for m in methods if m in clean]
    mu_o = _oracle_mu(y, panel.unit)
    oracle_clean = _oracle_score(y, mu_o)
    thresholds["oracle"] = calibrate_threshold(oracle_clean, budget, calib)
    fa = {m: alarm_rate_per_100(budget_alarms(clean[m].score, thresholds[m]), test) for m in run_methods}
    fa["oracle"] = alarm_rate_per_100(budget_alarms(oracle_clean, thresholds["oracle"]), test)
    # for comparison of power only (not deployable: it is set on the test periods' clean data): thresholds giving
    # every method exactly the budget on the clean test periods
    matched = {m: calibrate_threshold(clean[m].score, budget, test) for m in run_methods}
    matched["oracle"] = calibrate_threshold(oracle_clean, budget, test)

    # 2. injected runs
    rng = np.random.default_rng(seed)
    names = [*run_methods, "oracle"]
    scenarios = [scenario_name(a, d) for a in sizes for d in durations]
    found: dict[tuple[str, str], list[bool]] = {(m, sc): [] for m in names for sc in scenarios}
    found_matched: dict[tuple[str, str], list[bool]] = {(m, sc): [] for m in names for sc in scenarios}
    delays: dict[tuple[str, str], list[int]] = {k: [] for k in found}
    alarms_in: dict[str, int] = dict.fromkeys(names, 0)
    cells_in = 0
    band_rows: list[dict[str, Any]] = []
    for _ in range(replicates):
        onsets = _draw_onsets(rng, y, sp, dmax)
        for size in sizes:
            for d in durations:
                name = scenario_name(size, d)
                yi = y.copy()
                spike = np.zeros((n, t), dtype=bool)
                for i in np.nonzero(onsets >= 0)[0]:
                    s = int(onsets[i])
                    mu_spike = np.nan_to_num(mu_o[i, s : s + d], nan=0.0)
                    yi[i, s : s + d] += rng.poisson(size * mu_spike)
                    spike[i, s : s + d] = True
                injected = panel.with_counts(yi)
                scores: dict[str, np.ndarray] = {}
                for m in run_methods:
                    if m == "glm":
                        assert glm_fit is not None
                        if settings.exclude_recent >= d - 1:  # the spike cannot be inside any fit used here
                            scores[m] = detect(injected, m, glm_fit=glm_fit, intervals=False).score
                        else:
                            scores[m] = detect(injected, m, glm_cells=spike, intervals=False).score
                    else:
                        scores[m] = detect(injected, m, history_end=sp.test, intervals=False).score
                scores["oracle"] = _oracle_score(yi, mu_o)
                cells_in += int(spike.sum())
                for m in names:
                    alarm = budget_alarms(scores[m], thresholds[m])
                    alarm_matched = budget_alarms(scores[m], matched[m])
                    alarms_in[m] += int((alarm & spike).sum())
                    for i in np.nonzero(onsets >= 0)[0]:
                        s = int(onsets[i])
                        hits = np.nonzero(alarm[i, s : s + d])[0]
                        found[(m, name)].append(bool(hits.size))
                        found_matched[(m, name)].append(bool(alarm_matched[i, s : s + d].any()))
                        if hits.size:
                            delays[(m, name)].append(int(hits[0]))
                        if name == HEADLINE:
                            band_rows.append({"method": m, "mu": float(mu_o[i, s]), "detected": bool(hits.size)})
    # 3. summaries
    out_cells = int(test.sum()) * len(sizes) * len(durations) * replicates - cells_in
    rows: list[dict[str, Any]] = []
    per_method: dict[str, dict[str, Any]] = {}
    for m in names:
        det: dict[str, float | None] = {}
        det_matched: dict[str, float | None] = {}
        med: dict[str, float | None] = {}
        for size in sizes:
            for d in durations:
                name = scenario_name(size, d)
                got = found[(m, name)]
                k = int(sum(got))
                rate = k / len(got) if got else math.nan
                lo, hi = clopper_pearson(k, len(got)) if got else (math.nan, math.nan)
                dl = delays[(m, name)]
                det[name] = rate
                got_m = found_matched[(m, name)]
                det_matched[name] = sum(got_m) / len(got_m) if got_m else math.nan
                med[name] = float(np.median(dl)) if dl else None
                rows.append({"method": m, "scenario": name, "size_pct": round(size * 100), "duration": d,
                             "spikes": len(got), "detected": k, "detection": rate, "detection_low": lo,
                             "detection_high": hi, "median_delay": med[name]})  # fmt: skip
        expected_false = fa[m] / 100 * max(out_cells, 0)
        ppv = alarms_in[m] / (alarms_in[m] + expected_false) if alarms_in[m] + expected_false > 0 else None
        per_method[m] = {
            "detection": det,
            "median_delay": med,
            "false_alarms_per_100": fa[m],
            "ppv": ppv,
            "threshold": thresholds[m],
            "detection_at_matched_rate": det_matched,
        }
    table = pd.DataFrame(rows)
    bands = _bands(pd.DataFrame(band_rows))
    checks, targets = _checks(per_method, table, run_methods, budget, panel.unit)
    with np.errstate(invalid="ignore", divide="ignore"):
        targets["test_vs_calibration_level"] = float(
            np.nanmean(y[:, sp.test : sp.end]) / np.nanmean(y[:, sp.calibration : sp.test])
        )
    oracle = per_method.pop("oracle")
    cal = (panel.period_label(sp.calibration), panel.period_label(sp.test - 1))
    tst = (panel.period_label(sp.test), panel.period_label(sp.end - 1))
    notes = [
        f"Thresholds calibrated to {budget:g} false alarms per 100 series-periods on {cal[0]} to {cal[1]} (clean "
        f"data); false alarms measured on {tst[0]} to {tst[1]} with nothing injected; spikes injected there.",
        f"{replicates} replicate(s) × {n} series: one spike per series per replicate; seed {seed}.",
        f"Oracle: exact Poisson test against each series' mean over ± {ORACLE_HALF_WIDTH.get(panel.unit, 26)} "
        f"{panel.unit}s around the period, the period left out (future data no real-time method has); on real "
        "series that is an estimate of the true expected count, so the oracle is a practical ceiling, not a proof.",
        *(f"{m} not run: {why}" for m, why in skipped.items()),
        *panel.notes,
    ]
    title = f"Backtest: {panel.source}, {n} series × {panel.unit}, budget {budget:g} false alarms per 100"
    return BacktestResult(
        title=title,
        table=table,
        params={
            "source": panel.source,
            "unit": panel.unit,
            "budget": budget,
            "replicates": replicates,
            "seed": seed,
            "methods": list(methods),
        },
        notes=tuple(notes),
        source=panel.source,
        unit=panel.unit,
        false_alarm_budget_per_100=budget,
        calibration_periods=cal,
        test_periods=tst,
        series=n,
        replicates=replicates,
        seed=seed,
        methods=per_method,
        oracle=oracle,
        skipped=skipped,
        bands=bands,
        checks=tuple(checks),
        targets=targets,
    )


def _bands(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=["band", "method", "spikes", "detection"])
    labels = [f"{lo:g}–{hi:g}" if math.isfinite(hi) else f"≥{lo:g}" for lo, hi in BANDS]
    edges = [b[0] for b in BANDS] + [math.inf]
    frame = frame.assign(band=pd.cut(frame["mu"], edges, right=False, labels=labels))
    out = (
        frame.groupby(["band", "method"], observed=True)
        .agg(spikes=("detected", "size"), detection=("detected", "mean"))
        .reset_index()
    )
    out["band"] = out["band"].astype(str)
    return out


def _checks(
    per: dict[str, dict[str, Any]], table: pd.DataFrame, methods: list[str], budget: float, unit: str
) -> tuple[list[str], dict[str, Any]]:
    checks: list[str] = []
    oracle = table.loc[table["method"] == "oracle"].set_index("scenario")
    for m in methods:
        rows = table.loc[table["method"] == m].set_index("scenario")
        for name, r in rows.iterrows():
            o = oracle.loc[str(name)]
            if not r["spikes"]:
                continue
            se = math.sqrt(max(r["detection"] * (1 - r["detection"]) / r["spikes"], 1e-12)
                           + max(o["detection"] * (1 - o["detection"]) / o["spikes"], 1e-12))  # fmt: skip
            if r["detection"] > o["detection"] + 2.5 * se:
                checks.append(
                    f"{m} detects {r['detection']:.0%} of {name} spikes, above the oracle's {o['detection']:.0%} "
                    "by more than sampling error: leakage (future data in its expectation), a broken budget, or an "
                    "oracle whose smoothed expectation is not the true one for these series"
                )
        fa = per[m]["false_alarms_per_100"]
        if fa > 2 * budget:
            checks.append(
                f"{m}: {fa:.2f} false alarms per 100 series-periods on the test periods, over twice the budget of "
                f"{budget:g} calibrated on earlier data (the rate drifted: its detection is flattered)"
            )
    if not checks:
        checks.append("no method detects more than the oracle beyond sampling error; no budget overrun above 2×")
    head = {m: per[m]["detection"].get(HEADLINE) for m in [*methods, "oracle"]}
    oracle_rate = float(head["oracle"] or 0.0)
    compstat = head.get("compstat")
    targets: dict[str, Any] = {
        "scenario": HEADLINE,
        "within_periods": 2,
        "budget_per_100": budget,
        "stated_for": "series-weeks",
        "applies": unit == "week",
        "oracle_detection": oracle_rate,
        "compstat_detection": compstat,
    }

    def _rank(pool: list[str]) -> str | None:
        return max(pool, key=lambda m: float(head[m] or 0.0)) if pool else None

    # the target holds at ≤ budget: the rate is checked on the test periods, not assumed from the calibration
    within = [m for m in methods if per[m]["false_alarms_per_100"] <= budget]
    for prefix, best in (("best", _rank(within)), ("best_any", _rank(list(methods)))):
        if best is None:
            targets[f"{prefix}_method"] = None
            continue
        b = float(head[best] or 0.0)
        share = b / oracle_rate if oracle_rate else None
        times = b / compstat if compstat else None
        targets.update({
            f"{prefix}_method": best,
            f"{prefix}_detection": b,
            f"{prefix}_false_alarms_per_100": per[best]["false_alarms_per_100"],
            f"{prefix}_share_of_oracle": share,
            f"{prefix}_times_compstat": times,
            f"{prefix}_meets_90pct_of_oracle": bool(share is not None and share >= 0.9),
            f"{prefix}_meets_3x_compstat": bool(times is not None and times >= 3),
        })  # fmt: skip
    hm = {m: per[m]["detection_at_matched_rate"].get(HEADLINE) for m in [*methods, "oracle"]}
    best_m = max(methods, key=lambda m: float(hm[m] or 0.0)) if methods else None
    if best_m is not None:
        o_m, c_m, b_m = float(hm["oracle"] or 0.0), hm.get("compstat"), float(hm[best_m] or 0.0)
        targets.update(
            matched_method=best_m,
            matched_detection=b_m,
            matched_oracle_detection=o_m,
            matched_compstat_detection=c_m,
            matched_share_of_oracle=b_m / o_m if o_m else None,
            matched_times_compstat=b_m / c_m if c_m else None,
        )
    return checks, targets


def targets_text(t: dict[str, Any]) -> list[str]:
    """The targets of a backtest as sentences (the CLI and bench/RESULTS.md print the same ones)."""

    def pct(v: Any) -> str:
        return "—" if v is None else f"{100 * float(v):.0f}%"

    def one(prefix: str, label: str) -> str:
        m = t.get(f"{prefix}_method")
        if m is None:
            return f"{label}: no method kept its measured false-alarm rate within the budget on the test periods."
        share, times = t.get(f"{prefix}_share_of_oracle"), t.get(f"{prefix}_times_compstat")
        text = (
            f"{label}: **{m}** {pct(t[f'{prefix}_detection'])} at {t[f'{prefix}_false_alarms_per_100']:.2f} false "
            f"alarms per 100 (test) vs oracle {pct(t['oracle_detection'])}"
        )
        if share is not None:
            text += f" = {share:.0%} of the oracle (≥ 90%: {'met' if share >= 0.9 else 'not met'})"
        if times is not None:
            text += f"; {times:.1f}× CompStat (≥ 3×: {'met' if times >= 3 else 'not met'})"
        return text + "."

    lines = [
        f"Targets ({t['scenario']} found within {t['within_periods']} periods, budget {t['budget_per_100']:g} per 100"
        + ("" if t.get("applies") else "; stated for series-weeks, shown here for reference")
        + "):",
        one("best", "best method whose measured rate is within the budget"),
        one("best_any", "best method at its calibrated threshold, whatever its measured rate"),
    ]
    if t.get("matched_method"):
        share, times = t.get("matched_share_of_oracle"), t.get("matched_times_compstat")
        lines.append(
            f"At a matched rate (thresholds set on the clean test periods so every method has exactly the budget "
            f"there; power only, not deployable): **{t['matched_method']}** {pct(t['matched_detection'])} vs oracle "
            f"{pct(t['matched_oracle_detection'])}"
            + (f" = {share:.0%} of the oracle" if share is not None else "")
            + (f"; {times:.1f}× CompStat" if times is not None else "")
            + "."
        )
    level = t.get("test_vs_calibration_level")
    if level is not None and level == level:
        lines.append(
            f"Mean count per series-period, test ÷ calibration: {level:.2f} (a level shift between the two moves every "
            "method's measured false-alarm rate away from the budget it was calibrated to)."
        )
    return lines
