"""Engines (crimelens.engine): opening incidents on DuckDB and Spark, the Parquet snapshot, Java/PySpark checks,
and the ENGINE PARITY TEST: every aggregation on real Toronto data gives identical frames on DuckDB and Spark.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import duckdb
import pandas as pd
import pytest

from crimelens import engine, warehouse
from crimelens.analysis.incidents import aggregate as ag
from crimelens.errors import ConfigError, DataError, SchemaError, SourceError
from crimelens.warehouse import load_incidents as load_incident_file

pytestmark = [
    # ibis 12 still calls DuckDB 2's deprecated fetch_arrow_table(); nothing crimelens can change
    pytest.mark.filterwarnings(r"ignore:fetch_arrow_table\(\) is deprecated:DeprecationWarning"),
    # PySpark 4.0 leaves the socket of each collect() to the garbage collector (a PySpark bug)
    pytest.mark.filterwarnings(r"ignore:unclosed <socket\.socket:ResourceWarning"),
    pytest.mark.filterwarnings(r"ignore:Exception ignored in. <socket\.socket:pytest.PytestUnraisableExceptionWarning"),
]

INSERT = (
    "INSERT INTO incidents (source, incident_key, occurred_at, time_precision, offence, offence_raw, latitude, "
    "longitude, neighbourhood, load_id) VALUES (?, ?, ?, 'hour', ?, ?, ?, ?, ?, ?)"
)


def small_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = warehouse.connect(path)
    con.executemany(
        INSERT,
        [
            ("a", "1", dt.datetime(2024, 1, 1, 10), "robbery", "R", 43.7, -79.4, "N1", 1),
            ("a", "2", dt.datetime(2024, 1, 2, 11), "burglary", "B", 43.71, -79.41, "N1", 1),
            ("b", "1", dt.datetime(2024, 1, 3, 12), "robbery", "R", None, None, "N2", 2),
        ],
    )
    return con


# -- DuckDB engine and options (fast) ------------------------------------------------------------------
def test_duckdb_from_path_is_read_only_and_closed(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    small_warehouse(db).close()
    with engine.incident_table(db, source="a") as t:
        assert ag.area_counts(t, "neighbourhood", "year", by_offence=False)["incidents"].tolist() == [2]
    # closed on exit: the file can be opened for writing again
    warehouse.connect(db).close()
    with pytest.raises(SourceError, match="not found"), engine.incident_table(tmp_path / "missing.duckdb"):
        pass


def test_duckdb_on_an_open_connection_leaves_it_usable(tmp_path: Path) -> None:
    con = small_warehouse(tmp_path / "w.duckdb")
    with engine.incident_table(con) as t:
        assert ag.area_counts(t, "neighbourhood", "year", by_offence=False)["incidents"].sum() == 3
    assert con.execute("SELECT count(*) FROM incidents").fetchone() == (3,)
    con.close()


def test_bad_engine_and_arguments(tmp_path: Path) -> None:
    with (
        pytest.raises(ConfigError, match=r"engine: expected one of duckdb, spark, got 'flink'"),
        engine.incident_table(tmp_path / "w.duckdb", cast(Any, "flink")),
    ):
        pass
    with (
        pytest.raises(ConfigError, match=r"give a warehouse .* or a Parquet path; got neither"),
        engine.incident_table(None),
    ):
        pass


def test_parquet_on_duckdb(tmp_path: Path) -> None:
    con = small_warehouse(tmp_path / "w.duckdb")
    folder = tmp_path / "pq"
    folder.mkdir()
    con.execute(f"COPY incidents TO '{folder / 'part-0.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT 1 AS x) TO '{tmp_path / 'bad.parquet'}' (FORMAT parquet)")
    con.close()
    with engine.incident_table(parquet=folder, source="a") as t:
        assert ag.area_counts(t, "neighbourhood", "year", by_offence=False)["incidents"].tolist() == [2]
    with (
        pytest.raises(SourceError, match=r"nope: not found; expected a \.parquet file or a folder of them"),
        engine.incident_table(parquet=tmp_path / "nope"),
    ):
        pass
    with (
        pytest.raises(SchemaError, match="missing occurred_at, offence, latitude, longitude"),
        engine.incident_table(parquet=tmp_path / "bad.parquet"),
    ):
        pass


def test_spark_snapshot_reused_until_loads_change(tmp_path: Path) -> None:
    con = small_warehouse(tmp_path / "w.duckdb")
    first = engine.spark_snapshot(con, source="a")
    assert first.parent == tmp_path / "w.parquet-cache" and first.name.startswith("incidents-a-")
    assert duckdb.execute(f"SELECT count(*) FROM read_parquet('{first}')").fetchall() == [(2,)]
    stamp = first.stat().st_mtime_ns
    assert engine.spark_snapshot(con, source="a") == first and first.stat().st_mtime_ns == stamp  # reused
    everything = engine.spark_snapshot(con)
    assert everything != first and first.exists()  # another source key: both kept
    con.execute(INSERT, ["a", "3", dt.datetime(2024, 2, 1), "robbery", "R", 43.7, -79.4, "N1", 3])
    second = engine.spark_snapshot(con, source="a")
    assert second != first and not first.exists()  # a new load: new snapshot, the stale one removed
    assert duckdb.execute(f"SELECT count(*) FROM read_parquet('{second}')").fetchall() == [(3,)]
    with pytest.raises(DataError, match="'zz' is not in the warehouse; incident sources loaded: a, b"):
        engine.spark_snapshot(con, source="zz")
    con.close()
    mem = warehouse.connect(tmp_path / "x.duckdb")
    mem.close()
    in_memory = duckdb.connect()
    in_memory.execute("CREATE TABLE incidents AS SELECT 1 AS load_id")
    with pytest.raises(ConfigError, match="warehouse is in memory; pass cache_dir"):
        engine.spark_snapshot(in_memory)
    assert engine.spark_snapshot(in_memory, cache_dir=tmp_path / "c").exists()


def _fake_java(tmp_path: Path, version_line: str) -> Path:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ('openjdk version "17.0.15" 2025-04-15', True),
        ('openjdk version "21" 2023-09-19', True),
        ('openjdk version "11.0.2" 2019-01-15', False),
        ('java version "1.8.0_392"', False),
    ],
)
def test_check_java_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, ok: bool) -> None:
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, line)))
    if ok:
        assert engine.check_java() == line
    else:
        with pytest.raises(ConfigError, match=r"needs Java 17 or newer; .*java is Java (11|8); install Java 17"):
            engine.check_java()


def test_missing_java_and_pyspark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nojdk"))
    with pytest.raises(ConfigError, match=r"needs Java 17 or newer; no `java` found on JAVA_HOME="):
        engine.check_java()
    monkeypatch.setitem(sys.modules, "pyspark", None)  # makes `import pyspark` fail
    with pytest.raises(
        ConfigError, match=r"needs PySpark, which is not installed; run: pip install 'crimelens\[spark\]'"
    ):
        engine.require_spark()


def test_spark_start_failures_a_user_causes_are_one_line_and_bugs_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """No JVM is started: SparkSession.Builder.getOrCreate is replaced by one that raises."""
    pytest.importorskip("pyspark.sql")
    from py4j.protocol import Py4JNetworkError
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    monkeypatch.setattr(engine, "require_spark", lambda: None)
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    start = engine.spark_backend.__wrapped__  # bypass the per-process cache: no session is made or kept

    def failing(exc: BaseException) -> Callable[..., Any]:
        def get_or_create(self: Any) -> Any:
            raise exc

        return get_or_create

    # what a user causes (no usable Java, a bad master URL or driver memory, an unreachable JVM): one line
    gateway = PySparkRuntimeError(errorClass="JAVA_GATEWAY_EXITED", messageParameters={})
    monkeypatch.setattr(SparkSession.Builder, "getOrCreate", failing(gateway))
    with pytest.raises(
        ConfigError,
        match=r"could not start a SparkSession \(spark_master 'bogus://x', spark_driver_memory '1g'\): "
        r"\[JAVA_GATEWAY_EXITED\] Java gateway process exited",
    ):
        start("bogus://x", "1g")
    monkeypatch.setattr(SparkSession.Builder, "getOrCreate", failing(Py4JNetworkError("cannot reach the JVM")))
    with pytest.raises(ConfigError, match=r"spark_driver_memory '2g'\): cannot reach the JVM$"):
        start("local[1]", "2g")
    assert "PYSPARK_PYTHON" not in os.environ  # set only while the session starts
    # anything else is a bug: it keeps its own type and traceback
    for bug in (TypeError("a bug in crimelens"), KeyError("spark.driver.memory"), RuntimeError("plain")):
        monkeypatch.setattr(SparkSession.Builder, "getOrCreate", failing(bug))
        with pytest.raises(type(bug)) as caught:
            start("local[1]", "1g")
        assert caught.value is bug and not isinstance(caught.value, ConfigError)


def test_importing_engine_and_aggregate_stays_light() -> None:
    """The CLI imports these lazily, but even importing them must not pull in ibis, pyspark or pandas."""
    heavy = "('ibis', 'pyspark', 'pandas', 'duckdb', 'h3')"
    code = f"import sys, crimelens.engine; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- Spark: the engine parity test on real data --------------------------------------------------------
def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'crimelens[spark]')"
    try:
        engine.check_java()
    except ConfigError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def toronto_db(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    csv = real_data / "toronto_mci_2014_2019" / "toronto_mci_2014_2019.csv.gz"
    if not csv.exists():
        pytest.skip(f"real data file {csv} is absent")
    db = tmp_path_factory.mktemp("toronto") / "toronto.duckdb"
    con = warehouse.connect(db)
    report = load_incident_file(con, csv, "toronto-mci", source="toronto")  # the real loader
    assert report.rows_loaded == 180_886  # PROVENANCE.md
    con.close()
    return db


@pytest.fixture(scope="module")
def spark_started() -> Iterator[float]:
    """Start the module's one SparkSession; yields its start-up time (s); stops it afterwards."""
    reason = _spark_missing()
    if reason is not None:
        pytest.skip(f"Spark engine unavailable: {reason}")
    engine.stop_spark()  # a fresh session, so the start-up time is real
    started = time.perf_counter()
    engine.spark_backend()
    yield time.perf_counter() - started
    engine.stop_spark()


