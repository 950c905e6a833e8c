"""When incidents happen: the hour × weekday profile and the seasonal (month-of-year) pattern."""

from __future__ import annotations

import calendar
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.errors import DataError, SchemaError, SparseDataWarning

__all__ = [
    "HEAP_HOURS",
    "WEEKDAYS",
    "HourWeekdayResult",
    "SeasonalityResult",
    "day_heaps",
    "hour_heaps",
    "hour_weekday_profile",
    "monthly_seasonality",
]

#: Weekday names by number, Monday = 0 (pandas ``day_of_week``; ISO day − 1).
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _whole(frame: pd.DataFrame, col: str, what: str, lo: int, hi: int | None) -> np.ndarray:
    values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < lo)
    if hi is not None:
        bad |= values > hi
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        allowed = f"a whole number {lo}–{hi}" if hi is not None else f"a whole number ≥ {lo}"
        raise DataError(f"{what}: column {col} row {row}: expected {allowed}, got {str(frame[col].iloc[row])!r}")
    return values.astype(np.int64)


# -- hour × weekday ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HourWeekdayResult(Result):
    """Counts by weekday × hour: ``table`` has 168 rows (every weekday × hour, zeros included)."""

    excluded_day_precision: int = 0
    #: Time heaps: one row per candidate hour (00:00, 12:00) against its two neighbouring hours.
    heaps: pd.DataFrame | None = None
    #: Date heaps: the 1st of the month (February–December) and 1 January against their neighbouring days.
    day_heaps: pd.DataFrame | None = None

    @property
    def heaped_hours(self) -> tuple[int, ...]:
        """Hours whose excess over their neighbours is significant (kept out of the peak finding)."""
        if self.heaps is None or self.heaps.empty:
            return ()
        return tuple(int(h) for h in self.heaps.loc[self.heaps["heap"], "hour"])

    @property
    def heaped_days(self) -> tuple[str, ...]:
        """The days (``"1st of the month"``, ``"1 January"``) whose excess over their neighbours is significant."""
        if self.day_heaps is None or self.day_heaps.empty:
            return ()
        return tuple(str(d) for d in self.day_heaps.loc[self.day_heaps["heap"], "day"])

    def chart(self) -> ChartSpec:
        return ChartSpec(
            kind="small_multiples",
            data=self.table,
            x="hour",
            y="incidents",
            facet="weekday_name",
            title=self.title,
            x_label="hour of day (local time)",
            y_label="incidents",
        )


def _q(q: float) -> str:
    return "q < 1e-300" if q <= 0 else f"q = {q:.2g}"


def _neighbour_test(rows: list[dict[str, Any]], alpha: float) -> pd.DataFrame:
    """Add the exact binomial p (observed against its two neighbours, 1/3 each under "no heap"), BH q and ``heap``."""
    from crimelens.analysis.inference import benjamini_hochberg, binom_sf

    table = pd.DataFrame(rows)
    obs, lo, hi = (table[c].to_numpy(dtype=np.int64) for c in ("observed", "neighbour_before", "neighbour_after"))
    table["expected"] = (lo + hi) / 2
    table["excess"] = obs - table["expected"]
    table["p_value"] = [
        binom_sf(int(o) - 1, int(o + a + b), 1 / 3) if o > 0 else 1.0 for o, a, b in zip(obs, lo, hi, strict=True)
    ]
    table["q_value"] = benjamini_hochberg(table["p_value"].to_numpy(dtype=float))
    table["heap"] = (table["q_value"] < alpha) & (table["excess"] > 0)
    return table


#: Hours where sources heap incidents of unknown or rounded time: midnight ("time unknown") and noon.
HEAP_HOURS = (0, 12)


def hour_heaps(hour_counts: np.ndarray, *, hours: tuple[int, ...] = HEAP_HOURS, alpha: float = 0.05) -> pd.DataFrame:
    """Heaps at ``hours`` against the two neighbouring hours (not against an even spread).

    For hour h with count c_h and neighbours c_(h−1), c_(h+1) (around midnight: 23:00 and 01:00), under
    "no heap" the three hours are alike, so given their total n = c_(h−1) + c_h + c_(h+1), c_h ~ Binomial(n,
    1/3): the exact one-sided p = P(X ≥ c_h). ``expected`` = mean of the neighbours, ``excess`` = c_h −
    expected; ``heap`` when p < ``alpha`` after Benjamini–Hochberg over the hours tested and excess > 0.
    """
    c = np.asarray(hour_counts, dtype=np.int64)
    rows = [
        {
            "hour": h,
            "observed": int(c[h]),
            "neighbour_before": int(c[(h - 1) % 24]),
            "neighbour_after": int(c[(h + 1) % 24]),
        }
        for h in hours
    ]  # fmt: skip
    return _neighbour_test(rows, alpha)


