"""`crimelens incidents …`: when and where incident-level crime concentrates, on DuckDB or Spark.

Every command takes the same scope options (warehouse, source, engine, offences, dates), runs one function of
:mod:`crimelens.analysis.incidents`, and prints a table (or ``--json``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NamedTuple, TypeVar, cast

import typer
from rich.markup import escape

from crimelens.cli.options import (
    AreaOpt,
    CellOpt,
    CsvOpt,
    DbOpt,
    EngineOpt,
    JsonOpt,
    LimitOpt,
    ParquetOpt,
    PermOpt,
    SeedOpt,
    SinceOpt,
    SourceOpt,
    UntilOpt,
)
from crimelens.cli.options import IncidentOffenceOpt as OffenceOpt
from crimelens.cli.render import busy, emit, err, out, show_result, show_table
from crimelens.cli.support import command_name, guarded
from crimelens.config import get_setting
from crimelens.errors import DataError

__all__ = ["incidents_app"]

incidents_app = typer.Typer(
    name="incidents",
    help=(
        "Incident-level analyses (load incidents first with `crimelens ingest FILE --format chicago|toronto-mci|"
        "houston|nij-portland|mapped-csv`): counts by area, period, grid cell or hexagon; hour × weekday and "
        "seasonal profiles; area rankings with rates; concentration; kernel density; Gi* hot spots; persistent "
        "hot spots; near-repeat (Knox) test. Add --engine spark to run the counting on Spark."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


def _command(name: str) -> Callable[[F], F]:
    return guarded(incidents_app, name)


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise DataError(f"{option}: expected a date YYYY-MM-DD, got {value!r}") from None


class _Scope(NamedTuple):
    con: Any  # the warehouse connection (read-only), or None with --parquet
    table: Any  # the incidents after the filter (an IncidentScope on the warehouse with DuckDB, else Ibis)
    unfiltered: Any  # the source's incidents before the filter (likewise)
    filter: Any  # the IncidentFilter
    info: dict[str, Any]  # what --json reports as "scope"
    origin: Callable[[], Any]  # the source's pinned grid origin (looked up on first call), for every grid analysis


@contextmanager
def _scope(
    db: Path | None,
    source: str | None,
    engine: str,
    parquet: Path | None,
    offence: list[str] | None,
    since: str | None,
    until: str | None,
    *,
    require_rows: bool = True,
) -> Iterator[_Scope]:
    """The warehouse, the filtered incidents and their description for one command.

    ``require_rows``: a filter that leaves no incident is an error (statistics of nothing are not results).
    """
    import functools

    from crimelens.analysis.incidents.panel import source_origin
    from crimelens.analysis.incidents.scope import IncidentFilter, coverage
    from crimelens.engine import incident_scope, incident_table
    from crimelens.warehouse import connect, resolve_incident_source

    flt = IncidentFilter(tuple(offence or ()), _date(since, "--since"), _date(until, "--until"))
    con = None
    src = source
    if parquet is None:
        con = connect(Path(get_setting("db", str(db) if db is not None else None)), read_only=True)
    try:
        if con is not None:
            src = resolve_incident_source(con, source)
        # on the warehouse with DuckDB, a scope: the queries run as SQL compiled ahead of time, without Ibis
        incidents = (
            incident_scope(con, source=src)
            if con is not None and engine == "duckdb"
            else incident_table(con, engine, source=src, parquet=parquet)  # type: ignore[arg-type]
        )
        with incidents as t:
            filtered = flt.apply(t)
            if require_rows and flt != IncidentFilter():
                try:
                    coverage(filtered)
                except DataError:
                    raise DataError(
                        f"no incidents of {src or parquet} match the filter: expected at least one incident of "
                        f"{flt.describe()}, got none; widen --offence, --since or --until"
                    ) from None
            info = {"source": src, "engine": engine, "filter": flt.to_dict()}
            # cells keep their ids whatever the filter: the origin pinned for the source (or its whole extent)
            origin = functools.cache(functools.partial(source_origin, t, con=con, source=src))
            # a spinner on a terminal while the command computes (never with --json/--csv); it ends before output
            with busy(f"crimelens {command_name()}: {flt.describe()} of {src or parquet}"):
                yield _Scope(con, filtered, t, flt, info, origin)
    finally:
        if con is not None:
            con.close()


def _emit(
    result: Any, scope: _Scope, as_json: bool, as_csv: bool, limit: int, columns: list[str] | None = None
) -> None:
    emit(result, as_json=as_json, as_csv=as_csv, limit=limit, columns=columns, scope=scope.info)


def _cell(cell: float | None) -> float:
    return float(get_setting("cell_m", cell))


def _permutations(permutations: int | None) -> int:
    return int(get_setting("permutations", permutations))


def _seed(seed: int | None) -> int:
    return int(get_setting("seed", seed))


@_command("counts")
def counts_cmd(
    by: Annotated[str, typer.Option("--by", help="area, grid or h3.")] = "area",
    area: Annotated[
        str, typer.Option("--area", help="Area column: community_area, district, beat, neighbourhood, census_tract.")
    ] = "community_area",
    period: Annotated[
        str | None, typer.Option("--period", help="hour, day, week (from Monday), month or year; 'none' for totals.")
    ] = "week",
    offences_split: Annotated[bool, typer.Option("--by-offence", help="Split the counts by offence.")] = False,
    cell: CellOpt = None,
    resolution: Annotated[int, typer.Option("--resolution", help="H3 resolution 0–15 (8 ≈ 0.74 km²).")] = 8,
    csv_out: Annotated[Path | None, typer.Option("--out", help="Write every row to this CSV file.")] = None,
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Count incidents by area, grid cell (metres) or H3 hexagon, per period (and offence)."""
    from crimelens.analysis.incidents.summaries import incident_counts

    per = None if period in (None, "none") else period
    with _scope(db, source, engine, parquet, offence, since, until, require_rows=False) as scope:
        result = incident_counts(
            scope.table, by=cast(Any, by), area=area, period=per, by_offence=offences_split, cell_m=_cell(cell),
            resolution=resolution, origin=scope.origin() if by == "grid" else None,
        )  # fmt: skip
    if csv_out is not None:
        result.table.to_csv(csv_out, index=False)
        err.print(f"Wrote {len(result.table):,} rows to {csv_out}")
    _emit(result, scope, as_json, as_csv, limit)