@pytest.fixture(scope="module")
def tables(toronto_db: Path, spark_started: float) -> Iterator[dict[str, Any]]:
    with (
        engine.incident_table(toronto_db, "duckdb", source="toronto") as duck,
        engine.incident_table(toronto_db, "spark", source="toronto") as spark,
    ):
        yield {"duckdb": duck, "spark": spark}


AGGREGATIONS: dict[str, Callable[[Any], pd.DataFrame]] = {
    "area neighbourhood x week x offence": lambda t: ag.area_counts(t, "neighbourhood", "week", by_offence=True),
    "grid 150 m x month": lambda t: ag.grid_counts(t, 150, "month").table,
    "h3 res 8": lambda t: ag.h3_counts(t, 8).table,
    "weekday x hour x offence": lambda t: ag.weekday_hour_counts(t, by_offence=True),
    "month of year": lambda t: ag.month_of_year_counts(t),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(AGGREGATIONS))
def test_engine_parity_on_toronto(tables: dict[str, Any], name: str) -> None:
    timings = {}
    frames = {}
    for eng in ("duckdb", "spark"):
        started = time.perf_counter()
        frames[eng] = AGGREGATIONS[name](tables[eng])
        timings[eng] = time.perf_counter() - started
    duck, spark = frames["duckdb"], frames["spark"]
    assert len(duck) > 0 and duck["incidents"].sum() > 0
    pd.testing.assert_frame_equal(duck, spark, check_exact=True)  # same rows, counts, timestamps, dtypes
    sys.stderr.write(f"parity {name}: duckdb {timings['duckdb']:.2f} s, spark {timings['spark']:.2f} s\n")


