"""Unit × period panels and the design a classifier learns from, every feature built from earlier data only.

A :class:`Panel` is a measure per period and unit (a wide frame, one row per period, every period in between
present): a jurisdiction's violent-crime rate per 100,000 per year (:func:`jurisdiction_panel`), or an area's
incident count per week or month (:func:`incident_panel`). :func:`build_design` turns it into one row per unit
and *predicted* period ``t + 1``: the features and baseline scores use the periods up to ``t`` only, the
outcome uses period ``t + 1`` only. The leakage test in ``tests/test_classify.py`` checks this by changing the
predicted period's data and asserting the predictions for it do not move.

Targets (``t + 1`` against the units observed then):

- ``top-share``: the unit is among the top ``threshold`` share of units (ties at the boundary included);
  ``top-quartile`` is ``top-share`` at 0.25.
- ``rise``: the measure rises by at least ``threshold`` (0.10 = 10 %) from ``t`` to ``t + 1``.

Counts are police-recorded crime: they reflect reporting and patrol as well as crime.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from crimelens.errors import ConfigError, DataError
from crimelens.models.baselines import historical_mean, last_change, past_share, percentile_rank

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "TARGETS",
    "Design",
    "Panel",
    "add_covariates",
    "build_design",
    "incident_panel",
    "jurisdiction_panel",
    "target_threshold",
]

Target = Literal["top-quartile", "top-share", "rise"]
TARGETS: tuple[str, ...] = ("top-quartile", "top-share", "rise")
#: Default threshold of each target: the share of units on top, or the relative rise.
DEFAULT_THRESHOLD = {"top-quartile": 0.25, "top-share": 0.20, "rise": 0.10}
#: Rolling windows per period kind: (short mean, long mean, trend and volatility) in periods.
WINDOWS = {"year": (3, 8, 5), "month": (3, 12, 6), "week": (4, 13, 8)}
#: Periods in a seasonal cycle.
SEASON = {"month": 12, "week": 52}
_VIOLENT = ("homicide", "rape", "robbery", "aggravated_assault")
_PROPERTY = ("burglary", "larceny", "motor_vehicle_theft", "arson")


@dataclass(frozen=True)
class Panel:
    """A measure per period (rows, complete and ordered) and unit (columns), with what goes beside it.

    ``mix``: offence shares (same shape) for the offence-mix features. ``national``: the common series (the
    nation's rate, or all areas together), indexed by period. ``extra``: other per-unit series known at each
    period (e.g. log population). ``names``: unit → readable name.
    """

    values: pd.DataFrame
    period_kind: str
    unit: str
    measure: str
    source: str
    mix: dict[str, pd.DataFrame] = field(default_factory=dict)
    national: pd.Series | None = None
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def next_period(self) -> Any:
        """The period after the last one (what ``--predict`` ranks)."""
        last = self.values.index[-1]
        if self.period_kind == "year":
            return int(last) + 1
        if self.period_kind == "week":
            return pd.Timestamp(last) + pd.Timedelta(days=7)
        return pd.Timestamp(last) + pd.offsets.MonthBegin(1)


def target_threshold(target: str, threshold: float | None) -> float:
    """The threshold of ``target``, validated (three-part messages)."""
    if target not in TARGETS:
        raise ConfigError(f"target: expected one of {', '.join(TARGETS)}, got {target!r}")
    if threshold is None:
        return DEFAULT_THRESHOLD[target]
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not math.isfinite(threshold):
        raise ConfigError(f"threshold: expected a number, got {threshold!r}")
    if target == "top-quartile" and threshold != 0.25:
        raise ConfigError(
            f"threshold: top-quartile is the top 0.25 of units; for another share use --target top-share, "
            f"got --threshold {threshold}"
        )
    if target == "top-share" and not 0 < threshold < 1:
        raise ConfigError(f"threshold: expected the share of units on top, between 0 and 1 (e.g. 0.2), got {threshold}")
    if target == "rise" and not 0 < threshold <= 10:
        raise ConfigError(f"threshold: expected a relative rise above 0 and at most 10 (0.1 = 10 %), got {threshold}")
    return float(threshold)


# -- panels -----------------------------------------------------------------------------------------------
def jurisdiction_panel(
    con: duckdb.DuckDBPyConnection, source: str | None = None, *, offence: str = "violent_crime"
) -> Panel:
    """Each jurisdiction's ``offence`` rate per 100,000 residents per year, from a jurisdiction-year source.

    Jurisdiction-years reporting fewer than 12 months, or without a count or population, are missing (a
    partial year's rate is an undercount, and the next year would look like a rise); how many is in the notes.
    The nation's rows (where the source has them) give the common series; otherwise all jurisdictions
    together do. Works on any jurisdiction-year source (FBI, Marshall Project, mapped-csv).
    """
    from crimelens.analysis.jurisdictions.panel import check_offence, panel

    check_offence(offence)
    src, frame = panel(con, source)
    if frame.empty:
        raise DataError(f"dataset {src!r}: expected jurisdiction-years, got none")
    frame = frame.assign(year=frame["year"].astype(int))
    nation = frame[frame["kind"] == "nation"]
    units = frame[frame["kind"] != "nation"].copy()
    pop = units["population"].astype("Float64")
    count = units[offence].astype("Float64")
    usable = count.notna() & pop.notna() & (pop > 0) & ~units["partial"].astype(bool)
    dropped = int((~usable).sum())
    units["rate"] = (count / pop * 100_000).where(usable).astype(float)
    years = pd.Index(range(int(frame["year"].min()), int(frame["year"].max()) + 1), name="period")
    values = units.pivot_table(index="year", columns="jurisdiction_id", values="rate", aggfunc="first", dropna=False)
    values = values.reindex(years).astype(float)
    values.columns = values.columns.astype(str)
    if values.shape[1] < 4:
        raise DataError(f"dataset {src!r}: expected at least 4 jurisdictions to rank, got {values.shape[1]}")

    mix: dict[str, pd.DataFrame] = {}
    if offence == "violent_crime":
        parts = units[["year", "jurisdiction_id", *_VIOLENT]].copy()
        total = parts[list(_VIOLENT)].astype("Float64").sum(axis=1, skipna=False)
        for o in _VIOLENT:
            share = (parts[o].astype("Float64") / total.where(total > 0)).where(usable).astype(float)
            wide = parts.assign(v=share).pivot_table(index="year", columns="jurisdiction_id", values="v", dropna=False)
            mix[f"share_{o}"] = wide.reindex(index=years, columns=values.columns).astype(float)
    popw = units.assign(p=pop.astype(float)).pivot_table(index="year", columns="jurisdiction_id", values="p")
    popw = popw.reindex(index=years, columns=values.columns).astype(float)
    extra = {"log_population": _log(popw.where(popw > 0), plus_one=False)}

    if not nation.empty and nation[offence].notna().any():
        nat = nation.set_index("year")
        national = (nat[offence].astype(float) / nat["population"].astype(float) * 100_000).reindex(years)
        national_from = "the nation's own rows"
    else:
        ok = units[usable]
        sums = ok.groupby("year")[[offence, "population"]].sum()
        national = (sums[offence].astype(float) / sums["population"].astype(float) * 100_000).reindex(years)
        national_from = "all jurisdictions together"
    notes = [f"Measure: {offence.replace('_', ' ')} rate per 100,000 residents; common trend from {national_from}."]
    if dropped:
        notes.append(
            f"{dropped} jurisdiction-years with fewer than 12 months reported, or no count or population, are "
            "treated as missing (a partial year's rate is an undercount)."
        )
    names = dict(zip(units["jurisdiction_id"].astype(str), units["name"].astype(str), strict=False))
    return Panel(
        values=values,
        period_kind="year",
        unit="jurisdiction",
        measure=f"{offence} rate per 100k",
        source=src,
        mix=mix,
        national=national.astype(float),
        extra=extra,
        names=names,
        notes=tuple(notes),
    )


def incident_panel(
    con: duckdb.DuckDBPyConnection, source: str | None = None, *, area: str | None = None, period: str = "week"
) -> Panel:
    """Incidents per area and week or month, zeros filled, from an incident source (e.g. Chicago community areas).

    Periods the data cover only in part (the first and last, usually) are dropped and counted in the notes;
    incidents without an area id are left out and counted. Mix features: the violent and property shares.
    """
    from crimelens.analysis.incidents.aggregate import AREA_COLUMNS, area_counts
    from crimelens.analysis.incidents.scope import coverage, default_area
    from crimelens.engine import incident_table
    from crimelens.warehouse import resolve_incident_source

    if period not in ("week", "month"):
        raise ConfigError(f"period: expected week or month for incident areas, got {period!r}")
    src = resolve_incident_source(con, source)
    with incident_table(con, source=src) as t:
        chosen = area or default_area(t, con)
        if chosen is None or chosen not in AREA_COLUMNS:
            allowed = ", ".join(AREA_COLUMNS)
            raise ConfigError(f"unit: expected an area column of the incidents ({allowed}), got {chosen!r}")
        counts = area_counts(t, area=chosen, period=period, by_offence=True)  # type: ignore[arg-type]
        first, last, _ = coverage(t)
    no_area = int(counts.loc[counts["area"].isna() | (counts["area"].astype(str) == ""), "incidents"].sum())
    counts = counts[counts["area"].notna() & (counts["area"].astype(str) != "")].copy()
    counts["area"] = counts["area"].astype(str)
    freq = "W-MON" if period == "week" else "MS"
    index = pd.date_range(counts["period_start"].min(), counts["period_start"].max(), freq=freq, name="period")
    step = pd.Timedelta(days=7) if period == "week" else None
    ends = index + step if step is not None else index + pd.offsets.MonthBegin(1)
    day0, day_end = pd.Timestamp(first.date()), pd.Timestamp(last.date()) + pd.Timedelta(days=1)
    full = (index >= day0) & (ends <= day_end)
    partial = int((~full).sum())
    index = index[full]
    if len(index) < 6:
        raise DataError(f"incidents of {src!r}: expected at least 6 whole {period}s, got {len(index)}")
    kept = int(counts.loc[counts["period_start"].isin(index), "incidents"].sum())
    total = counts.pivot_table(index="period_start", columns="area", values="incidents", aggfunc="sum")
    values = total.reindex(index).fillna(0.0).astype(float)
    values.index.name = "period"
    values.columns = values.columns.astype(str)
    mix: dict[str, pd.DataFrame] = {}
    for name, group in (("violent", _VIOLENT), ("property", _PROPERTY)):
        part = counts[counts["offence"].isin(group)].pivot_table(
            index="period_start", columns="area", values="incidents", aggfunc="sum"
        )
        part = part.reindex(index=index, columns=values.columns).fillna(0.0)
        mix[f"share_{name}"] = (part / values.where(values > 0)).astype(float)
    national = values.mean(axis=1)
    notes = [f"Measure: recorded incidents per {chosen.replace('_', ' ')} per {period}; common trend: all areas."]
    if partial:
        notes.append(f"{partial} {period}(s) the data cover only in part were left out.")
    dropped = int(counts["incidents"].sum()) - kept
    if no_area or dropped:
        notes.append(
            f"{no_area:,} incidents without a {chosen.replace('_', ' ')} id and {dropped:,} in partial periods "
            f"are not counted ({kept:,} are)."
        )
    names: dict[str, str] = {}
    try:
        rows = con.execute("SELECT area_id, name FROM areas WHERE area_kind = ?", [chosen]).fetchall()
        names = {str(r[0]): str(r[1]) for r in rows if r[1] is not None}
    except Exception:  # an old warehouse without areas: ids only
        names = {}
    return Panel(
        values=values,
        period_kind=period,
        unit=chosen,
        measure=f"incidents per {period}",
        source=src,
        mix=mix,
        national=national,
        names=names,
        notes=tuple(notes),
    )


# -- design -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Design:
    """One row per unit and predicted period: ``unit``, ``period`` (predicted), ``feature_period``, the
    ``features``, the ``baselines``' scores and ``y`` (missing where the outcome is not known, e.g. the
    period after the data, which ``--predict`` ranks)."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    baselines: tuple[str, ...]
    target: str
    threshold: float


def _log(frame: pd.DataFrame, *, plus_one: bool = True) -> pd.DataFrame:
    """log(1 + x) (or log x) of a frame, as a frame."""
    arr = frame.to_numpy(dtype=float)
    return pd.DataFrame(np.log1p(arr) if plus_one else np.log(arr), index=frame.index, columns=frame.columns)


def _top_indicator(values: pd.DataFrame, share: float) -> pd.DataFrame:
    """1 where a unit is among the top ``share`` of the units with a value in that period (ties included)."""
    rank = values.rank(axis=1, ascending=False, method="min")
    k = np.ceil(share * values.notna().sum(axis=1))
    out: pd.DataFrame = rank.le(k, axis=0).astype(float).where(values.notna())
    return out


def _rise_indicator(change: pd.DataFrame, threshold: float) -> pd.DataFrame:
    out: pd.DataFrame = (change >= threshold - 1e-12).astype(float).where(change.notna())
    return out


def _slope(log_values: pd.DataFrame, window: int) -> pd.DataFrame:
    """Least-squares slope of each unit's last ``window`` values (per period; missing if any is missing)."""
    k = np.arange(window, dtype=float)
    weights = (k - k.mean()) / np.sum((k - k.mean()) ** 2)
    out: pd.DataFrame = log_values.rolling(window).apply(lambda a: float(a @ weights), raw=True)
    return out


def build_design(panel: Panel, target: str, threshold: float | None = None) -> Design:
    """Features, baseline scores and outcome, one row per unit and predicted period.

    Every feature of the row predicting period ``t + 1`` is computed from periods ``≤ t`` of the panel (a
    rolling or expanding window that ends at ``t``, or calendar facts of ``t + 1`` such as its month, known
    in advance); ``y`` comes from ``t + 1`` (and ``t`` for a rise).

    Features: log value and its two lags; percentile rank and its lag; log changes; short and long rolling
    means; deviation from the long mean; trend (slope of the log over the trend window); volatility; rank of
    the historical mean; the past share of periods in the class; the common series' change and the unit's
    level against it; offence mix; extra series (population); season of the predicted period and the same
    season a year before, for months and weeks when the data are long enough.
    """
    thr = target_threshold(target, threshold)
    v = panel.values
    short, long, trend_w = WINDOWS[panel.period_kind]
    logv = _log(v)
    rank = percentile_rank(v)
    change = last_change(v)
    indicator = _rise_indicator(change, thr) if target == "rise" else _top_indicator(v, thr)
    log_change = logv - logv.shift(1)
    roll_long = logv.rolling(long, min_periods=2).mean()
    feats: dict[str, pd.DataFrame] = {
        "log_value": logv,
        "log_value_lag1": logv.shift(1),
        "log_value_lag2": logv.shift(2),
        "rank": rank,
        "rank_lag1": rank.shift(1),
        "log_change": log_change,
        "log_change_lag1": log_change.shift(1),
        "mean_short": logv.rolling(short, min_periods=1).mean(),
        "mean_long": roll_long,
        "deviation": logv - roll_long,
        "trend": _slope(logv, trend_w),
        "volatility": log_change.rolling(trend_w, min_periods=3).std(),
        "rank_of_history": percentile_rank(historical_mean(v)),
        "past_share": past_share(indicator),
    }
    nat = panel.national if panel.national is not None else v.mean(axis=1)
    nat_change = nat / nat.shift(1).where(nat.shift(1) > 0) - 1
    broadcast = pd.DataFrame(np.repeat(nat_change.to_numpy()[:, None], v.shape[1], axis=1), index=v.index)
    broadcast.columns = v.columns
    feats["common_change"] = broadcast
    feats["relative_level"] = logv.sub(np.log1p(nat), axis=0)
    for name, frame in {**panel.mix, **panel.extra}.items():
        feats[name] = frame.reindex(index=v.index, columns=v.columns)
    season = SEASON.get(panel.period_kind)
    if season is not None and len(v) > season + WINDOWS[panel.period_kind][1]:
        feats["log_value_season_ago"] = logv.shift(season - 1)  # the predicted period's season, a year earlier
    baselines: dict[str, pd.DataFrame] = {
        "persistence_rank": rank,
        "persistence_class": indicator,
        "historical_mean": past_share(indicator) if target == "rise" else feats["rank_of_history"],
    }
    if target == "rise":
        baselines["last_change"] = change
        baselines["common_trend"] = broadcast
    next_v = v.shift(-1)
    y = _rise_indicator(next_v / v.where(v > 0) - 1, thr) if target == "rise" else _top_indicator(next_v, thr)

    mask = v.notna().to_numpy()
    rows, cols = np.nonzero(mask)
    periods = list(v.index)
    predicted = [*periods[1:], panel.next_period()]
    frame = pd.DataFrame(
        {
            "unit": v.columns.to_numpy()[cols].astype(str),
            "period": [predicted[r] for r in rows],
            "feature_period": [periods[r] for r in rows],
            "value": v.to_numpy()[rows, cols],
        }
    )
    frame["name"] = [panel.names.get(u, u) for u in frame["unit"]]
    for name, wide in {**feats, **{f"b_{k}": w for k, w in baselines.items()}}.items():
        frame[name] = wide.reindex(index=v.index, columns=v.columns).to_numpy(dtype=float)[rows, cols]
    if season is not None:
        if panel.period_kind == "month":
            pos = np.array([pd.Timestamp(p).month for p in frame["period"]], dtype=float)
        else:
            pos = np.array([pd.Timestamp(p).isocalendar().week for p in frame["period"]], dtype=float)
        frame["season_sin"] = np.sin(2 * np.pi * pos / season)
        frame["season_cos"] = np.cos(2 * np.pi * pos / season)
    frame["y"] = y.to_numpy(dtype=float)[rows, cols]
    frame = frame.replace([np.inf, -np.inf], np.nan).sort_values(["period", "unit"], ignore_index=True)
    return Design(
        frame=frame,
        features=(*feats, *(("season_sin", "season_cos") if season is not None else ())),
        baselines=tuple(f"b_{k}" for k in baselines),
        target=target,
        threshold=thr,
    )


def add_covariates(con: duckdb.DuckDBPyConnection, panel: Panel, design: Design) -> tuple[Design, tuple[str, ...], str]:
    """The design with socio-economic covariates of its units as extra columns ``cov_<name>``.

    Each row takes, per covariate, the unit's value of the latest year up to the year of its feature period
    (never a later year: a covariate published after the prediction is made would leak). A one-year
    snapshot (e.g. Chicago's 2008-2012 indicators) applies to every later period. Returns (design, the new
    columns, a note). States match state covariates; incident areas match covariates of their area kind.
    """
    from crimelens.warehouse.covariates import covariate_values, list_covariate_sources

    kind = "state" if panel.unit == "jurisdiction" else panel.unit
    loaded = list_covariate_sources(con)
    sources = list(loaded.loc[loaded["unit_kind"] == kind, "source"])
    if not sources:
        raise DataError(
            f"covariates: expected socio-economic covariates of {kind.replace('_', ' ')}s (load them with "
            f"`crimelens covariates load FILE --preset NAME`), got none; or use --covariates off"
        )
    values = covariate_values(con, sources)
    shared = values.groupby("name")["source"].nunique()
    shared_names = set(shared[shared > 1].index)
    values["label"] = [
        f"cov_{src}_{name}" if name in shared_names else f"cov_{name}"
        for src, name in zip(values["source"], values["name"], strict=True)
    ]
    wide = values.pivot_table(index=["unit_id", "year"], columns="label", values="value", aggfunc="last").reset_index()
    columns = tuple(c for c in wide.columns if str(c).startswith("cov_"))
    frame = design.frame.copy()
    frame["_order"] = np.arange(len(frame))
    fp = frame["feature_period"]
    frame["_year"] = fp.astype(int) if panel.period_kind == "year" else pd.to_datetime(fp).dt.year.astype(int)
    right = wide.rename(columns={"unit_id": "unit", "year": "_year"}).astype({"_year": int})
    merged = pd.merge_asof(
        frame.sort_values("_year"), right.sort_values("_year"), on="_year", by="unit", direction="backward"
    )
    merged = merged.sort_values("_order").drop(columns=["_order", "_year"]).reset_index(drop=True)
    matched = int(merged[list(columns)].notna().any(axis=1).sum())
    if matched == 0:
        raise DataError(
            f"covariates of {', '.join(sources)}: expected values for these {kind.replace('_', ' ')}s up to their "
            "periods, got none (different ids, or only later years)"
        )
    note = (
        f"Covariates from {', '.join(sources)} ({len(columns)}: {', '.join(c[4:] for c in columns)}), each the latest "
        f"value up to the period the features end; {matched:,} of {len(merged):,} unit-periods have them."
    )
    return dataclasses.replace(design, frame=merged), columns, note
