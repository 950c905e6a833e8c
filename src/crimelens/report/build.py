"""Build the self-contained HTML report: one file, every chart inline, nothing fetched from outside.

The report runs each analysis on one dataset of the warehouse and renders the results the CLI and the
dashboard also show, in this order: header and parameters, key findings, crime statistics,
jurisdictions, trends, persistent hotspots, incidents, the models (which places will be high-crime next period;
crime and socio-economic conditions; the model card), any extra sections, data provenance and limitations.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
from markupsafe import Markup

from crimelens import __version__
from crimelens.config import SETTINGS
from crimelens.errors import DataError, SourceError
from crimelens.formatting import evidence_text, format_value, humanize
from crimelens.insights import Finding, key_findings
from crimelens.insights.incidents import findings_from_results
from crimelens.report.blocks import PageSection, Runner
from crimelens.report.charts import page_script, slug
from crimelens.report.comparison import comparison_section
from crimelens.report.forecast import forecast_section
from crimelens.report.incidents import IncidentReportParams, incident_limitations, incident_section
from crimelens.report.models import ModelReportParams, model_sections
from crimelens.report.provenance import provenance, source_files
from crimelens.report.quality import Limitation, incident_provenance_section, limitations, provenance_section
from crimelens.report.sections import (
    OFFENCE,
    ReportParams,
    hotspots_section,
    jurisdictions_section,
    statistics_section,
    trends_section,
)
from crimelens.report.tables import records
from crimelens.schema import OFFENCE_LABELS
from crimelens.warehouse import list_incident_sources, list_sources, resolve_source

__all__ = ["STEPS", "Focus", "Section", "build_report"]

log = logging.getLogger(__name__)

#: The steps ``progress`` is told about, in order (one call before each).
STEPS: tuple[str, ...] = (
    "provenance",
    "key findings",
    "crime statistics",
    "jurisdictions",
    "trends",
    "persistent hotspots",
    "incidents",
    "models",
    "writing HTML",
)


@dataclass(frozen=True)
class Section:
    """An extra report section: a title and an HTML fragment, placed before Data provenance.

    ``html`` is inserted as is (it is trusted markup made by crimelens code): escape any data in it
    (``markupsafe.escape``) before building it. ``anchor`` is the id used by the table of contents
    (default: made from the title).
    """

    title: str
    html: str
    anchor: str | None = None


def _as_section(extra: object) -> Section:
    if isinstance(extra, Section):
        return extra
    if isinstance(extra, tuple) and len(extra) == 2 and all(isinstance(x, str) for x in extra):
        return Section(extra[0], extra[1])
    raise DataError(f"extra_sections: expected report.Section or (title, html) pairs of strings, got {extra!r:.80}")


def _latest_year(con: duckdb.DuckDBPyConnection, source: str, year: int | None) -> int:
    rows = con.execute(
        "SELECT DISTINCT year FROM jurisdiction_year WHERE source = ? AND violent_crime IS NOT NULL ORDER BY year",
        [source],
    ).fetchall()
    years = [int(r[0]) for r in rows]
    if not years:
        raise DataError(
            f"report: expected dataset {source!r} to have violent-crime counts, got none; "
            "the report ranks and trends violent crime"
        )
    if year is None:
        return years[-1]
    if isinstance(year, bool) or not isinstance(year, int) or year not in years:
        raise DataError(
            f"year: expected a year with violent-crime counts in {source!r} ({years[0]}–{years[-1]}), got {year!r}"
        )
    return year


@dataclass(frozen=True)
class Focus:
    """What a report is pointed at (``crimelens report --offence ... --jurisdiction ... --compare ...``).

    ``offence``: the offence the rankings, trends and hotspots analyse (None: violent crime, and every offence in
    the comparison); ``start``/``end``: the years the rates, totals, trends and comparison cover; ``jurisdiction``
    and ``compare``: the places of the comparison section (the jurisdiction first unless ``compare`` names it);
    ``reference``: its reference series, ``SOURCE[:JURISDICTION]`` (default: the nation from another dataset).
    """

    offence: str | None = None
    start: int | None = None
    end: int | None = None
    jurisdiction: str | None = None
    compare: tuple[str, ...] = ()
    reference: str | None = None

    @property
    def jurisdiction_focused(self) -> bool:
        return any(v not in (None, ()) for v in asdict(self).values())

    def places(self) -> list[str]:
        """The places to compare, in order."""
        names = list(self.compare)
        if self.jurisdiction is not None and self.jurisdiction.casefold() not in {n.casefold() for n in names}:
            names.insert(0, self.jurisdiction)
        return names

    def describe(self, offence: str) -> str:
        parts = []
        if self.offence is not None:
            parts.append(OFFENCE_LABELS[offence].lower())
        if self.places():
            parts.append(", ".join(self.places()))
        if self.start is not None or self.end is not None:
            parts.append(f"{self.start or 'first year'}–{self.end or 'latest'}")
        return f" ({'; '.join(parts)})" if parts else ""


def _incident_offences(offence: str) -> tuple[str, ...]:
    """The incident offences a report's ``--offence`` stands for: itself, or the offences of a group."""
    from crimelens.schema import COUNT_COLUMNS, OFFENCES, PROPERTY_OFFENCES, VIOLENT_OFFENCES

    groups = {"violent_crime": VIOLENT_OFFENCES, "property_crime": PROPERTY_OFFENCES}
    if offence in groups:
        return groups[offence]
    if offence in OFFENCES:
        return (offence,)
    allowed = ", ".join(dict.fromkeys([*COUNT_COLUMNS, *OFFENCES]))
    raise DataError(f"offence {offence!r} is not known; allowed: {allowed}")


