"""Incident counts and timing as results: what ``crimelens incidents counts`` and ``incidents when`` show.

:func:`incident_counts` counts incidents by area, grid cell (metres) or H3 hexagon, per period and offence;
:func:`timing` combines the hour × weekday profile with monthly seasonality. Both return frozen results
(:mod:`crimelens.analysis.result`), so the CLI, the report and the dashboard render the same object.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from crimelens.analysis.incidents.temporal import HourWeekdayResult, SeasonalityResult
from crimelens.analysis.result import Result, records_caveats
from crimelens.errors import DataError
from crimelens.geo import GridOrigin

__all__ = ["IncidentCounts", "Timing", "incident_counts", "timing"]


@dataclass(frozen=True)
class IncidentCounts(Result):
    """Incident counts (``table``: the unit's columns, ``period_start`` when by period, ``offence``, ``incidents``)."""

    by: str = "area"
    period: str | None = None
    area: str | None = None
    cell_m: float | None = None
    resolution: int | None = None
    rows_without_coordinates: int = 0


@records_caveats
def incident_counts(
    t: Any,
    *,
    by: Literal["area", "grid", "h3"] = "area",
    area: str = "community_area",
    period: str | None = "week",
    by_offence: bool = False,
    cell_m: float = 150.0,
    resolution: int = 8,
    origin: GridOrigin | None = None,
) -> IncidentCounts:
    """Count the incidents of ``t`` by area, grid cell (``cell_m`` metres) or H3 hexagon (``resolution``).

    Parameters
    ----------
    t : Ibis table of incidents (DuckDB or Spark).
    by : ``area``, ``grid`` or ``h3``.
    area : the area column when ``by='area'``.
    period : hour, day, week, month or year; None for whole-period totals (grid and h3 only).
    by_offence : split the counts by offence.
    origin : the source's pinned grid origin for ``by='grid'`` (default: the origin of ``t``'s extent).

    Returns
    -------
    IncidentCounts
        ``rows_without_coordinates``: incidents left out of grid and H3 counts for want of a location.
    """
    from crimelens.analysis.incidents.aggregate import area_counts, grid_counts, h3_counts

    if by not in ("area", "grid", "h3"):
        raise DataError(f"--by: expected area, grid or h3, got {by!r}")
    params: dict[str, Any] = {"by": by, "period": period, "by_offence": by_offence}
    missing = 0
    if by == "area":
        if period is None:
            raise DataError("--period none is for grid and h3 counts; areas need a period (e.g. year)")
        frame = area_counts(t, area=area, period=period, by_offence=by_offence)  # type: ignore[arg-type]
        params["area"] = area
        title = f"Incidents by {area.replace('_', ' ')} and {period}"
    elif by == "grid":
        grid = grid_counts(t, cell_m=cell_m, period=period, by_offence=by_offence, origin=origin)  # type: ignore[arg-type]
        frame, missing = grid.table, grid.rows_without_coordinates
        params.update(grid.params)
        title = f"Incidents by {cell_m:g} m grid cell" + (f" and {period}" if period else "")
    else:
        hexes = h3_counts(t, resolution=resolution, period=period, by_offence=by_offence)  # type: ignore[arg-type]
        frame, missing = hexes.table, hexes.rows_without_coordinates
        params["resolution"] = resolution
        title = f"Incidents by H3 hexagon (resolution {resolution})" + (f" and {period}" if period else "")
    notes = (f"{missing:,} incidents without coordinates are not counted.",) if missing else ()
    return IncidentCounts(
        title, frame, params=params, notes=notes, by=by, period=period, area=area if by == "area" else None,
        cell_m=float(cell_m) if by == "grid" else None, resolution=resolution if by == "h3" else None,
        rows_without_coordinates=missing,
    )  # fmt: skip


@dataclass(frozen=True)
class Timing(Result):
    """When crime happens: ``table`` is the hour × weekday profile (``hour_weekday``); ``seasonality`` the months."""

    hour_weekday: HourWeekdayResult | None = None
    seasonality: SeasonalityResult | None = None
    span: tuple[dt.date, dt.date] | None = field(default=None)


@records_caveats
def timing(t: Any, *, span: tuple[dt.date, dt.date] | None = None) -> Timing:
    """The hour × weekday profile and the monthly seasonality of the incidents of ``t``.

    ``span``: the days the data cover (see :func:`crimelens.analysis.incidents.scope.seasonality`).
    """
    from crimelens.analysis.incidents.scope import seasonality, weekly_profile

    profile = weekly_profile(t)
    season = seasonality(t, span=span)
    return Timing(
        "When crime happens: hour × weekday and month of year",
        profile.table,
        params={**profile.params, **season.params},
        notes=(*profile.notes, *season.notes),
        warnings=(*profile.warnings, *season.warnings),
        hour_weekday=profile,
        seasonality=season,
        span=span,
    )
