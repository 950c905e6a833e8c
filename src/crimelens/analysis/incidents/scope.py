"""Incident analyses end to end: filter the incidents, aggregate them on the chosen engine, run the statistic.

Each function takes an Ibis table of incidents (from :func:`crimelens.engine.incident_table`, on DuckDB or
Spark), does the heavy counting there with :mod:`crimelens.analysis.aggregate`, and hands the small result to
the pure statistic (:mod:`temporal`, :mod:`areas`, :mod:`spatial`, :mod:`knox`). The CLI, the report and the
dashboard call these, so they all show the same numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from crimelens.analysis.incidents.aggregate import (
    AREA_COLUMNS,
    GridCounts,
    area_counts,
    daily_counts,
    data_origin,
    extent,
    grid_counts,
    weekday_hour_counts,
)
from crimelens.analysis.incidents.compiled import compiled_query, run
from crimelens.analysis.result import records_caveats
from crimelens.errors import DataError
from crimelens.schema import OFFENCES

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from crimelens.analysis.incidents.hotspots import GiStarResult, PersistentCellsResult
    from crimelens.analysis.incidents.knox import KnoxResult
    from crimelens.analysis.incidents.ranking import AreaRankResult
    from crimelens.analysis.incidents.spatial import ConcentrationResult, KdeResult
    from crimelens.analysis.incidents.temporal import HourWeekdayResult, SeasonalityResult
    from crimelens.geo import GridOrigin

__all__ = [
    "IncidentFilter",
    "area_ranking",
    "area_set_for",
    "area_totals_by_location",
    "concentration",
    "coverage",
    "default_area",
    "density",
    "hotspots",
    "incident_points",
    "monthly_counts",
    "near_repeat",
    "offence_counts",
    "persistent",
    "seasonality",
    "weekly_profile",
]

#: Knox tests on more points than this use the most recent ones (pairs grow with the square of the count).
KNOX_MAX_POINTS = 50_000


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents an analysis looks at: offences (canonical names) and a date range (inclusive)."""

    offences: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None

    def __post_init__(self) -> None:
        unknown = [o for o in self.offences if o not in OFFENCES]
        if unknown:
            raise DataError(f"offence: expected one of {', '.join(OFFENCES)}, got {', '.join(unknown)}")
        if self.start and self.end and self.start > self.end:
            raise DataError(f"date range: --since {self.start} is after --until {self.end}")

    def apply(self, t: Any) -> Any:
        """The incidents ``t`` (an Ibis table or an :class:`~crimelens.engine.IncidentScope`) restricted to this
        filter (nothing is executed)."""
        from crimelens.engine import IncidentScope, filter_incidents

        offences = tuple(self.offences) or None
        start = dt.datetime.combine(self.start, dt.time()) if self.start is not None else None
        end = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time()) if self.end is not None else None
        if isinstance(t, IncidentScope):
            return t.narrowed(offences=offences, start=start, end=end)
        return filter_incidents(t, offences=list(offences) if offences else None, start=start, end=end)

    def span(self, unfiltered: Any) -> tuple[dt.date, dt.date]:
        """The days this filter's incidents can cover: the source's first and last day clipped to the dates."""
        first, last, _ = coverage(unfiltered)
        start = max(first.date(), self.start) if self.start else first.date()
        end = min(last.date(), self.end) if self.end else last.date()
        if start > end:
            raise DataError(
                f"date range: the data cover {first.date()} to {last.date()}; the filter asks for "
                f"{self.start or 'first'} to {self.end or 'last'}, which does not overlap"
            )
        return start, end

    def describe(self) -> str:
        parts = [", ".join(self.offences) if self.offences else "all offences"]
        if self.start or self.end:
            parts.append(f"{self.start or 'first'} to {self.end or 'last'}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "offences": list(self.offences),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }


@compiled_query()
def _coverage_expr(t: Any) -> Any:
    return t.aggregate(first=t.occurred_at.min(), last=t.occurred_at.max(), n=t.count())


def coverage(t: Any) -> tuple[dt.datetime, dt.datetime, int]:
    """First and last ``occurred_at`` and the number of incidents of ``t``."""
    row = run(_coverage_expr, t).iloc[0]
    if not int(row["n"]):
        raise DataError("no incidents match: widen the date range or the offences, or load incident data first")
    return row["first"].to_pydatetime(), row["last"].to_pydatetime(), int(row["n"])


@compiled_query(sort_by=["offence"])
def _offence_counts_expr(t: Any) -> Any:
    return t.group_by("offence").aggregate(incidents=t.count())


def offence_counts(t: Any) -> pd.DataFrame:
    """Incidents per canonical offence, busiest first, with shares."""
    frame = run(_offence_counts_expr, t)
    frame = frame.sort_values(["incidents", "offence"], ascending=[False, True]).reset_index(drop=True)
    frame["share"] = frame["incidents"] / frame["incidents"].sum()
    return frame


@compiled_query(sort_by=["period_start"])
def _monthly_counts_expr(t: Any) -> Any:
    return t.group_by(period_start=t.occurred_at.truncate("M")).aggregate(incidents=t.count())


def monthly_counts(t: Any) -> pd.DataFrame:
    """Incidents per calendar month (``period_start`` = first day of the month)."""
    return run(_monthly_counts_expr, t)


@records_caveats
def weekly_profile(t: Any) -> HourWeekdayResult:
    """Hour-of-day × day-of-week counts (incidents known only to the day are left out and counted)."""
    from crimelens.analysis.incidents.temporal import hour_weekday_profile

    return hour_weekday_profile(weekday_hour_counts(t), daily=daily_counts(t))


@records_caveats
def seasonality(t: Any, *, span: tuple[dt.date, dt.date] | None = None) -> SeasonalityResult:
    """Monthly seasonality over the complete months the data cover.

    ``span``: the first and last day the data cover (default: the days of the first and last incident of
    ``t``). Pass the span of the unfiltered source, clipped to the date filter (:meth:`IncidentFilter.span`),
    when ``t`` holds a rare offence: its first incident may fall weeks after the data begin.
    """
    from crimelens.analysis.incidents.temporal import monthly_seasonality

    if span is None:
        first, last, _ = coverage(t)
        span = (first.date(), last.date())
    # whole days at both ends: an incident at 10:00 on the 1st does not make the 1st's month partial
    return monthly_seasonality(monthly_counts(t), coverage=span)


def area_set_for(con: duckdb.DuckDBPyConnection, area: str, area_set: str | None) -> str | None:
    """The area set (boundaries and population) to use for ``area``: the one named, or the only one of its kind."""
    if area_set is not None:
        found = con.execute("SELECT DISTINCT area_kind FROM areas WHERE area_set = ?", [area_set]).fetchall()
        if not found:
            sets = [r[0] for r in con.execute("SELECT DISTINCT area_set FROM areas ORDER BY 1").fetchall()]
            raise DataError(f"area set {area_set!r} is not loaded; loaded: {', '.join(sets) or 'none'}")
        kinds = sorted(str(r[0]) for r in found)
        if kinds != [area]:
            # joining ids of one kind to another's populations gives plausible but wrong rates
            raise DataError(
                f"area set {area_set!r}: expected a set of {area.replace('_', ' ')}s (the --area column), "
                f"got a set of {', '.join(k.replace('_', ' ') + 's' for k in kinds)}"
            )
        return area_set
    rows = con.execute("SELECT DISTINCT area_set FROM areas WHERE area_kind = ? ORDER BY 1", [area]).fetchall()
    return str(rows[0][0]) if len(rows) == 1 else None


def _check_area(area: str) -> None:
    if area not in AREA_COLUMNS:
        raise DataError(f"area: expected one of {', '.join(AREA_COLUMNS)}, got {area!r}")


def area_totals(t: Any, area: str) -> pd.DataFrame:
    """Incidents per area over the whole filtered period (rows without an area id are left out)."""
    _check_area(area)
    counts = area_counts(t, area=area, period="year", by_offence=False)
    frame = counts.groupby("area", as_index=False, dropna=False).agg(incidents=("incidents", "sum"))
    keep = frame["area"].notna() & (frame["area"].astype(str) != "")
    if not keep.any() and int(frame["incidents"].sum()) > 0:
        filled = _area_ids_filled(t)
        present = [c for c in filled if filled[c]]
        raise DataError(
            f"area: none of these incidents has a {area} id; expected an area column they fill "
            f"({', '.join(present) or 'none is filled'}), got {area!r}"
        )
    return frame.loc[keep].reset_index(drop=True)


def default_area(t: Any, con: duckdb.DuckDBPyConnection | None = None) -> str | None:
    """The area column the ``area = auto`` setting stands for (None when the incidents fill none).

    With a warehouse (``con``), a column that has a loaded area set comes first (its boundaries and populations
    give maps and rates); then the column the incidents fill most. Ties go to the finer-grained, more commonly
    published unit, in the order community area, neighbourhood, district, beat, census tract.
    """
    order = ("community_area", "neighbourhood", "district", "beat", "census_tract")
    filled = _area_ids_filled(t)
    with_sets: set[str] = set()
    if con is not None:
        with_sets = {str(r[0]) for r in con.execute("SELECT DISTINCT area_kind FROM areas").fetchall()}
    ranked = sorted(filled, key=lambda c: (c not in with_sets, -filled[c], order.index(c)))
    best = next((c for c in ranked if filled[c]), None)
    return best


@compiled_query(shapes=[{"columns": list(AREA_COLUMNS)}])
def _area_ids_filled_expr(t: Any, *, columns: Sequence[str]) -> Any:
    return t.aggregate(**{c: t[c].count() for c in columns})


def _area_ids_filled(t: Any) -> dict[str, int]:
    """How many incidents of ``t`` carry an id of each area column it has (in the order of AREA_COLUMNS)."""
    columns = [c for c in AREA_COLUMNS if c in t.columns]
    row = run(_area_ids_filled_expr, t, columns=columns).iloc[0]
    return {c: int(row[c]) for c in columns}


def _filled(t: Any, area: str) -> bool:
    return bool(_area_ids_filled(t).get(area, 0))


@compiled_query(sort_by=["latitude", "longitude"])
def _at_locations_expr(t: Any) -> Any:
    located = t.filter(t.latitude.notnull() & t.longitude.notnull())
    return located.group_by("latitude", "longitude").aggregate(n=located.count())


def area_totals_by_location(con: duckdb.DuckDBPyConnection, t: Any, area_set: str) -> tuple[pd.DataFrame, int]:
    """Incidents per area of ``area_set``, each located incident assigned to the polygon containing it.

    For sources whose records carry no id of these areas (e.g. Portland calls for service and the police
    districts): a point-in-polygon join (shapely STRtree) in WGS84. Returns (area, incidents) and the number
    of located incidents that fall in no area.
    """
    import json

    import numpy as np
    import pandas as pd
    import shapely

    geo = con.execute("SELECT area_id, geometry FROM areas WHERE area_set = ? ORDER BY area_id", [area_set]).df()
    polygons = shapely.from_geojson([json.dumps(json.loads(g)) for g in geo["geometry"]])
    at = run(_at_locations_expr, t)
    points = shapely.points(at["longitude"].to_numpy(), at["latitude"].to_numpy())
    tree = shapely.STRtree(polygons)
    point_idx, poly_idx = tree.query(points, predicate="within")
    # a point on a shared border lies in two polygons: count it once, in the first
    first = pd.DataFrame({"p": point_idx, "a": poly_idx}).drop_duplicates("p")
    counts = np.bincount(first["a"].to_numpy(), weights=at["n"].to_numpy()[first["p"].to_numpy()], minlength=len(geo))
    outside = int(at["n"].sum() - counts.sum())
    frame = pd.DataFrame({"area": geo["area_id"].astype(str), "incidents": counts.astype("int64")})
    return frame, outside


@records_caveats
def area_ranking(
    t: Any,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    area: str | None = None,
    area_set: str | None = None,
    top: int | None = None,
) -> AreaRankResult:
    """Areas ranked by incidents, with rates per 100,000 residents where the area set has a population.

    ``area``: the incidents' area column (default: the one they fill most). With ``area_set`` whose kind the
    incidents carry no id of, located incidents are assigned to its polygons by location instead.
    """
    from crimelens.analysis.incidents.ranking import rank_areas

    notes: list[str] = []
    by_location = False
    if area_set is not None and con is not None:
        kinds = con.execute("SELECT DISTINCT area_kind FROM areas WHERE area_set = ?", [area_set]).fetchall()
        kind = str(kinds[0][0]) if len(kinds) == 1 else None
        if kind is not None and (area is None or area == kind) and kind in AREA_COLUMNS and not _filled(t, kind):
            area, by_location = kind, True
    if area is None:
        area = default_area(t, con)
        if area is None:
            raise DataError(
                "areas: these incidents carry no area id; load boundaries with `crimelens areas FILE` and pass "
                "--areas SET to assign incidents to areas by location"
            )
    if by_location:
        assert con is not None and area_set is not None
        totals, outside = area_totals_by_location(con, t, area_set)
        chosen: str | None = area_set
        notes.append(
            f"Incidents were assigned to the {area.replace('_', ' ')}s of {area_set} by location (point in "
            f"polygon); {outside:,} located incidents fall in none of them."
        )
    else:
        totals = area_totals(t, area)
        chosen = area_set_for(con, area, area_set) if con is not None else None
    populations = None
    if chosen is not None and con is not None:
        populations = con.execute(
            "SELECT area_id, name, population FROM areas WHERE area_set = ? ORDER BY area_id", [chosen]
        ).df()
        if populations["population"].isna().all():
            populations = populations.assign(population=float("nan"))
    result = rank_areas(totals, populations, top=top)
    params = {**dict(result.params), "area": area, "area_set": chosen, "by_location": by_location}
    return replace(result, params=params, notes=(*result.notes, *notes))


@records_caveats
def concentration(
    t: Any,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    unit: Literal["grid", "area"] = "grid",
    cell_m: float = 150.0,
    area: str = "community_area",
    area_set: str | None = None,
    grid: GridCounts | None = None,
    origin: GridOrigin | None = None,
) -> ConcentrationResult:
    """The law-of-crime-concentration curve over grid cells or areas.

    Grid cells: the study area is every cell with at least one incident in ``t``'s whole period (cells with
    none are unknown land or water: the curve is conservative). Areas: every area of the area set, zeros
    included, when boundaries are loaded. ``grid``: the counts ``grid_counts(t, cell_m, period=None)`` when
    already made (a report shares them with :func:`hotspots` rather than counting twice). ``origin``: the
    source's pinned grid origin (default: the origin of ``t``'s extent).
    """
    from crimelens.analysis.incidents.spatial import concentration_curve

    if unit == "grid":
        grid = _totals_grid(t, cell_m, grid, origin)
        counts = grid.table[["cell_x", "cell_y", "incidents"]]
        # the study area: cells with at least one incident (the bounding rectangle would add lake, parks and
        # airports as zero cells and overstate concentration; this understates it a little instead)
        result = concentration_curve(counts, units_total=len(counts))
        note = (
            f"Places: the {len(counts):,} grid cells of {cell_m:g} m with at least one incident (cells with none "
            "are left out, so concentration is if anything understated); "
            f"{grid.rows_without_coordinates:,} incidents without coordinates are not in the curve."
        )
    elif unit == "area":
        totals = area_totals(t, area)
        chosen = area_set_for(con, area, area_set) if con is not None else None
        n_units = None
        note = f"Units: {area.replace('_', ' ')}s" + (
            f" of {chosen}, those without incidents included" if chosen else ""
        )
        if chosen is not None and con is not None:
            ids = {str(r[0]) for r in con.execute("SELECT area_id FROM areas WHERE area_set = ?", [chosen]).fetchall()}
            outside = sorted(set(totals["area"].astype(str)) - ids)
            n_units = len(ids) + len(outside)
            if outside:
                note += (
                    f"; {len(outside)} area id(s) with incidents are not in {chosen} and are counted as extra units: "
                    + ", ".join(outside[:10])
                    + (" …" if len(outside) > 10 else "")
                )
        result = concentration_curve(totals.rename(columns={"area": "unit"}), units_total=n_units)
    else:
        raise DataError(f"unit: expected grid or area, got {unit!r}")
    return replace(result, notes=(*result.notes, note))


@compiled_query(
    values={"limit": "limit"},
    shapes=[
        {"limited": lim, "columns": list(cols), "ties": ["source", "incident_key"]}
        for lim in (False, True)
        for cols in (("occurred_at",),)
    ],
    sort_by=lambda shape: ["latitude", "longitude", *shape["columns"]],
)
def _points_expr(t: Any, *, limit: int, limited: bool, columns: Sequence[str], ties: Sequence[str]) -> Any:
    located = t.filter(t.latitude.notnull() & t.longitude.notnull())
    if limited:
        # ties on occurred_at (whole days, whole hours) broken by the key, so the same points are kept every run
        located = located.order_by([located.occurred_at.desc(), *(located[c].desc() for c in ties)]).limit(limit)
    return located.select("latitude", "longitude", *columns)


def incident_points(
    t: Any, origin: GridOrigin, *, limit: int | None = None, columns: Sequence[str] = ("occurred_at",)
) -> pd.DataFrame:
    """Located incidents as projected points (``x_m``, ``y_m`` in the grid's plane), newest first when limited."""
    from crimelens.geo import forward

    ties = [c for c in ("source", "incident_key") if c in t.columns]
    frame = run(_points_expr, t, limit=limit or 0, limited=limit is not None, columns=list(columns), ties=ties)
    x, y = forward(frame["longitude"].to_numpy(), frame["latitude"].to_numpy(), origin.lon0, origin.lat0)
    frame["x_m"] = x
    frame["y_m"] = y
    return frame


@records_caveats
def density(
    t: Any,
    *,
    cell_m: float = 150.0,
    bandwidth_m: float | None = None,
    grid: GridCounts | None = None,
    origin: GridOrigin | None = None,
) -> KdeResult:
    """Kernel density surface (incidents per km²) of the located incidents, laid on the ``cell_m`` grid.

    Parameters
    ----------
    t : ibis.Table
        The (filtered) incidents.
    cell_m : float
        Grid cell size in metres.
    bandwidth_m : float, optional
        Kernel bandwidth in metres; default: Scott's rule on the binned counts.
    grid : GridCounts, optional
        The counts ``grid_counts(t, cell_m, period=None, origin=origin)`` when already made (a report shares
        them with :func:`concentration` and :func:`hotspots` rather than counting again).
    origin : GridOrigin, optional
        The source's pinned grid origin (:func:`crimelens.analysis.incidents.panel.source_origin`): the
        surface's cells are then the source's cells, whatever the filter. Default: the origin of ``t``'s extent.

    Returns
    -------
    KdeResult
        See :func:`crimelens.analysis.incidents.spatial.grid_density`; counted in the engine, one aggregation.
    """
    from crimelens.analysis.incidents.panel import GridPanel, grid_panel
    from crimelens.analysis.incidents.spatial import grid_density

    if grid is not None:
        panel = GridPanel.from_grid_counts(_totals_grid(t, cell_m, grid, origin))
    else:
        panel = grid_panel(t, cell_m=cell_m, period=None, origin=origin)
    return grid_density(panel, bandwidth_m=bandwidth_m)


def _totals_grid(t: Any, cell_m: float, grid: GridCounts | None, origin: GridOrigin | None = None) -> GridCounts:
    """Whole-period counts on the ``cell_m`` grid: the ones given (checked to be those), or counted now on
    ``origin`` (default: the origin of ``t``'s extent)."""
    if grid is None:
        return grid_counts(t, cell_m=cell_m, period=None, origin=origin)
    if grid.cell_m != float(cell_m) or grid.period is not None:
        raise DataError(
            f"grid: expected whole-period counts on {cell_m:g} m cells, got {grid.cell_m:g} m by {grid.period}"
        )
    if origin is not None and grid.origin != origin:
        raise DataError(f"grid: expected counts on the grid of origin {origin.to_dict()}, got {grid.origin.to_dict()}")
    return grid


@records_caveats
def hotspots(
    t: Any,
    *,
    cell_m: float = 150.0,
    neighbours: Literal["queen", "rook"] = "queen",
    permutations: int = 999,
    seed: int = 0,
    alpha: float = 0.05,
    fdr: bool = True,
    grid: GridCounts | None = None,
    origin: GridOrigin | None = None,
    study_area: Literal["footprint", "incidents", "rectangle"] = "footprint",
    footprint: Any = None,
    p_values: Literal["exact", "normal", "permutation"] = "exact",
) -> GiStarResult:
    """Getis-Ord Gi* hot and cold spots on the ``cell_m`` grid of all filtered incidents (FDR-controlled).

    Parameters
    ----------
    t : ibis.Table
        The (filtered) incidents.
    cell_m, neighbours, permutations, seed, alpha, fdr, p_values
        As :func:`crimelens.analysis.incidents.hotspots.getis_ord_gi_star` (default p-values: exact
        conditional randomisation; ``permutations`` > 0 adds the Monte Carlo ``p_sim`` beside them).
    grid : GridCounts, optional
        The counts ``grid_counts(t, cell_m, period=None, origin=origin)`` when already made (see
        :func:`concentration`).
    origin : GridOrigin, optional
        The source's pinned grid origin (:func:`crimelens.analysis.incidents.panel.source_origin`), so that the
        cells keep their ids whatever the filter; default: the origin of ``t``'s extent (or ``grid``'s, or
        ``footprint``'s).
    study_area : {'footprint', 'incidents', 'rectangle'}
        The cells tested. ``footprint`` (default): the cells with at least one incident of ``footprint``
        (default ``t``) and the cells touching them (queen), so empty cells inside the city (parks, yards) count
        0 and every inner cell keeps its 8 neighbours, while the lake and land beyond the data are left out;
        ``incidents``: the cells with at least one incident only (as :func:`concentration`; sparse data leave
        holes, and cells with few neighbours); ``rectangle``: every cell of the bounding rectangle, lake and land
        outside the city included (the behaviour before 2026-12, 64% zero cells on Toronto's 250 m grid).
    footprint : ibis.Table, optional
        The incidents whose cells make the study area: pass the source's incidents before any time or offence
        filter, so a filtered map tests the city's cells where this offence or window had none (they count 0).

    Returns
    -------
    GiStarResult
        Gi* on the whole-period totals of the grid panel (one row per study-area cell, with centres).
    """
    from crimelens.analysis.incidents.hotspots import getis_ord_gi_star, grow_study_area
    from crimelens.analysis.incidents.panel import GridPanel, grid_panel

    if study_area not in ("footprint", "incidents", "rectangle"):
        raise DataError(f"study_area: expected 'footprint', 'incidents' or 'rectangle', got {study_area!r}")
    if footprint is not None and origin is None:
        origin = grid.origin if grid is not None else data_origin(footprint)
    if grid is not None:
        panel = GridPanel.from_grid_counts(_totals_grid(t, cell_m, grid, origin))
    else:
        panel = grid_panel(t, cell_m=cell_m, period=None, origin=origin)
    whose = "" if footprint is None else " of the whole dataset (every offence and date)"
    if study_area == "rectangle":
        note = (
            "Study area: every cell of the rectangle around the incidents (lake and land outside the city included, "
            "as zeros)"
        )
    else:
        place = panel if footprint is None else grid_panel(footprint, cell_m=cell_m, period=None, origin=panel.origin)
        a, b = panel.extent, place.extent
        ring = 1 if study_area == "footprint" else 0
        union = (min(a[0], b[0]) - ring, min(a[1], b[1]) - ring, max(a[2], b[2]) + ring, max(a[3], b[3]) + ring)
        panel, place = panel.reindex(union), place.reindex(union)
        cells = (place.totals() > 0) | (panel.totals() > 0)
        if ring:
            cells = grow_study_area(cells, panel.nx, panel.ny)
            note = (
                f"Study area: the {cell_m:g} m cells with at least one incident{whose} and the cells touching them "
                "(empty cells within the city count 0; the lake and land beyond are left out)"
            )
        else:
            note = f"Study area: the {cell_m:g} m cells with at least one incident{whose}"
        panel = replace(panel, study_area=cells)
    result = getis_ord_gi_star(
        panel, neighbours=neighbours, cell_m=cell_m, permutations=permutations, seed=seed, alpha=alpha, fdr=fdr,
        p_values=p_values, study_area="rectangle" if study_area == "rectangle" else "data",
    )  # fmt: skip
    params = {
        **result.params,
        **_grid_params(panel),
        "study_area": study_area,
        "rows_without_coordinates": panel.rows_without_coordinates,
    }
    return replace(result, params=params, notes=(note + ".", *result.notes))


def _grid_params(panel: Any) -> dict[str, Any]:
    """What grid results record of their panel: cell size, period, origin."""
    return {"cell_m": panel.cell_m, "period": panel.period, "by_offence": False, **panel.origin.to_dict()}


@records_caveats
def persistent(
    t: Any,
    *,
    cell_m: float = 250.0,
    period: Literal["week", "month", "year"] = "month",
    method: Literal["top", "gi"] = "top",
    top_share: float = 0.05,
    min_periods_share: float = 0.75,
    seed: int = 0,
    origin: GridOrigin | None = None,
) -> PersistentCellsResult:
    """Grid cells that stay hot across periods (top share of cells, or Gi* after FDR, in most periods).

    Parameters
    ----------
    t : ibis.Table
        The (filtered) incidents.
    cell_m, period
        The grid panel: cell size in metres, and the period of its columns.
    method, top_share, min_periods_share, seed
        As :func:`crimelens.analysis.incidents.hotspots.persistent_cells`.
    origin : GridOrigin, optional
        The source's pinned grid origin (:func:`crimelens.analysis.incidents.panel.source_origin`); default:
        the origin of ``t``'s extent.

    Returns
    -------
    PersistentCellsResult
        Cells of the panel hot at least once, with their centres.
    """
    from crimelens.analysis.incidents.hotspots import persistent_cells
    from crimelens.analysis.incidents.panel import grid_panel

    panel = grid_panel(t, cell_m=cell_m, period=period, origin=origin)
    result = persistent_cells(panel, method=method, top_share=top_share, min_periods_share=min_periods_share, seed=seed)
    return replace(result, params={**result.params, **_grid_params(panel)})


@records_caveats
def near_repeat(
    t: Any,
    *,
    distance_bands_m: Sequence[float] = (0, 100, 200, 400),
    time_bands_days: Sequence[float] = (0, 7, 14, 28),
    permutations: int = 999,
    seed: int = 0,
    max_points: int = KNOX_MAX_POINTS,
    origin: GridOrigin | None = None,
    keep_duplicates: bool = False,
    method: str = "auto",
) -> KnoxResult:
    """Knox near-repeat test on the located incidents (the most recent ``max_points`` when there are more).

    ``origin``: the plane distances are measured in (the source's pinned origin; default: that of ``t``'s
    extent, one more query). The projection is equal-area and true to scale near the origin's latitude.
    ``keep_duplicates``: keep exact same-place, same-day duplicates (default: counted once, see
    :func:`~crimelens.analysis.incidents.knox.knox_test`). ``method``: exact permutation moments, Monte Carlo
    permutations, or ``auto`` (moments when every cell expects enough pairs), as in ``knox_test``.
    """
    from crimelens.analysis.incidents.knox import knox_test

    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
        raise DataError(f"max_points: expected a whole number ≥ 2 (e.g. {KNOX_MAX_POINTS}), got {max_points!r}")
    ext = extent(t)
    n_located = int(ext["rows_located"])
    if origin is None:
        origin = data_origin(t)
    points = incident_points(t, origin, limit=max_points if n_located > max_points else None)
    result = knox_test(
        points,
        distance_bands_m=tuple(distance_bands_m),
        time_bands_days=tuple(time_bands_days),
        permutations=permutations,
        seed=seed,
        keep_duplicates=keep_duplicates,
        method=method,
    )
    notes = result.notes
    if n_located > max_points:
        first = points["occurred_at"].min()
        notes = (
            *notes,
            f"Only the {max_points:,} most recent of {n_located:,} located incidents were tested "
            f"(from {first:%Y-%m-%d}).",
        )
    return replace(result, notes=notes, params={**result.params, "points": len(points), "located": n_located})