def _report_year(con: duckdb.DuckDBPyConnection, src: str, year: int | None, focus: Focus) -> int:
    """The year rankings and findings look at: ``year``, else the focus' end year, else the latest with counts of the
    offence; the span is checked against the years the offence has counts in (one clear error otherwise)."""
    from crimelens.analysis.jurisdictions.panel import offence_years
    from crimelens.analysis.jurisdictions.statistics import resolve_years

    offence = focus.offence or OFFENCE
    if focus.offence is None:
        latest = _latest_year(con, src, year if focus.end is None else None)
    _, years = offence_years(con, src, offence)
    if focus.start is not None or focus.end is not None:
        lo, hi = resolve_years(years, offence, year=None, start=focus.start, end=focus.end, default="all")
        if year is not None and not lo <= year <= hi:
            raise DataError(f"year: expected a year within the span {lo}–{hi}, got {year}")
        return year if year is not None else hi
    if focus.offence is None:
        return latest
    if year is None:
        return int(years[-1])
    if year not in set(years.tolist()):
        raise DataError(f"year: expected a year with {offence} counts in {src!r} ({years[0]}–{years[-1]}), got {year}")
    return year


def _check_places(con: duckdb.DuckDBPyConnection, src: str, focus: Focus) -> list[str]:
    """The focus' places as ids, in order (an unknown name is one clear error naming the closest ones)."""
    from crimelens.analysis.jurisdictions.ranking import find_jurisdictions, rejoin_names

    names = focus.places()
    if not names:
        return []
    known = con.execute(
        "SELECT DISTINCT jy.jurisdiction_id, j.name, j.kind FROM jurisdiction_year jy "
        "JOIN jurisdictions j USING (jurisdiction_id) WHERE jy.source = ?",
        [src],
    ).df()
    return find_jurisdictions(known, rejoin_names(known, names))


def _focus_id(con: duckdb.DuckDBPyConnection, src: str, focus: Focus) -> str | None:
    """The id of the focused jurisdiction (None when the report has none)."""
    if focus.jurisdiction is None:
        return None
    return _check_places(con, src, Focus(jurisdiction=focus.jurisdiction))[0]


