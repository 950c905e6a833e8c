"""Counts, shares and rates per 100,000 residents over the jurisdiction-year panel.

Also home of the helpers every jurisdiction analysis shares: choosing the period (:func:`resolve_period`),
the per-offence frame with rates (:func:`offence_frame`) and the national series (:func:`national_series`).

Rates follow the UCR convention: count / population × 100,000. Over a span of years a rate is
sum(counts) / sum(population) × 100,000 (crimes per 100,000 population-years), using only the years where
both the count and the population are known. Missing counts are never read as zero: they are skipped and
the number skipped is reported in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from crimelens.analysis.jurisdictions.panel import check_offence, offence_years, panel
from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.errors import DataError
from crimelens.schema import COUNT_COLUMNS, OFFENCE_LABELS, PROPERTY_OFFENCES, VIOLENT_OFFENCES

__all__ = [
    "RATE_BASE",
    "OffenceTotals",
    "Rates",
    "check_whole",
    "national_series",
    "offence_frame",
    "offence_totals",
    "period_label",
    "rates",
    "resolve_period",
    "resolve_years",
    "skipped_note",
]

#: Rates are expressed per this many residents.
RATE_BASE = 100_000

_AGGREGATES: tuple[str, ...] = ("violent_crime", "property_crime", *PROPERTY_OFFENCES[:3])


# -- shared helpers ------------------------------------------------------------------------------------
def offence_frame(frame: pd.DataFrame, offence: str) -> pd.DataFrame:
    """One offence from the panel: ids, name, kind, year, population, count, rate_per_100k, partial.

    ``population`` and ``count`` are floats (NaN where missing) so sums skip missing values explicitly;
    ``rate_per_100k`` is NaN unless both are known.
    """
    check_offence(offence)
    out = frame[["jurisdiction_id", "name", "kind", "year"]].copy()
    out["year"] = frame["year"].astype("int64")
    out["population"] = frame["population"].astype("float64")
    out["count"] = frame[offence].astype("float64")
    out["months_reported"] = frame["months_reported"].astype("float64")
    out["partial"] = frame["partial"].astype(bool)
    out["rate_per_100k"] = out["count"] / out["population"] * RATE_BASE
    out["rape_definition"] = frame["rape_definition"]
    return out


def _is_year(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_whole(name: str, value: object, minimum: int = 1, what: str = "a whole number") -> int:
    """``value`` as an int if it is a whole number ≥ ``minimum``, else a three-part :class:`DataError`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise DataError(f"{name}: expected {what} ≥ {minimum}, got {value!r}")
    return int(value)


def resolve_period(
    of: pd.DataFrame,
    offence: str,
    *,
    year: int | None,
    start: int | None,
    end: int | None,
    default: Literal["latest", "all"],
) -> tuple[int, int]:
    """The inclusive (first, last) years asked for, checked against the years with ``offence`` counts.

    ``year`` alone is that year; ``start``/``end`` an inclusive span (an open side runs to the data's
    edge); nothing at all is the latest year (``default='latest'``) or every year (``'all'``).
    """
    years = of.loc[of["count"].notna(), "year"].to_numpy(dtype=np.int64)
    return resolve_years(years, offence, year=year, start=start, end=end, default=default)


def resolve_years(
    years: np.ndarray,
    offence: str,
    *,
    year: int | None,
    start: int | None,
    end: int | None,
    default: Literal["latest", "all"],
) -> tuple[int, int]:
    """:func:`resolve_period` given the years with ``offence`` counts
    (:func:`~crimelens.analysis.jurisdictions.panel.offence_years`), before any row is fetched."""
    for name, value in (("year", year), ("start", start), ("end", end)):
        if value is not None and not _is_year(value):
            raise DataError(f"{name}: expected a whole year such as 2015, got {value!r}")
    years = np.asarray(years, dtype=np.int64)
    if years.size == 0:
        raise DataError(f"offence {offence!r}: expected a dataset with {offence} counts, got none in this dataset")
    first, last = int(years.min()), int(years.max())
    span = f"{first}–{last}"
    if year is not None:
        if start is not None or end is not None:
            raise DataError(
                f"period: give either year or start/end, not both; got year={year}, start={start}, end={end}"
            )
        if int(year) not in set(years.tolist()):
            raise DataError(f"year: expected a year with {offence} counts ({span}), got {year}")
        return int(year), int(year)
    if start is None and end is None:
        return (last, last) if default == "latest" else (first, last)
    for name, value in (("start", start), ("end", end)):
        if value is not None and not first <= int(value) <= last:
            raise DataError(f"{name}: expected a year within {span} (years with {offence} counts), got {value}")
    lo = first if start is None else int(start)
    hi = last if end is None else int(end)
    if lo > hi:
        raise DataError(f"period: expected start ≤ end, got start={lo}, end={hi}")
    return lo, hi


def period_label(lo: int, hi: int) -> str:
    """'2015' for one year, '2010–2015' for a span."""
    return str(lo) if lo == hi else f"{lo}–{hi}"


