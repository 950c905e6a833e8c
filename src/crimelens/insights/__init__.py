"""Findings and recommendations: every finding, jurisdiction and incident alike, on one [0, 1] scale.

:func:`key_findings` is what ``crimelens findings``, the demo and (later) the dashboard show: the findings on
the jurisdiction-year dataset and on every incident dataset loaded (or on the one ``source`` names), ranked
together by score (:mod:`crimelens.insights.base`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crimelens.analysis.result import records_caveats
from crimelens.insights.base import Finding, Findings, findings_result

if TYPE_CHECKING:
    import duckdb

    from crimelens.analysis.memo import Memo

__all__ = ["Finding", "Findings", "key_findings", "key_findings_on"]


@records_caveats  # the caveats the analyses behind the findings raise travel in the result (and its JSON)
def key_findings(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    year: int | None = None,
    k: int = 5,
    cell_m: float | None = None,
    permutations: int | None = None,
    seed: int | None = None,
    memo: Memo | None = None,
    incidents: Callable[[], IncidentPart] | None = None,
) -> Findings:
    """The key findings on the data loaded, highest score first.

    Parameters
    ----------
    con : the warehouse.
    source : one dataset (jurisdiction-year or incident); default every dataset (with several jurisdiction-year
        datasets loaded, name one).
    year : the year jurisdiction findings look at (default: the latest).
    k : how many jurisdictions rankings, hotspots and concentration consider.
    cell_m, permutations, seed : the incident analyses' grid cell and permutation test (default: the settings).
    memo : share analyses with a report that shows them too.
    incidents : the incident datasets' findings and notes when computed elsewhere (:func:`key_findings_on`).

    Returns
    -------
    Findings
        ``findings`` ranked by score; ``table`` one row per finding with its structured evidence; ``notes``
        say which findings could not be drawn on this data and why.
    """
    from crimelens.analysis.jurisdictions.panel import shared_panels
    from crimelens.config import get_setting
    from crimelens.insights.jurisdictions import jurisdiction_findings
    from crimelens.schema import OFFENCE_LABELS

    jur, incs = _datasets(con, source)
    found: list[Finding] = []
    notes: list[str] = []
    params: dict[str, Any] = {"k": k}
    titles: list[str] = []
    for src in jur:
        with shared_panels():  # the findings' analyses read overlapping slices of one panel
            got, jur_notes, jur_params = jurisdiction_findings(con, src, year=year, k=k, memo=memo)
        found.extend(got)
        notes.extend(jur_notes)
        params.update(jur_params)
        titles.append(f"{OFFENCE_LABELS[jur_params['offence']].lower()}, {jur_params['year']}")
    if incs:
        cell = float(get_setting("cell_m", cell_m))
        perms = int(get_setting("permutations", permutations))
        rng_seed = int(get_setting("seed", seed))
        params.update({"incident_sources": incs, "cell_m": cell, "permutations": perms, "seed": rng_seed})
        got, inc_notes = incidents() if incidents is not None else _incident_part(con, incs, cell, perms, rng_seed)
        found.extend(got)
        notes.extend(inc_notes)
        titles.append("incidents of " + ", ".join(incs))
    notes.append("recorded crime reflects what is reported to and recorded by the police, not all crime")
    return findings_result(found, title="Key findings, " + "; ".join(titles), params=params, notes=notes)


def _datasets(con: duckdb.DuckDBPyConnection, source: str | None) -> tuple[list[str], list[str]]:
    """The jurisdiction-year and incident datasets the findings cover (checked: ``source`` loaded, one
    jurisdiction-year dataset at most when none is named)."""
    from crimelens.errors import DataError
    from crimelens.warehouse import list_incident_sources, list_sources

    jur_sources, inc_sources = list_sources(con), list_incident_sources(con)
    if source is not None and source not in jur_sources and source not in inc_sources:
        loaded = ", ".join([*jur_sources, *inc_sources]) or "none loaded yet"
        raise DataError(f"dataset {source!r} is not in the warehouse; loaded datasets: {loaded}")
    if not jur_sources and not inc_sources:
        raise DataError("the warehouse holds no crime data yet; load a file with `crimelens ingest PATH`")
    if source is None and len(jur_sources) > 1:
        raise DataError(
            f"the warehouse holds several jurisdiction-year datasets ({', '.join(jur_sources)}); choose one "
            "with --source"
        )
    jur = [source] if source in jur_sources else (jur_sources if source is None else [])
    incs = [source] if source in inc_sources else (inc_sources if source is None else [])
    return jur, incs


IncidentPart = tuple[list[Finding], list[str]]


def _incident_part(con: duckdb.DuckDBPyConnection, incs: list[str], cell: float, perms: int, seed: int) -> IncidentPart:
    """The findings and notes of the incident datasets ``incs``, in turn."""
    from crimelens.insights.incidents import incident_findings

    found: list[Finding] = []
    notes: list[str] = []
    for src in incs:
        got, inc_notes = incident_findings(con, src, cell_m=cell, permutations=perms, seed=seed)
        found.extend(got)
        notes.extend(inc_notes)
    return found, notes


def key_findings_on(
    db: str | Path,
    source: str | None = None,
    *,
    year: int | None = None,
    k: int = 5,
    cell_m: float | None = None,
    permutations: int | None = None,
    seed: int | None = None,
    fork: bool = False,
) -> Findings:
    """:func:`key_findings` on the warehouse file ``db``; with ``fork``, on both cores when it holds both kinds of
    data.

    With ``fork``, the incident datasets' findings are computed in a forked process
    (:mod:`crimelens.insights.forked`) while this one computes the jurisdiction findings; the result is the one
    :func:`key_findings` gives (the same findings, notes and warnings, in the same order). Only for a process
    that holds no connection to any warehouse (the command line): a forked child must not inherit an open
    database. Without a fork (not asked, not Linux, one core) or without both kinds of data, it is
    :func:`key_findings` itself.
    """
    from crimelens.config import get_setting
    from crimelens.insights.forked import can_fork, fork_call
    from crimelens.warehouse import connect

    options: dict[str, Any] = {"year": year, "k": k, "cell_m": cell_m, "permutations": permutations, "seed": seed}
    with contextlib.closing(connect(db, read_only=True)) as con:
        jur, incs = _datasets(con, source)
        if not (fork and jur and incs and can_fork()):
            return key_findings(con, source, **options)
    # looked before forking, then closed: the child must not inherit an open database (DuckDB's threads, caches)
    cell = float(get_setting("cell_m", cell_m))
    perms = int(get_setting("permutations", permutations))
    rng_seed = int(get_setting("seed", seed))

    def child() -> IncidentPart:
        with contextlib.closing(connect(db, read_only=True)) as own:
            return _incident_part(own, incs, cell, perms, rng_seed)

    forked = fork_call(child)
    try:
        with contextlib.closing(connect(db, read_only=True)) as con:
            return key_findings(con, source, **options, incidents=forked.result)
    finally:
        forked.cancel()  # reaps it; stops it first if this side failed before asking for its answer
