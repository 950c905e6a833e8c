"""Warehouse: migrations, atomic and idempotent loads, replacement of a corrected file, crash safety."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimelens import sources, warehouse
from crimelens.errors import DataError, LoadRejected, SourceError
from crimelens.schema import MIGRATIONS


def test_migrations_are_versioned_and_idempotent(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
    assert versions == [m.version for m in MIGRATIONS]
    assert warehouse.migrate(con) == []  # nothing pending the second time
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"jurisdictions", "jurisdiction_year", "loads", "load_issues"} <= tables
    con.close()


def test_read_only_open_of_missing_warehouse_is_clear(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"not found; load data first"):
        warehouse.connect(tmp_path / "absent.duckdb", read_only=True)
    (tmp_path / "junk.duckdb").write_bytes(b"this is not a database" * 100)
    with pytest.raises(SourceError, match=r"junk\.duckdb"):
        warehouse.connect(tmp_path / "junk.duckdb")


def test_reingest_is_a_noop(tmp_path: Path, real_file: Callable[[str], Path]) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    parsed = sources.read(real_file("ucr-marshall"))
    first = warehouse.load_parsed(con, parsed)
    second = warehouse.load_parsed(con, sources.read(real_file("ucr-marshall")))
    assert first.status == "loaded" and first.rows_loaded == 2829
    assert second.status == "unchanged" and second.load_id == first.load_id
    assert con.execute("SELECT count(*) FROM loads").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM jurisdiction_year").fetchone() == (2829,)
    # warnings are recorded once, with line and column
    n, example = con.execute("SELECT count(*), min(line) FROM load_issues WHERE code = 'partial_year'").fetchone() or (
        0,
        0,
    )
    assert n == 35 and example > 1  # the Marshall file's agency-years with 1-11 months (its 0s are "not stated")
    con.close()


def test_corrected_file_replaces_the_source_cleanly(tmp_path: Path, real_file: Callable[[str], Path]) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.load_parsed(con, sources.read(real_file("fbi-estimates")))
    original = real_file("ucr-marshall")
    first = warehouse.load_parsed(con, sources.read(original))
    # a corrected version: Chicago's 2015 homicides changed, and the 1975 rows withdrawn
    lines = original.read_text().splitlines(keepends=True)
    kept = [lines[0]] + [ln for ln in lines[1:] if ",1975," not in ln]
    corrected = "".join(kept).replace('"ILCPD00",2015,"Chicago",2728695,478,', '"ILCPD00",2015,"Chicago",2728695,480,')
    assert corrected != "".join(kept)
    corrected = corrected.replace('"Albuquerque, N.M."', '"Albuquerque, New Mexico"')  # a corrected name too
    fixed = tmp_path / "ucr_crime_1975_2015.csv"
    fixed.write_text(corrected)
    second = warehouse.load_parsed(con, sources.read(fixed))
    assert second.status == "loaded" and second.replaced_load_ids == (first.load_id,)
    rows = con.execute("SELECT count(*), min(year) FROM jurisdiction_year WHERE source = 'ucr-marshall'").fetchone()
    assert rows == (2829 - 69, 1976)
    hom = con.execute(
        "SELECT homicide FROM jurisdiction_year WHERE source='ucr-marshall' AND jurisdiction_id='ILCPD00' AND year=2015"
    ).fetchone()
    assert hom == (480,)
    statuses = con.execute("SELECT load_id, status, replaced_by FROM loads ORDER BY load_id").fetchall()
    assert statuses == [
        (1, "loaded", None),
        (first.load_id, "replaced", second.load_id),
        (second.load_id, "loaded", None),
    ]
    name = con.execute("SELECT name FROM jurisdictions WHERE jurisdiction_id = 'NM00101'").fetchone()
    assert name == ("Albuquerque, New Mexico",)
    # the other dataset was not touched
    assert con.execute("SELECT count(*) FROM jurisdiction_year WHERE source='fbi-estimates'").fetchone() == (2116,)
    con.close()


def test_rejected_file_raises_and_loads_nothing(tmp_path: Path, real_file: Callable[[str], Path]) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    src = real_file("ucr-marshall").read_text().splitlines(keepends=True)
    bad = tmp_path / "bad.csv"
    bad.write_text("".join([*src[:5], src[5].replace(",12,", ",-12,", 1), *src[6:]]))
    parsed = sources.read(bad)
    with pytest.raises(LoadRejected, match=r"bad.csv, line 6, column months_reported: .*nothing was loaded"):
        warehouse.load_parsed(con, parsed)
    assert con.execute("SELECT count(*) FROM loads").fetchone() == (0,)
    con.close()


def test_analyses_need_a_dataset_choice_when_several(tmp_path: Path, real_file: Callable[[str], Path]) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    with pytest.raises(DataError, match="no crime data yet"):
        warehouse.resolve_source(con, None)
    warehouse.load_parsed(con, sources.read(real_file("fbi-estimates")))
    assert warehouse.resolve_source(con, None) == "fbi-estimates"
    warehouse.load_parsed(con, sources.read(real_file("marshall-states")))
    with pytest.raises(DataError, match=r"several datasets .*choose one with --source"):
        warehouse.resolve_source(con, None)
    with pytest.raises(DataError, match="'nope' is not in the warehouse; loaded datasets: fbi-estimates"):
        warehouse.resolve_source(con, "nope")
    con.close()


def _big_ucr_file(path: Path, agencies: int, years: int) -> int:
    """A large, valid ucr-marshall file: `agencies` made-up agencies over `years` years."""
    header = (
        '"ORI","year","department_name","total_pop","homs_sum","rape_sum","rob_sum","agg_ass_sum",'
        '"violent_crime","months_reported","violent_per_100k","homs_per_100k","rape_per_100k",'
        '"rob_per_100k","agg_ass_per_100k","source","url"\n'
    )
    with path.open("w") as fh:
        fh.write(header)
        for a in range(agencies):
            ori = f"ZZ{a:05d}"
            for y in range(1920, 1920 + years):
                h, r, b, g = a % 50, a % 70, a % 300, a % 500
                fh.write(f'"{ori}",{y},"Agency {a}",{100000 + a},{h},{r},{b},{g},{h + r + b + g},12,0,0,0,0,0,NA,NA\n')
    return agencies * years


def _sizes(db: Path) -> tuple[int, int]:
    wal = db.with_name(db.name + ".wal")
    return (db.stat().st_size, wal.stat().st_size if wal.exists() else -1)


def _wal(db: Path) -> bool:
    return db.with_name(db.name + ".wal").exists()


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["first-write", "commit"])
def test_kill_9_during_a_large_load_leaves_earlier_data_intact(
    moment: str, tmp_path: Path, real_file: Callable[[str], Path]
) -> None:
    """kill -9 while the load's transaction writes ('first-write': DuckDB spills the new rows to the file
    before commit; 'commit': the write-ahead log appears). Earlier data must survive, and the new load
    must be all there or not at all."""
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    warehouse.load_parsed(con, sources.read(real_file("ucr-marshall")))
    before = con.execute("SELECT * FROM jurisdiction_year ORDER BY ALL").fetchall()
    con.close()
    big = tmp_path / "big.csv"
    n_rows = _big_ucr_file(big, agencies=3000, years=100)
    cmd = [sys.executable, "-m", "crimelens", "ingest", str(big), "--db", str(db), "--source", "big"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    idle = _sizes(db)
    deadline = time.monotonic() + 120
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        if (moment == "first-write" and _sizes(db) != idle) or (moment == "commit" and _wal(db)):
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.001)
    proc.wait(timeout=30)
    assert killed, f"the load finished before it could be killed: {proc.returncode}"
    assert proc.returncode == -signal.SIGKILL
    con = warehouse.connect(db)
    assert con.execute("SELECT * FROM jurisdiction_year WHERE source <> 'big' ORDER BY ALL").fetchall() == before
    loaded = con.execute("SELECT count(*) FROM loads WHERE source = 'big'").fetchone()
    rows = con.execute("SELECT count(*) FROM jurisdiction_year WHERE source = 'big'").fetchone()
    agencies = con.execute("SELECT count(*) FROM jurisdictions WHERE jurisdiction_id LIKE 'ZZ%'").fetchone()
    con.close()
    assert (loaded, rows, agencies) in [((0,), (0,), (0,)), ((1,), (n_rows,), (3000,))]  # all or nothing
    if moment == "first-write":
        assert rows == (0,)  # killed well before commit: nothing of the new load
    # the warehouse still works: the same load now runs to completion (or is recognised as done)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM jurisdiction_year WHERE source = 'big'").fetchone() == (n_rows,)
    assert con.execute("SELECT count(*) FROM jurisdiction_year WHERE source = 'ucr-marshall'").fetchone() == (2829,)
    con.close()


_ROW = st.tuples(
    st.sampled_from(["Alpha", "Beta", "Gamma", "Delta"]),
    st.integers(1960, 2020),
    st.integers(1, 10_000_000),
    st.integers(0, 2_000),
    st.one_of(st.none(), st.integers(0, 50_000)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_ROW, min_size=1, max_size=40, unique_by=lambda r: (r[0], r[1])))
def test_ingest_preserves_totals_and_reingest_is_idempotent(
    rows: list[tuple[str, int, int, int, int | None]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    d = tmp_path_factory.mktemp("prop")
    lines = ["place,yr,pop,hom,rob"] + [f"{p},{y},{pop},{h},{'' if r is None else r}" for p, y, pop, h, r in rows]
    (d / "p.csv").write_text("\n".join(lines) + "\n")
    (d / "p.toml").write_text(
        '[columns]\njurisdiction = "place"\nyear = "yr"\npopulation = "pop"\nhomicide = "hom"\nrobbery = "rob"\n'
    )
    con = warehouse.connect(d / "w.duckdb")
    first = warehouse.load_parsed(con, sources.read(d / "p.csv", mapping=d / "p.toml"))
    second = warehouse.load_parsed(con, sources.read(d / "p.csv", mapping=d / "p.toml"))
    n, hom, rob, missing = con.execute(
        "SELECT count(*), sum(homicide), sum(robbery), count(*) FILTER (robbery IS NULL) FROM jurisdiction_year"
    ).fetchone() or (0, 0, 0, 0)
    loads = con.execute("SELECT count(*) FROM loads").fetchone()
    con.close()
    assert first.status == "loaded" and second.status == "unchanged" and loads == (1,)
    assert n == len(rows)
    assert hom == sum(r[3] for r in rows)
    assert (rob or 0) == sum(r[4] for r in rows if r[4] is not None)
    assert missing == sum(1 for r in rows if r[4] is None)  # missing stays missing, never zero


def test_a_read_only_open_brings_an_older_warehouse_up_to_date(tmp_path: Path) -> None:
    # a warehouse from before the latest migration: its row in schema_migrations and its tables are missing
    db = tmp_path / "old.duckdb"
    latest = max(MIGRATIONS, key=lambda m: m.version)
    con = warehouse.connect(db)
    created = [t for t in re.findall(r"CREATE TABLE (\w+)", latest.sql)]
    for table in created:
        con.execute(f"DROP TABLE {table}")
    con.execute("DELETE FROM schema_migrations WHERE version = ?", [latest.version])
    con.close()
    ro = warehouse.connect(db, read_only=True)
    try:
        versions = {r[0] for r in ro.execute("SELECT version FROM schema_migrations").fetchall()}
        assert latest.version in versions
        tables = {r[0] for r in ro.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert set(created) <= tables
    finally:
        ro.close()
