"""The one transaction helper: a write that cannot be committed (full disk) is one clear error, a failing
rollback never masks the original error, and the warehouse is left exactly as it was.

The full disk is real: a 16 MB tmpfs mounted inside the test (we run as root) and filled up, so DuckDB's own
COMMIT fails writing its WAL, as on an analyst's full laptop disk. Where mounting is not permitted (no root, no
CAP_SYS_ADMIN), the tests do not skip: they wrap the real connection in :class:`_CommitFailsProxy`, whose
``execute("COMMIT")`` raises the ``duckdb.IOException`` a full disk gives. That is the only call mocked: it is
the one that cannot be provoked for real without a small file system.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import duckdb
import pytest
from typer.testing import CliRunner

from crimelens import sources, warehouse
from crimelens.cli import app
from crimelens.errors import DataError, SourceError
from crimelens.schema import MIGRATIONS
from crimelens.sources import chicago
from crimelens.sources.base import ParsedFile
from crimelens.warehouse import transaction

runner = CliRunner()
HEADER = ",".join(chicago.FULL_COLUMNS)
FULL = r"\(No space left on device\); nothing was loaded and the warehouse is as it was$"


def _incidents(path: Path, ids: range) -> Path:
    rows = [
        f"{i},JB{i},2022-03-01 10:00:00,001XX N STATE ST,0820,THEFT,$500 AND UNDER,STREET,false,false,0111,001,42,"
        f"32,06,1176000,1900000,2022,03/05/2022 03:40:00 PM,41.9,-87.7,"
        for i in ids
    ]
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _jurisdictions(path: Path, city: str) -> ParsedFile:
    """A two-row jurisdiction-year file (with its mapping), parsed."""
    path.write_text(f"name,id,year,pop,vio\n{city},{city},2020,1000,10\n{city},{city},2021,1000,12\n")
    mapping = path.with_suffix(".toml")
    mapping.write_text(
        f'source = "tiny-{city}"\n[columns]\njurisdiction = "name"\njurisdiction_id = "id"\nyear = "year"\n'
        'population = "pop"\nviolent_crime = "vio"\n[constants]\nkind = "city"\n'
    )
    return sources.read(path, mapping=mapping)


def _areas(path: Path, ids: list[int]) -> Path:
    square = [[[-87.7, 41.8], [-87.6, 41.8], [-87.6, 41.9], [-87.7, 41.8]]]
    features = ",".join(
        f'{{"type": "Feature", "properties": {{"id": {i}}}, "geometry": {{"type": "Polygon", "coordinates": '
        f"{square}}}}}"
        for i in ids
    )
    path.write_text(f'{{"type": "FeatureCollection", "features": [{features}]}}')
    return path


def snapshot(con: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every warehouse table's full contents."""
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()]
    return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in sorted(tables)}


