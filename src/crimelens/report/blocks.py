"""The pieces a report page is assembled from, and the runner that calls each analysis for it.

A :class:`Block` is one analysis as the reader sees it: a heading, a few sentences, charts, a table,
the analysis' own notes and any statistical caveats it raised. :class:`Runner` calls the analyses: it
records which ran (for the metadata block), turns crimelens' typed warnings into caveats printed next
to the result (never silenced), and turns a :class:`~crimelens.errors.CrimeLensError` into a visible
"could not be computed" notice so one analysis that does not fit a dataset does not sink the report.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, ParamSpec, TypeVar

import duckdb
from markupsafe import Markup

from crimelens.analysis.memo import Memo
from crimelens.analysis.result import ChartSpec
from crimelens.analysis.vega import flat_line_sentence
from crimelens.errors import CrimeLensError, CrimeLensWarning
from crimelens.report.charts import render_figure, slug

__all__ = ["Block", "Outcome", "PageSection", "Runner"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Block:
    """One sub-section (an ``<h3>``) of the report."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[Markup] = field(default_factory=list)
    tables: list[Markup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    unavailable: str | None = None
    anchor: str = ""

    def __post_init__(self) -> None:
        if not self.anchor:
            self.anchor = slug(self.title)


@dataclass
class PageSection:
    """One top-level section (an ``<h2>`` with an entry in the table of contents)."""

    anchor: str
    title: str
    intro: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    html: Markup | None = None


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one analysis call gave: its value, or the error it raised, plus the caveats it warned about."""

    value: T | None
    error: str | None = None
    caveats: tuple[str, ...] = ()

    def unavailable(self, what: str) -> str | None:
        return None if self.error is None else f"{what} could not be computed for this dataset: {self.error}"


class Runner:
    """Calls analyses for the report and numbers its charts (ids stay unique on the page)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, source: str, *, static_svg: bool = False) -> None:
        self.con = con
        self.source = source
        self.static_svg = static_svg  # a static SVG of each chart for readers without JavaScript (vl-convert)
        self.analyses: list[str] = []
        self.failed: dict[str, str] = {}
        self.n_charts = 0
        self.memo = Memo()  # each analysis runs once per report, whether a section or a finding asks first

    def run(self, name: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Outcome[T]:
        """Call ``fn``; record ``name``; keep crimelens warnings as caveats and re-issue any other warning."""
        self.analyses.append(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = self.memo(fn, *args, **kwargs)
                error = None
            except CrimeLensError as exc:
                value, error = None, str(exc)
        caveats: list[str] = []
        # a result computed earlier (the memo) raises no warning again: its caveats travel inside it
        for c in getattr(value, "warnings", ()):
            if c.message not in caveats:
                caveats.append(c.message)
        for w in caught:
            if issubclass(w.category, CrimeLensWarning):
                text = str(w.message)
                if text not in caveats:
                    caveats.append(text)
            else:  # not ours to judge: hand it back to the caller's filters
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        if error is not None:
            self.failed[name] = error
            log.warning("report: %s could not be computed: %s", name, error)
        return Outcome(value, error, tuple(caveats))

    def figure(self, spec: ChartSpec | None, *, caption: str | None = None, compact: bool = False) -> list[Markup]:
        """The chart as a ``<figure>`` (an empty list when there is no chart).

        ``compact``: meant to sit beside another chart (the page lays pairs side by side on wide screens; every
        chart fills its container's width).
        """
        if spec is None:
            return []
        if flat_line_sentence(spec) is not None:  # one flat line: a sentence says it (and is not a chart)
            return [render_figure(spec, caption=caption)]
        return [render_figure(spec, id_prefix=self.next_id(), caption=caption, fallback=self.static_svg)]

    def next_id(self) -> str:
        """A fresh chart id, unique on the page."""
        self.n_charts += 1
        return f"chart{self.n_charts}"
