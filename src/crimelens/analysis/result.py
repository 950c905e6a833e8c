"""Result objects shared by every analysis, and the declarative chart spec they expose.

An analysis returns a frozen :class:`Result`: ``table`` (a tidy data frame), ``params`` (what it was
asked), ``notes``, ``warnings`` (the statistical caveats raised while it was computed) and ``chart()`` (a
:class:`ChartSpec` the CLI, report and dashboard all render the same way). ``to_dict()`` serialises every
declared field, so a renderer never patches fields in.

Results are immutable: the dataclass is frozen, ``params`` is a read-only mapping and ``notes`` and
``warnings`` are tuples. Data frames (``table`` and any frame-valued field) are shared, not copied, for
speed: treat them as read-only, and copy a frame before changing it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, ParamSpec, TypeVar

import pandas as pd

from crimelens.errors import CrimeLensWarning

__all__ = ["Caveat", "ChartSpec", "Result", "frame_records", "jsonable", "records_caveats"]

ChartKind = Literal["line", "bar", "barh", "stacked_barh", "small_multiples", "scatter"]


@dataclass(frozen=True)
class ChartSpec:
    """A chart described, not drawn: a tidy frame and which columns play which role.

    ``kind``: line (x, y, optional series), bar/barh (x categories, y values), stacked_barh (x category,
    y value, series stacks), small_multiples (one line panel per ``facet``), scatter. ``reference`` draws a
    dashed line at that value (bars then grow from it); ``diagonal`` draws y = x. The renderer that draws every
    spec is :mod:`crimelens.analysis.vega`.
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
    reference: float | None = None  # a reference value on the value axis (e.g. a ratio of 1); bars grow from it
    diagonal: bool = False  # draw the line y = x (e.g. a calibration chart)


@dataclass(frozen=True)
class Caveat:
    """A statistical caveat raised while a result was computed: the warning's class name and its message."""

    category: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"category": self.category, "message": self.message}


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return _clean(value.item())
    return value


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A data frame as JSON-ready records (NaN and NA become None)."""
    return [{str(k): _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def jsonable(value: Any) -> Any:
    """Any result field as JSON-ready data: frames become records, results and dataclasses nested objects."""
    if isinstance(value, pd.DataFrame):
        return frame_records(value)
    if isinstance(value, pd.Series):
        return [_clean(v) for v in value.tolist()]
    if hasattr(value, "to_dict") and not isinstance(value, type) and callable(value.to_dict):
        return jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy arrays
        return jsonable(value.tolist())
    return _clean(value)


_BASE_FIELDS = ("title", "table", "params", "notes", "warnings")


@dataclass(frozen=True)
class Result:
    """The outcome of one analysis (immutable: see the module docstring)."""

    title: str
    table: pd.DataFrame
    params: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    warnings: tuple[Caveat, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.params, MappingProxyType):
            object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def chart(self) -> ChartSpec | None:
        """The chart that best shows this result (None when a table says it all)."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """Every declared field as JSON-ready data: title, params, notes, warnings, rows and the result's own."""
        data: dict[str, Any] = {
            "title": self.title,
            "params": {k: jsonable(v) for k, v in self.params.items()},
            "notes": list(self.notes),
            "warnings": [w.to_dict() for w in self.warnings],
            "rows": frame_records(self.table),
        }
        for f in dataclasses.fields(self):
            if f.name not in _BASE_FIELDS:
                data[f.name] = jsonable(getattr(self, f.name))
        return data


P = ParamSpec("P")
R = TypeVar("R")


def records_caveats(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate an analysis so the :class:`CrimeLensWarning` caveats it raises travel inside its result.

    The warnings are still raised as usual (callers and the CLI see them); each one is also added to the
    returned result's ``warnings`` (once, however deeply nested the analyses that raised it).
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CrimeLensWarning)
            result = func(*args, **kwargs)
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        own = [Caveat(w.category.__name__, str(w.message)) for w in caught if issubclass(w.category, CrimeLensWarning)]
        if own and isinstance(result, Result):
            new = tuple(dict.fromkeys(c for c in own if c not in result.warnings))
            if new:
                result = dataclasses.replace(result, warnings=(*result.warnings, *new))  # type: ignore[assignment]
        return result

    return wrapper
