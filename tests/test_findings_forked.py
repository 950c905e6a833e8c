"""`crimelens findings` on both cores: the incident findings in a forked process (crimelens.insights.forked) give
exactly what computing them in turn gives, errors and caveats included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from conftest import seeded_city_warehouse
from crimelens import sources, warehouse
from crimelens.errors import DataError, SparseDataWarning
from crimelens.insights import forked, key_findings, key_findings_on

pytestmark = [pytest.mark.filterwarnings(r"ignore:fetch_arrow_table\(\) is deprecated:DeprecationWarning")]


def _with_marshall(folder: Path, real_file: Any, n: int) -> Path:
    """The Marshall file and a seeded city of ``n`` incidents in one warehouse."""
    db = seeded_city_warehouse(folder, n=n, seed=5, spread_deg=0.002, hot_lon=-79.42)
    con = warehouse.connect(db)
    warehouse.load_parsed(con, sources.read(real_file("ucr-marshall"), "ucr-marshall"))
    con.close()
    return db


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, real_file: Any) -> Path:
    return _with_marshall(tmp_path_factory.mktemp("both"), real_file, 4000)


def test_this_machine_can_fork() -> None:
    # the CI machines are Linux with two cores: the forked path below is the one taken, not the fallback
    assert forked.can_fork()


def test_forked_findings_equal_the_findings_in_turn(both: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forks: list[int] = []
    real_fork = forked.fork_call
    monkeypatch.setattr(forked, "fork_call", lambda fn: forks.append(1) or real_fork(fn))
    got = key_findings_on(both, permutations=99, fork=True)
    assert forks == [1]
    con = warehouse.connect(both, read_only=True)
    try:
        expected = key_findings(con, permutations=99)
    finally:
        con.close()
    assert got.to_dict() == expected.to_dict()
    kinds = {f.kind for f in got.findings}
    assert {"counts_vs_rates", "hotspots"} <= kinds  # jurisdiction and incident findings both there
    # one kind of data only, or a fork not asked for (a library caller may hold the warehouse open): no fork
    forks.clear()
    key_findings_on(both, "city", permutations=99, fork=True)
    key_findings_on(both, permutations=99)
    assert forks == []


def test_the_caveats_of_forked_findings_are_in_the_result_and_its_json(tmp_path: Path, real_file: Any) -> None:
    # 500 timed incidents over 168 weekday-hours: the hour × weekday profile behind a finding is sparse, a caveat
    exe = str(Path(sys.executable).with_name("crimelens"))
    city = tmp_path / "city.csv"
    made = subprocess.run(
        [exe, "simulate", "--incidents", "500", "--out", str(city), "--seed", "2"], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    warehouse.load_parsed(con, sources.read(real_file("ucr-marshall"), "ucr-marshall"))
    warehouse.load_incidents(con, city, source="simulated-city", simulated=True)
    con.close()
    with pytest.warns(SparseDataWarning):
        got = key_findings_on(db, permutations=99, fork=True)
    con = warehouse.connect(db, read_only=True)
    try:
        with pytest.warns(SparseDataWarning):
            expected = key_findings(con, permutations=99)
    finally:
        con.close()
    assert got.to_dict() == expected.to_dict()
    assert [w["category"] for w in got.to_dict()["warnings"]] == ["SparseDataWarning"]
    assert "500 incidents over 168 weekday-hours" in got.to_dict()["warnings"][0]["message"]
    # and through the command line: the caveat on stderr and in the JSON
    done = subprocess.run(
        [exe, "findings", "--json", "--db", str(db)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Caveat: data: 500 incidents" in done.stderr
    assert [w["category"] for w in json.loads(done.stdout)["warnings"]] == ["SparseDataWarning"]


def test_a_child_error_is_raised_here_and_its_caveats_reach_the_caller() -> None:
    def fails() -> None:
        warnings.warn("few incidents", SparseDataWarning, stacklevel=1)
        raise DataError("area: none of these incidents has an id")

    with pytest.warns(SparseDataWarning, match="few incidents"), pytest.raises(DataError, match="has an id"):
        forked.fork_call(fails).result()

    def answers() -> int:
        warnings.warn("small counts", SparseDataWarning, stacklevel=1)
        return 42

    with pytest.warns(SparseDataWarning, match="small counts"):
        assert forked.fork_call(answers).result() == 42


def test_a_child_is_stopped_when_this_side_fails_first() -> None:
    child = forked.fork_call(lambda: time.sleep(60))
    started = time.monotonic()
    child.cancel()
    assert time.monotonic() - started < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(child._pid, os.WNOHANG)  # reaped: no such child any more


def test_findings_while_another_program_reads_the_warehouse(both: Path, tmp_path: Path) -> None:
    # another process holding a read-only connection does not stop the two processes reading it
    copy = tmp_path / "w.duckdb"
    shutil.copy(both, copy)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(copy)!r}, read_only=True); "
         "print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        assert len(key_findings_on(copy, permutations=99, fork=True).findings) >= 5
    finally:
        holder.kill()
        holder.communicate()