def day_heaps(daily: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Heaps on the 1st of the month and on 1 January against the day before and the day after.

    ``daily``: columns ``date`` and ``incidents`` (days with none may be absent). Only days whose two neighbours
    both lie within the data's first and last date are tested. "1st of the month" sums the 1sts of February to
    December (with the last day of the month before and the 2nd); "1 January" sums every 1 January (with 31
    December and 2 January). Sources file incidents with an unknown date on the 1st (of the month, or of the
    year), so an excess there is usually a recording artefact, not crime. Same test as :func:`hour_heaps`:
    c ~ Binomial(n, 1/3) given the three days' total n, one-sided exact p, BH q over the two rows.
    """
    if daily.empty:
        return pd.DataFrame()
    dates = pd.to_datetime(daily["date"]).dt.normalize()
    series = pd.Series(pd.to_numeric(daily["incidents"]).to_numpy(dtype=np.int64), index=dates).groupby(level=0).sum()
    first, last = series.index.min(), series.index.max()
    idx = pd.date_range(first, last, freq="D")
    full = series.reindex(idx, fill_value=0)
    inner = (idx > first) & (idx < last)
    counts = full.to_numpy(dtype=np.int64)
    rows = []
    for label, mask in (
        ("1st of the month", (idx.day == 1) & (idx.month != 1) & inner),
        ("1 January", (idx.day == 1) & (idx.month == 1) & inner),
    ):
        pos = np.flatnonzero(mask)
        if pos.size == 0:
            continue
        rows.append(
            {
                "day": label, "days_tested": int(pos.size), "observed": int(counts[pos].sum()),
                "neighbour_before": int(counts[pos - 1].sum()), "neighbour_after": int(counts[pos + 1].sum()),
            }
        )  # fmt: skip
    return _neighbour_test(rows, alpha) if rows else pd.DataFrame()


@records_caveats
def hour_weekday_profile(data: pd.DataFrame, *, daily: pd.DataFrame | None = None) -> HourWeekdayResult:
    """Incidents by day of week × hour of day (7 × 24), with each cell's share of the total.

    ``data`` is either incidents (a column ``occurred_at``, local naive timestamps, and optionally
    ``time_precision``) or counts (columns ``weekday`` 0–6 with Monday = 0, ``hour`` 0–23, ``incidents``,
    and optionally ``time_precision``). Incidents whose ``time_precision`` is 'day' have no hour (most
    sources put them at midnight) and are left out of the profile; their number (or, for counts, that in
    ``data.attrs['rows_excluded']`` as ``aggregate.weekday_hour_counts`` sets it) is given in ``notes`` and
    ``excluded_day_precision``. Columns ``weekday`` (0 = Monday), ``weekday_name``, ``hour``,
    ``incidents``, ``share`` (of all incidents in the profile), ``index`` (cell count / mean cell count, 1 =
    average). ``daily`` (optional; columns ``date``, ``incidents``, every incident including those known only to
    the day) adds the date heaps of :func:`day_heaps`. Hours 00:00 and 12:00 are tested for time heaps against
    their neighbouring hours (:func:`hour_heaps`); significant ones are in ``heaps`` and the notes. Recorded
    times are when the victim says it happened, or when it was reported: a peak at
    00:00 or on the hour often marks unknown times rather than crime.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data: expected a pandas DataFrame of incidents or counts, got {type(data).__name__}")
    notes: list[str] = []
    precision = data["time_precision"].astype("string") if "time_precision" in data.columns else None
    day_only = (precision == "day").fillna(False).to_numpy(dtype=bool) if precision is not None else None
    if "occurred_at" in data.columns:
        when = pd.to_datetime(data["occurred_at"], errors="coerce")
        if when.isna().any():
            row = int(np.flatnonzero(when.isna().to_numpy())[0])
            raise DataError(
                f"data: column occurred_at row {row}: expected a timestamp, got {str(data['occurred_at'].iloc[row])!r}"
            )
        weekday = when.dt.day_of_week.to_numpy(dtype=np.int64)
        hour = when.dt.hour.to_numpy(dtype=np.int64)
        counts = np.ones(len(data), dtype=np.int64)
    elif {"weekday", "hour", "incidents"} <= set(data.columns):
        weekday = _whole(data, "weekday", "data", 0, 6)
        hour = _whole(data, "hour", "data", 0, 23)
        counts = _whole(data, "incidents", "data", 0, None)
    else:
        raise SchemaError(
            "data: expected a column occurred_at (incidents) or columns weekday, hour, incidents (counts), got "
            + (", ".join(map(str, data.columns)) or "none")
        )
    excluded = 0
    pre = data.attrs.get("rows_excluded", 0)  # counts already without them (aggregate.weekday_hour_counts)
    if "occurred_at" not in data.columns and isinstance(pre, int | np.integer) and pre > 0:
        excluded = int(pre)
        notes.append(f"{excluded:,} incident(s) recorded to the day only were left out of the hour profile")
    if day_only is not None and day_only.any():
        excluded = int(counts[day_only].sum())
        weekday, hour, counts = weekday[~day_only], hour[~day_only], counts[~day_only]
        notes.append(f"{excluded:,} incident(s) recorded to the day only were left out of the hour profile")
    grid = np.bincount(weekday * 24 + hour, weights=counts, minlength=168).round().astype(np.int64)
    total = int(grid.sum())
    if total == 0:
        raise DataError("data: expected at least one incident with an hour, got none")
    wd, hr = np.divmod(np.arange(168), 24)
    table = pd.DataFrame(
        {
            "weekday": wd,
            "weekday_name": [WEEKDAYS[d] for d in wd],
            "hour": hr,
            "incidents": grid,
            "share": grid / total,
            "index": grid / (total / 168),
        }
    )
    midnight = int(grid[hr == 0].sum())
    if midnight > 2.5 * total / 24:
        notes.append(
            f"{midnight / total:.1%} of incidents at 00:00–00:59 (an even spread gives 4.2%): many may be "
            "incidents with an unknown time"
        )
    if total < 168 * 5:
        warnings.warn(
            f"data: {total} incidents over 168 weekday-hours (fewer than 5 per cell on average): the profile "
            "is mostly noise",
            SparseDataWarning,
            stacklevel=2,
        )
    heaps = hour_heaps(np.bincount(hr, weights=grid, minlength=24))
    for hp in heaps[heaps["heap"]].to_dict(orient="records"):
        notes.append(
            f"time heap at {int(hp['hour']):02d}:00: {int(hp['observed']):,} incidents against "
            f"{hp['expected']:,.0f} expected from the neighbouring hours ({int(hp['neighbour_before']):,} and "
            f"{int(hp['neighbour_after']):,}), {hp['excess']:,.0f} in excess (binomial {_q(hp['q_value'])}); "
            "kept out of the peak hour, often times unknown or rounded"
        )
    dheaps = day_heaps(daily) if daily is not None else None
    if dheaps is not None and not dheaps.empty:
        for dh in dheaps[dheaps["heap"]].to_dict(orient="records"):
            notes.append(
                f"date heap on the {dh['day']} ({int(dh['days_tested'])} days): {int(dh['observed']):,} incidents "
                f"against {dh['expected']:,.0f} expected from the days before and after, {dh['excess']:,.0f} in "
                f"excess (binomial {_q(dh['q_value'])}); often dates unknown and filed on the 1st"
            )
    peak = table.iloc[int(np.argmax(table["incidents"].to_numpy()))]
    return HourWeekdayResult(
        title=f"Incidents by weekday and hour (peak {peak['weekday_name']} {int(peak['hour']):02d}:00)",
        table=table,
        params={"incidents": total, "excluded_day_precision": excluded},
        notes=tuple(notes),
        excluded_day_precision=excluded,
        heaps=heaps,
        day_heaps=dheaps,
    )


# -- seasonality ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeasonalityResult(Result):
    """Month-of-year means, seasonal indices and a test of an even spread (see the function)."""

    chi2: float = math.nan
    dof: int = 0
    p_value: float = math.nan
    years: float = 0.0

    def chart(self) -> ChartSpec:
        return ChartSpec(
            kind="bar",
            data=self.table,
            x="month_name",
            y="seasonal_index",
            title=self.title,
            x_label="month",
            y_label="seasonal index (1 = average day)",
            note=f"χ² test of an even spread over the year's days: p = {self.p_value:.3g}.",
        )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["test"] = {"chi2": self.chi2, "dof": self.dof, "p_value": self.p_value, "years": self.years}
        return out


@records_caveats
def monthly_seasonality(
    monthly: pd.DataFrame,
    *,
    coverage: tuple[object, object] | None = None,
) -> SeasonalityResult:
    """Seasonal pattern of monthly counts: mean per calendar month, seasonal index and a χ² test.

    ``monthly``: columns ``period_start`` (the first day of each month) and ``incidents`` (rows of the
    same month, e.g. per offence, are summed; months between the first and last without a row count 0).
    ``coverage`` = (first, last) instant the data cover (a bare date as ``last`` covers its whole day);
    months not wholly inside it are partial and left out (without it every month given is taken as
    complete, which a partial first or last month breaks: said in ``notes``).

    Columns ``month`` (1–12), ``month_name``, ``years`` (complete months of that name), ``incidents``,
    ``mean_incidents`` (per month), ``per_day``, ``raw_index`` (month mean / mean of all complete months)
    and ``seasonal_index`` = (incidents / days in those months) / (all incidents / all days): the raw
    index adjusted for month length (February's 28 days are not a dip in crime). The χ² goodness-of-fit
    test compares each calendar month's count with its share of the days covered, E_m = N · D_m / D
    (Pearson 1900; the day-adjusted uniformity test of seasonality, e.g. Walter 1994, "Seasonality of
    events", Statistics in Medicine 13); dof = months − 1. Counts of crime are over-dispersed and trend
    between years, so with large counts the test rejects readily: read the indices. Fewer than two years
    of complete months are noted (the season cannot then be told from a trend).
    """
    from crimelens.analysis.inference import chi2_sf

    if not isinstance(monthly, pd.DataFrame) or not {"period_start", "incidents"} <= set(monthly.columns):
        got = ", ".join(map(str, monthly.columns)) if isinstance(monthly, pd.DataFrame) else type(monthly).__name__
        raise SchemaError(f"monthly: expected columns period_start and incidents, got {got}")
    start = pd.to_datetime(monthly["period_start"], errors="coerce")
    if start.isna().any():
        row = int(np.flatnonzero(start.isna().to_numpy())[0])
        raise DataError(
            f"monthly: column period_start row {row}: expected a timestamp, "
            f"got {str(monthly['period_start'].iloc[row])!r}"
        )
    counts = _whole(monthly, "incidents", "monthly", 0, None)
    months = start.dt.to_period("M")
    per_month = pd.Series(counts, index=months.to_numpy()).groupby(level=0).sum()
    full = pd.period_range(per_month.index.min(), per_month.index.max(), freq="M")
    per_month = per_month.reindex(full, fill_value=0)
    notes: list[str] = []
    if coverage is not None:
        try:
            lo, hi = (pd.Timestamp(v) for v in coverage)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise DataError(f"coverage: expected (first, last) timestamps, got {coverage!r}") from exc
        if hi == hi.normalize():  # a date: its whole day is covered
            hi = hi + pd.Timedelta(days=1) - pd.Timedelta(1, unit="ns")
        complete = (full.start_time >= lo) & (full.end_time <= hi)
        dropped = [str(p) for p, ok in zip(full, complete, strict=True) if not ok]
        if dropped:
            notes.append(f"partial month(s) left out: {', '.join(dropped)}")
        per_month = per_month[np.asarray(complete)]
    else:
        notes.append("coverage not given: every month from the first to the last was taken as complete")
    if per_month.empty:
        raise DataError("monthly: expected at least one complete month, got none inside the coverage")
    if per_month.sum() == 0:
        raise DataError("monthly: expected incidents in the complete months, got 0")
    frame = pd.DataFrame(
        {
            "month": [p.month for p in per_month.index],
            "days": [p.days_in_month for p in per_month.index],
            "incidents": per_month.to_numpy(),
        }
    )
    by = frame.groupby("month").agg(years=("days", "size"), days=("days", "sum"), incidents=("incidents", "sum"))
    by = by.reset_index()
    total, total_days = float(by["incidents"].sum()), float(by["days"].sum())
    overall_month_mean = total / len(frame)
    by["month_name"] = [calendar.month_name[m] for m in by["month"]]
    by["mean_incidents"] = by["incidents"] / by["years"]
    by["per_day"] = by["incidents"] / by["days"]
    by["raw_index"] = by["mean_incidents"] / overall_month_mean
    by["seasonal_index"] = by["per_day"] / (total / total_days)
    expected = total * by["days"] / total_days
    stat = float((((by["incidents"] - expected) ** 2) / expected).sum())
    dof = len(by) - 1
    p = float(chi2_sf(stat, dof)) if dof > 0 else math.nan
    years = len(frame) / 12
    if by["years"].min() < 2 or len(by) < 12:
        notes.append(
            f"{len(frame)} complete month(s) ({years:.1f} years): fewer than two of some calendar months, so "
            "the seasonal pattern cannot be told apart from a trend or a one-off year"
        )
    if len(by) < 12:
        notes.append(f"only {len(by)} of 12 calendar months covered")
    table = by[
        ["month", "month_name", "years", "incidents", "mean_incidents", "per_day", "raw_index", "seasonal_index"]
    ]
    peak = table.iloc[int(np.argmax(table["seasonal_index"].to_numpy()))]
    return SeasonalityResult(
        title=f"Seasonality: {peak['month_name']} highest ({peak['seasonal_index']:.2f} × the average day)",
        table=table.reset_index(drop=True),
        params={"months": len(frame), "first": str(per_month.index[0]), "last": str(per_month.index[-1])},
        notes=tuple(notes),
        chi2=stat,
        dof=dof,
        p_value=p,
        years=years,
    )