def skipped_note(n: int, offence: str) -> str | None:
    """The note saying how many jurisdiction-years had no count (None when none)."""
    if n == 0:
        return None
    plural = "s" if n != 1 else ""
    return f"{n:,} jurisdiction-year{plural} with no {offence} count skipped (missing is not zero)"


def national_series(of: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """The national yearly series: ``year, count, population, rate_per_100k, partial``.

    Uses the nation rows when they carry both counts and populations; otherwise the sum over the
    jurisdictions, using only fully reported jurisdiction-years (12 months, or months not recorded) with
    both a count and a population, so partial years do not drag the rate down. Returns
    (series, what it is, a note for ``notes`` or '').
    """
    nation = of[(of["kind"] == "nation") & of["count"].notna() & of["population"].notna()]
    if not nation.empty:
        out = nation[["year", "count", "population", "rate_per_100k", "partial"]]
        return out.sort_values("year").reset_index(drop=True), "national", ""
    usable = (of["kind"] != "nation") & of["count"].notna() & of["population"].notna()
    parts = of[usable & ~of["partial"]]
    n_partial = int((usable & of["partial"]).sum())
    grouped = parts.groupby("year").agg(
        count=("count", "sum"),
        population=("population", "sum"),
        partial=("partial", "any"),
        n=("jurisdiction_id", "nunique"),
    )
    grouped["rate_per_100k"] = grouped["count"] / grouped["population"] * RATE_BASE
    grouped = grouped.reset_index()
    had_nation = bool((of["kind"] == "nation").any())
    why = "the national rows have no population" if had_nation else "the dataset has no national rows"
    n_max = int(grouped["n"].max()) if not grouped.empty else 0
    note = f"{why}: the series is the sum over the jurisdictions in the data (up to {n_max:,} per year)"
    uneven = grouped.loc[grouped["n"] < n_max, "year"].tolist()
    if uneven:
        note += f"; {len(uneven)} year(s) cover fewer jurisdictions (e.g. {uneven[0]})"
    if n_partial:
        note += f"; {n_partial:,} partially reported jurisdiction-year(s) left out"
    cols = ["year", "count", "population", "rate_per_100k", "partial"]
    return grouped[cols], "all jurisdictions combined", note


def _int_or_na(value: float) -> object:
    return pd.NA if pd.isna(value) else round(float(value))


def _definition_note(of: pd.DataFrame, offences: tuple[str, ...]) -> str | None:
    if not {"rape", "violent_crime"} & set(offences):
        return None
    defs = set(of["rape_definition"].dropna().unique())
    if len(defs) > 1:
        return (
            "the period spans the FBI's 2013 rape definition change (legacy and revised counts); "
            "rape and violent-crime totals across it are not like-for-like"
        )
    return None


# -- offence totals ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OffenceTotals(Result):
    """Totals per offence over the jurisdictions, with shares of violent crime."""

    def chart(self) -> ChartSpec:
        parts = self.table[self.table["offence"].isin(VIOLENT_OFFENCES) & self.table["count"].notna()]
        data = parts.sort_values("count", ascending=True)[["label", "count", "share_of_violent"]]
        return ChartSpec(
            kind="barh",
            data=data.reset_index(drop=True),
            x="label",
            y="count",
            title=f"Violent offences recorded, {self.params.get('period', '')}",
            x_label="offence",
            y_label="recorded offences",
            note="Sum over the jurisdictions in the data (national rows excluded).",
        )


@records_caveats
def offence_totals(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    year: int | None = None,
    start: int | None = None,
    end: int | None = None,
) -> OffenceTotals:
    """Recorded offences summed over the non-national jurisdictions for a year or span.

    Columns ``offence, label, count, share_of_violent, violent_rank, national_count``. The four violent
    offences always appear; aggregates (violent crime, property crime and its parts) where the dataset
    has them. ``share_of_violent`` is each violent offence's share of the sum of the four, computed over
    the jurisdiction-years where all four are known (so the shares add up to 1); ``violent_rank`` 1 is
    the most common violent offence (ties share a rank). ``national_count`` sums the nation rows where
    the dataset has them.
    """
    src, frame = panel(con, source)
    base = offence_frame(frame, "violent_crime")
    if base["count"].notna().any():
        lo, hi = resolve_period(base, "violent_crime", year=year, start=start, end=end, default="latest")
    else:
        any_counts = frame[list(COUNT_COLUMNS)].notna().any(axis=1)
        base = base.assign(count=np.where(any_counts, 0.0, np.nan))
        lo, hi = resolve_period(base, "any offence", year=year, start=start, end=end, default="latest")
    in_period = frame[(frame["year"] >= lo) & (frame["year"] <= hi)]
    local = in_period[in_period["kind"] != "nation"]
    nation = in_period[in_period["kind"] == "nation"]
    offences = [*VIOLENT_OFFENCES, *(o for o in _AGGREGATES if local[o].notna().any())]
    complete = local[list(VIOLENT_OFFENCES)].dropna()
    violent_sum = float(complete.astype("float64").to_numpy().sum()) if not complete.empty else 0.0
    rows = []
    notes: list[str] = []
    for o in offences:
        values = local[o].astype("float64")
        count = values.sum(min_count=1)
        share = (
            float(complete[o].astype("float64").sum()) / violent_sum
            if o in VIOLENT_OFFENCES and violent_sum > 0
            else np.nan
        )
        nat = nation[o].astype("float64").sum(min_count=1) if not nation.empty else np.nan
        rows.append((o, OFFENCE_LABELS[o], _int_or_na(count), share, _int_or_na(nat)))
        note = skipped_note(int(values.isna().sum()), o)
        if note:
            notes.append(note)
    table = pd.DataFrame(rows, columns=["offence", "label", "count", "share_of_violent", "national_count"])
    table["count"] = table["count"].astype("Int64")
    table["national_count"] = table["national_count"].astype("Int64")
    violent_counts = table["count"].where(table["offence"].isin(VIOLENT_OFFENCES)).astype("float64")
    table["violent_rank"] = violent_counts.rank(method="min", ascending=False).astype("Int64")
    table = table[["offence", "label", "count", "share_of_violent", "violent_rank", "national_count"]]
    dropped = len(local) - len(complete)
    if dropped and violent_sum > 0:
        notes.append(
            f"shares of violent crime use the {len(complete):,} jurisdiction-years with all four violent "
            f"offences known ({dropped:,} left out)"
        )
    if nation.empty:
        notes.append("the dataset has no national rows: national_count is empty")
    definition = _definition_note(offence_frame(in_period, "rape"), ("rape",))
    if definition:
        notes.append(definition)
    label = period_label(lo, hi)
    return OffenceTotals(
        title=f"Recorded offences, {label}",
        table=table,
        params={"source": src, "start": lo, "end": hi, "period": label},
        notes=tuple(notes),
    )


# -- rates ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rates(Result):
    """Rates per 100,000 residents per jurisdiction and year."""

    def chart(self) -> ChartSpec:
        t = self.table
        offence = str(self.params.get("offence", ""))
        nation = t[(t["kind"] == "nation") & t["rate_per_100k"].notna()]
        if not nation.empty:
            data = nation[["year", "rate_per_100k", "partial"]]
            what = "National rate"
        else:
            local = t[(t["kind"] != "nation") & t["rate_per_100k"].notna()]
            data = (
                local.groupby("year")
                .agg(rate_per_100k=("rate_per_100k", "median"), partial=("partial", "any"))
                .reset_index()
            )
            what = "Median rate across jurisdictions"
        return ChartSpec(
            kind="line",
            data=data.sort_values("year").reset_index(drop=True),
            x="year",
            y="rate_per_100k",
            title=f"{what}: {OFFENCE_LABELS.get(offence, offence).lower()} per 100,000",
            x_label="year",
            y_label="per 100,000 residents",
            highlight="partial",
            note="Highlighted years include partial reporting (fewer than 12 months).",
        )


@records_caveats
def rates(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    offence: str = "violent_crime",
    year: int | None = None,
    start: int | None = None,
    end: int | None = None,
    include_nation: bool = True,
) -> Rates:
    """Rate per 100,000 residents for each jurisdiction and year of the period.

    Columns ``jurisdiction_id, name, kind, year, population, count, rate_per_100k, partial``. With no
    year/start/end every year is returned (the chart is a time series). Jurisdiction-years without a
    count are skipped; those without a population keep their count with an empty rate.
    """
    src, years = offence_years(con, source, offence)
    lo, hi = resolve_years(years, offence, year=year, start=start, end=end, default="all")
    _, frame = panel(con, src, offences=(offence,), start=lo, end=hi)
    of = offence_frame(frame, offence)
    sel = of[(of["year"] >= lo) & (of["year"] <= hi)]
    if not include_nation:
        sel = sel[sel["kind"] != "nation"]
    notes = [n for n in [skipped_note(int(sel["count"].isna().sum()), offence)] if n]
    sel = sel[sel["count"].notna()]
    no_pop = int(sel["population"].isna().sum())
    if no_pop:
        notes.append(f"{no_pop:,} jurisdiction-year(s) have a count but no population: rate left empty")
    n_partial = int(sel["partial"].sum())
    if n_partial:
        notes.append(f"{n_partial:,} jurisdiction-year(s) reported fewer than 12 months (partial = true)")
    definition = _definition_note(sel, (offence,))
    if definition:
        notes.append(definition)
    cols = ["jurisdiction_id", "name", "kind", "year", "population", "count", "rate_per_100k", "partial"]
    table = sel[cols].sort_values(["jurisdiction_id", "year"]).reset_index(drop=True)
    table["population"] = table["population"].round().astype("Int64")
    table["count"] = table["count"].round().astype("Int64")
    label = period_label(lo, hi)
    return Rates(
        title=f"{OFFENCE_LABELS[offence]} per 100,000 residents, {label}",
        table=table,
        params={"source": src, "offence": offence, "start": lo, "end": hi, "period": label},
        notes=tuple(notes),
    )
