"""Result objects shared by every analysis, and the declarative chart spec they expose.

An analysis returns a frozen :class:`Result`: ``table`` (a tidy data frame), ``params`` (what it was
asked), and ``chart()`` (a :class:`ChartSpec` the CLI, report and dashboard all render the same way).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

__all__ = ["ChartSpec", "Result", "frame_records"]

ChartKind = Literal["line", "bar", "barh", "stacked_barh", "small_multiples", "scatter"]


@dataclass(frozen=True)
class ChartSpec:
    """A chart described, not drawn: a tidy frame and which columns play which role.

    ``kind``: line (x, y, optional series), bar/barh (x categories, y values), stacked_barh (x category,
    y value, series stacks), small_multiples (one line panel per ``facet``), scatter.
    """

    kind: ChartKind
    data: pd.DataFrame
    x: str
    y: str
    title: str
    series: str | None = None
    facet: str | None = None
    x_label: str = ""
    y_label: str = ""
    note: str = ""
    highlight: str | None = None  # a boolean column: marks emphasised points/bars


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return _clean(value.item())
    return value


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A data frame as JSON-ready records (NaN and NA become None)."""
    return [{str(k): _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


@dataclass(frozen=True)
class Result:
    """The outcome of one analysis."""

    title: str
    table: pd.DataFrame
    params: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def chart(self) -> ChartSpec | None:
        """The chart that best shows this result (None when a table says it all)."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "params": {k: _clean(v) for k, v in self.params.items()},
            "notes": list(self.notes),
            "rows": frame_records(self.table),
        }
