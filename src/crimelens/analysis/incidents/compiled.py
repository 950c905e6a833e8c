"""Incident queries written once as Ibis expressions, run on DuckDB as SQL compiled ahead of time.

Importing Ibis and compiling an expression cost about 0.3 s and 10 ms a query: more than many everyday commands
take in all. So the queries the everyday commands run are registered here (:func:`compiled_query`), and their
DuckDB SQL is compiled from the very same Ibis expressions ahead of time, with placeholders for the values that
vary from run to run, into ``compiled_sql.json`` (``python scripts/compile_queries.py``; a test fails when the
file no longer matches what the expressions compile to). :func:`run` then executes a query

- on an :class:`~crimelens.engine.IncidentScope` (the warehouse on DuckDB): as that SQL, values bound as
  parameters: no Ibis import, no compilation;
- on an Ibis table (DuckDB or Spark), or for a shape not compiled ahead: as the Ibis expression, compiled by Ibis
  on the table's own backend, as before.

Both ways give the same frame (tested on every compiled query). Values that vary (the source, the dates, a grid's
origin) are placeholders; choices that change the query's shape (the period, by offence or not) are compiled
once each, for every choice listed in the query's ``shapes``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CATALOG_PATH",
    "CompiledQuery",
    "compile_catalog",
    "compiled_query",
    "execute",
    "registered",
    "run",
    "to_ibis",
]

#: Where the SQL compiled ahead of time is kept (package data).
CATALOG_PATH = Path(__file__).with_name("compiled_sql.json")
#: The table name compiled queries read from: replaced by the scope's own filter query when run.
_SCOPE_TABLE = "crimelens_scope"
_PLACEHOLDER = "crimelens:param:"
#: A LIMIT's placeholder (Ibis takes a whole number there, not an expression).
_LIMIT_SENTINEL = 987_654_321
#: The scope's filter parts (:func:`crimelens.engine.filter_incidents`) and their Ibis types.
_SCOPE_VALUES = {"source": "string", "offences": "array<string>", "start": "timestamp", "end": "timestamp"}


@dataclass(frozen=True)
class CompiledQuery:
    """A query over incidents: its Ibis builder, the values it takes and the shapes compiled ahead of time.

    ``build(t, **kwargs)`` returns the Ibis expression; ``values`` names the keyword arguments that are values
    (bound as parameters; type ``"limit"`` for a LIMIT) and their Ibis types; every other keyword argument is a
    shape choice, and ``shapes`` lists the combinations compiled ahead. ``sort_by(shape)`` gives the columns the
    result is sorted by (in the engine, nulls last): the same on both ways of running it.
    """

    name: str
    build: Callable[..., Any]
    values: Mapping[str, str]
    shapes: tuple[Mapping[str, Any], ...]
    sort_by: Callable[[Mapping[str, Any]], Sequence[str]]


_REGISTRY: dict[Callable[..., Any], CompiledQuery] = {}


def compiled_query(
    *,
    values: Mapping[str, str] | None = None,
    shapes: Sequence[Mapping[str, Any]] = ({},),
    sort_by: Callable[[Mapping[str, Any]], Sequence[str]] | Sequence[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an Ibis query builder ``(t, **kwargs) -> expression`` for :func:`run` and the compiler."""

    def register(build: Callable[..., Any]) -> Callable[..., Any]:
        order = sort_by if callable(sort_by) else (lambda _shape, keys=tuple(sort_by): keys)
        _REGISTRY[build] = CompiledQuery(
            name=build.__name__.strip("_").removesuffix("_expr"),
            build=build,
            values=dict(values or {}),
            shapes=tuple(dict(s) for s in shapes),
            sort_by=order,
        )
        return build

    return register


def registered() -> list[CompiledQuery]:
    """Every registered query, by name."""
    return sorted(_REGISTRY.values(), key=lambda q: q.name)


def _key(name: str, shape: Mapping[str, Any]) -> str:
    """The catalog key of a query shape: its name and its shape choices, sorted (JSON)."""
    return name + json.dumps({k: shape[k] for k in sorted(shape)}, sort_keys=True, default=list)


@functools.cache
def _catalog() -> dict[str, str]:
    with contextlib.suppress(FileNotFoundError):
        loaded: dict[str, str] = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))["queries"]
        return loaded
    return {}


def to_ibis(t: Any) -> Any:
    """The Ibis table of ``t``: itself, or an :class:`~crimelens.engine.IncidentScope`'s incidents as one."""
    from crimelens.engine import IncidentScope

    return t.ibis() if isinstance(t, IncidentScope) else t


def run(build: Callable[..., Any], t: Any, /, **kwargs: Any) -> pd.DataFrame:
    """Run the registered query ``build`` on ``t`` with ``kwargs``: a pandas frame sorted as the query says.

    On an :class:`~crimelens.engine.IncidentScope`, the SQL compiled ahead of time when the catalog holds this
    shape; otherwise (an Ibis table, or a shape not compiled ahead) the Ibis expression.
    """
    from crimelens.engine import IncidentScope

    query = _REGISTRY[build]
    shape = {k: v for k, v in kwargs.items() if k not in query.values}
    sort_by = list(query.sort_by(shape))
    if isinstance(t, IncidentScope):
        catalog = _catalog()
        sql = catalog.get(_key(query.name, shape))
        given = t.values()
        scope_sql = catalog.get(_key("scope", {k: k in given for k in _SCOPE_VALUES}))
        if sql is not None and scope_sql is not None:
            params = {**{f"s_{k}": v for k, v in given.items()}, **_values(query, kwargs)}
            key = (sql, scope_sql, json.dumps(params, sort_keys=True, default=str))
            frame: pd.DataFrame = t.remember(key, lambda: _run_sql(t, sql, scope_sql, params))
            return frame.copy()
    return execute(build(to_ibis(t), **kwargs), sort_by)


