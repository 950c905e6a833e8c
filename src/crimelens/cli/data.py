"""Commands that bring data in and show where it came from: ingest, areas, loads, issues, formats, simulate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from crimelens.cli.options import CsvOpt, DbOpt, JsonOpt, LimitOpt
from crimelens.cli.render import emit, envelope, out, print_csv, print_json, progress_bar, show_table
from crimelens.cli.support import command, command_name, db_path, open_warehouse
from crimelens.config import SETTINGS, get_setting
from crimelens.errors import ConfigError
from crimelens.schema import SIMULATED_SOURCE

__all__ = ["areas_cmd", "formats", "ingest", "issues_cmd", "loads", "simulate_cmd"]


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
            help="Mark an incident dataset as simulated: every report and table built on it says so, and it never "
            "joins a real dataset. Files made by `crimelens simulate` are recognised without it.",
        ),
    ] = False,
    replace_period: Annotated[
        bool,
        typer.Option(
            "--replace-period",
            help="Incident files: first remove the dataset's incidents on the days from the file's first to its last "
            "incident (a corrected re-export that stands in for them); the number removed is reported.",
        ),
    ] = False,
    append: Annotated[
        bool,
        typer.Option(
            "--append",
            help="Incident files without incident ids: load them even when most rows are new to a period the "
            "dataset already holds (another offence's file of the same period). Without it such a load stops, "
            "since it is usually a changed re-export that would count incidents twice.",
        ),
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load a crime data file into the warehouse (atomic: all of it or nothing; re-loading is a no-op)."""
    from crimelens import sources, warehouse

    _, incidents = sources.resolve_format(path, fmt, mapping, encoding)
    if incidents:
        _ingest_incidents(path, fmt, mapping, source, max_errors, db, as_json, simulated, replace_period, append)
        return
    for flag, given in (("--simulated", simulated), ("--replace-period", replace_period), ("--append", append)):
        if given:
            raise ConfigError(f"{flag} applies to incident files only")
    limit = int(get_setting("max_errors", max_errors))
    with progress_bar(enabled=not as_json) as bar:
        task = bar.add_task(f"Reading {path.name}", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        parsed = sources.read(path, fmt, mapping=mapping, encoding=encoding, progress=advance)
        if errors_out is not None:
            _write_issues(errors_out, parsed.issues)
        bar.update(task, description=f"Loading {path.name}")
        con = warehouse.connect(db_path(db))
        try:
            report = warehouse.load_parsed(con, parsed, source=source, max_errors=limit)
        finally:
            con.close()
    if as_json:
        issues = [
            {"file": i.file, "line": i.line, "column": i.column, "severity": i.severity, "code": i.code,
             "message": i.message}
            for i in report.issues
        ]  # fmt: skip
        print_json(
            envelope(
                command_name(),
                report,
                title=f"Load of {path.name}",
                params=_load_params(path, fmt, source),
                rows=issues,
            )
        )
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
        out.print(
            f"[yellow]{n:,} warning(s) {escape(str(code))}[/yellow], e.g. {escape(str(example))}",
            highlight=False,
            soft_wrap=True,
        )


def _ingest_incidents(
    path: Path, fmt: str | None, mapping: Path | None, source: str | None, max_errors: int | None, db: Path | None,
    as_json: bool, simulated: bool = False, replace_period: bool = False, append: bool = False,
) -> None:  # fmt: skip
    """Incident files load DuckDB-natively (upsert by incident key); the summary lists rows by reason."""
    from crimelens import warehouse

    with progress_bar(enabled=not as_json) as bar:
        task = bar.add_task(f"Loading {path.name}", total=None)
        con = warehouse.connect(db_path(db))
        try:
            report = warehouse.load_incidents(
                con, path, fmt, source=source, mapping=mapping, max_errors=max_errors, simulated=simulated,
                replace_period=replace_period, append=append,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
        finally:
            con.close()
    if as_json:
        reasons = [
            {"reason": r, "action": a, "rows": n, "example_lines": list(report.examples.get(r, ()))}
            for r, (a, n) in report.reasons.items()
        ]
        print_json(
            envelope(
                command_name(),
                report,
                title=f"Load of {path.name}",
                params=_load_params(path, fmt, source),
                rows=reasons,
            )
        )
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
    from crimelens import warehouse
    from crimelens.errors import ConfigError
    from crimelens.warehouse import areas

    con = warehouse.connect(db_path(db))
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
        print_json(
            envelope(
                command_name(),
                report,
                title=f"Areas from {path.name}",
                params={"file": str(path), "preset": preset, "set": area_set},
            )
        )
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


def _load_params(path: Path, fmt: str | None, source: str | None) -> dict[str, Any]:
    return {"file": str(path), "format": fmt, "source": source}


def _write_issues(path: Path, issues: list[Any]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "line", "column", "severity", "code", "message"])
        for i in issues:
            w.writerow([i.file, i.line, i.column or "", i.severity, i.code, i.message])


@command("loads")
def loads(db: DbOpt = None, as_json: JsonOpt = False, as_csv: CsvOpt = False, limit: LimitOpt = 25) -> None:
    """List every load: file, sha256, rows read/loaded/rejected, when, and whether it was replaced."""
    from crimelens.analysis.result import Result
    from crimelens.warehouse import list_loads

    with open_warehouse(db) as con:
        frame = list_loads(con)
    result = Result("Loads (provenance)", frame)
    if as_json or as_csv:
        emit(result, as_json=as_json, as_csv=as_csv)
        return
    shown = frame.assign(sha256=frame["sha256"].str[:12], started_at=frame["started_at"].dt.strftime("%Y-%m-%d %H:%M"))
    cols = [
        "load_id", "source", "file_name", "sha256", "rows_read", "rows_loaded", "rows_rejected", "warnings",
        "started_at", "status",
    ]  # fmt: skip
    show_table(shown[cols], result.title, None if limit == 0 else limit)


@command("issues")
def issues_cmd(
    load: Annotated[int | None, typer.Option("--load", help="Only this load (see `crimelens loads`).")] = None,
    code: Annotated[
        str | None,
        typer.Option("--code", help="Only this kind of issue, e.g. partial_year or violent_sum_mismatch."),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """List the problems recorded when files were loaded (rejected rows and warnings), with file, line, column."""
    from crimelens.analysis.result import Result
    from crimelens.warehouse import list_issues

    with open_warehouse(db) as con:
        frame = list_issues(con, load, code)
    counts = frame.groupby(["load_id", "severity", "code"]).size().reset_index(name="count")
    result = Result(
        "Issues recorded at load",
        frame,
        params={"load": load, "code": code},
        notes=() if len(frame) else ("No issues recorded" + (f" for load {load}" if load is not None else "") + ".",),
    )
    if as_json:
        emit(result, as_json=True, by_kind=counts)
        return
    if as_csv:
        print_csv(frame)
        return
    if frame.empty:
        out.print(result.notes[0])
        return
    show_table(counts, "Issues recorded at load, by kind", None)
    show_table(frame, "Issues", None if limit == 0 else limit)


@command("formats")
def formats() -> None:
    """List the input formats crimelens can read, what each holds, and what to keep in mind about it."""
    from crimelens.sources.registry import REGISTRY

    for f in REGISTRY.values():
        grain = {"jurisdiction-years": "jurisdiction-years", "incidents": "incidents", "mapped": "either"}[f.grain]
        out.print(f"[bold]{f.name}[/bold] ({grain}): {escape(f.description)}", soft_wrap=True)
        for caveat in f.caveats:
            out.print(f"    caveat: {caveat}", soft_wrap=True, highlight=False)


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
        print_json(
            envelope(command_name(), summary, title="Simulated incidents (SIMULATED data)",
                     params={"incidents": incidents, "years": years, "seed": seed, "start_year": start_year,
                             "branching_ratio": branching_ratio, "out": str(out_path)})
        )  # fmt: skip
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
        f"Load it with: crimelens ingest {out_path}  (it loads only as a simulated dataset, {SIMULATED_SOURCE!r} "
        "unless you name another with --source)",
        soft_wrap=True,
        highlight=False,
    )