class _CommitFailsProxy:
    """A real DuckDB connection whose COMMIT fails as on a full disk while ``disk.full`` (fallback only)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, disk: Disk) -> None:
        self._con, self._disk = con, disk

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        if self._disk.full and query.strip().upper() == "COMMIT":
            raise duckdb.IOException('Could not write file "w.duckdb.wal": No space left on device')
        return self._con.execute(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


class Disk:
    """A small disk for the warehouse: a real 16 MB tmpfs when it can be mounted, else a proxy (see above)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "disk"
        self.dir.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(self.dir)], capture_output=True, check=False
        )
        self.real = mounted.returncode == 0
        self.full = False

    def fill(self) -> None:
        """Fill the disk to the last byte (real), or make COMMIT fail (fallback)."""
        self.full = True
        if not self.real:
            return
        with contextlib.suppress(OSError), (self.dir / "filler").open("wb", buffering=0) as fh:
            while True:
                fh.write(b"\0" * 4096)
        stat = os.statvfs(self.dir)
        assert stat.f_bavail == 0, "the tmpfs still has room"

    def free(self) -> None:
        self.full = False
        (self.dir / "filler").unlink(missing_ok=True)

    def wrap(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """``con`` itself on a real disk; in the fallback, the proxy around it."""
        return con if self.real else cast(duckdb.DuckDBPyConnection, _CommitFailsProxy(con, self))

    def connect(self) -> duckdb.DuckDBPyConnection:
        return self.wrap(warehouse.connect(self.dir / "w.duckdb"))

    def unmount(self) -> None:
        if self.real:
            subprocess.run(["umount", "-l", str(self.dir)], capture_output=True, check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    d = Disk(tmp_path)
    try:
        yield d
    finally:
        d.unmount()


LOADS: dict[str, Callable[[duckdb.DuckDBPyConnection, Path, int], object]] = {
    "incidents": lambda con, tmp, n: warehouse.load_incidents(
        con, _incidents(tmp / f"crimes-{n}.csv", range(n * 10, n * 10 + 10)), "chicago"
    ),
    "jurisdiction-years": lambda con, tmp, n: warehouse.load_parsed(
        con, (_jurisdictions(tmp / f"tiny{n}.csv", f"C{n}"))
    ),
    "areas": lambda con, tmp, n: warehouse.load_areas(
        con, _areas(tmp / f"areas{n}.geojson", list(range(n + 2))), area_set="s", area_kind="beat", id_property="id"
    ),
}


@pytest.mark.parametrize("kind", list(LOADS))
def test_a_load_on_a_full_disk_is_one_clear_error_and_changes_nothing(kind: str, disk: Disk, tmp_path: Path) -> None:
    con = disk.connect()
    LOADS[kind](con, tmp_path, 1)  # something already loaded, which must survive
    con.execute("CHECKPOINT")  # the WAL is empty: the next COMMIT has to write
    before = snapshot(con)
    disk.fill()
    with pytest.raises(SourceError, match=r"^warehouse \S*w\.duckdb: could not write \S+ " + FULL) as caught:
        LOADS[kind](con, tmp_path, 2)
    # one line, and the cause kept for a debugger: DuckDB's own write error, not the failed ROLLBACK after it
    assert "\n" not in str(caught.value)
    assert "No space left on device" in str(caught.value.__cause__)
    assert "no transaction is active" not in str(caught.value.__cause__)
    assert snapshot(con) == before
    disk.free()
    con.close()
    con = disk.connect()  # reopened from the file: the failed write left no trace
    assert snapshot(con) == before
    LOADS[kind](con, tmp_path, 2)  # with room again, the same load goes through
    assert snapshot(con) != before
    con.close()


def test_a_full_disk_while_rows_are_written_is_one_clear_error(disk: Disk) -> None:
    """A large write reaches the disk before COMMIT (DuckDB writes big row groups early): the same one line."""
    con = disk.connect()
    con.execute("CHECKPOINT")
    before = snapshot(con)
    disk.fill()
    rows = "SELECT 1, i, NULL, 'warning', 'x', repeat('x', 100) || i FROM range(1000000) t(i)"
    with (
        pytest.raises(SourceError, match=r"^warehouse \S*w\.duckdb: could not write the load " + FULL),
        transaction(con),
    ):
        con.execute(f"INSERT INTO load_issues {rows}")
    disk.free()
    assert snapshot(con) == before
    con.close()


def test_a_migration_on_a_full_disk_is_one_clear_error(disk: Disk) -> None:
    path = disk.dir / "w.duckdb"
    old = duckdb.connect(str(path))  # a warehouse made before any migration: only the version table
    old.execute(
        "CREATE TABLE schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    old.close()
    con = disk.wrap(duckdb.connect(str(path)))
    disk.fill()
    first = MIGRATIONS[0]
    with pytest.raises(
        SourceError,
        match=rf"could not write schema migration {first.version} \({first.name}\) \(No space left on device\); "
        r"the schema was not changed and the warehouse is as it was$",
    ):
        warehouse.migrate(con)
    assert con.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)
    disk.free()
    assert warehouse.migrate(con) == [m.version for m in MIGRATIONS]
    con.close()


def test_ingest_on_a_full_disk_prints_one_line_and_exits_1(
    disk: Disk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = disk.dir / "w.duckdb"
    warehouse.connect(db).close()
    if not disk.real:  # the CLI opens its own connection: hand it the proxy
        real_connect = warehouse.connect
        monkeypatch.setattr(warehouse, "connect", lambda path, **kw: disk.wrap(real_connect(path, **kw)))
    disk.fill()
    csv = _incidents(tmp_path / "crimes.csv", range(1, 11))
    result = runner.invoke(app, ["ingest", str(csv), "--format", "chicago", "--db", str(db)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: warehouse {db}: could not write crimes.csv (No space left on device)")
    assert lines[0].endswith("nothing was loaded and the warehouse is as it was")
    disk.free()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM loads").fetchone() == (0,)
    con.close()


def test_a_failing_rollback_does_not_mask_the_original_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    before = snapshot(con)
    with (
        caplog.at_level(logging.WARNING, logger="crimelens.warehouse.transaction"),
        pytest.raises(ZeroDivisionError, match="the original error"),
        transaction(con),
    ):
        con.execute("INSERT INTO load_issues VALUES (1, 2, NULL, 'warning', 'x', 'y')")
        # the body ends the transaction itself, so the helper's ROLLBACK fails for real ...
        con.execute("ROLLBACK")
        raise ZeroDivisionError("the original error")
    # ... and is logged, while the error raised is the body's own
    assert any("rollback after ZeroDivisionError failed" in r.getMessage() for r in caplog.records)
    assert snapshot(con) == before
    con.close()


def test_other_errors_pass_through_after_the_rollback(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    before = snapshot(con)
    with pytest.raises(duckdb.ConstraintException), transaction(con):
        con.execute("INSERT INTO schema_migrations VALUES (1, 'again', now())")  # version 1 exists
    with pytest.raises(KeyboardInterrupt), transaction(con):
        con.execute("INSERT INTO load_issues VALUES (1, 2, NULL, 'warning', 'x', 'y')")
        raise KeyboardInterrupt
    assert snapshot(con) == before
    with transaction(con):  # and the connection is ready for the next write
        con.execute("INSERT INTO load_issues VALUES (1, 2, NULL, 'warning', 'x', 'y')")
    assert con.execute("SELECT count(*) FROM load_issues").fetchone() == (1,)
    con.close()


def test_a_jurisdiction_load_breaking_a_rule_is_still_a_data_error(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    parsed = _jurisdictions(tmp_path / "tiny.csv", "A")
    # rows the adapter would never hand over (a negative count), to reach the warehouse's own CHECK
    parsed.rows = parsed.rows.assign(violent_crime=-1)
    before = snapshot(con)
    with pytest.raises(DataError, match=r"^tiny\.csv: rows break a warehouse rule \(.*\); nothing was loaded$"):
        warehouse.load_parsed(con, parsed)
    assert snapshot(con) == before
    con.close()