def _values(query: CompiledQuery, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in query.values}


def _run_sql(t: Any, sql: str, scope_sql: str, params: dict[str, Any]) -> pd.DataFrame:
    full = sql.replace(f'"{_SCOPE_TABLE}"', f"({scope_sql})")
    used = set(re.findall(r"\$([a-z_0-9]+)", full))
    arrow = t.con.sql(full, params={k: v for k, v in params.items() if k in used}).to_arrow_table()
    return _frame_of_arrow(arrow)


def execute(expr: Any, sort_by: list[str] | None = None) -> pd.DataFrame:
    """Run an Ibis expression on its own backend; a pandas frame sorted by ``sort_by`` (default: all columns;
    ``[]``: unsorted), nulls last, the sort done by the engine.

    Results come through Arrow on both engines. Timestamps come back naive (Spark returns its truncated
    timestamps as UTC instants; its session runs in UTC, so the wall-clock values are the local ones).
    """
    backend = expr._find_backend()
    expr = _ordered(expr, sort_by)
    if backend.name == "pyspark":
        # PySpark's own toPandas breaks on pandas 3 (it passes astype(copy=...)); collect Arrow instead.
        # The pre-execute hook registers the expression's Python UDFs with the session.
        backend._run_pre_execute_hooks(expr)
        arrow = backend._session.sql(backend.compile(expr)).toArrow()
    else:
        try:
            arrow = expr.to_pyarrow()
        finally:
            _drop_udfs(backend, expr)
    return _frame_of_arrow(arrow)


def _ordered(expr: Any, sort_by: list[str] | None) -> Any:
    import ibis

    if sort_by is None:
        sort_by = list(expr.columns)
    if sort_by:
        # sorted in the engine (parallel, and far faster than pandas on millions of rows), nulls last on both
        expr = expr.order_by([ibis.asc(k, nulls_first=False) for k in sort_by])
    return expr


def _frame_of_arrow(arrow: Any) -> pd.DataFrame:
    """A pandas frame of an Arrow result: timestamps naive at microseconds, integers int64 (as on every engine)."""
    import pandas as pd

    frame = arrow.to_pandas()
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            frame[col] = frame[col].dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = frame[col].astype("datetime64[us]")
        elif pd.api.types.is_integer_dtype(frame[col]):
            frame[col] = frame[col].astype("int64")
    out: pd.DataFrame = frame
    return out


def _drop_udfs(backend: Any, expr: Any) -> None:
    """Unregister the expression's UDFs from DuckDB: the catalog is shared by every cursor of a database, and
    Ibis registers them again, under the same name, on the next backend over the same database."""
    import duckdb
    from ibis.expr import operations as ops

    for node in expr.op().find(ops.ScalarUDF):
        with contextlib.suppress(duckdb.Error):
            backend.con.remove_function(type(node).__name__)


# -- the compiler (run by scripts/compile_queries.py and by the test that checks the catalog is current) --------
def _placeholder(name: str, typ: str) -> Any:
    import ibis

    if typ == "limit":
        return _LIMIT_SENTINEL
    if typ == "string":
        return ibis.literal(_PLACEHOLDER + name)
    return ibis.literal(_PLACEHOLDER + name).cast(typ)


def _to_sql(expr: Any) -> str:
    import ibis

    sql = ibis.to_sql(expr, dialect="duckdb")
    sql = re.sub(rf"'{re.escape(_PLACEHOLDER)}([a-z_0-9]+)'", r"$\1", str(sql))
    return re.sub(rf"\bLIMIT {_LIMIT_SENTINEL}\b", "LIMIT $limit", sql)


def compile_catalog() -> dict[str, Any]:
    """Compile every registered query, in every listed shape, and the scope filters, to DuckDB SQL."""
    import ibis

    # the modules whose queries are registered
    import crimelens.analysis.incidents.aggregate
    import crimelens.analysis.incidents.panel
    import crimelens.analysis.incidents.scope  # noqa: F401
    from crimelens.engine import filter_incidents
    from crimelens.warehouse import connect

    with connect(":memory:") as con:
        schema = ibis.duckdb.from_connection(con).table("incidents").schema()
    queries: dict[str, str] = {}
    for has in _shapes_of_scope():
        table = ibis.table(schema, name="incidents")
        expr = filter_incidents(table, **{k: _placeholder(f"s_{k}", typ) for k, typ in _SCOPE_VALUES.items() if has[k]})
        queries[_key("scope", has)] = _to_sql(expr)
    scoped = ibis.table(schema, name=_SCOPE_TABLE)
    for query in registered():
        for shape in query.shapes:
            values = {k: _placeholder(k, typ) for k, typ in query.values.items()}
            expr = _ordered(query.build(scoped, **values, **shape), list(query.sort_by(shape)))
            queries[_key(query.name, shape)] = _to_sql(expr)
    return {
        "about": "DuckDB SQL compiled from crimelens' Ibis queries; regenerate with python scripts/compile_queries.py",
        "ibis": ibis.__version__,
        "queries": queries,
    }


def _shapes_of_scope() -> list[dict[str, bool]]:
    names = list(_SCOPE_VALUES)
    return [{n: bool(mask >> i & 1) for i, n in enumerate(names)} for mask in range(2 ** len(names))]
