"""Hostile inputs: each gives one line naming file, line and column (or a counted reason), never a traceback or a
hang, and the warehouse stays as it was."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crimelens import warehouse
from crimelens.cli import app
from crimelens.errors import ConfigError, SourceError
from crimelens.sources.incident_spec import MAX_LINE_BYTES, scan_file

runner = CliRunner()
HEADER = (
    "ID,Case Number,Date,Block,IUCR,Primary Type,Description,Location Description,Arrest,Domestic,Beat,District,"
    "Ward,Community Area,FBI Code,X Coordinate,Y Coordinate,Year,Updated On,Latitude,Longitude,Location\n"
)


def row(i: int, block: str = "001XX N STATE ST", end: str = "\n") -> str:
    return (
        f"{i},JA{i},01/05/2022 10:00:00 PM,{block},0820,THEFT,$500 AND UNDER,STREET,false,false,0111,001,42,32,06,"
        f',,2022,01/10/2022 03:40:00 PM,41.88,-87.63,"(41.88, -87.63)"{end}'
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A warehouse holding 5 incidents already."""
    path = tmp_path / "w.duckdb"
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "".join(row(i) for i in range(100, 105)), encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(good), "--db", str(path)])
    assert result.exit_code == 0, result.output
    return path


def _state(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT source, incident_key, occurred_at FROM incidents ORDER BY ALL").fetchall() + [
            ("loads", *r) for r in con.execute("SELECT load_id, status FROM loads ORDER BY load_id").fetchall()
        ]


def _refused(db: Path, path: Path, expected: str, *args: str) -> None:
    before = _state(db)
    result = runner.invoke(app, ["ingest", str(path), "--db", str(db), *args])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert _state(db) == before


def test_a_final_line_too_long_is_refused_not_dropped(tmp_path: Path, db: Path) -> None:
    # header (line 1), three rows (lines 2-4), then a last line whose field is longer than the limit: it used to
    # vanish ("Loaded 3 of 3")
    path = tmp_path / "big.csv"
    path.write_text(HEADER + "".join(row(i) for i in range(1, 4)) + row(4, "X" * (MAX_LINE_BYTES + 10)), "utf-8")
    _refused(db, path, f"big.csv, line 5, column 1: the line is longer than {MAX_LINE_BYTES >> 20} MB")


def test_a_3_mb_line_loads_whole(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(HEADER + row(1) + row(2, "Y" * 3_000_000) + row(3), "utf-8")
    result = runner.invoke(app, ["ingest", str(path), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "Loaded 3 of 3 incidents" in result.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM incidents").fetchall() == [(8,)]


def test_a_header_field_over_128_kb(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("A" * 200_000 + "," + HEADER + row(1), "utf-8")
    _refused(db, path, "h.csv, line 1, column 1:")
    _refused(db, path, "longer than 131,072 characters", "--format", "chicago")


def test_devices_and_pipes_are_refused_without_waiting(tmp_path: Path, db: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    for target in (Path("/dev/zero"), fifo):
        started = time.monotonic()
        _refused(db, target, "is not a regular file (a pipe, device or socket)")
        assert time.monotonic() - started < 30  # a hang would never return; the test runner's timeout is the net


def test_a_gzip_of_zeros(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "zeros.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"\0" * (8 << 20))
    _refused(db, path, "zeros.csv.gz, line 1, column 1: NUL byte found")
    _refused(db, path, "zeros.csv.gz, line 1, column 1: NUL byte found", "--format", "chicago")


def test_a_gzip_with_one_row_then_nul_padding(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "padded.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write((HEADER + row(1)).encode())
        fh.write(b"\0" * (8 << 20))
    _refused(db, path, "padded.csv.gz, line 3, column 1: NUL byte found")


def test_a_nul_byte_inside_a_field(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_text(HEADER + row(1) + row(2).replace("THEFT", "TH\0EFT") + row(3), "utf-8")
    # 'TH' starts at column 53 of line 3 (the 52 characters before it are the fields before Primary Type)
    column = row(2).index("THEFT") + 3
    _refused(db, path, f"nul.csv, line 3, column {column}: NUL byte found")


def test_mixed_crlf_and_lf_line_endings(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes((HEADER.replace("\n", "\r\n") + row(1, end="\r\n") + row(2) + row(3, end="\r\n")).encode())
    _refused(db, path, "mixed.csv, line 3, column 1: this line ends with a different line break than line 1")


def test_byte_scan_by_hand(tmp_path: Path) -> None:
    # NUL at line 2, column 3; lines across 4-byte blocks; CRLF first, LF on line 3
    path = tmp_path / "s.csv"
    path.write_bytes(b"ab\r\ncd\x00e\r\n")
    assert scan_file(path, chunk=4).nul == (2, 3)
    path.write_bytes(b"ab\r\ncd\r\nef\ngh\r\n")
    scan = scan_file(path, chunk=4)
    assert scan.nul is None and scan.long_line is None and scan.mixed_endings == 3
    path.write_bytes(b"ab\ncd\n")
    assert scan_file(path, chunk=4).mixed_endings is None


def test_na_values_holding_the_delimiter_is_one_clear_line(tmp_path: Path) -> None:
    from crimelens.sources import mapped_csv

    mapping = tmp_path / "m.toml"
    mapping.write_text(
        textwrap.dedent(
            """
            [columns]
            jurisdiction = "city"
            year = "year"
            population = "pop"
            violent_crime = "violent"
            [options]
            na_values = ["", "n,a"]
            """
        ),
        "utf-8",
    )
    with pytest.raises(ConfigError, match=r"na_values: 'n,a' contains the delimiter ','; a missing-value marker"):
        mapped_csv.read_mapping(mapping)


def test_a_changed_incidents_table_is_noticed_before_writing(tmp_path: Path, db: Path) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute("ALTER TABLE incidents DROP COLUMN beat")
    more = tmp_path / "more.csv"
    more.write_text(HEADER + row(1), "utf-8")
    _refused(db, more, "table incidents does not have crimelens' columns (column 11 is community_area VARCHAR, "
             "expected beat VARCHAR)")  # fmt: skip
    with pytest.raises(SourceError, match="changed outside crimelens"):
        warehouse.connect(db)


def test_a_lock_held_by_another_process_is_explained(tmp_path: Path, db: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ok', flush=True); "
         "time.sleep(30)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        more = tmp_path / "more.csv"
        more.write_text(HEADER + row(1), "utf-8")
        result = runner.invoke(app, ["ingest", str(more), "--db", str(db)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        line = result.stderr.strip()
        # the program's name is its resolved executable (python3.11 behind a python symlink)
        assert f"in use by another program ({Path(sys.executable).resolve().name}, process {holder.pid})" in line
        assert "duckdb" not in line.lower().replace(str(db).lower(), "")  # no DuckDB flags or links to follow
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
