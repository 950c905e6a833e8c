"""Ibis backends over the incidents: DuckDB (the warehouse itself, default) or PySpark (optional extra).

Aggregations in :mod:`crimelens.analysis.aggregate` are Ibis expressions over the table
:func:`incident_table` yields, so the same code runs on either engine:

- ``duckdb``: an Ibis DuckDB backend on the warehouse (opened read-only when given a path; a private cursor
  when given an open connection, so the caller's connection settings are untouched).
- ``spark``: a local SparkSession (started once per process, on first use) reading a Parquet snapshot of the
  incidents. The snapshot is exported from the warehouse into a cache folder next to it, named by the loads it
  holds, and reused while they are unchanged. Data that never fits one machine is read from a Parquet folder
  instead (``parquet=``). Spark runs with ``spark.sql.session.timeZone=UTC`` and a UTC JVM time zone: naive
  local timestamps (``occurred_at``) are then read, truncated and returned unshifted, exactly as on DuckDB.

Spark needs ``pip install 'crimelens[spark]'`` and Java 17 or newer. Heavy imports (ibis, pyspark, duckdb)
happen inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from crimelens.errors import ConfigError, DataError, SchemaError, SourceError

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "ENGINES",
    "Engine",
    "IncidentScope",
    "check_java",
    "filter_incidents",
    "incident_scope",
    "incident_table",
    "require_spark",
    "spark_backend",
    "spark_snapshot",
    "stop_spark",
]

log = logging.getLogger(__name__)

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = ("duckdb", "spark")

#: Java major version Spark 4 needs (Spark 3.5 also runs on 17).
JAVA_MAJOR = 17
_SPARK_EXTRA = "pip install 'crimelens[spark]'"
_REQUIRED_COLUMNS = ("occurred_at", "offence", "latitude", "longitude")


# -- Spark ----------------------------------------------------------------------------------------------------
def check_java() -> str:
    """The Java version string, after checking Java ``JAVA_MAJOR``+ is installed; else :class:`ConfigError`."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    where = f"JAVA_HOME={home}" if home else "PATH"
    if java is None or not Path(java).exists():
        raise ConfigError(
            f"the Spark engine needs Java {JAVA_MAJOR} or newer; no `java` found on {where}; install it (Debian: "
            "apt-get install openjdk-17-jre-headless, or run scripts/install-system-deps.sh) or use --engine duckdb"
        )
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(
            f"the Spark engine needs Java {JAVA_MAJOR} or newer; `{java} -version` failed ({exc})"
        ) from exc
    text = done.stderr + done.stdout
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        raise ConfigError(
            f"the Spark engine needs Java {JAVA_MAJOR} or newer; could not read the version from `{java} -version`"
            f" (got {text.strip()[:200]!r})"
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" is Java 8
        major = int(match.group(2))
    if major < JAVA_MAJOR:
        raise ConfigError(
            f"the Spark engine needs Java {JAVA_MAJOR} or newer; {java} is Java {major}; install Java 17 (Debian: "
            "openjdk-17-jre-headless) and set JAVA_HOME, or use --engine duckdb"
        )
    return text.splitlines()[0] if text else f"Java {major}"


def require_spark() -> None:
    """Check the Spark engine can run here: PySpark and Ibis' PySpark backend importable, Java 17+ installed."""
    _require_pyspark()
    check_java()


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the Spark engine needs PySpark, which is not installed; run: {_SPARK_EXTRA}") from exc
    try:
        import ibis.backends.pyspark  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the Spark engine needs Ibis' PySpark backend; run: {_SPARK_EXTRA} ({exc})") from exc


@functools.cache
def spark_backend(master: str | None = None, driver_memory: str | None = None) -> Any:
    """The process's Ibis PySpark backend, starting a SparkSession on first call (then reused).

    ``master`` and ``driver_memory`` (default: the ``spark_master`` and ``spark_driver_memory`` settings) apply
    only when this process has no SparkSession yet.
    """
    from crimelens.config import get_setting

    master = str(get_setting("spark_master", master))
    driver_memory = str(get_setting("spark_driver_memory", driver_memory))
    require_spark()
    import ibis
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    started = time.perf_counter()
    tz_opts = "-Duser.timezone=UTC"
    builder = (
        SparkSession.builder.master(master)
        .appName("crimelens")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", "4")
        # naive timestamps stay naive and unshifted: session and JVM both in UTC, Parquet TIMESTAMP
        # (isAdjustedToUTC=false, as DuckDB writes it) read as TIMESTAMP_NTZ
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", tz_opts)
        .config("spark.executor.extraJavaOptions", tz_opts)
        .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true")
    )
    # Python workers (for UDFs such as H3) must run this interpreter, which has crimelens and h3 installed;
    # PySpark reads PYSPARK_PYTHON once, when the context starts, so it is set only for that moment.
    previous = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = previous or sys.executable
    try:
        session = builder.getOrCreate()
    # What a user can cause: the JVM does not start (no usable Java, a master or driver memory spark-submit
    # rejects: PySparkRuntimeError JAVA_GATEWAY_EXITED), the JVM rejects the settings (Py4JJavaError, e.g. "Could
    # not parse Master URL") or cannot be reached (Py4JNetworkError), the launcher cannot be run (OSError).
    # Anything else is a bug and keeps its traceback.
    except (PySparkRuntimeError, Py4JError, OSError) as exc:
        raise ConfigError(
            f"the Spark engine could not start a SparkSession (spark_master {master!r}, spark_driver_memory "
            f"{driver_memory!r}): {_spark_start_error(exc)}"
        ) from exc
    finally:
        if previous is None:
            del os.environ["PYSPARK_PYTHON"]
    session.sparkContext.setLogLevel("ERROR")
    backend = ibis.pyspark.connect(session)
    log.info("SparkSession %s started in %.1f s", master, time.perf_counter() - started)
    return backend


def _spark_start_error(exc: BaseException) -> str:
    """One line saying why the SparkSession did not start (the Java exception's own message when there is one)."""
    java = getattr(exc, "java_exception", None)
    text = str(java) if java is not None else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def stop_spark() -> None:
    """Stop the SparkSession :func:`spark_backend` started, if any (the next call starts a new one)."""
    if spark_backend.cache_info().currsize:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()
        spark_backend.cache_clear()


def _warehouse_path(con: duckdb.DuckDBPyConnection) -> Path | None:
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return Path(row[0]) if row and row[0] else None


def _check_source(con: duckdb.DuckDBPyConnection, source: str) -> None:
    present = [str(r[0]) for r in con.execute("SELECT DISTINCT source FROM incidents ORDER BY 1").fetchall()]
    if source not in present:
        allowed = ", ".join(present) if present else "none loaded yet"
        raise DataError(f"incident source {source!r} is not in the warehouse; incident sources loaded: {allowed}")


def spark_snapshot(
    con: duckdb.DuckDBPyConnection, *, source: str | None = None, cache_dir: str | Path | None = None
) -> Path:
    """A Parquet snapshot of the warehouse's incidents (one source, or all), exported once and then reused.

    The file is named by the source, the loads whose rows it holds and their row count, so any load that adds or
    replaces rows makes a new snapshot; older snapshots of the same source are removed. It lives in
    ``cache_dir`` (default: ``<warehouse>.parquet-cache`` next to the warehouse file).
    """
    if source is not None:
        _check_source(con, source)
    if cache_dir is None:
        db = _warehouse_path(con)
        if db is None:
            raise ConfigError(
                "the Spark engine exports incidents to Parquet next to the warehouse, but this warehouse is in "
                "memory; pass cache_dir (a folder for the snapshot)"
            )
        cache_dir = db.with_name(db.name.removesuffix(".duckdb") + ".parquet-cache")
    folder = Path(cache_dir)
    where, params = ("WHERE source = ?", [source]) if source is not None else ("", [])
    loads = con.execute(f"SELECT load_id, count(*) FROM incidents {where} GROUP BY 1 ORDER BY 1", params).fetchall()
    key = hashlib.sha256(repr([(int(a), int(b)) for a, b in loads]).encode()).hexdigest()[:16]
    stem = f"incidents-{_slug(source)}"
    path = folder / f"{stem}-{key}.parquet"
    if path.exists():
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"Parquet cache folder {folder}: cannot be created ({exc})") from exc
    tmp = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"
    started = time.perf_counter()
    try:
        con.sql(f"SELECT * FROM incidents {where}", params=params).write_parquet(str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported incidents to %s in %.1f s", path, time.perf_counter() - started)
    for old in folder.glob(f"{stem}-*.parquet"):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def _slug(source: str | None) -> str:
    return "all" if source is None else re.sub(r"[^A-Za-z0-9_.-]+", "_", source)


# -- the table ------------------------------------------------------------------------------------------------
def _check_columns(table: Any, origin: str, source: str | None) -> None:
    required = (*_REQUIRED_COLUMNS, "source") if source is not None else _REQUIRED_COLUMNS
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise SchemaError(
            f"{origin}: incidents must have the canonical columns {', '.join(required)}; missing {', '.join(missing)}"
        )


def _parquet_glob(parquet: str | Path, engine: str) -> str:
    """The path to hand the engine: DuckDB needs a glob for a folder; Spark reads a folder as one dataset."""
    p = Path(parquet)
    if not p.exists():
        raise SourceError(f"Parquet incidents {p}: not found; expected a .parquet file or a folder of them")
    return str(p / "**" / "*.parquet") if p.is_dir() and engine == "duckdb" else str(p)


@contextlib.contextmanager
def incident_table(
    con_or_path: duckdb.DuckDBPyConnection | str | Path | None = None,
    engine: Engine = "duckdb",
    *,
    source: str | None = None,
    parquet: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> Iterator[Any]:
    """Yield the incidents as an Ibis table on ``engine``, closing what was opened for it on exit.

    ``con_or_path``: an open warehouse connection, or the warehouse file (opened read-only). ``source``: keep
    one source's incidents. ``parquet``: read incidents in the canonical schema from this Parquet file or
    folder instead of the warehouse (for data that never fits one machine). ``cache_dir``: where the Spark
    engine keeps its Parquet snapshot (see :func:`spark_snapshot`).

    >>> with incident_table("crimelens.duckdb", "spark", source="toronto") as t:  # doctest: +SKIP
    ...     weekly = area_counts(t, "neighbourhood")
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if con_or_path is None and parquet is None:
        raise ConfigError("incident_table: give a warehouse (connection or path) or a Parquet path; got neither")
    with contextlib.ExitStack() as stack:
        if engine == "duckdb":
            import ibis

            if parquet is not None:
                backend = ibis.duckdb.connect()
                stack.callback(backend.disconnect)
                table = backend.read_parquet(_parquet_glob(parquet, engine))
                _check_columns(table, f"Parquet incidents {parquet}", source)
            else:
                assert con_or_path is not None
                con = _open(con_or_path, stack)
                if source is not None:
                    _check_source(con, source)
                table = ibis.duckdb.from_connection(con).table("incidents")
        else:
            if parquet is not None:
                path = _parquet_glob(parquet, engine)
            else:
                assert con_or_path is not None
                with contextlib.ExitStack() as export:  # the warehouse is only needed for the export
                    path = str(spark_snapshot(_open(con_or_path, export), source=source, cache_dir=cache_dir))
            backend = spark_backend()
            table = backend.read_parquet(path)
            stack.callback(backend._session.catalog.dropTempView, table.get_name())
            _check_columns(table, f"Parquet incidents {path}", source)
        yield filter_incidents(table, source=source)


def _open(
    con_or_path: duckdb.DuckDBPyConnection | str | Path, stack: contextlib.ExitStack
) -> duckdb.DuckDBPyConnection:
    """A private connection: a cursor on the caller's connection, or the warehouse file opened read-only."""
    if isinstance(con_or_path, str | Path):
        from crimelens.warehouse import connect

        con = connect(con_or_path, read_only=True)
    else:
        con = con_or_path.cursor()  # own settings (Ibis sets the time zone to UTC), same database
    stack.callback(con.close)
    return con


# -- the incidents an analysis looks at, on DuckDB without Ibis --------------------------------------------------
def filter_incidents(t: Any, *, source: Any = None, offences: Any = None, start: Any = None, end: Any = None) -> Any:
    """The Ibis table ``t`` restricted to one source, some offences and ``start <= occurred_at < end``.

    The one definition of that filter: :func:`incident_table`, ``IncidentFilter.apply`` and
    :meth:`IncidentScope.ibis` call it with values, and the ahead-of-time compiler
    (:mod:`crimelens.analysis.incidents.compiled`) with placeholders. ``None`` leaves a part out.
    """
    if source is not None:
        t = t.filter(t.source == source)
    if offences is not None:
        t = t.filter(t.offence.isin(offences))
    if start is not None:
        t = t.filter(t.occurred_at >= start)
    if end is not None:
        t = t.filter(t.occurred_at < end)
    return t


@dataclass(frozen=True)
class IncidentScope:
    """Incidents of the warehouse on DuckDB, named by their filter: what an analysis looks at, without Ibis.

    :func:`crimelens.analysis.incidents.compiled.run` runs a query on it as SQL compiled ahead of time from the
    query's Ibis expression (no Ibis import, no compilation per run); any other Ibis code gets the same incidents
    as an Ibis table from :meth:`ibis`. Not to be mutated; :meth:`narrowed` gives a narrower scope.
    """

    con: duckdb.DuckDBPyConnection
    source: str | None = None
    offences: tuple[str, ...] | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    _cache: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.offences is not None and not self.offences:  # no offence named: every offence, as IncidentFilter
            object.__setattr__(self, "offences", None)

    @property
    def columns(self) -> tuple[str, ...]:
        """The incidents table's columns (the warehouse schema's)."""
        from crimelens.schema import INCIDENT_COLUMNS

        return INCIDENT_COLUMNS

    def narrowed(
        self,
        *,
        offences: tuple[str, ...] | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> IncidentScope:
        """This scope with these filter parts (each part given replaces this scope's; None keeps it)."""
        return IncidentScope(
            self.con,
            self.source,
            offences if offences is not None else self.offences,
            start if start is not None else self.start,
            end if end is not None else self.end,
        )

    def values(self) -> dict[str, Any]:
        """The filter's parts that are set, by name."""
        parts = {"source": self.source, "offences": self.offences, "start": self.start, "end": self.end}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in parts.items() if v is not None}

    def remember(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, or what it gave the last time ``key`` was asked of this scope.

        A scope's queries read a warehouse that does not change while the scope is open (a command's read-only
        connection), so analyses that share a scope (extent, coverage) ask the engine once. Do not keep a scope
        open across writes to its warehouse.
        """
        memo = self._cache.setdefault("results", {})
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def ibis(self) -> Any:
        """The same incidents as an Ibis table on this connection (imports Ibis; built once per scope)."""
        if "ibis" not in self._cache:
            import ibis

            table = ibis.duckdb.from_connection(self.con).table("incidents")
            self._cache["ibis"] = filter_incidents(
                table,
                source=self.source,
                offences=list(self.offences) if self.offences is not None else None,
                start=self.start,
                end=self.end,
            )
        return self._cache["ibis"]


@contextlib.contextmanager
def incident_scope(
    con_or_path: duckdb.DuckDBPyConnection | str | Path, *, source: str | None = None
) -> Iterator[IncidentScope]:
    """Yield the warehouse's incidents (of one ``source``, or all) as an :class:`IncidentScope` on a private
    cursor (or the file opened read-only), closed on exit. The DuckDB counterpart of :func:`incident_table`
    for code that runs its queries through :func:`crimelens.analysis.incidents.compiled.run`."""
    with contextlib.ExitStack() as stack:
        con = _open(con_or_path, stack)
        if source is not None:
            _check_source(con, source)
        yield IncidentScope(con, source)
