"""What every finding shares: the :class:`Finding` contract, one scoring scale for all kinds, and the wording
helpers findings are written with.

A finding is a headline, a detail sentence, the numbers behind it (structured ``evidence``), a ``kind`` and a
``score`` in [0, 1]: ``weight(kind) × strength``, both in [0, 1], so jurisdiction and incident findings rank
on one scale. Each kind's weight and strength:

======================  ======  ==========================================================================
kind                    weight  strength
======================  ======  ==========================================================================
counts_vs_rates         1.0     1 − 0.5 × (overlap of the top-k lists by count and by rate) / k
hotspots                0.9     mean share of years the hotspots spent in the top k (0.5 when none)
incident_concentration  0.9     1 − share of cells holding half the located incidents (≥ 0.5)
national_change         0.8     1 when the latest change is significant, 0.5 when not
trend_rising,           0.8     0.5 + |% change of the rate per year| / 10, at most 1
trend_falling
trend_none              0.8     0.5 (no significant long-run trend anywhere)
incident_hotspots       0.8     0.5 + share of located incidents in Gi* hot cells, at most 1
incident_near_repeat    0.7     0.5 + (Knox ratio of the closest band − 1), at most 1
model_gain              0.7     0.5 + 5 × lower end of the model's paired ROC-AUC gain interval, at most 1
concentration           0.6     0.5 + (share held by the top k − k's share of jurisdictions), at most 1
offence_mix             0.6     0.5 + share of the most common violent offence / 2
incident_peak_time      0.6     0.5 + (peak hour's share × 168 − 1) / 4, at most 1 (168 = hours a week)
model_no_gain           0.6     the best baseline's ROC-AUC (no model beats it; it matters most when strong)
caveats                 0.5     1
======================  ======  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crimelens.analysis.result import Result, jsonable

__all__ = [
    "MAX_NAMES",
    "WEIGHTS",
    "Finding",
    "Findings",
    "among_highest",
    "findings_result",
    "fmt_count",
    "fmt_p",
    "fmt_pct",
    "fmt_rate",
    "join_names",
    "make_finding",
    "sentence",
]

#: Most names a headline lists before "and N more".
MAX_NAMES = 5

WEIGHTS: dict[str, float] = {
    "counts_vs_rates": 1.0,
    "hotspots": 0.9,
    "incident_concentration": 0.9,
    "national_change": 0.8,
    "trend_rising": 0.8,
    "trend_falling": 0.8,
    "trend_none": 0.8,
    "incident_hotspots": 0.8,
    "incident_near_repeat": 0.7,
    "model_gain": 0.7,
    "concentration": 0.6,
    "offence_mix": 0.6,
    "incident_peak_time": 0.6,
    "model_no_gain": 0.6,
    "caveats": 0.5,
}


@dataclass(frozen=True)
class Finding:
    """One finding: a plain-language headline, a detail sentence, the numbers behind it and its score."""

    kind: str
    headline: str
    detail: str
    evidence: dict[str, Any]
    score: float
    source: str = ""


@dataclass(frozen=True)
class Findings(Result):
    """Key findings, highest score first (``table``: rank, kind, headline, detail, evidence, score, source)."""

    findings: tuple[Finding, ...] = field(default=())


def make_finding(
    kind: str, headline: str, detail: str, evidence: dict[str, Any], strength: float, source: str = ""
) -> Finding:
    """A finding scored ``WEIGHTS[kind] × strength`` (strength clipped to [0, 1])."""
    score = round(WEIGHTS[kind] * max(0.0, min(1.0, float(strength))), 4)
    return Finding(kind, headline, detail, jsonable(evidence), score, source)


def findings_result(
    found: Iterable[Finding], *, title: str, params: dict[str, Any], notes: Sequence[str] = ()
) -> Findings:
    """Findings ranked by score (highest first) as a result; ``evidence`` stays structured in the table."""
    ranked = sorted(found, key=lambda f: f.score, reverse=True)
    table = pd.DataFrame(
        [(i, f.kind, f.headline, f.detail, f.evidence, f.score, f.source) for i, f in enumerate(ranked, start=1)],
        columns=["rank", "kind", "headline", "detail", "evidence", "score", "source"],
    )
    return Findings(title=title, table=table, params=params, notes=tuple(notes), findings=tuple(ranked))


# -- wording ----------------------------------------------------------------------------------------
def fmt_count(value: float) -> str:
    return f"{round(value):,}"


def fmt_rate(value: float) -> str:
    return f"{value:,.1f}"


def fmt_pct(value: float, signed: bool = False) -> str:
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def fmt_p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def join_names(names: Sequence[str]) -> str:
    """'A, B and C' (semicolons when a name has a comma, e.g. 'St. Louis, Mo.')."""
    names = [str(n) for n in names]
    if len(names) <= 1:
        return "".join(names)
    sep = "; " if any("," in n for n in names) else ", "
    return sep.join(names[:-1]) + " and " + names[-1]


def among_highest(k: int) -> str:
    return "with the highest" if k == 1 else f"among the {k} highest"


def sentence(text: str) -> str:
    """``text`` ending with exactly one full stop."""
    return text if text.endswith(".") else text + "."
