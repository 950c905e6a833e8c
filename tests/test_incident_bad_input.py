"""Incident loads on bad input: every dropped or repaired row counted by reason; structural problems raise one
clear line naming file and line, with the warehouse unchanged; upserts never duplicate; kill -9 is all-or-nothing."""

from __future__ import annotations

import datetime as dt
import gzip
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from crimelens import warehouse
from crimelens.errors import CrimeLensError, SchemaError, SourceError
from crimelens.sources import chicago

HEADER = ",".join(chicago.FULL_COLUMNS)


def row(
    id_: int | str, date: str = "2022-03-01 10:00:00", fbi: str = "06", lat: str = "41.9", lon: str = "-87.7"
) -> str:
    return (
        f"{id_},JB{id_},{date},001XX N STATE ST,0820,THEFT,$500 AND UNDER,STREET,false,false,0111,001,42,32,{fbi},"
        f"1176000,1900000,2022,03/05/2022 03:40:00 PM,{lat},{lon},"
    )


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = warehouse.connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's full contents."""
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()]
    return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in sorted(tables)}


def test_every_dropped_or_repaired_row_is_counted(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    tomorrow = (dt.date.today() + dt.timedelta(days=3)).strftime("%Y-%m-%d 10:00:00")
    path = write(
        tmp_path / "bad.csv",
        [
            row(1),  # fine
            row(2, lat="", lon=""),  # no coordinates: kept
            row(3, lat="0", lon="0"),  # 0/0: repaired
            row(4, lat="48.85", lon="2.35"),  # Paris: outside extent, repaired
            row(5, date="2022-02-30 10:00:00"),  # 30 February: bad date
            row(6, date="yesterday"),  # bad date
            row(7, date="1959-12-31 23:59:00"),  # before 1960: out of range
            row(8, date=tomorrow),  # in the future: out of range
            row(9, fbi="99Z"),  # unknown code: other, listed
            row(10, fbi="99Z"),
            row(11, fbi="42"),
            row(12, fbi=""),  # no offence code: dropped
            row(13, lat="41.9", lon="not a number"),  # half a coordinate: no coordinates
        ],
    )
    report = warehouse.load_incidents(con, path, "chicago")
    # 13 rows; dropped 5, 6 (bad date), 7, 8 (out of range), 12 (no offence) = 5 -> 8 loaded
    assert (report.rows_read, report.rows_rejected, report.rows_loaded) == (13, 5, 8)
    assert report.reasons == {
        "bad_date": ("dropped", 2),
        "date_out_of_range": ("dropped", 2),
        "missing_offence": ("dropped", 1),
        "no_coordinates": ("kept", 2),
        "outside_extent": ("repaired", 2),
        "unmapped_offence": ("kept", 3),
    }
    # record n is on line n + 1
    assert report.examples["bad_date"] == (6, 7) and report.examples["date_out_of_range"] == (8, 9)
    assert report.unmapped_codes == {"FBI:99Z": 2, "FBI:42": 1}
    stored = con.execute("SELECT reason, rows, example_lines FROM load_reasons ORDER BY reason").fetchall()
    assert ("bad_date", 2, "6, 7") in stored and ("outside_extent", 2, "4, 5") in stored
    issues = con.execute("SELECT line, code, message FROM load_issues ORDER BY line").fetchall()
    assert [i[:2] for i in issues] == [(10, "unmapped_offence"), (12, "unmapped_offence")]
    assert con.execute("SELECT count(*) FROM incidents WHERE latitude IS NULL").fetchone() == (4,)


def test_exact_lines_when_a_quoted_value_holds_a_line_break(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    multi = row(1).replace("001XX N STATE ST", '"001XX N STATE ST\nREAR"')
    path = write(tmp_path / "multi.csv", [multi, row(2), row(3, date="bad")])
    report = warehouse.load_incidents(con, path, "chicago")
    # the header is line 1, record 1 takes lines 2-3, record 2 line 4, record 3 (bad date) line 5
    assert report.examples["bad_date"] == (5,)


def test_mixed_time_zones_in_mapped_csv(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    (tmp_path / "m.toml").write_text(
        'source = "tz"\n[options]\ngrain = "incidents"\ntimezone = "Europe/Berlin"\n'
        '[columns]\noccurred_at = "t"\noffence = "o"\n[offences]\nR = "robbery"\n'
    )
    path = tmp_path / "tz.csv"
    path.write_text(
        "t,o\n"
        "2021-07-01 12:00:00,R\n"  # naive: local Berlin time, kept as is
        "2021-07-01T10:00:00Z,R\n"  # UTC 10:00 = 12:00 Berlin (CEST, UTC+2)
        "2021-07-01T12:00:00+02:00,R\n"  # = 12:00 Berlin
        "2021-01-15T23:30:00-0500,R\n"  # = 2021-01-16 04:30Z = 05:30 Berlin (CET, UTC+1)
        "2021-07-01 25:00:00,R\n"  # bad date
    )
    report = warehouse.load_incidents(con, path, "mapped-csv", mapping=tmp_path / "m.toml")
    # the mapping names no coordinates: every loaded row is counted as having none
    assert report.reasons == {
        "timezone_converted": ("repaired", 3), "bad_date": ("dropped", 1), "no_coordinates": ("kept", 4),
    }  # fmt: skip
    got = [r[0] for r in con.execute("SELECT occurred_at FROM incidents ORDER BY occurred_at").fetchall()]
    assert got == [dt.datetime(2021, 1, 16, 5, 30)] + [dt.datetime(2021, 7, 1, 12, 0)] * 3
    assert con.execute("SELECT timezone FROM incident_sources").fetchone() == ("Europe/Berlin",)


def test_newer_overlapping_export_replaces_older_rows(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    old = write(tmp_path / "old.csv", [row(i, fbi="06") for i in range(1, 6)])  # ids 1-5, larceny
    new = write(tmp_path / "new.csv", [row(i, fbi="03") for i in range(4, 9)])  # ids 4-8, robbery
    first = warehouse.load_incidents(con, old, "chicago")
    second = warehouse.load_incidents(con, new, "chicago")
    assert (first.rows_loaded, first.rows_replaced) == (5, 0)
    # ids 4 and 5 are in both: replaced by the newer export, never duplicated -> 8 incidents
    assert (second.rows_loaded, second.rows_replaced) == (5, 2)
    assert second.reasons["replaced"] == ("replaced", 2)
    got = dict(con.execute("SELECT incident_key, offence FROM incidents").fetchall())
    assert got == {"1": "larceny", "2": "larceny", "3": "larceny", **{str(i): "robbery" for i in range(4, 9)}}
    assert con.execute("SELECT count(*), count(DISTINCT incident_key) FROM incidents").fetchone() == (8, 8)
    loads = con.execute("SELECT load_id, status FROM loads ORDER BY load_id").fetchall()
    assert loads == [(first.load_id, "loaded"), (second.load_id, "loaded")]
    # the rows keep the load that wrote them
    by_load = con.execute("SELECT load_id, count(*) FROM incidents GROUP BY 1 ORDER BY 1").fetchall()
    assert by_load == [(first.load_id, 3), (second.load_id, 5)]


def test_hash_keys_make_reloading_an_overlapping_file_idempotent(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    slim = "Date,Block,Primary Type,Description,Location Description,Arrest,Domestic,Community Area"
    a = "2022-01-01 10:00:00,001XX N STATE ST,THEFT,OVER $500,STREET,false,false,32"
    b = "2022-01-02 10:00:00,001XX N STATE ST,ROBBERY,ARMED - HANDGUN,STREET,false,false,32"
    c = "2022-01-03 10:00:00,001XX N STATE ST,BATTERY,AGG. DOMESTIC BATTERY - HANDS,STREET,false,true,08"
    first = warehouse.load_incidents(con, write(tmp_path / "s1.csv", [a, a, b], slim), "chicago")
    second = warehouse.load_incidents(con, write(tmp_path / "s2.csv", [a, a, b, c], slim), "chicago")
    # the two identical rows a are both kept (keys '<hash>#1', '<hash>#2'); the second file overlaps: 3 replaced
    assert (first.rows_loaded, second.rows_loaded, second.rows_replaced) == (3, 4, 3)
    assert con.execute("SELECT count(*) FROM incidents").fetchone() == (4,)
    agg = con.execute("SELECT offence, community_area, domestic FROM incidents WHERE offence_raw = 'BATTERY'")
    assert agg.fetchall() == [("aggravated_assault", "8", True)]


def test_same_file_twice_is_unchanged(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = write(tmp_path / "a.csv", [row(1), row(2, date="bad")])
    first = warehouse.load_incidents(con, path, "chicago")
    before = snapshot(con)
    again = warehouse.load_incidents(con, path, "chicago")
    assert (again.status, again.load_id, again.rows_read) == ("unchanged", first.load_id, 2)
    assert again.reasons == {"bad_date": ("dropped", 1)}
    assert snapshot(con) == before


def test_duplicate_ids_in_one_file_keep_the_last(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = write(tmp_path / "d.csv", [row(1, fbi="06"), row(1, fbi="05"), row(2), row(1, fbi="03")])
    report = warehouse.load_incidents(con, path, "chicago")
    assert report.reasons == {"duplicate_in_file": ("dropped", 2)}
    assert report.examples["duplicate_in_file"] == (2, 3)
    assert con.execute("SELECT offence FROM incidents WHERE incident_key = '1'").fetchall() == [("robbery",)]


def _gz(path: Path, text: bytes) -> Path:
    path.write_bytes(gzip.compress(text))
    return path


def _structural_cases(tmp_path: Path) -> list[tuple[Path, str, type[CrimeLensError], str]]:
    good = "\n".join(row(i) for i in range(1, 2001)).encode() + b"\n"
    gz = gzip.compress(HEADER.encode() + b"\n" + good)
    (tmp_path / "trunc.csv.gz").write_bytes(gz[: len(gz) // 2])
    bad_utf8 = (HEADER + "\n" + row(1) + "\n" + row(2) + "\n").encode() + row(3).encode().replace(b"THEFT", b"TH\xffFT")
    (tmp_path / "utf8.csv").write_bytes(bad_utf8 + b"\n")
    (tmp_path / "semi.csv").write_text("occurrencedate;occurrencehour;MCI;Lat;Long\n2014/01/01;1;Robbery;43.7;-79.4\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header-only.csv").write_text("occurrencedate,occurrencehour,MCI,Lat,Long\n")
    (tmp_path / "short.csv").write_text(HEADER + "\n" + row(1) + "\n" + "2,JB2,2022-03-01 10:00:00,001XX\n")
    no_mci = (
        "occurrencedate,occurrencehour,premises_type,Neighbourhood,Lat,Long\n"
        "2014/01/01 05:00:00+00,1,House,X,43.7,-79.4\n"
    )
    (tmp_path / "no-mci.csv").write_text(no_mci)
    return [
        (tmp_path / "trunc.csv.gz", "chicago", SourceError, r"trunc\.csv\.gz, line \d+: the gzip data ends early"),
        (tmp_path / "utf8.csv", "chicago", SourceError, r"utf8\.csv, line 4, column \d+: byte 0xff is not valid utf-8"),
        (tmp_path / "semi.csv", "toronto-mci", SchemaError, r"semi\.csv, line 1, column 1: .*separated by semicolons"),
        (tmp_path / "empty.csv", "toronto-mci", SchemaError, r"empty\.csv, line 1, column 1: the file is empty"),
        (tmp_path / "header-only.csv", "toronto-mci", SchemaError, r"header-only\.csv, line 2.*no data rows"),
        (tmp_path / "short.csv", "chicago", SchemaError, r"short\.csv, line 3: expected 22 fields .*found 4"),
        (tmp_path / "no-mci.csv", "toronto-mci", SchemaError, r"no-mci\.csv, line 1, column MCI: required column"),
    ]


def test_structural_problems_raise_one_line_and_change_nothing(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    warehouse.load_incidents(con, write(tmp_path / "base.csv", [row(1), row(2)]), "chicago")
    before = snapshot(con)
    for path, fmt, kind, pattern in _structural_cases(tmp_path):
        with pytest.raises(kind, match=pattern) as info:
            warehouse.load_incidents(con, path, fmt)
        assert "\n" not in str(info.value), str(info.value)
        assert snapshot(con) == before, path.name


def _big_chicago_file(path: Path, n: int) -> None:
    with path.open("w") as fh:
        fh.write(HEADER + "\n")
        for i in range(n):
            fh.write(row(f"X{i:07d}", date=f"2021-{i % 12 + 1:02d}-{i % 28 + 1:02d} {i % 24:02d}:00:00") + "\n")


def _sizes(db: Path) -> tuple[int, int]:
    wal = db.with_name(db.name + ".wal")
    return (db.stat().st_size, wal.stat().st_size if wal.exists() else -1)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["first-write", "commit"])
def test_kill_9_during_a_large_incident_load_is_all_or_nothing(moment: str, tmp_path: Path) -> None:
    """kill -9 as the load's transaction writes ('first-write') or commits (the WAL appears): the earlier load
    stays intact and the new one is all there or not at all; running it again completes it."""
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    warehouse.load_incidents(con, write(tmp_path / "base.csv", [row(i) for i in range(1, 101)]), "chicago")
    before = con.execute("SELECT * FROM incidents ORDER BY ALL").fetchall()
    con.close()
    big = tmp_path / "big.csv"
    n_rows = 300_000
    _big_chicago_file(big, n_rows)
    cmd = [sys.executable, "-m", "crimelens", "ingest", str(big), "--db", str(db), "--format", "chicago"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    idle = _sizes(db)
    deadline = time.monotonic() + 120
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        wal = db.with_name(db.name + ".wal").exists()
        if (moment == "first-write" and _sizes(db) != idle) or (moment == "commit" and wal):
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.001)
    proc.wait(timeout=30)
    assert killed, f"the load finished before it could be killed: {proc.returncode}"
    assert proc.returncode == -signal.SIGKILL
    con = warehouse.connect(db)
    assert con.execute("SELECT * FROM incidents WHERE incident_key NOT LIKE 'X%' ORDER BY ALL").fetchall() == before
    new = con.execute("SELECT count(*) FROM incidents WHERE incident_key LIKE 'X%'").fetchone()
    loads = con.execute("SELECT count(*) FROM loads WHERE file_name = 'big.csv'").fetchone()
    con.close()
    assert (loads, new) in [((0,), (0,)), ((1,), (n_rows,))]  # all or nothing
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM incidents").fetchone() == (n_rows + 100,)
    con.close()


def test_arrest_and_domestic_flags_ignore_case_and_spaces(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    flags = [("TRUE", " False "), ("False", "true"), ("yes", "N"), ("maybe", "")]  # the last: not booleans -> NULL
    rows = [row(i).replace(",false,false,", f",{a},{d},", 1) for i, (a, d) in enumerate(flags, start=1)]
    warehouse.load_incidents(con, write(tmp_path / "flags.csv", rows), "chicago")
    got = con.execute("SELECT incident_key, arrest, domestic FROM incidents ORDER BY incident_key").fetchall()
    assert got == [("1", True, False), ("2", False, True), ("3", True, False), ("4", None, None)]
