"""The report's incident section: when and where incidents concentrate, for one incident dataset.

Blocks, in order: what was loaded (counts, offence mix, rows dropped or repaired by reason), when (hour ×
weekday heat map, seasonality), where (areas ranked with rates and a choropleth when boundaries are loaded;
the concentration curve; a kernel density map; Gi* hot and cold spots with the false discovery rate
controlled; persistent hot spots) and near repeats (Knox test). Maps are filled cells or polygons drawn
offline. A simulated dataset is labelled as such in the section title, its introduction and on every map.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import duckdb
import pandas as pd

from crimelens.analysis.incidents.scope import IncidentFilter, area_set_for
from crimelens.config import SETTINGS, get_setting
from crimelens.errors import DataError
from crimelens.insights.incidents import IncidentResults
from crimelens.report.blocks import Block, PageSection, Runner
from crimelens.report.charts import slug
from crimelens.report.maps import (
    GI_CLASSES,
    PERSISTENCE_CLASSES,
    AreaShape,
    area_map_figure,
    grid_map_figure,
    load_area_shapes,
    matrix_figure,
)
from crimelens.report.tables import render_table
from crimelens.schema import OFFENCE_LABELS

__all__ = ["IncidentReportParams", "incident_limitations", "incident_section"]

#: How many of a grid map's top cells carry the name of the place most of their incidents fall in.
_LABELLED_CELLS = 12
#: Fewest months of data a seasonal profile is charted from (each calendar month seen at least once).
_MIN_SEASON_MONTHS = 12


@dataclass(frozen=True)
class IncidentReportParams:
    """What the incident section computes with (all recorded in the report's metadata).

    Cell size, permutations, seed and area column are settings (:mod:`crimelens.config`), the same the CLI
    uses: :meth:`from_settings` resolves them (flag > environment > config file > default).
    """

    cell_m: float = SETTINGS["cell_m"].default
    permutations: int = SETTINGS["permutations"].default
    seed: int = SETTINGS["seed"].default
    area: str = SETTINGS["area"].default
    alpha: float = 0.05
    persistence_period: Literal["week", "month", "year"] = "month"
    knox_max_points: int = 20_000
    since: str | None = None  # first day included (YYYY-MM-DD); None: from the first incident
    until: str | None = None  # last day included (YYYY-MM-DD); None: to the last incident
    offences: tuple[str, ...] = ()  # only these canonical offences; empty: every offence

    def incident_filter(self) -> IncidentFilter:
        """The date range as the incident analyses' filter (a bad date is one clear error)."""
        import datetime as dt

        def day(value: str | None, name: str) -> dt.date | None:
            if value is None:
                return None
            try:
                return dt.date.fromisoformat(str(value))
            except ValueError:
                raise DataError(f"{name}: expected a date as YYYY-MM-DD, got {value!r}") from None

        return IncidentFilter(tuple(self.offences), start=day(self.since, "since"), end=day(self.until, "until"))

    @classmethod
    def from_settings(cls) -> IncidentReportParams:
        """The parameters with cell size, permutations, seed and area taken from the settings."""
        return cls(
            cell_m=float(get_setting("cell_m")),
            permutations=int(get_setting("permutations")),
            seed=int(get_setting("seed")),
            area=str(get_setting("area")),
        )


@dataclass(frozen=True)
class _MapContext:
    """What every grid map of one source needs: the warehouse, the grid's origin and the area column."""

    con: duckdb.DuckDBPyConnection
    source: str
    origin: Any
    area: str | None
    area_set: str | None
    simulated: bool
    areas: tuple[AreaShape, ...] = ()


def _place_labels(ctx: _MapContext, cells: pd.DataFrame, cell_m: float, order: str) -> pd.DataFrame | None:
    """The top cells by ``order`` with the name of the place most of their incidents fall in (label column)."""
    from crimelens.analysis.incidents.places import cell_places

    if ctx.area is None or ctx.origin is None or cells.empty or order not in cells.columns:
        return None
    top = cells.sort_values(order, ascending=False).head(_LABELLED_CELLS)
    names = cell_places(ctx.con, ctx.source, top, cell_m, ctx.origin, ctx.area, ctx.area_set)
    out = top.assign(label=names).dropna(subset=["label"])
    # one label per place: the busiest of its cells carries it (two labels of one name side by side only clutter)
    return out.drop_duplicates("label")[["x_m", "y_m", "label"]]


def _with_places(ctx: _MapContext, cells: pd.DataFrame, cell_m: float, order: str, n: int = 15) -> pd.DataFrame:
    """``cells`` with a ``place`` column filled for the ``n`` top cells by ``order`` (for tooltips and tables)."""
    from crimelens.analysis.incidents.places import cell_places

    out = cells.copy()
    out["place"] = None
    if ctx.area is None or ctx.origin is None or cells.empty or order not in cells.columns:
        return out
    top = cells.sort_values(order, ascending=False).head(n)
    out.loc[top.index, "place"] = cell_places(ctx.con, ctx.source, top, cell_m, ctx.origin, ctx.area, ctx.area_set)
    return out


def _source_info(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, Any]:
    row = con.execute(
        "SELECT format, timezone, simulated, taxonomy_version, description FROM incident_sources WHERE source = ?",
        [source],
    ).fetchall()
    if not row:
        return {"format": "?", "timezone": "?", "simulated": False, "taxonomy_version": "?", "description": ""}
    fmt, tz, simulated, version, description = row[0]
    return {"format": fmt, "timezone": tz, "simulated": bool(simulated), "taxonomy_version": version,
            "description": description}  # fmt: skip


def _reasons(con: duckdb.DuckDBPyConnection, source: str) -> pd.DataFrame:
    return con.execute(
        "SELECT r.reason, r.action, sum(r.rows) AS rows FROM load_reasons r JOIN loads l USING (load_id) "
        "WHERE l.source = ? GROUP BY ALL ORDER BY rows DESC",
        [source],
    ).df()


def _area_kind(t: Any, con: duckdb.DuckDBPyConnection, area: str) -> tuple[str | None, str | None]:
    """The area column (the ``area`` setting, or the one the incidents fill most) and its loaded area set."""
    from crimelens.analysis.incidents.scope import default_area

    chosen = default_area(t, con) if area == "auto" else area
    if chosen is None:
        return None, None
    return chosen, area_set_for(con, chosen, None)


def _overview(run: Runner, con: duckdb.DuckDBPyConnection, t: Any, source: str, info: dict[str, Any]) -> Block:
    from crimelens.analysis.incidents.aggregate import execute
    from crimelens.analysis.incidents.scope import coverage, offence_counts

    block = Block("What was loaded", anchor=f"{slug(source)}-loaded")
    cov = run.run(f"incidents.coverage[{source}]", coverage, t)
    mix = run.run(f"incidents.offence_counts[{source}]", offence_counts, t)
    if cov.value is None or mix.value is None:
        block.unavailable = cov.unavailable("The incident summary") or mix.unavailable("The offence mix")
        return block
    first, last, n = cov.value
    # counted on the incidents the report looks at (its --since/--until), in the engine
    counts = execute(
        t.aggregate(located=t.latitude.notnull().sum(), day_only=(t.time_precision == "day").sum()), sort_by=[]
    )
    located = (int(counts["located"].fillna(0).iloc[0]), int(counts["day_only"].fillna(0).iloc[0]))
    block.paragraphs.append(
        f"{n:,} incidents from {first:%d %B %Y} to {last:%d %B %Y} (local time, {info['timezone']}); "
        f"{located[0]:,} ({located[0] / n:.0%}) have coordinates"
        + (f", {located[1]:,} are known only to the day" if located[1] else "")
        + f". Offences follow the {info['format']} mapping, version {info['taxonomy_version']}."
    )
    table = mix.value.assign(label=mix.value["offence"].map(lambda o: OFFENCE_LABELS.get(o, o)))
    block.tables.append(render_table(table, columns=["label", "incidents", "share"], labels={"label": "Offence"}))
    reasons = _reasons(con, source)
    if not reasons.empty:
        parts = [
            f"{int(rows):,} {action} ({str(reason).replace('_', ' ')})"
            for reason, action, rows in reasons.itertuples(index=False, name=None)
        ]
        block.notes.append("Rows at load time: " + "; ".join(parts) + ". Nothing is dropped silently.")
    return block


def _when(run: Runner, t: Any, source: str, found: dict[str, Any]) -> Block:
    from crimelens.analysis.incidents.scope import coverage, seasonality, weekly_profile

    block = Block("When", anchor=f"{slug(source)}-when")
    prof = run.run(f"incidents.weekly_profile[{source}]", weekly_profile, t)
    if prof.value is not None:
        found["profile"] = prof.value
        table = prof.value.table
        block.figures.append(
            matrix_figure(
                table, chart_id=run.next_id(), row="weekday_name", column="hour", value="incidents",
                title=prof.value.title, caption="Incidents by hour of day and day of week (local time).",
                x_label="hour of day (local)", legend_label="incidents", fallback=run.static_svg,
            )
        )  # fmt: skip
        block.notes.extend(prof.value.notes)
        block.caveats.extend(prof.caveats)
    else:
        block.unavailable = prof.unavailable("The hour × weekday profile")
    cov = run.run(f"incidents.coverage[{source}]", coverage, t)
    months = _months_covered(cov.value)
    if months is not None and months < _MIN_SEASON_MONTHS:
        block.notes.append(
            f"No seasonal profile: the data cover {months} month{'s' if months != 1 else ''}, and a season can "
            f"only be told from a one-off month with at least {_MIN_SEASON_MONTHS} months (every calendar month "
            "seen once)."
        )
        return block
    season = run.run(f"incidents.seasonality[{source}]", seasonality, t)
    if season.value is not None:
        block.figures.extend(
            run.figure(_seasonal_spec(season.value), caption="Seasonal index adjusted for month length; 1 = average.")
        )
        block.notes.extend(season.value.notes)
        block.caveats.extend(season.caveats)
    return block


def _months_covered(cov: Any) -> int | None:
    """Calendar months from the first incident's month to the last's, both counted (None when unknown)."""
    if cov is None:
        return None
    first, last = pd.Timestamp(cov[0]), pd.Timestamp(cov[1])
    return (last.year - first.year) * 12 + last.month - first.month + 1


def _seasonal_spec(result: Any) -> Any:
    from crimelens.analysis.result import ChartSpec

    return ChartSpec(
        kind="bar", data=result.table, x="month_name", y="seasonal_index", title=result.title,
        x_label="", y_label="seasonal index (1 = average day)",
    )  # fmt: skip


def _areas(
    run: Runner,
    con: duckdb.DuckDBPyConnection,
    t: Any,
    source: str,
    info: dict[str, Any],
    area: str,
    area_set: str | None,
) -> Block:

    from crimelens.analysis.incidents.scope import area_ranking

    label = area.replace("_", " ")
    block = Block(f"Areas: {label}s", anchor=f"{slug(source)}-areas")
    ranked = run.run(f"incidents.area_ranking[{source}]", area_ranking, t, con=con, area=area, area_set=area_set)
    if ranked.value is None:
        block.unavailable = ranked.unavailable("The area ranking")
        return block
    table = ranked.value.table
    has_rate = "rate" in table.columns and table["rate"].notna().any()
    cols = [
        "rank",
        "area",
        "name",
        "incidents",
        "share",
        *(["population", "rate", "rate_low", "rate_high"] if has_rate else []),
    ]
    block.tables.append(render_table(table, columns=cols, max_rows=10))
    if area_set is not None:
        geo = con.execute(
            "SELECT area_id, name, geometry FROM areas WHERE area_set = ? ORDER BY area_id", [area_set]
        ).df()
        value_col = "rate" if has_rate else "incidents"
        keep = [c for c in ("area", "incidents", "share", "population", "rate") if c in table.columns]
        by_id = table[keep].assign(area=table["area"].astype(str)).drop_duplicates("area").set_index("area")
        shown = pd.DataFrame({"area": geo["area_id"].astype(str), "name": geo["name"].fillna(geo["area_id"])})
        shown = shown.join(by_id, on="area")
        title_ = f"{'Rate per 100,000 residents' if has_rate else 'Incidents'} by {label}"
        block.figures.append(
            area_map_figure(
                [json.loads(g) for g in geo["geometry"]], shown, chart_id=run.next_id(), value=value_col,
                title=title_, caption=f"{label.capitalize()}s of {area_set}; white: no incidents or no data.",
                legend_label="per 100,000" if has_rate else "incidents", simulated=info["simulated"],
            )
        )  # fmt: skip
    block.notes.extend(ranked.value.notes)
    block.caveats.extend(ranked.caveats)
    return block


def _located_areas(
    run: Runner, t: Any, source: str, info: dict[str, Any], shapes: Sequence[AreaShape], skip: str | None
) -> list[Block]:
    """A choropleth of incidents per polygon for every loaded area set that the incidents' locations fall in but
    whose ids they do not carry (e.g. Portland police districts for calls that name census tracts)."""
    from crimelens.analysis.incidents.places import points_in_areas

    sets = {a.area_set: a.kind for a in shapes if a.area_set != skip}
    if not sets:
        return []
    pts = t.filter(t.latitude.notnull() & t.longitude.notnull()).select("longitude", "latitude")
    pts = pts.to_pyarrow().to_pandas()  # ibis' to_pandas trips a pandas 3 deprecation warning
    if pts.empty:
        return []
    x0, x1 = float(pts["longitude"].min()), float(pts["longitude"].max())
    y0, y1 = float(pts["latitude"].min()), float(pts["latitude"].max())
    blocks = []
    for area_set, kind in sets.items():
        members = [a for a in shapes if a.area_set == area_set]
        if not any(b[0] <= x1 and b[2] >= x0 and b[1] <= y1 and b[3] >= y0 for b in (a.bounds for a in members)):
            continue  # another city's areas
        geo = pd.DataFrame(
            {
                "area_id": [a.area_id for a in members],
                "name": [a.name for a in members],
                "geometry": [a.geometry for a in members],
            }
        )
        table, outside = points_in_areas(pts["longitude"], pts["latitude"], geo)
        inside = int(table["incidents"].sum())
        if inside == 0:
            continue
        label = kind.replace("_", " ")
        block = Block(f"Incidents by {label} ({area_set})", anchor=f"{slug(source)}-{slug(area_set)}")
        top = table.sort_values(["incidents", "name"], ascending=[False, True]).iloc[0]
        block.paragraphs.append(
            f"The {len(table)} {label}s of {area_set}, with the located incidents that fall inside each (the "
            f"incidents carry no {label} of their own, so each is placed by its coordinates). The busiest is "
            f"{top['name']} with {int(top['incidents']):,} ({float(top['share']):.0%})."
        )
        if outside:
            block.notes.append(
                f"{outside:,} of {len(pts):,} located incidents fall outside every {label} of {area_set} and are not "
                "counted on this map."
            )
        block.notes.append("Counts of located incidents, not rates: areas with more residents or visitors record more.")
        block.figures.append(
            area_map_figure(
                [a.geometry for a in members], table, chart_id=run.next_id(), value="incidents",
                title=f"Incidents by {label}, {area_set}",
                caption=f"{label.capitalize()}s of {area_set} (loaded boundaries); white: no incidents.",
                legend_label="incidents", simulated=info["simulated"],
                data_table=render_table(
                    table.sort_values("incidents", ascending=False), columns=["area", "name", "incidents", "share"],
                    max_rows=10,
                ),
            )
        )  # fmt: skip
        blocks.append(block)
    return blocks


def _concentration(
    run: Runner, con: duckdb.DuckDBPyConnection, t: Any, source: str, p: IncidentReportParams, found: dict[str, Any]
) -> Block:
    from crimelens.analysis.incidents.scope import concentration

    block = Block("Concentration", anchor=f"{slug(source)}-concentration")
    res = run.run(
        f"incidents.concentration[{source}]", concentration, t, con=con, unit="grid", cell_m=p.cell_m,
        grid=found.get("grid"),
    )  # fmt: skip
    if res.value is None:
        block.unavailable = res.unavailable("The concentration curve")
        return block
    r = found["concentration"] = res.value
    block.paragraphs.append(
        f"The busiest 1% of {p.cell_m:g} m cells hold {r.top_1pct:.0%} of located incidents, the busiest 5% hold "
        f"{r.top_5pct:.0%} and the busiest 10% hold {r.top_10pct:.0%}; half of all incidents fall in "
        f"{r.units_for_half:.1%} of the cells (Gini {r.gini:.2f})."
    )
    block.figures.extend(run.figure(r.chart(), caption="The law of crime concentration (Weisburd 2015)."))
    block.notes.extend(r.notes)
    block.caveats.extend(res.caveats)
    return block


def _density(
    run: Runner,
    t: Any,
    source: str,
    ctx: _MapContext,
    p: IncidentReportParams,
    grid: Any = None,
) -> Block:
    from crimelens.analysis.incidents.scope import density

    block = Block("Kernel density", anchor=f"{slug(source)}-density")
    res = run.run(f"incidents.density[{source}]", density, t, cell_m=p.cell_m, grid=grid, origin=ctx.origin)
    if res.value is None:
        block.unavailable = res.unavailable("The density surface")
        return block
    r = res.value
    value = next(c for c in r.table.columns if c.startswith("density"))
    cells = r.table[pd.to_numeric(r.table[value], errors="coerce") > 0]
    # cells below 2% of the peak would draw as white on white: leave them out and say so
    peak = float(pd.to_numeric(cells[value]).max()) if len(cells) else 0.0
    drawn = cells[pd.to_numeric(cells[value]) >= 0.02 * peak] if peak > 0 else cells
    tips = [c for c in ("cell_x", "cell_y", "incidents", "place") if c in drawn.columns or c == "place"]
    block.figures.append(
        grid_map_figure(
            _with_places(ctx, drawn, p.cell_m, value), chart_id=run.next_id(), value=value, cell_m=p.cell_m,
            title=r.title, legend_label="incidents per km²", con=ctx.con, origin=ctx.origin, areas=ctx.areas,
            labels=_place_labels(ctx, drawn, p.cell_m, value), tooltip=tips, simulated=ctx.simulated,
            caption=f"Gaussian kernel, bandwidth {r.bandwidth_m:,.0f} m, on {p.cell_m:g} m cells; "
            f"{len(cells) - len(drawn):,} cells under 2% of the peak density are not drawn.",
        )
    )  # fmt: skip
    block.notes.extend(r.notes)
    block.caveats.extend(res.caveats)
    return block


def _gi(run: Runner, t: Any, source: str, ctx: _MapContext, p: IncidentReportParams, found: dict[str, Any]) -> Block:
    from crimelens.analysis.incidents.scope import hotspots

    block = Block("Hot and cold spots (Getis-Ord Gi*)", anchor=f"{slug(source)}-gi")
    res = run.run(
        f"incidents.hotspots[{source}]", hotspots, t, cell_m=p.cell_m, permutations=p.permutations, seed=p.seed,
        alpha=p.alpha, grid=found.get("grid"),
    )  # fmt: skip
    if res.value is None:
        block.unavailable = res.unavailable("Gi*")
        return block
    r = found["gi"] = res.value
    block.paragraphs.append(
        f"{r.n_hot:,} cells are hot spots and {r.n_cold:,} are cold spots: clusters of {p.cell_m:g} m cells with "
        f"more (fewer) incidents than the city-wide mean, after controlling the false discovery rate at {p.alpha:g} "
        "across every cell (Benjamini–Hochberg)."
    )
    significant = r.table[r.table["hotspot"] != "not significant"]
    cells = _with_places(ctx, significant, p.cell_m, "z")
    hot = cells[cells["hotspot"] == "hot"].sort_values("z", ascending=False)
    table = render_table(hot, columns=["cell_x", "cell_y", "place", "lat", "lon", "incidents", "z", "q_value"],
                         max_rows=15)  # fmt: skip
    tips = ["cell_x", "cell_y", "place", "incidents", "z", "q_value"]
    block.figures.append(
        grid_map_figure(
            cells, chart_id=run.next_id(), value="hotspot", cell_m=p.cell_m, title=r.title, categorical=GI_CLASSES,
            legend_label="Gi*", con=ctx.con, origin=ctx.origin, areas=ctx.areas, tooltip=tips, simulated=ctx.simulated,
            labels=_place_labels(ctx, hot, p.cell_m, "z"), table=table, order="incidents", footprint=r.table,
            caption=f"Hot (red) and cold (blue) spots; the {len(r.table) - len(significant):,} cells that are not "
            "significant are not drawn. Click a legend entry to show one class.",
        )
    )  # fmt: skip
    block.notes.extend(r.notes)
    block.caveats.extend(res.caveats)
    return block


def _persistent(run: Runner, t: Any, source: str, ctx: _MapContext, p: IncidentReportParams) -> Block:
    from crimelens.analysis.incidents.scope import persistent

    block = Block("Persistent hot spots", anchor=f"{slug(source)}-persistent")
    res = run.run(
        f"incidents.persistent[{source}]", persistent, t, cell_m=p.cell_m, period=p.persistence_period, seed=p.seed,
        origin=ctx.origin,
    )  # fmt: skip
    if res.value is None:
        block.unavailable = res.unavailable("Persistent hot spots")
        return block
    r = res.value
    classes = r.table[r.table["status"].isin(list(PERSISTENCE_CLASSES))]
    if not classes.empty:
        cells = _with_places(ctx, classes, p.cell_m, "incidents")
        stable = cells[cells["status"] == "stable"].sort_values("incidents", ascending=False)
        table = render_table(
            stable, columns=["cell_x", "cell_y", "place", "lat", "lon", "periods_hot", "share_of_periods", "incidents"],
            max_rows=15,
        )  # fmt: skip
        tips = ["cell_x", "cell_y", "place", "status", "periods_hot", "share_of_periods", "incidents"]
        block.figures.append(
            grid_map_figure(
                cells, chart_id=run.next_id(), value="status", cell_m=p.cell_m, title=r.title,
                categorical=PERSISTENCE_CLASSES, legend_label="hot in most periods", con=ctx.con, origin=ctx.origin,
                areas=ctx.areas,
                labels=_place_labels(ctx, stable, p.cell_m, "incidents"), tooltip=tips, simulated=ctx.simulated,
                table=table, order="incidents", footprint=r.table,
                caption=f"Cells in the busiest 5% of cells per {p.persistence_period}.",
            )
        )  # fmt: skip
    block.paragraphs.append(r.title + ".")
    block.notes.extend(r.notes)
    block.caveats.extend(res.caveats)
    return block


def _knox(run: Runner, t: Any, source: str, p: IncidentReportParams, found: dict[str, Any]) -> Block:
    from crimelens.analysis.incidents.scope import near_repeat

    block = Block("Near repeats (Knox test)", anchor=f"{slug(source)}-knox")
    res = run.run(
        f"incidents.near_repeat[{source}]", near_repeat, t, permutations=p.permutations, seed=p.seed,
        max_points=p.knox_max_points,
    )  # fmt: skip
    if res.value is None:
        block.unavailable = res.unavailable("The Knox test")
        return block
    r = found["knox"] = res.value
    block.figures.extend(run.figure(r.chart()))
    cols = ["distance_band", "time_band", "observed", "expected", "knox_ratio", "p_value"]
    block.tables.append(render_table(r.table, columns=cols, max_rows=None))
    block.notes.extend(r.notes)
    block.caveats.extend(res.caveats)
    return block


def incident_section(
    con: duckdb.DuckDBPyConnection, source: str, run: Runner, params: IncidentReportParams | None = None
) -> tuple[PageSection, IncidentResults]:
    """The report section on one incident dataset (``source``), and the results its findings are drawn from."""
    from crimelens.analysis.incidents.aggregate import grid_counts
    from crimelens.analysis.incidents.panel import source_origin
    from crimelens.engine import incident_table

    p = params or IncidentReportParams.from_settings()
    info = _source_info(con, source)
    title = f"Incidents: {source}" + (" (SIMULATED DATA)" if info["simulated"] else "")
    section = PageSection(f"incidents-{slug(source)}", title)
    if info["simulated"]:
        section.intro.append(
            "These incidents are SIMULATED by crimelens (a seeded self-exciting point process in a synthetic city): "
            "they show what the analyses do, not where crime happens anywhere real."
        )
    section.intro.append(
        "Recorded incidents measure what was reported to and recorded by the police: they reflect reporting "
        "habits and where officers patrol as well as crime itself. Hot spots found here are places to look at "
        "more closely, not proof of risk; directing patrols by them can feed back into future data."
    )
    found: dict[str, Any] = {}
    flt = p.incident_filter()
    with incident_table(con, "duckdb", source=source) as whole:
        t = flt.apply(whole)
        if flt.offences:
            labels = ", ".join(OFFENCE_LABELS.get(o, o).lower() for o in flt.offences)
            section.title += f", {labels}"
            section.intro.append(f"Only incidents of {labels} (--offence) are analysed here.")
        if flt.start is not None or flt.end is not None:
            first, last = flt.span(whole)
            section.title += f", {first:%d %b %Y} to {last:%d %b %Y}"
            section.intro.append(
                f"Only the incidents from {first:%d %B %Y} to {last:%d %B %Y} (--since/--until) are analysed here."
            )
        area, area_set = _area_kind(t, con, p.area)
        section.blocks.append(_overview(run, con, t, source, info))
        section.blocks.append(_when(run, t, source, found))
        if area is not None:
            section.blocks.append(_areas(run, con, t, source, info, area, area_set))
        shapes = run.memo(load_area_shapes, con)  # parsed once per report, reused by every map
        section.blocks.extend(_located_areas(run, t, source, info, shapes, skip=area_set))
        located = con.execute(
            "SELECT count(*) FROM incidents WHERE source = ? AND latitude IS NOT NULL", [source]
        ).fetchall()[0][0]
        if located:
            # every grid on the origin pinned for the source, so cells match the CLI's whatever its filter
            origin = source_origin(t, con=con, source=source)
            # one count of the whole-period grid, shared by the concentration curve, the density surface and Gi*
            found["grid"] = run.run(
                f"incidents.grid_counts[{source}]", grid_counts, t, cell_m=p.cell_m, period=None, origin=origin
            ).value
            ctx = _MapContext(con, source, origin, area, area_set, bool(info["simulated"]), shapes)
            section.blocks.append(_concentration(run, con, t, source, p, found))
            section.blocks.append(_density(run, t, source, ctx, p, found.get("grid")))
            section.blocks.append(_gi(run, t, source, ctx, p, found))
            section.blocks.append(_persistent(run, t, source, ctx, p))
            section.blocks.append(_knox(run, t, source, p, found))
        else:
            section.intro.append(
                "This dataset has no coordinates, so the grid maps, hot spots and near repeats are left out."
            )
    results = IncidentResults(
        source=source,
        simulated=bool(info["simulated"]),
        cell_m=p.cell_m,
        alpha=p.alpha,
        concentration=found.get("concentration"),
        hotspots=found.get("gi"),
        profile=found.get("profile"),
        near_repeat=found.get("knox"),
    )
    return section, results


def incident_limitations(simulated: bool) -> list[tuple[str, str]]:
    """Limitations of incident analyses, as (title, text) pairs."""
    items = [
        (
            "Recorded incidents are not all crime",
            "Incident data hold what was reported and recorded. Under-reporting varies by offence and "
            "neighbourhood, and more patrols produce more records: maps and hot spots partly show policing.",
        ),
        (
            "Locations are approximate",
            "Publishers move locations to the block or the nearest intersection for privacy, so cells of under "
            "about 100 m claim more precision than the data have.",
        ),
        (
            "Many cells are tested at once",
            "Gi* tests every cell; the false discovery rate is controlled (Benjamini–Hochberg), but sparse cells "
            "make the normal approximation rough: prefer larger cells or longer periods when counts are small.",
        ),
    ]
    if simulated:
        items.insert(
            0,
            ("Simulated data", "Incident sections marked SIMULATED use synthetic incidents made by crimelens."),
        )
    return items