@pytest.mark.slow
def test_engine_parity_details(tables: dict[str, Any], spark_started: float) -> None:
    sys.stderr.write(f"spark session start-up: {spark_started:.1f} s\n")
    # raw timestamps survive the Parquet snapshot and Spark unshifted (naive local time, no UTC conversion)
    stats = {}
    for eng, t in tables.items():
        stats[eng] = ag.execute(
            t.aggregate(
                first=t.occurred_at.min(),
                last=t.occurred_at.max(),
                n=t.count(),
                at_17h=t.count(where=t.occurred_at.hour() == 17),
            )
        )
    pd.testing.assert_frame_equal(stats["duckdb"], stats["spark"], check_exact=True)
    assert stats["duckdb"].iloc[0]["first"] == pd.Timestamp("2014-01-01 00:00")
    assert stats["duckdb"].iloc[0]["last"] == pd.Timestamp("2019-12-31 23:00")
    # totals: areas count every incident, grids and hexagons those with coordinates (all of Toronto's)
    area = ag.area_counts(tables["spark"], "neighbourhood", "year", by_offence=False)
    grid = ag.grid_counts(tables["spark"], 150, None)
    assert area["incidents"].sum() == 180_886 == grid.table["incidents"].sum() + grid.rows_without_coordinates
    assert grid.origin == ag.data_origin(tables["duckdb"])


@pytest.mark.slow
def test_spark_reads_a_parquet_folder(toronto_db: Path, spark_started: float, tmp_path: Path) -> None:
    """--parquet DIR: incidents kept as Parquet files (e.g. written by another system) read directly by Spark."""
    con = warehouse.connect(toronto_db, read_only=True)
    folder = tmp_path / "incidents"
    folder.mkdir()
    shutil.copy(engine.spark_snapshot(con, source="toronto"), folder / "part-00000.parquet")
    con.close()
    with engine.incident_table(parquet=folder, engine="spark", source="toronto") as t:
        got = ag.month_of_year_counts(t)
    with engine.incident_table(toronto_db, source="toronto") as t:
        want = ag.month_of_year_counts(t)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert os.listdir(folder) == ["part-00000.parquet"]
