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

from crimelens.cli.render import err, out, print_json, show_result, show_table
from crimelens.cli.support import guarded
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


# -- shared options ----------------------------------------------------------------------------------------
DbOpt = Annotated[Path | None, typer.Option("--db", help="Warehouse file [env: CRIMELENS_DB].")]
SourceOpt = Annotated[
    str | None, typer.Option("--source", help="Incident dataset (needed only when several are loaded).")
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Where the counting runs: duckdb (default, this machine) or spark (local Spark, or a cluster via "
        "SPARK_REMOTE/spark-submit; needs the `spark` extra and Java 17).",
    ),
]
ParquetOpt = Annotated[
    Path | None,
    typer.Option("--parquet", help="Read incidents from this Parquet file or folder instead of the warehouse."),
]
OffenceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--offence",
        help="Only these offences (repeat the option): homicide, rape, robbery, aggravated_assault, burglary, "
        "larceny, motor_vehicle_theft, arson, other_assault, other.",
    ),
]
SinceOpt = Annotated[str | None, typer.Option("--since", help="First day included (YYYY-MM-DD).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Last day included (YYYY-MM-DD).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
LimitOpt = Annotated[int, typer.Option("--limit", help="Rows to show in the table (0 = all).")]
CellOpt = Annotated[float, typer.Option("--cell", help="Grid cell size in metres (square cells, equal-area plane).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed of the permutation test (recorded in --json).")]
PermOpt = Annotated[int, typer.Option("--permutations", help="Monte Carlo permutations (0 = none).")]


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise DataError(f"{option}: expected a date YYYY-MM-DD, got {value!r}") from None


class _Scope(NamedTuple):
    con: Any  # the warehouse connection (read-only), or None with --parquet
    table: Any  # the incidents after the filter (Ibis)
    unfiltered: Any  # the source's incidents before the filter (Ibis)
    filter: Any  # the IncidentFilter
    info: dict[str, Any]  # what --json reports as "scope"


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
    from crimelens.analysis.incidents.scope import IncidentFilter, coverage
    from crimelens.engine import incident_table
    from crimelens.warehouse import connect, resolve_incident_source

    flt = IncidentFilter(tuple(offence or ()), _date(since, "--since"), _date(until, "--until"))
    con = None
    src = source
    if parquet is None:
        con = connect(Path(get_setting("db", str(db) if db is not None else None)), read_only=True)
    try:
        if con is not None:
            src = resolve_incident_source(con, source)
        with incident_table(con, engine, source=src, parquet=parquet) as t:  # type: ignore[arg-type]
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
            yield _Scope(con, filtered, t, flt, info)
    finally:
        if con is not None:
            con.close()


def _emit(result: Any, scope: _Scope, as_json: bool, limit: int, columns: list[str] | None = None) -> None:
    if as_json:
        print_json({**result.to_dict(), "scope": scope.info})
    else:
        show_result(result, None if limit == 0 else limit, columns)


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
    cell: CellOpt = 150.0,
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
    limit: LimitOpt = 25,
) -> None:
    """Count incidents by area, grid cell (metres) or H3 hexagon, per period (and offence)."""
    from crimelens.analysis.incidents.aggregate import area_counts, grid_counts, h3_counts

    per = None if period in (None, "none") else period
    if by not in ("area", "grid", "h3"):
        raise DataError(f"--by: expected area, grid or h3, got {by!r}")
    with _scope(db, source, engine, parquet, offence, since, until, require_rows=False) as scope:
        if by == "area":
            if per is None:
                raise DataError("--period none is for grid and h3 counts; areas need a period (e.g. year)")
            frame = area_counts(scope.table, area=area, period=per, by_offence=offences_split)  # type: ignore[arg-type]
            extra: dict[str, Any] = {"area": area}
        elif by == "grid":
            grid = grid_counts(scope.table, cell_m=cell, period=per, by_offence=offences_split)  # type: ignore[arg-type]
            frame, extra = grid.table, {**grid.params, "rows_without_coordinates": grid.rows_without_coordinates}
        else:
            hexes = h3_counts(scope.table, resolution=resolution, period=per, by_offence=offences_split)  # type: ignore[arg-type]
            frame = hexes.table
            extra = {"resolution": resolution, "rows_without_coordinates": hexes.rows_without_coordinates}
    if csv_out is not None:
        frame.to_csv(csv_out, index=False)
        err.print(f"Wrote {len(frame):,} rows to {csv_out}")
    if as_json:
        from crimelens.analysis.result import frame_records

        print_json({"scope": scope.info, "by": by, "period": per, **extra, "rows": frame_records(frame)})
        return
    title = f"Incidents by {by if by != 'area' else area.replace('_', ' ')}" + (f" and {per}" if per else "")
    show_table(frame, title, None if limit == 0 else limit)
    if extra.get("rows_without_coordinates"):
        out.print(
            f"[dim]Note: {extra['rows_without_coordinates']:,} incidents without coordinates are not counted.[/dim]"
        )


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
) -> None:
    """When crime happens: the hour × weekday profile and monthly seasonality."""
    from crimelens.analysis.incidents.scope import seasonality, weekly_profile

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        profile = weekly_profile(scope.table)
        # complete months are judged on the source's own span: a rare offence's first incident is not its start
        season = seasonality(scope.table, span=scope.filter.span(scope.unfiltered))
    if as_json:
        print_json({"scope": scope.info, "hour_weekday": profile.to_dict(), "seasonality": season.to_dict()})
        return
    grid = profile.table.pivot_table(index="hour", columns="weekday", values="incidents", sort=True)
    names = profile.table.drop_duplicates("weekday").set_index("weekday")["weekday_name"]
    grid.columns = [str(names[d])[:3] for d in grid.columns]
    grid.index = [f"{int(h):02d}:00" for h in grid.index]
    show_table(grid.reset_index(names="hour"), profile.title, None)
    for note in profile.notes:
        out.print(f"[dim]Note: {note}[/dim]")
    show_result(season, None, ["month_name", "years", "incidents", "mean_incidents", "seasonal_index"])


