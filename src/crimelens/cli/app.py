"""The crimelens command line: parse options, call one library function, render the result.

Errors a user can cause print one line and exit 1; usage errors exit 2; anything else is a bug and
shows a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from crimelens import __version__
from crimelens.cli.incidents import incidents_app
from crimelens.cli.render import err, out, print_json, progress_bar, show_result, show_table
from crimelens.cli.support import guarded
from crimelens.config import SETTINGS, get_setting
from crimelens.errors import ConfigError

__all__ = ["app", "main"]

app = typer.Typer(
    name="crimelens",
    help=(
        "Turn crime records into decisions: load UCR-style jurisdiction-year data or incident records into a "
        "local warehouse, then get crime statistics, rankings, trends, persistent hotspots, key findings and an "
        "HTML report; `crimelens incidents ...` shows when and where incidents concentrate.\n\n"
        "Start with `crimelens demo` (built-in FBI state data, no network), or load your own file with "
        "`crimelens ingest FILE`."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.add_typer(incidents_app, name="incidents")

F = TypeVar("F", bound=Callable[..., Any])


def command(name: str | None = None) -> Callable[[F], F]:
    """Register a command whose CrimeLensError becomes one line on stderr and exit status 1."""
    return guarded(app, name)


# -- shared options -----------------------------------------------------------------------------
DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help=f"{SETTINGS['db'].help} [env: CRIMELENS_DB; default: {SETTINGS['db'].default}]"),
]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Dataset to analyse (its source name, see `crimelens loads`). Needed only when several are loaded.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
OffenceOpt = Annotated[
    str,
    typer.Option(
        "--offence",
        help="Offence: violent_crime, homicide, rape, robbery, aggravated_assault, property_crime, "
        "burglary, larceny, motor_vehicle_theft.",
    ),
]
YearOpt = Annotated[int | None, typer.Option("--year", help="One year (default: the latest in the data).")]
StartOpt = Annotated[int | None, typer.Option("--start", help="First year of a span (inclusive).")]
EndOpt = Annotated[int | None, typer.Option("--end", help="Last year of a span (inclusive).")]
LimitOpt = Annotated[int, typer.Option("--limit", help="Rows to show in the table (0 = all).")]
AlphaOpt = Annotated[float | None, typer.Option("--alpha", help=SETTINGS["alpha"].help + " [default: 0.05]")]


def _db(db: Path | None) -> Path:
    return Path(get_setting("db", str(db) if db is not None else None))


def _open(db: Path | None, read_only: bool = True) -> Any:
    from crimelens.warehouse import connect

    return connect(_db(db), read_only=read_only)


def _emit(result: Any, as_json: bool, limit: int, columns: list[str] | None = None) -> None:
    """JSON (every column) or a terminal table (``columns`` only, when given)."""
    if as_json:
        print_json(result.to_dict())
    else:
        show_result(result, None if limit == 0 else limit, columns)


def _version(value: bool) -> None:
    if value:
        print(f"crimelens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """crimelens command line."""


# -- ingest and provenance ---------------------------------------------------------------------------
@command("ingest")
def ingest(
    path: Annotated[Path, typer.Argument(help="CSV file to load.", show_default=False, metavar="FILE")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Input format: ucr-marshall, fbi-estimates, marshall-states, mapped-csv (jurisdiction-years), or "
            "the incident formats chicago, toronto-mci, houston, nij-portland (and mapped-csv with an incident "
            "mapping). Detected from the header when omitted.",
        ),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="TOML mapping file for --format mapped-csv.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Name of the dataset these rows belong to (default: the format name, or the mapping's "
            "`source`). Loading a different jurisdiction-year file under the same name replaces that dataset; "
            "an incident file is merged into it by incident key (newer rows replace older ones).",
        ),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Text encoding of the file (default utf-8).")
    ] = None,
    max_errors: Annotated[
        int | None,
        typer.Option(
            "--max-errors",
            help=SETTINGS["max_errors"].help + " Incident files: invalid rows (bad dates, missing offence) are "
            "dropped and counted by reason, with no limit unless this option is given.",
        ),
    ] = None,
    errors_out: Annotated[
        Path | None,
        typer.Option("--errors-out", help="Write every problem found (errors and warnings) to this CSV file."),
    ] = None,
    simulated: Annotated[
        bool,
        typer.Option(
            "--simulated",
            help="Mark an incident dataset as simulated (e.g. made by `crimelens simulate`): every report and "
            "table built on it says so.",
        ),
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load a crime data file into the warehouse (atomic: all of it or nothing; re-loading is a no-op)."""
    from crimelens import sources
    from crimelens.warehouse import core as warehouse

    _, incidents = sources.resolve_format(path, fmt, mapping, encoding)
    if incidents:
        _ingest_incidents(path, fmt, mapping, source, max_errors, db, as_json, simulated)
        return
    if simulated:
        raise ConfigError("--simulated applies to incident files only")
    limit = int(get_setting("max_errors", max_errors))
    with progress_bar(enabled=not as_json) as bar:
        task = bar.add_task(f"Reading {path.name}", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        parsed = sources.read(path, fmt, mapping=mapping, encoding=encoding, progress=advance)
        if errors_out is not None:
            _write_issues(errors_out, parsed.issues)
        bar.update(task, description=f"Loading {path.name}")
        con = warehouse.connect(_db(db))
        try:
            report = warehouse.load_parsed(con, parsed, source=source, max_errors=limit)
        finally:
            con.close()
    if as_json:
        print_json(report.to_dict())
        return
    if report.status == "unchanged":
        out.print(f"{path.name}: already loaded as load {report.load_id} (dataset {report.source}); nothing changed.")
        return
    replaced = f", replacing load {', '.join(map(str, report.replaced_load_ids))}" if report.replaced_load_ids else ""
    out.print(
        f"Loaded {report.rows_loaded:,} of {report.rows_read:,} rows from {path.name} as dataset "
        f"[bold]{report.source}[/bold] (load {report.load_id}, format {report.format}){replaced}."
    )
    if report.rows_rejected:
        were = "row was" if report.rows_rejected == 1 else "rows were"
        out.print(f"[yellow]{report.rows_rejected:,} {were} rejected[/yellow] (allowed by --max-errors):")
        rejected = [i for i in report.issues if i.severity == "error"]
        for issue in rejected[:5]:
            out.print(f"  {issue}", highlight=False, soft_wrap=True)
        if len(rejected) > 5:
            out.print(f"  … and {len(rejected) - 5:,} more: see `crimelens issues --load {report.load_id}`")
    counts: dict[str, int] = {}
    for issue in report.warnings:
        counts[issue.code] = counts.get(issue.code, 0) + 1
    for code, n in sorted(counts.items()):
        example = next(i for i in report.warnings if i.code == code)
        out.print(f"[yellow]{n:,} warning(s) {code}[/yellow], e.g. {example}", highlight=False, soft_wrap=True)


def _ingest_incidents(
    path: Path, fmt: str | None, mapping: Path | None, source: str | None, max_errors: int | None, db: Path | None,
    as_json: bool, simulated: bool = False,
) -> None:  # fmt: skip
    """Incident files load DuckDB-natively (upsert by incident key); the summary lists rows by reason."""
    from crimelens.warehouse import core as warehouse

    with progress_bar(enabled=not as_json) as bar:
        task = bar.add_task(f"Loading {path.name}", total=None)
        con = warehouse.connect(_db(db))
        try:
            report = warehouse.load_incidents(
                con, path, fmt, source=source, mapping=mapping, max_errors=max_errors, simulated=simulated,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
        finally:
            con.close()
    if as_json:
        print_json(report.to_dict())
        return
    if report.status == "unchanged":
        out.print(f"{path.name}: already loaded as load {report.load_id} (dataset {report.source}); nothing changed.")
        return
    out.print(
        f"Loaded {report.rows_loaded:,} of {report.rows_read:,} incidents from {path.name} as dataset "
        f"[bold]{report.source}[/bold] (load {report.load_id}, format {report.format}, taxonomy "
        f"{report.taxonomy_version}); {report.rows_rejected:,} dropped, {report.rows_replaced:,} replaced.",
        soft_wrap=True,
    )
    if report.reasons:
        out.print("Rows by reason:")
        for reason, (action, n) in report.reasons.items():
            shown = report.examples.get(reason, ())
            word = "line" if len(shown) == 1 else "lines"
            example = f" (e.g. {word} {', '.join(map(str, shown))})" if shown else ""
            out.print(f"  {reason}: {n:,} {action}{example}", highlight=False, soft_wrap=True)
    for code, n in list(report.unmapped_codes.items())[:10]:
        rows = "row" if n == 1 else "rows"
        out.print(f"[yellow]unmapped offence code {code!r}[/yellow]: {n:,} {rows} loaded as 'other'", highlight=False)
    if len(report.unmapped_codes) > 10:
        out.print(
            f"  … and {len(report.unmapped_codes) - 10} more codes: see `crimelens issues --load {report.load_id}`"
        )


@command("areas")
def areas_cmd(
    path: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection of area polygons.", metavar="FILE")],
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="A known boundary file: chicago-community-areas (chicago_community_areas_acs2014.geojson) or "
            "portland-districts (portland_police_districts.geojson). Otherwise give --set, --kind and --id.",
        ),
    ] = None,
    area_set: Annotated[str | None, typer.Option("--set", help="Name of the area set (e.g. my-city-beats).")] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Area kind: district, beat, community_area, neighbourhood or census_tract."),
    ] = None,
    id_property: Annotated[str | None, typer.Option("--id", help="Feature property holding the area id.")] = None,
    name_property: Annotated[str | None, typer.Option("--name", help="Feature property holding the name.")] = None,
    population_property: Annotated[
        str | None, typer.Option("--population", help="Feature property holding the population.")
    ] = None,
    population_year: Annotated[
        int | None, typer.Option("--population-year", help="Year the population refers to.")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load area boundaries (GeoJSON) for incident maps and rates (atomic; the same file again is a no-op)."""
    from crimelens.errors import ConfigError
    from crimelens.sources import boundaries as areas
    from crimelens.warehouse import core as warehouse

    con = warehouse.connect(_db(db))
    try:
        if preset is not None:
            report = areas.load_preset(con, path, preset)
        else:
            if area_set is None or kind is None or id_property is None:
                raise ConfigError("give --preset, or all of --set, --kind and --id")
            report = areas.load_areas(
                con, path, area_set=area_set, area_kind=kind, id_property=id_property, name_property=name_property,
                population_property=population_property, population_year=population_year,
            )  # fmt: skip
    finally:
        con.close()
    if as_json:
        print_json(report.to_dict())
        return
    if report.status == "unchanged":
        out.print(
            f"{path.name}: already loaded as load {report.load_id} (area set {report.area_set}); nothing changed."
        )
        return
    out.print(
        f"Loaded {report.areas:,} areas ({report.area_kind}, {report.with_population:,} with population) from "
        f"{path.name} as area set [bold]{report.area_set}[/bold] (load {report.load_id})."
    )


def _write_issues(path: Path, issues: list[Any]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "line", "column", "severity", "code", "message"])
        for i in issues:
            w.writerow([i.file, i.line, i.column or "", i.severity, i.code, i.message])


@command("loads")
def loads(db: DbOpt = None, as_json: JsonOpt = False, limit: LimitOpt = 25) -> None:
    """List every load: file, sha256, rows read/loaded/rejected, when, and whether it was replaced."""
    from crimelens.analysis.result import frame_records
    from crimelens.warehouse import list_loads

    con = _open(db)
    frame = list_loads(con)
    if as_json:
        print_json(frame_records(frame))
        return
    frame["sha256"] = frame["sha256"].str[:12]
    frame["started_at"] = frame["started_at"].dt.strftime("%Y-%m-%d %H:%M")
    frame = frame.rename(
        columns={
            "file_name": "file",
            "rows_read": "read",
            "rows_loaded": "loaded",
            "rows_rejected": "rejected",
            "started_at": "when",
        }
    )
    cols = ["load_id", "source", "file", "sha256", "read", "loaded", "rejected", "warnings", "when", "status"]
    show_table(frame[cols], "Loads (provenance)", None if limit == 0 else limit)


@command("issues")
def issues_cmd(
    load: Annotated[int | None, typer.Option("--load", help="Only this load (see `crimelens loads`).")] = None,
    code: Annotated[
        str | None,
        typer.Option("--code", help="Only this kind of issue, e.g. partial_year or violent_sum_mismatch."),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """List the problems recorded when files were loaded (rejected rows and warnings), with file, line, column."""
    from crimelens.analysis.result import frame_records
    from crimelens.warehouse import list_issues

    frame = list_issues(_open(db), load, code)
    if as_json:
        print_json(frame_records(frame))
        return
    if frame.empty:
        out.print("No issues recorded" + (f" for load {load}" if load is not None else "") + ".")
        return
    counts = frame.groupby(["load_id", "severity", "code"]).size().reset_index(name="count")
    show_table(counts, "Issues recorded at load, by kind", None)
    show_table(frame, "Issues", None if limit == 0 else limit)


@command("formats")
def formats() -> None:
    """List the input formats crimelens can read."""
    from crimelens.sources import FORMATS

    for name, text in FORMATS.items():
        out.print(f"[bold]{name}[/bold]: {text}")


@command("simulate")
def simulate_cmd(
    incidents: Annotated[int, typer.Option("--incidents", help="Number of incidents to write (exact).")],
    out_path: Annotated[Path, typer.Option("--out", help="CSV file to write (gzip-compressed when it ends in .gz).")],
    years: Annotated[int, typer.Option("--years", help="Number of calendar years covered.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same file.")] = 0,
    start_year: Annotated[int, typer.Option("--start-year", help="First calendar year.")] = 2019,
    areas_out: Annotated[
        Path | None, typer.Option("--areas-out", help="Also write the 77 simulated community areas as GeoJSON.")
    ] = None,
    branching_ratio: Annotated[
        float, typer.Option("--branching-ratio", help="Mean near-repeat offspring per incident (0 = none).")
    ] = 0.25,
    as_json: JsonOpt = False,
) -> None:
    """Write SIMULATED incidents of a synthetic city in the Chicago crimes export format (for tests and demos)."""
    from crimelens.simulate import simulate

    with progress_bar(enabled=not as_json) as bar:
        task = bar.add_task("Simulating", total=None)
        summary = simulate(
            incidents, years, seed, out_path, start_year=start_year, areas_out=areas_out,
            branching_ratio=branching_ratio, progress=lambda d, t: bar.update(task, completed=d, total=t),
        )  # fmt: skip
    if as_json:
        print_json(summary.to_dict())
        return
    span = f"{start_year}–{start_year + years - 1}" if years > 1 else str(start_year)
    out.print(
        f"Wrote {summary.rows:,} [bold]SIMULATED[/bold] incidents ({span}, seed {seed}) in {summary.seconds:.1f} s: "
        "synthetic data, not real crime records.",
        soft_wrap=True,
    )
    out.print(f"Incidents: {out_path}", soft_wrap=True, highlight=False)
    if areas_out is not None:
        out.print(f"Simulated community areas: {areas_out}", soft_wrap=True, highlight=False)
    out.print(
        f"Load it with: crimelens ingest {out_path} --format chicago --source simulated-city --simulated",
        soft_wrap=True,
        highlight=False,
    )


# -- analyses ----------------------------------------------------------------------------------------
@command("stats")
def stats_cmd(
    source: SourceOpt = None,
    year: YearOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Crime statistics: totals and shares per offence, and the most common violent offences."""
    from crimelens.analysis.jurisdictions import statistics as stats

    _emit(stats.offence_totals(_open(db), source, year=year, start=start, end=end), as_json, limit)


@command("rates")
def rates_cmd(
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    year: YearOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Rates per 100,000 residents for each jurisdiction and year (and the nation where available)."""
    from crimelens.analysis.jurisdictions import statistics as stats

    _emit(stats.rates(_open(db), source, offence=offence, year=year, start=start, end=end), as_json, limit)


@command("rank")
def rank_cmd(
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    by: Annotated[str, typer.Option("--by", help="Rank by 'rate' (per 100,000) or 'count'.")] = "rate",
    year: YearOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    top: Annotated[int | None, typer.Option("--top", help="Show only the top N.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Rank jurisdictions by rate or count, for one year or a span of years."""
    from crimelens.analysis.jurisdictions import ranking as jurisdictions

    result = jurisdictions.rank(_open(db), source, offence=offence, by=by, year=year, start=start, end=end, top=top)
    _emit(result, as_json, limit)


@command("profile")
def profile_cmd(
    jurisdiction: Annotated[str, typer.Argument(help="Jurisdiction name or id, e.g. 'Chicago' or US-IL.")],
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """A jurisdiction's rank over time and its offence mix against its peers."""
    from crimelens.analysis.jurisdictions import ranking as jurisdictions
    from crimelens.analysis.result import frame_records

    result = jurisdictions.profile(_open(db), source, jurisdiction=jurisdiction, offence=offence)
    if as_json:
        data = result.to_dict()
        data["mix"] = frame_records(result.mix)
        print_json(data)
        return
    show_result(result, None if limit == 0 else limit)
    show_table(result.mix, "Offence mix against peers", None)


@command("concentration")
def concentration_cmd(
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    year: YearOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    k: Annotated[int | None, typer.Option("--k", help=SETTINGS["top_k"].help)] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """How much of all recorded crime the top k jurisdictions hold."""
    from crimelens.analysis.jurisdictions import ranking as jurisdictions

    kk = int(get_setting("top_k", k))
    result = jurisdictions.top_k_concentration(
        _open(db), source, offence=offence, year=year, start=start, end=end, k=kk
    )
    _emit(result, as_json, limit)


@command("compare")
def compare_cmd(
    names: Annotated[list[str], typer.Argument(help="Two or more jurisdiction names or ids.")],
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    measure: Annotated[str, typer.Option("--measure", help="'rate' (per 100,000) or 'count'.")] = "rate",
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """Compare jurisdictions year by year."""
    from crimelens.analysis.jurisdictions import ranking as jurisdictions

    result = jurisdictions.compare(_open(db), source, jurisdictions=names, offence=offence, measure=measure)
    if as_json:
        _emit(result, True, limit)
        return
    wide = result.table.pivot_table(index="year", columns="name", values="value", aggfunc="first").reset_index()
    wide.columns = [str(c) for c in wide.columns]
    show_table(wide, result.title, None if limit == 0 else limit)


TREND_COLUMNS = [
    "name", "n_years", "first_year", "last_year", "first_rate", "last_rate", "slope_per_year", "slope_low",
    "slope_high", "pct_per_year", "mk_p", "mk_q", "direction",
]  # fmt: skip


@command("trends")
def trends_cmd(
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    start: StartOpt = None,
    end: EndOpt = None,
    alpha: AlphaOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Long-run trends per jurisdiction: Theil–Sen slope of the rate with a Mann–Kendall test."""
    from crimelens.analysis.jurisdictions import trends

    a = float(get_setting("alpha", alpha))
    _emit(
        trends.long_run_trends(_open(db), source, offence=offence, start=start, end=end, alpha=a),
        as_json,
        limit,
    )


@command("yoy")
def yoy_cmd(
    jurisdiction: Annotated[
        str | None, typer.Option("--jurisdiction", help="Name or id (default: the nation).")
    ] = None,
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    alpha: AlphaOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """Year-over-year changes, each judged with an exact Poisson test (not a bare percent)."""
    from crimelens.analysis.jurisdictions import trends

    a = float(get_setting("alpha", alpha))
    result = trends.year_over_year(_open(db), source, jurisdiction=jurisdiction, offence=offence, alpha=a)
    _emit(result, as_json, limit)


@command("turning-points")
def turning_points_cmd(
    jurisdiction: Annotated[
        str | None, typer.Option("--jurisdiction", help="Name or id (default: the nation).")
    ] = None,
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """Years where a long-run rise turned into a fall, or the other way round."""
    from crimelens.analysis.jurisdictions import trends

    _emit(trends.turning_points(_open(db), source, jurisdiction=jurisdiction, offence=offence), as_json, limit)


@command("hotspots")
def hotspots_cmd(
    source: SourceOpt = None,
    offence: OffenceOpt = "violent_crime",
    k: Annotated[int | None, typer.Option("--k", help=SETTINGS["top_k"].help)] = None,
    share: Annotated[float | None, typer.Option("--share", help=SETTINGS["hotspot_share"].help)] = None,
    window: Annotated[int | None, typer.Option("--window", help=SETTINGS["hotspot_window"].help)] = None,
    end: EndOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Persistent hotspots: jurisdictions in the top k by rate in at least a share of recent years."""
    from crimelens.analysis.jurisdictions import hotspots as persistence

    result = persistence.persistent_hotspots(
        _open(db),
        source,
        offence=offence,
        k=int(get_setting("top_k", k)),
        share=float(get_setting("hotspot_share", share)),
        window=int(get_setting("hotspot_window", window)),
        end=end,
    )
    _emit(result, as_json, limit)


@command("findings")
def findings_cmd(
    source: SourceOpt = None,
    year: YearOpt = None,
    k: Annotated[int | None, typer.Option("--k", help=SETTINGS["top_k"].help)] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """Key findings in plain language, each with the numbers behind it."""
    from crimelens.insights import key_findings

    result = key_findings(_open(db), source, year=year, k=int(get_setting("top_k", k)))
    if as_json:
        _emit(result, True, limit)
        return
    _show_findings(result, None if limit == 0 else limit)


def _show_findings(result: Any, limit: int | None) -> None:
    from rich.table import Table

    from crimelens.formatting import evidence_text, humanize

    table = Table(title=result.title, title_justify="left", header_style="bold", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("Finding")
    table.add_column("Evidence", style="dim")
    for i, f in enumerate(result.findings[:limit] if limit else result.findings, start=1):
        evidence = "\n".join(f"{humanize(str(k))}: {evidence_text(str(k), v)}" for k, v in f.evidence.items())
        table.add_row(str(i), f"[bold]{f.headline}[/bold]\n{f.detail}", evidence)
    out.print(table)


# -- report and demo ---------------------------------------------------------------------------------
@command("report")
def report_cmd(
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the HTML report.")] = Path("report.html"),
    source: SourceOpt = None,
    year: YearOpt = None,
    k: Annotated[int | None, typer.Option("--k", help=SETTINGS["top_k"].help)] = None,
    db: DbOpt = None,
) -> None:
    """Write a self-contained HTML report (charts, findings, provenance, limitations; opens offline)."""
    path = _build_report(_open(db), out_path, source, year, int(get_setting("top_k", k)))
    out.print(f"Report written to [bold]{path.resolve()}[/bold]")


def _build_report(con: Any, out_path: Path, source: str | None, year: int | None, k: int) -> Path:
    from crimelens.report import build_report

    with progress_bar() as bar:
        task = bar.add_task("Writing report", total=None)

        def step(name: str) -> None:
            bar.update(task, description=f"Report: {name}", advance=1)

        path = build_report(con, out_path, source, year=year, k=k, progress=step)
        bar.update(task, description="Report written", total=1, completed=1)
    return path


DEMO_SEED = 20241124


def _demo_incidents(con: Any, out_dir: Path, n: int) -> None:
    """The demo's incident part: a SIMULATED city (2 years), its areas with population, loaded as such."""
    from crimelens.simulate import simulate
    from crimelens.sources.boundaries import load_areas
    from crimelens.warehouse import core as warehouse

    csv = out_dir / "simulated_city.csv"
    areas = out_dir / "simulated_city_areas.geojson"
    with progress_bar() as bar:
        task = bar.add_task("Simulating a city's incidents (SIMULATED data)", total=None)
        summary = simulate(
            n, 2, DEMO_SEED, csv, start_year=2023, areas_out=areas,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )  # fmt: skip
        bar.update(task, description="Loading the simulated incidents")
        report = warehouse.load_incidents(con, csv, "chicago", source="simulated-city", simulated=True)
        load_areas(
            con, areas, area_set="simulated-city-areas", area_kind="community_area", id_property="area_id",
            name_property="name", population_property="population",
        )  # fmt: skip
    out.print(
        f"\nLoaded {report.rows_loaded:,} [bold]SIMULATED[/bold] incidents (a synthetic city, seed {summary.seed}, "
        "2023–2024) as dataset simulated-city: they show the incident analyses, not real crime.",
        soft_wrap=True,
    )
    out.print("Explore them, e.g.: crimelens incidents hotspots --db " + str(out_dir / "crimelens.duckdb"))


@command("demo")
def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the demo warehouse and report.")] = Path(
        "demo"
    ),
    incidents: Annotated[
        int,
        typer.Option("--incidents", help="Simulated incidents for the incident part of the demo (0 leaves it out)."),
    ] = 200_000,
) -> None:
    """Run everything on built-in data: FBI state estimates 1979–2019 and a SIMULATED city's incidents (offline)."""
    from crimelens import datasets, sources
    from crimelens.insights import key_findings
    from crimelens.warehouse import core as warehouse

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / "crimelens.duckdb"
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    path, fmt = datasets.builtin_path()
    err.print(f"Built-in data: {datasets.BUILTIN['fbi-state-estimates'][3]}")
    with progress_bar() as bar:
        task = bar.add_task(f"Reading {path.name}", total=None)
        parsed = sources.read(path, fmt, progress=lambda d, t: bar.update(task, completed=d, total=t))
        bar.update(task, description="Loading into the warehouse")
        con = warehouse.connect(db)
        report = warehouse.load_parsed(con, parsed)
    out.print(
        f"Loaded {report.rows_loaded:,} jurisdiction-years from {path.name} into {db} "
        f"({len(report.warnings)} data-quality warnings recorded)."
    )
    findings = key_findings(con, None, k=int(get_setting("top_k")))
    _show_findings(findings, None)
    if incidents > 0:
        _demo_incidents(con, out_dir, incidents)
    report_path = _build_report(con, out_dir / "report.html", None, None, int(get_setting("top_k")))
    con.close()
    out.print(f"\nReport: [bold]{report_path.resolve()}[/bold]  (open it in any browser; it works offline)")
    out.print(f"Explore further, e.g.: crimelens rank --db {db} --by count   ·   crimelens trends --db {db}")
    err.print(f"[dim]Done in {time.perf_counter() - started:.1f} s.[/dim]")


def main() -> None:
    """Console-script entry point."""
    app()
