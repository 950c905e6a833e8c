"""Count series for spike detection, built from the warehouse: one row per series, one column per period.

- Incidents: area × offence × week or month, counted by the incident aggregation of
  :func:`crimelens.analysis.incidents.aggregate.area_counts` (the same counts as ``crimelens incidents counts``),
  zero-filled for every area seen in the data. Partial periods at either end of the data (a week the data begin
  or end inside) are left out and said in the notes: a half-counted week is not a drop in crime.
- UCR data: jurisdiction × offence × year from the jurisdiction-year panel
  (:func:`crimelens.analysis.jurisdictions.panel.panel`); missing years stay missing (NaN), never zero.

Counts are of police-recorded crime: they reflect reporting and recording practice as well as crime.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from crimelens.errors import ConfigError, DataError

if TYPE_CHECKING:
    import duckdb

__all__ = ["PERIODS_PER_YEAR", "SeriesPanel", "data_version", "incident_series", "source_kind", "ucr_series"]

Unit = Literal["week", "month", "year"]
#: Periods in a seasonal cycle: the lag of "the same period last year".
PERIODS_PER_YEAR: dict[str, int] = {"week": 52, "month": 12, "year": 1}


@dataclass(frozen=True)
class SeriesPanel:
    """Counts of many series over the same periods (a dense ``series × periods`` array; NaN = not reported).

    ``keys`` has one row per series (``where``: the area or jurisdiction id, ``name``, ``offence``);
    ``periods`` the start of each period (timestamps for weeks and months, years as integers).
    """

    source: str
    kind: Literal["incidents", "ucr"]
    unit: str
    counts: np.ndarray
    keys: pd.DataFrame
    periods: pd.Index
    where_label: str = "area"
    notes: tuple[str, ...] = ()
    data_version: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.counts.ndim != 2 or self.counts.shape != (len(self.keys), len(self.periods)):
            raise DataError(
                f"series panel: expected counts of shape ({len(self.keys)}, {len(self.periods)}), "
                f"got {self.counts.shape}"
            )

    @property
    def season(self) -> int:
        """Periods per year (52, 12 or 1)."""
        return PERIODS_PER_YEAR[self.unit]

    def period_label(self, j: int) -> str:
        """The period ``j`` as text: ``2019-03-04`` (week start), ``2019-03`` (month) or ``2015``."""
        p = self.periods[j]
        if self.unit == "year":
            return str(int(p))
        ts = pd.Timestamp(p)
        return ts.strftime("%Y-%m") if self.unit == "month" else ts.strftime("%Y-%m-%d")

    def index_of(self, when: str | int | dt.date | None) -> int:
        """The first period starting on or after ``when`` (a date, ``YYYY-MM-DD``, or a year)."""
        if when is None:
            return 0
        if self.unit == "year":
            try:
                year = int(str(when)[:4])
            except ValueError:
                raise ConfigError(f"since: expected a year such as 2010, got {when!r}") from None
            return int(np.searchsorted(np.asarray(self.periods, dtype=np.int64), year))
        try:
            ts = pd.Timestamp(str(when))
        except ValueError:
            raise ConfigError(f"since: expected a date YYYY-MM-DD, got {when!r}") from None
        return int(np.searchsorted(np.asarray(pd.DatetimeIndex(self.periods)), ts.to_datetime64()))

    def select(self, rows: np.ndarray) -> SeriesPanel:
        """The panel restricted to the series ``rows`` (a boolean mask or indices)."""
        return replace(self, counts=self.counts[rows], keys=self.keys.iloc[rows].reset_index(drop=True))

    def with_counts(self, counts: np.ndarray) -> SeriesPanel:
        """The same series and periods with other counts (e.g. with spikes injected)."""
        return replace(self, counts=np.asarray(counts, dtype=np.float64))


def source_kind(con: duckdb.DuckDBPyConnection, source: str | None) -> tuple[str, Literal["incidents", "ucr"]]:
    """(the resolved source, whether it holds incidents or UCR jurisdiction-years)."""
    from crimelens.warehouse import list_incident_sources, list_sources

    incident_sources, ucr_sources = list(list_incident_sources(con)), list(list_sources(con))
    if source is not None:
        if source in incident_sources:
            return source, "incidents"
        if source in ucr_sources:
            return source, "ucr"
        loaded = ", ".join([*incident_sources, *ucr_sources]) or "none loaded yet"
        raise DataError(f"dataset {source!r} is not in the warehouse; loaded datasets: {loaded}")
    every = [(s, "incidents") for s in incident_sources] + [(s, "ucr") for s in ucr_sources]
    if not every:
        raise DataError("the warehouse holds no crime data yet; load a file with `crimelens ingest PATH`")
    if len(every) > 1:
        raise DataError(
            f"the warehouse holds several datasets ({', '.join(s for s, _ in every)}); choose one with --source"
        )
    src, kind = every[0]
    return src, "incidents" if kind == "incidents" else "ucr"


def data_version(con: duckdb.DuckDBPyConnection, source: str) -> int | None:
    """The data version alerts are computed on: the latest load id of ``source`` (None when unknown)."""
    row = con.execute("SELECT max(load_id) FROM loads WHERE source = ?", [source]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def ucr_series(
    con: duckdb.DuckDBPyConnection, source: str | None = None, offence: str = "violent_crime"
) -> SeriesPanel:
    """Jurisdiction × year series of one offence from the jurisdiction-year panel (national rows left out).

    Parameters
    ----------
    con
        A warehouse connection.
    source
        The jurisdiction-year dataset (None: the only one loaded).
    offence
        A count column: violent_crime, homicide, …, motor_vehicle_theft.

    Returns
    -------
    SeriesPanel
        One series per jurisdiction; a year it did not report (or reported 1–11 months of) is NaN; a year whose
        months are not stated (0 or missing) counts as annual (docs/methods.md, "Reporting months").
    """
    from crimelens.analysis.jurisdictions.panel import panel

    src, frame = panel(con, source, offences=[offence])
    notes: list[str] = []
    frame = frame.loc[frame["kind"] != "nation"]
    partial = frame["partial"].astype(bool) & frame[offence].notna()
    if partial.any():
        notes.append(f"{int(partial.sum())} jurisdiction-years report 1-11 months: treated as missing, not as drops")
    values = frame[offence].astype("float64").where(~partial)
    frame = frame.assign(value=values)
    if frame.empty or frame["value"].notna().sum() == 0:
        raise DataError(f"dataset {src!r}: expected {offence} counts for at least one jurisdiction, got none")
    years = pd.Index(range(int(frame["year"].min()), int(frame["year"].max()) + 1), dtype="int64")
    wide = frame.pivot_table(index="jurisdiction_id", columns="year", values="value", aggfunc="first", dropna=False)
    wide = wide.reindex(columns=years)
    names = frame.drop_duplicates("jurisdiction_id").set_index("jurisdiction_id")["name"]
    keys = pd.DataFrame(
        {"where": wide.index.astype(str), "name": [str(names.get(i, i)) for i in wide.index], "offence": offence}
    )
    return SeriesPanel(
        source=src,
        kind="ucr",
        unit="year",
        counts=wide.to_numpy(dtype=np.float64),
        keys=keys,
        periods=years,
        where_label="jurisdiction",
        notes=tuple(notes),
        data_version=data_version(con, src),
    )


def _period_end(start: pd.Timestamp, unit: str) -> pd.Timestamp:
    return start + (pd.Timedelta(days=7) if unit == "week" else pd.offsets.MonthBegin(1))


def incident_series(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    unit: str = "week",
    area: str | None = None,
    offences: tuple[str, ...] = (),
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> SeriesPanel:
    """Area × offence × period series of recorded incidents, zero-filled, whole periods only.

    Parameters
    ----------
    con
        A warehouse connection.
    source
        The incident dataset (None: the only one loaded).
    unit
        ``week`` (ISO weeks, Monday first) or ``month``.
    area
        The area column (community_area, neighbourhood, district, beat, census_tract); None: the ``area``
        setting's choice (``auto``: the one the incidents fill most).
    offences
        Canonical offences, each its own series; empty: every offence together (one series per area,
        offence ``all``).
    since, until
        Only incidents of these days (inclusive). The history before ``since`` is what expectations are
        learnt from, so a detection run usually leaves it open.

    Returns
    -------
    SeriesPanel
        One series per area (× offence). Incidents without an area id are left out and counted in the notes.
    """
    from crimelens.analysis.incidents.aggregate import area_counts
    from crimelens.analysis.incidents.scope import IncidentFilter, coverage, default_area
    from crimelens.engine import incident_table
    from crimelens.warehouse import resolve_incident_source

    if unit not in ("week", "month"):
        raise ConfigError(f"unit: incident series are counted by week or month; got {unit!r}")
    src = resolve_incident_source(con, source)
    flt = IncidentFilter(tuple(offences), since, until)
    with incident_table(con, "duckdb", source=src) as t:
        if area is None or area == "auto":
            area = default_area(t, con)
            if area is None:
                raise DataError(f"dataset {src!r}: its incidents carry no area id, so no area series can be formed")
        ft = flt.apply(t)
        first, last, total = coverage(ft)
        counts = area_counts(ft, area=area, period=unit, by_offence=bool(offences))  # type: ignore[arg-type]
    notes: list[str] = []
    no_area = counts["area"].isna() | (counts["area"].astype(str) == "")
    if no_area.any():
        notes.append(f"{int(counts.loc[no_area, 'incidents'].sum()):,} incidents have no {area} id and are left out")
    counts = counts.loc[~no_area]
    if not offences:
        counts = counts.assign(offence="all")
    # whole periods only: the data's first and last days bound them
    start_day = pd.Timestamp(since or first.date())
    end_day = pd.Timestamp(until or last.date()) + pd.Timedelta(days=1)
    starts = pd.date_range(
        pd.Timestamp(first.date()).to_period("W-SUN" if unit == "week" else "M").start_time,
        pd.Timestamp(last.date()),
        freq="W-MON" if unit == "week" else "MS",
    )
    whole = [s for s in starts if s >= start_day and _period_end(s, unit) <= end_day]
    dropped = len(starts) - len(whole)
    if dropped:
        notes.append(f"{dropped} partial {unit}(s) at the ends of the data left out (a partial {unit} is not a drop)")
    if len(whole) < 2:
        raise DataError(f"dataset {src!r}: expected at least 2 whole {unit}s of incidents, got {len(whole)}")
    periods = pd.DatetimeIndex(whole)
    counts = counts.assign(period_start=pd.to_datetime(counts["period_start"]))
    counts = counts.loc[counts["period_start"].isin(periods)]
    areas = sorted({str(a) for a in counts["area"]}, key=lambda a: (len(a), a))
    offence_list = list(offences) if offences else ["all"]
    index = pd.MultiIndex.from_product([areas, offence_list], names=["where", "offence"])
    wide = (
        counts.assign(area=counts["area"].astype(str))
        .pivot_table(index=["area", "offence"], columns="period_start", values="incidents", aggfunc="sum")
        .reindex(index=index, columns=periods)
        .fillna(0.0)
    )
    keys = pd.DataFrame({"where": wide.index.get_level_values(0), "name": wide.index.get_level_values(0),
                         "offence": wide.index.get_level_values(1)})  # fmt: skip
    return SeriesPanel(
        source=src,
        kind="incidents",
        unit=unit,
        counts=wide.to_numpy(dtype=np.float64),
        keys=keys,
        periods=periods,
        where_label=area,
        notes=tuple(notes),
        data_version=data_version(con, src),
        extra={"incidents": total, "area": area},
    )