@_command("areas")
def areas_cmd(
    area: Annotated[
        str | None,
        typer.Option(
            "--area",
            help="Area column: community_area, district, beat, neighbourhood, census_tract (default: the one the "
            "incidents fill most).",
        ),
    ] = None,
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
    limit: LimitOpt = 25,
) -> None:
    """Rank areas by incidents, with rates per 100,000 residents where the areas have a population."""
    from crimelens.analysis.incidents.scope import area_ranking

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = area_ranking(scope.table, con=scope.con, area=area, area_set=area_set)
    _emit(result, scope, as_json, limit)


@_command("concentration")
def concentration_cmd(
    unit: Annotated[str, typer.Option("--unit", help="grid (cells of --cell metres) or area.")] = "grid",
    cell: CellOpt = 150.0,
    area: Annotated[str, typer.Option("--area", help="Area column when --unit area.")] = "community_area",
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The law of crime concentration: what share of places holds what share of incidents."""
    from crimelens.analysis.incidents.scope import concentration

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = concentration(scope.table, con=scope.con, unit=unit, cell_m=cell, area=area)  # type: ignore[arg-type]
    if as_json:
        print_json({**result.to_dict(), "scope": scope.info})
        return
    summary = result.to_dict()["summary"]
    out.print(f"[bold]{result.title}[/bold]")
    out.print(
        f"{summary['units_total']:,} places, {summary['incidents_total']:,} incidents. "
        f"The busiest 1% of places hold {summary['top_1pct']:.1%} of incidents, the busiest 5% hold "
        f"{summary['top_5pct']:.1%}, the busiest 10% hold {summary['top_10pct']:.1%}; "
        f"{summary['units_for_half']:.1%} of places hold half. Gini {summary['gini']:.2f}."
    )
    for note in result.notes:
        out.print(f"[dim]Note: {note}[/dim]")


@_command("density")
def density_cmd(
    cell: CellOpt = 150.0,
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
    limit: LimitOpt = 15,
) -> None:
    """Kernel density surface of incidents (per km²); shows the densest cells."""
    from crimelens.analysis.incidents.scope import density

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = density(scope.table, cell_m=cell, bandwidth_m=bandwidth)
    if csv_out is not None:
        result.table.to_csv(csv_out, index=False)
        err.print(f"Wrote {len(result.table):,} cells to {csv_out}")
    if as_json:
        print_json({**result.to_dict(), "scope": scope.info})
        return
    value = next(c for c in result.table.columns if c.startswith("density"))
    top = result.table.sort_values(value, ascending=False)
    show_table(top, result.title, None if limit == 0 else limit)


@_command("hotspots")
def hotspots_cmd(
    cell: CellOpt = 150.0,
    neighbours: Annotated[str, typer.Option("--neighbours", help="queen (8 around) or rook (4 around).")] = "queen",
    alpha: Annotated[float, typer.Option("--alpha", help="False discovery rate (Benjamini–Hochberg).")] = 0.05,
    no_fdr: Annotated[
        bool, typer.Option("--no-fdr", help="Do not correct for testing every cell (not advised).")
    ] = False,
    permutations: PermOpt = 999,
    seed: SeedOpt = 0,
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 20,
) -> None:
    """Getis-Ord Gi* hot and cold spots on a grid, with the false discovery rate controlled."""
    from crimelens.analysis.incidents.scope import hotspots

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = hotspots(
            scope.table,
            cell_m=cell,
            neighbours=cast(Any, neighbours),
            permutations=permutations,
            seed=seed,
            alpha=alpha,
            fdr=not no_fdr,
        )
    if as_json:
        print_json({**result.to_dict(), "scope": scope.info})
        return
    table = result.table[result.table["hotspot"] != "not significant"].sort_values("z", ascending=False)
    cols = ["cell_x", "cell_y", "lat", "lon", "incidents", "z", "p_value", "q_value", "hotspot"]
    show_table(table, result.title, None if limit == 0 else limit, columns=cols)
    for note in result.notes:
        out.print(f"[dim]Note: {note}[/dim]")


@_command("persistent")
def persistent_cmd(
    cell: CellOpt = 250.0,
    period: Annotated[str, typer.Option("--period", help="week, month or year.")] = "month",
    method: Annotated[
        str, typer.Option("--method", help="top (busiest share of cells) or gi (Gi* after FDR).")
    ] = "top",
    top_share: Annotated[float, typer.Option("--top-share", help="Share of cells hot per period (top).")] = 0.05,
    min_share: Annotated[float, typer.Option("--min-share", help="Share of periods hot, at least.")] = 0.75,
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 20,
) -> None:
    """Grid cells that stay hot period after period (stable, emerging or intermittent)."""
    from crimelens.analysis.incidents.scope import persistent

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = persistent(
            scope.table,
            cell_m=cell,
            period=cast(Any, period),
            method=cast(Any, method),
            top_share=top_share,
            min_periods_share=min_share,
        )
    _emit(result, scope, as_json, limit)


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
    permutations: PermOpt = 999,
    seed: SeedOpt = 0,
    max_points: Annotated[
        int, typer.Option("--max-points", help="Test at most this many most recent incidents.")
    ] = 50_000,
    db: DbOpt = None,
    source: SourceOpt = None,
    engine: EngineOpt = "duckdb",
    parquet: ParquetOpt = None,
    offence: OffenceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Near-repeat Knox test: are incidents close in space also close in time more often than chance?"""
    from crimelens.analysis.incidents.scope import near_repeat

    with _scope(db, source, engine, parquet, offence, since, until) as scope:
        result = near_repeat(
            scope.table,
            distance_bands_m=_bands(distances, "--distances"),
            time_bands_days=_bands(days, "--days"),
            permutations=permutations,
            seed=seed,
            max_points=max_points,
        )
    _emit(result, scope, as_json, 0)
