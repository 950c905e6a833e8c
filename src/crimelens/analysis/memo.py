"""Compute each analysis once per job: a memo of results keyed by the analysis and its arguments.

A report runs the analyses its sections show and the findings cite; both ask the same :class:`Memo`, so an
analysis the findings need and a section shows runs once. Calls whose arguments cannot be hashed (data frames,
Ibis tables) run every time. A cached error is raised again; the caveats of a cached result travel in its
``warnings`` (:func:`crimelens.analysis.result.records_caveats`), since the warning itself is raised only once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from crimelens.errors import CrimeLensError

__all__ = ["Memo", "call"]

P = ParamSpec("P")
T = TypeVar("T")


class Memo:
    """Results of analysis calls made during one job (not shared between jobs: the warehouse may change)."""

    def __init__(self) -> None:
        self._values: dict[Any, Any] = {}
        self._errors: dict[Any, CrimeLensError] = {}
        self.hits = 0

    def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        key = (
            getattr(fn, "__module__", ""),
            getattr(fn, "__qualname__", repr(fn)),
            args,
            tuple(sorted(kwargs.items())),
        )
        try:
            hash(key)
        except TypeError:
            return fn(*args, **kwargs)
        if key in self._values:
            self.hits += 1
            return self._values[key]  # type: ignore[no-any-return]
        if key in self._errors:
            self.hits += 1
            raise self._errors[key]
        try:
            value = fn(*args, **kwargs)
        except CrimeLensError as exc:
            self._errors[key] = exc
            raise
        self._values[key] = value
        return value


def call(memo: Memo | None, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, through ``memo`` when one is given."""
    if memo is None:
        return fn(*args, **kwargs)
    return memo(fn, *args, **kwargs)
