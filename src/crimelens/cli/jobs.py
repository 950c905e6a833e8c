"""Commands that assemble many analyses: key findings, the HTML report and the demo."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from crimelens.cli.options import (
    CsvOpt,
    DbOpt,
    EndOpt,
    JsonOpt,
    KOpt,
    LimitOpt,
    ReferenceOpt,
    SinceOpt,
    SourceOpt,
    StartOpt,
    UntilOpt,
    YearOpt,
)
from crimelens.cli.render import emit, err, out, progress_bar, show_findings
from crimelens.cli.support import command, db_path, open_warehouse
from crimelens.config import get_setting
from crimelens.demo import Progress

__all__ = ["demo_cmd", "findings_cmd", "report_cmd"]


@contextmanager
def _progress(first: str) -> Iterator[Progress]:
    """A progress bar on stderr, as a ``(description, done, total)`` callback for :mod:`crimelens.demo`."""
    with progress_bar() as bar:
        task = bar.add_task(first, total=None)

        def tell(description: str, done: int | None, total: int | None) -> None:
            bar.update(task, description=description, completed=done or 0, total=total)

        yield tell


@command("findings")
def findings_cmd(
    source: SourceOpt = None,
    year: YearOpt = None,
    k: KOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 0,
) -> None:
    """Key findings in plain language, each with the numbers behind it (jurisdiction and incident data alike)."""
    from crimelens.insights import key_findings_on

    # on both cores when the warehouse holds both kinds of data (incident findings in a forked process)
    result = key_findings_on(db_path(db), source, year=year, k=int(get_setting("top_k", k)), fork=True)
    if as_json or as_csv:
        emit(result, as_json=as_json, as_csv=as_csv)
        return
    show_findings(result, None if limit == 0 else limit)


@command("report")
def report_cmd(
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the HTML report.")] = Path("report.html"),
    source: SourceOpt = None,
    year: YearOpt = None,
    k: KOpt = None,
    models: Annotated[
        bool,
        typer.Option(
            "--models/--no-models",
            help="Also add the prediction sections: which places will be high-crime next period (classifier beside "
            "baselines) and crime against socio-economic conditions, with the model card. Adds 5-15 s per dataset.",
        ),
    ] = False,
    offence: Annotated[
        str | None,
        typer.Option(
            "--offence",
            help="The offence the rankings, trends and comparison analyse (default: violent crime, and every "
            "offence in the comparison), e.g. robbery; the incident sections keep only its incidents "
            "(violent_crime and property_crime stand for their offences).",
        ),
    ] = None,
    jurisdiction: Annotated[
        str | None,
        typer.Option("--jurisdiction", help="A jurisdiction to focus on: it gets a comparison section, first."),
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            "--compare",
            help="Jurisdictions to compare, comma-separated, in the order to show them, e.g. "
            '"New York City,Los Angeles,Chicago".',
        ),
    ] = None,
    reference: ReferenceOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    static_svg: Annotated[
        bool,
        typer.Option(
            "--static-svg",
            help="Also embed a static picture (SVG) of every chart for readers who open the report with JavaScript "
            "off. Without it they get each chart's data table; browsers draw and print every chart either way. "
            "Adds about 1-2 s.",
        ),
    ] = False,
    db: DbOpt = None,
) -> None:
    """Write a self-contained HTML report (charts, findings, provenance, limitations; opens offline), on the whole
    warehouse or focused: one offence, a span of years, places compared side by side, or one incident dataset
    (--source) over --since/--until."""
    from crimelens.demo import write_report

    places = tuple(p.strip() for p in (compare or "").split(",") if p.strip())
    with open_warehouse(db) as con, _progress("Writing report") as tell:
        path = write_report(
            con, out_path, source, year=year, k=k, progress=tell, models=models, offence=offence, start=start,
            end=end, jurisdiction=jurisdiction, compare=places, reference=reference, since=since, until=until,
            static_svg=static_svg,
        )  # fmt: skip
    out.print(f"Report written to [bold]{path.resolve()}[/bold]")


@command("demo")
def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the demo warehouse and report.")] = Path(
        "demo"
    ),
    incidents: Annotated[
        int,
        typer.Option("--incidents", help="Simulated incidents for the incident part of the demo (0 leaves it out)."),
    ] = 200_000,
) -> None:
    """Run everything on built-in data: FBI state estimates 1979–2019 and a SIMULATED city's incidents (offline)."""
    from crimelens.demo import run_demo

    with _progress("Starting") as tell:
        run = run_demo(out_dir, incidents=incidents, progress=tell)
    err.print(f"Built-in data: {run.builtin_description}")
    load = run.jurisdiction_load
    out.print(
        f"Loaded {load.rows_loaded:,} jurisdiction-years from {run.builtin_file} into {run.db} "
        f"({len(load.warnings)} data-quality warnings recorded)."
    )
    if run.incident_load is not None and run.simulation is not None:
        out.print(
            f"Loaded {run.incident_load.rows_loaded:,} [bold]SIMULATED[/bold] incidents (a synthetic city, seed "
            f"{run.simulation.seed}, 2023–2024) as dataset simulated-city: they show the incident analyses, not "
            "real crime.",
            soft_wrap=True,
        )
    out.print()
    show_findings(run.findings, None)
    out.print(f"\nReport: [bold]{run.report.resolve()}[/bold]  (open it in any browser; it works offline)")
    out.print(f"Explore further, e.g.: crimelens rank --db {run.db} --by count   ·   crimelens trends --db {run.db}")
    if run.incident_load is not None:
        out.print(f"Incidents: crimelens incidents hotspots --db {run.db}")
    err.print(f"[dim]Done in {run.seconds:.1f} s.[/dim]")