@_command("when")
def when_cmd(
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """When crime happens: the hour × weekday profile and monthly seasonality."""
    from crimelens.analysis.incidents.summaries import timing

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        # complete months are judged on the source's own span: a rare offence's first incident is not its start
        result = timing(scope.table, span=scope.filter.span(scope.unfiltered))
    if as_json or as_csv:
        _emit(result, scope, as_json, as_csv, 0)
        return
    profile, season = result.hour_weekday, result.seasonality
    assert profile is not None and season is not None
    grid = profile.table.pivot_table(index="hour", columns="weekday", values="incidents", sort=True)
    names = profile.table.drop_duplicates("weekday").set_index("weekday")["weekday_name"]
    grid.columns = [str(names[d])[:3] for d in grid.columns]
    grid.index = [f"{int(h):02d}:00" for h in grid.index]
    show_table(grid.reset_index(names="hour"), profile.title, None)
    for note in profile.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]")
    show_result(season, None, ["month_name", "years", "incidents", "mean_incidents", "seasonal_index"])


@_command("areas")
def areas_cmd(
    area: AreaOpt = None,
    area_set: Annotated[
        str | None,
        typer.Option(
            "--areas",
            help="Area set (see `crimelens areas`) for populations and names; when the incidents carry no id of "
            "its areas, they are assigned to its polygons by location. Default: the one set of the --area kind.",
        ),
    ] = None,
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Rank areas by incidents, with rates per 100,000 residents where the areas have a population."""
    from crimelens.analysis.incidents.scope import area_ranking

    chosen = str(get_setting("area", area))
    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = area_ranking(scope.table, con=scope.con, area=None if chosen == "auto" else chosen, area_set=area_set)
    _emit(result, scope, as_json, as_csv, limit)


@_command("concentration")
def concentration_cmd(
    unit: Annotated[str, typer.Option("--unit", help="grid (cells of --cell metres) or area.")] = "grid",
    cell: CellOpt = None,
    area: Annotated[str, typer.Option("--area", help="Area column when --unit area.")] = "community_area",
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """The law of crime concentration: what share of places holds what share of incidents."""
    from crimelens.analysis.incidents.scope import concentration

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = concentration(
            scope.table, con=scope.con, unit=cast(Any, unit), cell_m=_cell(cell), area=area,
            origin=scope.origin() if unit == "grid" else None,
        )  # fmt: skip
    if as_json or as_csv:
        _emit(result, scope, as_json, as_csv, 0)
        return
    out.print(f"[bold]{escape(result.title)}[/bold]")
    out.print(
        f"{result.units_total:,} places, {result.incidents_total:,} incidents. "
        f"The busiest 1% of places hold {result.top_1pct:.1%} of incidents, the busiest 5% hold "
        f"{result.top_5pct:.1%}, the busiest 10% hold {result.top_10pct:.1%}; "
        f"{result.units_for_half:.1%} of places hold half. Gini {result.gini:.2f}."
    )
    for note in result.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]")


@_command("density")
def density_cmd(
    cell: CellOpt = None,
    bandwidth: Annotated[
        float | None, typer.Option("--bandwidth", help="Kernel bandwidth in metres (default: Scott's rule).")
    ] = None,
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    csv_out: Annotated[Path | None, typer.Option("--out", help="Write the whole surface to this CSV file.")] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 15,
) -> None:
    """Kernel density surface of incidents (per km²); shows the densest cells."""
    from crimelens.analysis.incidents.scope import density

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = density(scope.table, cell_m=_cell(cell), bandwidth_m=bandwidth, origin=scope.origin())
    if csv_out is not None:
        result.table.to_csv(csv_out, index=False)
        err.print(f"Wrote {len(result.table):,} cells to {csv_out}")
    if as_json or as_csv:
        _emit(result, scope, as_json, as_csv, 0)
        return
    value = next(c for c in result.table.columns if c.startswith("density"))
    top = result.table.sort_values(value, ascending=False)
    show_table(top, result.title, None if limit == 0 else limit)


def _write_geojson(path: Path, cells: Any, cell_m: float, scope: _Scope) -> None:
    """Write grid cells as GeoJSON (WGS84) and say where, on stderr (stdout stays the table, JSON or CSV)."""
    from crimelens.analysis.incidents.places import write_cells_geojson

    n = write_cells_geojson(path, cells, cell_m, scope.origin())
    err.print(f"Wrote {n:,} cells to {path} (GeoJSON, WGS84 longitude/latitude).")


@_command("hotspots")
def hotspots_cmd(
    cell: CellOpt = None,
    neighbours: Annotated[str, typer.Option("--neighbours", help="queen (8 around) or rook (4 around).")] = "queen",
    alpha: Annotated[float, typer.Option("--alpha", help="False discovery rate (Benjamini–Hochberg).")] = 0.05,
    no_fdr: Annotated[
        bool, typer.Option("--no-fdr", help="Do not correct for testing every cell (not advised).")
    ] = False,
    permutations: PermOpt = None,
    seed: SeedOpt = None,
    study_area: Annotated[
        str,
        typer.Option(
            "--study-area",
            help="footprint: the cells where the dataset recorded any incident (every offence and date) and "
            "the cells touching them; incidents: those cells only; rectangle: every cell of the box around them, "
            "lake and land outside the city included.",
        ),
    ] = "footprint",
    p_values: Annotated[
        str,
        typer.Option(
            "--p-values",
            help="exact (conditional randomisation computed exactly: valid for skewed counts), permutation "
            "(the same by --permutations random draws) or normal (approximate, overstates hot spots).",
        ),
    ] = "exact",
    geojson: Annotated[
        Path | None,
        typer.Option("--geojson", help="Also write the hot and cold spot cells to this GeoJSON file (WGS84), for GIS."),
    ] = None,
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 20,
) -> None:
    """Getis-Ord Gi* hot and cold spots on a grid, with the false discovery rate controlled."""
    from crimelens.analysis.incidents.scope import hotspots

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = hotspots(
            scope.table,
            cell_m=_cell(cell),
            neighbours=cast(Any, neighbours),
            permutations=_permutations(permutations),
            seed=_seed(seed),
            alpha=alpha,
            fdr=not no_fdr,
            origin=scope.origin(),
            study_area=cast(Any, study_area),
            footprint=scope.unfiltered,
            p_values=cast(Any, p_values),
        )
        if geojson is not None:
            _write_geojson(geojson, result.table[result.table["hotspot"] != "not significant"], _cell(cell), scope)
    if as_json or as_csv:
        _emit(result, scope, as_json, as_csv, 0)
        return
    table = result.table[result.table["hotspot"] != "not significant"].sort_values("z", ascending=False)
    cols = ["cell_x", "cell_y", "lat", "lon", "incidents", "z", "p_value", "q_value", "hotspot"]
    show_table(table, result.title, None if limit == 0 else limit, columns=cols)
    for note in result.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]")


@_command("persistent")
def persistent_cmd(
    cell: CellOpt = None,
    period: Annotated[str, typer.Option("--period", help="week, month or year.")] = "month",
    method: Annotated[
        str, typer.Option("--method", help="top (busiest share of cells) or gi (Gi* after FDR).")
    ] = "top",
    top_share: Annotated[float, typer.Option("--top-share", help="Share of cells hot per period (top).")] = 0.05,
    min_share: Annotated[float, typer.Option("--min-share", help="Share of periods hot, at least.")] = 0.75,
    seed: SeedOpt = None,
    geojson: Annotated[
        Path | None,
        typer.Option("--geojson", help="Also write the persistent cells to this GeoJSON file (WGS84), for GIS."),
    ] = None,
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 20,
) -> None:
    """Grid cells that stay hot period after period (stable, emerging or intermittent)."""
    from crimelens.analysis.incidents.scope import persistent

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = persistent(
            scope.table,
            cell_m=_cell(cell),
            period=cast(Any, period),
            method=cast(Any, method),
            top_share=top_share,
            min_periods_share=min_share,
            seed=_seed(seed),
            origin=scope.origin(),
        )
        if geojson is not None:
            _write_geojson(geojson, result.table, _cell(cell), scope)
    _emit(result, scope, as_json, as_csv, limit)


def _bands(value: str, option: str) -> tuple[float, ...]:
    try:
        bands = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise DataError(f"{option}: expected comma-separated numbers such as 0,100,200,400; got {value!r}") from None
    return bands


@_command("near-repeat")
def near_repeat_cmd(
    distances: Annotated[
        str, typer.Option("--distances", help="Distance band edges in metres, comma-separated.")
    ] = "0,100,200,400",
    days: Annotated[str, typer.Option("--days", help="Time band edges in days, comma-separated.")] = "0,7,14,28",
    permutations: PermOpt = None,
    seed: SeedOpt = None,
    max_points: Annotated[
        int, typer.Option("--max-points", help="Test at most this many most recent incidents.")
    ] = 50_000,
    keep_duplicates: Annotated[
        bool,
        typer.Option(
            "--keep-duplicates", help="Keep exact same-place, same-day duplicates (default: each counted once)."
        ),
    ] = False,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="How each band is tested: moments (the exact permutation mean and variance, fast), permutation "
            "(Monte Carlo, --permutations) or auto (moments when every band expects 100 or more pairs).",
        ),
    ] = "auto",
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Near-repeat Knox test: are incidents close in space also close in time more often than chance?"""
    from crimelens.analysis.incidents.scope import near_repeat

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = near_repeat(
            scope.table,
            distance_bands_m=_bands(distances, "--distances"),
            time_bands_days=_bands(days, "--days"),
            permutations=_permutations(permutations),
            seed=_seed(seed),
            max_points=max_points,
            origin=scope.origin(),
            keep_duplicates=keep_duplicates,
            method=method,
        )
    _emit(result, scope, as_json, as_csv, 0)