def _finding_view(f: Finding) -> dict[str, Any]:
    evidence = [(humanize(str(k)), evidence_text(str(k), v)) for k, v in f.evidence.items()]
    return {"kind": f.kind, "headline": f.headline, "detail": f.detail, "evidence": evidence}


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("crimelens.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["chart_script"] = page_script  # the chart JavaScript, inlined once per page
    return env


def build_report(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    source: str | None = None,
    *,
    year: int | None = None,
    k: int = SETTINGS["top_k"].default,
    title: str | None = None,
    progress: Callable[[str], None] | None = None,
    extra_sections: Sequence[Section | tuple[str, str]] = (),
    alpha: float = SETTINGS["alpha"].default,
    hotspot_share: float = SETTINGS["hotspot_share"].default,
    hotspot_window: int = SETTINGS["hotspot_window"].default,
    incident_sources: Sequence[str] | None = None,
    incident_params: IncidentReportParams | None = None,
    models: bool = True,
    model_params: ModelReportParams | None = None,
    forecast: bool = True,
    focus: Focus | None = None,
    static_svg: bool = False,
) -> Path:
    """Write the HTML report on ``source`` (default: the only dataset loaded) to ``out``; return its path.

    ``year`` is the year rankings and findings look at (default: the latest with violent-crime counts);
    ``k`` how many jurisdictions rankings, concentration and hotspots consider; ``alpha`` the significance
    level of trend tests; ``hotspot_share``/``hotspot_window`` the persistent-hotspot rule. ``progress``
    is called with each step's name (:data:`STEPS`) before the step runs. ``extra_sections``
    (:class:`Section` objects or ``(title, html)`` pairs; the HTML is trusted) are added before Data
    provenance. ``incident_sources`` (default: every incident dataset loaded) each get an incident section
    (:mod:`crimelens.report.incidents`, computed with ``incident_params``); a warehouse with incidents only
    gives a report of those. ``models`` adds the model sections (:mod:`crimelens.report.models`: the classifier
    on every dataset, the socio-economic regression where covariates are loaded, the model card) with
    ``model_params`` (default :class:`~crimelens.report.models.ModelReportParams`); the classifier's findings join
    the key findings; with ``forecast`` too, the hotspot-forecast section (:mod:`crimelens.report.forecast`) for
    every incident dataset. ``focus`` (:class:`Focus`) points the report at one offence, a span of years, a
    jurisdiction and the places to compare it with (a comparison section, first); ``source`` may name an incident
    dataset, which then gets a report of its own. Every parameter, including the seeds, is recorded in the
    report's metadata block.
    ``static_svg`` adds a static SVG of every chart (drawn by vl-convert) for readers without JavaScript, at
    about 0.6 s to start its engine and 50 ms a chart; without it such readers get each chart's data table, and
    browsers draw (and print) every chart as SVG.

    The file is self-contained: CSS, charts (Vega-Lite, with its JavaScript inlined once) are inline; it makes no
    network request and opens offline.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DataError(f"k: expected a whole number ≥ 1, got {k!r}")
    out = Path(out)
    if out.is_dir():
        raise SourceError(f"report {out}: is a folder; expected a file name such as {out / 'report.html'}")
    if not out.parent.is_dir():
        raise SourceError(f"report {out}: folder {out.parent} does not exist")
    extras = [_as_section(extra) for extra in extra_sections]
    mparams = (model_params or ModelReportParams()) if models else None
    step = progress or (lambda _name: None)

    inc_sources = list(incident_sources) if incident_sources is not None else list_incident_sources(con)
    inc_params = incident_params or IncidentReportParams.from_settings()
    fc = focus or Focus()
    if fc.offence is not None:
        inc_params = replace(inc_params, offences=_incident_offences(fc.offence))
    if source is not None and source not in list_sources(con) and source in list_incident_sources(con):
        if replace(fc, offence=None).jurisdiction_focused:
            raise DataError(
                f"dataset {source!r} holds incident records: --jurisdiction, --compare, --reference, --start and "
                "--end apply to jurisdiction-year datasets; for incidents use --offence, --since and --until"
            )
        html = _incident_only_report(con, [source], inc_params, title, extras, step, mparams, forecast, static_svg)
    elif source is None and not list_sources(con):
        if not inc_sources:
            raise DataError("the warehouse holds no crime data yet; load a file with `crimelens ingest PATH`")
        html = _incident_only_report(con, inc_sources, inc_params, title, extras, step, mparams, forecast, static_svg)
    else:
        html = _full_report(
            con, source, year, k, title, extras, step, alpha, hotspot_share, hotspot_window, inc_sources, inc_params,
            mparams, fc, forecast, static_svg,
        )  # fmt: skip
    partial = out.with_name(out.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(out)  # readers never see a half-written report
    log.info("report written to %s", out)
    return out


def _incident_sections(
    con: duckdb.DuckDBPyConnection, sources: Sequence[str], params: IncidentReportParams, run: Runner
) -> tuple[list[PageSection], list[Finding], bool]:
    sections: list[PageSection] = []
    findings: list[Finding] = []
    simulated = False
    for inc in sources:
        section, results = incident_section(con, inc, run, params)
        sections.append(section)
        findings.extend(findings_from_results(results))
        simulated = simulated or "SIMULATED" in section.title
    return sections, findings, simulated


def _incident_param_rows(params: IncidentReportParams) -> list[tuple[str, str]]:
    return [
        ("Incident grid cell", f"{params.cell_m:g} m (equal-area projection)"),
        ("Permutations (Gi*, Knox)", f"{params.permutations}, seed {params.seed}"),
        ("False discovery rate (Gi*)", str(params.alpha)),
    ]


def _model_param_rows(mparams: ModelReportParams | None) -> list[tuple[str, str]]:
    if mparams is None:
        return []
    return [
        (
            "Models (classifier)",
            f"seed {mparams.seed}, {mparams.n_boot} bootstrap replicates, latest {mparams.test_years} "
            "predicted years of jurisdiction-year data",
        )
    ]


def _incident_only_report(
    con: duckdb.DuckDBPyConnection,
    sources: Sequence[str],
    params: IncidentReportParams,
    title: str | None,
    extras: list[Section],
    step: Callable[[str], None],
    mparams: ModelReportParams | None,
    forecast: bool = True,
    static_svg: bool = False,
) -> str:
    for name in STEPS[:6]:
        step(name)
    run = Runner(con, ",".join(sources), static_svg=static_svg)
    step("incidents")
    sections, findings, simulated = _incident_sections(con, sources, params, run)
    step("models")
    model_values: dict[str, Any] = {}
    if mparams is not None:
        m_sections, m_findings, model_values = model_sections(run, [], sources, mparams)
        forecasts = forecast_section(run, sources) if forecast else []
        sections.extend(m_sections[:-1] + forecasts + m_sections[-1:])  # the forecast before the model card
        findings.extend(m_findings)
    for extra in extras:
        sections.append(PageSection(slug(extra.anchor or extra.title), extra.title, html=Markup(extra.html)))
    sections.append(incident_provenance_section(source_files(con, [], list(sources))))
    step(STEPS[-1])
    generated = dt.datetime.now(dt.UTC).replace(microsecond=0)
    report_title = title or f"Crime report: {', '.join(sources)}" + (" (includes SIMULATED data)" if simulated else "")
    metadata = {
        "crimelens_version": __version__,
        "generated_at": generated.isoformat(),
        "title": report_title,
        "params": {"incident_sources": list(sources), **asdict(params), **model_values},
        "seeds": {"permutations": params.seed, **({"models": mparams.seed} if mparams else {})},
        "analyses": run.analyses,
        "analyses_failed": run.failed,
        "charts": run.n_charts,
        "loads": _incident_loads(con, sources),
        "sections": [s.anchor for s in sections],
    }
    meta = {
        "title": report_title,
        "source": ", ".join(sources),
        "first_year": None,
        "last_year": None,
        "n_years": None,
        "n_jurisdictions": "",
        "year": None,
        "generated_at": generated.strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "param_rows": [*_incident_param_rows(params), *_model_param_rows(mparams)],
    }
    findings.sort(key=lambda f: -f.score)
    toc = [("findings", "Key findings"), *((s.anchor, s.title) for s in sections), ("limitations", "Limitations")]
    limits = [Limitation(t, x) for t, x in incident_limitations(simulated)]
    return str(
        _environment()
        .get_template("report.html")
        .render(
            meta=meta, toc=toc, findings=[_finding_view(f) for f in findings], findings_error=None,
            findings_caveats=[], sections=sections, limitations=limits, metadata=metadata,
        )
    )  # fmt: skip


def _incident_loads(con: duckdb.DuckDBPyConnection, sources: Sequence[str]) -> list[dict[str, Any]]:
    if not sources:
        return []
    rows = con.execute(
        "SELECT load_id, file_name, sha256, status FROM loads WHERE list_contains(?, source) ORDER BY load_id",
        [list(sources)],
    ).fetchall()
    return [{"load_id": int(a), "file": b, "sha256": c, "status": d} for a, b, c, d in rows]


def _full_report(
    con: duckdb.DuckDBPyConnection,
    source: str | None,
    year: int | None,
    k: int,
    title: str | None,
    extras: list[Section],
    step: Callable[[str], None],
    alpha: float,
    hotspot_share: float,
    hotspot_window: int,
    inc_sources: Sequence[str],
    inc_params: IncidentReportParams,
    mparams: ModelReportParams | None,
    focus: Focus,
    forecast: bool = True,
    static_svg: bool = False,
) -> str:
    step(STEPS[0])
    src = resolve_source(con, source)
    offence = focus.offence or OFFENCE
    the_year = _report_year(con, src, year, focus)
    focus_ids = _check_places(con, src, focus)
    prov = provenance(con, src, year=the_year)
    params = ReportParams(
        year=the_year, k=k, alpha=alpha, hotspot_share=hotspot_share, hotspot_window=hotspot_window, offence=offence,
        start=focus.start, end=focus.end, jurisdiction=_focus_id(con, src, focus),
    )  # fmt: skip
    run = Runner(con, src, static_svg=static_svg)

    step(STEPS[1])
    found = run.run("insights.key_findings", key_findings, con, src, year=the_year, k=k, memo=run.memo)

    sections: list[PageSection] = []
    if focus_ids:  # the places asked for come first
        sections.append(
            comparison_section(
                run, focus_ids, offences=None if focus.offence is None else [focus.offence], start=focus.start,
                end=focus.end, reference=focus.reference,
            )
        )  # fmt: skip
    for name, make in zip(
        STEPS[2:6], (statistics_section, jurisdictions_section, trends_section, hotspots_section), strict=True
    ):
        step(name)
        sections.append(make(run, params))
    inc_findings: list[Finding] = []
    simulated = False
    step("incidents")
    if inc_sources:
        inc_sections, inc_findings, simulated = _incident_sections(con, inc_sources, inc_params, run)
        sections.extend(inc_sections)
    step("models")
    model_values: dict[str, Any] = {}
    if mparams is not None:
        m_sections, m_findings, model_values = model_sections(run, [src], inc_sources, mparams)
        forecasts = forecast_section(run, inc_sources) if forecast else []
        sections.extend(m_sections[:-1] + forecasts + m_sections[-1:])  # the forecast before the model card
        inc_findings.extend(m_findings)
    for extra in extras:
        anchor = slug(extra.anchor or extra.title)
        sections.append(PageSection(anchor, extra.title, html=Markup(extra.html)))
    sections.append(provenance_section(prov, source_files(con, [src], list(inc_sources))))

    step(STEPS[-1])
    generated = dt.datetime.now(dt.UTC).replace(microsecond=0)
    report_title = title or f"Crime report: {src}" + focus.describe(offence) + (
        " and incidents (includes SIMULATED data)" if simulated else ""
    )
    param_values: dict[str, Any] = {
        "source": src,
        "offence": offence,
        **({"focus": asdict(focus)} if focus.jurisdiction_focused else {}),
        "year": the_year,
        "year_requested": year,
        "k": k,
        "alpha": alpha,
        "hotspot_share": hotspot_share,
        "hotspot_window": hotspot_window,
    }
    param_rows = [
        ("Offence analysed", OFFENCE_LABELS[offence]),
        *([("Places compared", ", ".join(focus_ids))] if focus_ids else []),
        *([("Years", f"{focus.start or 'first'}–{focus.end or 'latest'}")] if focus.start or focus.end else []),
        ("Top k (rankings, concentration, hotspots)", str(k)),
        ("Significance level (α)", str(alpha)),
        ("Persistent-hotspot rule", f"top {k} in ≥ {hotspot_share:.0%} of {hotspot_window} years"),
        *(
            _incident_param_rows(inc_params)
            if inc_sources
            else [
                (
                    "Random seed",
                    f"{mparams.seed} (the models and their bootstrap)"
                    if mparams
                    else "none: no analysis in this report draws random numbers",
                )
            ]
        ),
        *_model_param_rows(mparams),
    ]
    if inc_sources:
        param_values.update({"incident_sources": list(inc_sources), **asdict(inc_params)})
    param_values.update(model_values)
    metadata = {
        "crimelens_version": __version__,
        "generated_at": generated.isoformat(),
        "title": report_title,
        "params": param_values,
        "seeds": {
            **({"permutations": inc_params.seed} if inc_sources else {}),
            **({"models": mparams.seed} if mparams else {}),
        },
        "analyses": run.analyses,
        "analyses_failed": run.failed,
        "charts": run.n_charts,
        "loads": [
            {"load_id": int(r["load_id"]), "file": r["file_name"], "sha256": r["sha256"], "status": r["status"]}
            for r in records(prov.loads)
        ]
        + _incident_loads(con, inc_sources),
        "sections": [s.anchor for s in sections],
    }
    meta = {
        "title": report_title,
        "source": src,
        "first_year": prov.first_year,
        "last_year": prov.last_year,
        "n_years": prov.n_years,
        "n_jurisdictions": format_value(prov.n_jurisdictions, "count") if prov.n_jurisdictions else "",
        "year": the_year,
        "generated_at": generated.strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "param_rows": param_rows,
    }
    findings = found.value
    # one scale for every finding: jurisdiction, incident and model findings are ranked together
    all_findings = sorted([*(findings.findings if findings else ()), *inc_findings], key=lambda f: -f.score)
    toc = [("findings", "Key findings"), *((s.anchor, s.title) for s in sections), ("limitations", "Limitations")]
    limits = limitations(prov, the_year)
    if inc_sources:
        limits = [*limits, *(Limitation(t, x) for t, x in incident_limitations(simulated))]
    return str(
        _environment()
        .get_template("report.html")
        .render(
            meta=meta,
            toc=toc,
            findings=[_finding_view(f) for f in all_findings],
            findings_error=found.unavailable("Key findings"),
            findings_caveats=list(found.caveats),
            sections=sections,
            limitations=limits,
            metadata=metadata,
        )
    )
