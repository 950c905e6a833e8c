"""Incidents without ids are keyed by their canonical values: re-exports in another form never double count."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crimelens import warehouse
from crimelens.cli import app
from crimelens.errors import SourceError
from crimelens.schema import MIGRATIONS

runner = CliRunner()
N_ROWS = 2_000


@pytest.fixture(scope="module")
def toronto_rows(real_data: Path) -> tuple[list[str], list[list[str]]]:
    """The first rows of the real Toronto MCI file with a valid hour and coordinates (header, rows as text)."""
    path = real_data / "toronto_mci_2014_2019" / "toronto_mci_2014_2019.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = []
        for row in reader:
            rows.append(row)
            if len(rows) == N_ROWS:
                break
    return header, rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _count(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM incidents WHERE source = 'toronto-mci'").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def loaded(tmp_path: Path, toronto_rows: tuple[list[str], list[list[str]]]) -> tuple[duckdb.DuckDBPyConnection, int]:
    header, rows = toronto_rows
    con = warehouse.connect(tmp_path / "w.duckdb")
    report = warehouse.load_incidents(con, _write(tmp_path / "first.csv", header, rows), "toronto-mci")
    assert report.rows_read == N_ROWS
    return con, _count(con)


def test_reordered_columns_with_lat_and_long_swapped_add_nothing(
    tmp_path: Path, loaded: tuple[duckdb.DuckDBPyConnection, int], toronto_rows: tuple[list[str], list[list[str]]]
) -> None:
    con, n = loaded
    header, rows = toronto_rows
    # every column in reverse order: Long now comes before Lat (their values move with their names)
    order = list(reversed(range(len(header))))
    report = warehouse.load_incidents(
        con, _write(tmp_path / "again.csv", [header[i] for i in order], [[r[i] for i in order] for r in rows]),
        "toronto-mci",
    )  # fmt: skip
    assert _count(con) == n
    assert report.rows_replaced == report.rows_loaded == n
    assert "new_in_period" not in report.reasons


def test_stripped_weekday_padding_adds_nothing(
    tmp_path: Path, loaded: tuple[duckdb.DuckDBPyConnection, int], toronto_rows: tuple[list[str], list[list[str]]]
) -> None:
    con, n = loaded
    header, rows = toronto_rows
    day = header.index("occurrencedayofweek")
    assert any(r[day] != r[day].strip() for r in rows)  # the real file pads its weekdays ("Wednesday ")
    stripped = [[v.strip() if i == day else v for i, v in enumerate(r)] for r in rows]
    warehouse.load_incidents(con, _write(tmp_path / "again.csv", header, stripped), "toronto-mci")
    assert _count(con) == n


def test_a_corrected_descriptive_field_replaces_the_row(
    tmp_path: Path, loaded: tuple[duckdb.DuckDBPyConnection, int], toronto_rows: tuple[list[str], list[list[str]]]
) -> None:
    con, n = loaded
    header, rows = toronto_rows
    premise = header.index("premises_type")
    fixed = [list(r) for r in rows]
    old = fixed[10][premise]
    fixed[10][premise] = "Apartment" if old != "Apartment" else "House"
    report = warehouse.load_incidents(con, _write(tmp_path / "fixed.csv", header, fixed), "toronto-mci")
    assert _count(con) == n and "new_in_period" not in report.reasons
    premises = con.execute("SELECT premise, count(*) FROM incidents GROUP BY premise").fetchall()
    before = {p: k for p, k in premises}
    assert before.get(fixed[10][premise], 0) == sum(1 for r in fixed if r[premise] == fixed[10][premise])


def test_a_corrected_time_is_counted_as_new_in_the_period(
    tmp_path: Path, loaded: tuple[duckdb.DuckDBPyConnection, int], toronto_rows: tuple[list[str], list[list[str]]]
) -> None:
    # a key field (the hour) corrected in one row: without an id nothing says it is the same incident, so the
    # corrected row loads beside the old one, and the load says so (new_in_period: 1)
    con, n = loaded
    header, rows = toronto_rows
    hour = header.index("occurrencehour")
    fixed = [list(r) for r in rows]
    fixed[5][hour] = str((int(fixed[5][hour]) + 1) % 24)
    report = warehouse.load_incidents(con, _write(tmp_path / "fixed.csv", header, fixed), "toronto-mci")
    assert _count(con) == n + 1
    assert report.reasons["new_in_period"] == ("kept", 1)
    # --replace-period instead: the file stands in for the period it covers; nothing is left twice
    report = warehouse.load_incidents(
        con, _write(tmp_path / "fixed2.csv", header, fixed), "toronto-mci", replace_period=True
    )
    assert _count(con) == n
    assert report.reasons["replaced_period"] == ("replaced", n + 1)


def test_a_changed_re_export_stops_with_a_clear_message(
    tmp_path: Path, loaded: tuple[duckdb.DuckDBPyConnection, int], toronto_rows: tuple[list[str], list[list[str]]]
) -> None:
    # every point re-geocoded (shifted by 1e-4 degrees, about 10 m): every key changes, so every row would be a
    # second incident; the load stops, the warehouse stays as it was
    con, n = loaded
    header, rows = toronto_rows
    lat = header.index("Lat")
    moved = [[f"{float(v) + 1e-4:.8f}" if i == lat else v for i, v in enumerate(r)] for r in rows]
    path = _write(tmp_path / "moved.csv", header, moved)
    before = con.execute("SELECT * FROM incidents ORDER BY ALL").fetchall()
    loads = con.execute("SELECT count(*) FROM loads").fetchall()
    with pytest.raises(
        SourceError, match=r"moved.csv: 2,000 of its 2,000 incidents from 2014-01-01 to .* would be new"
    ):
        warehouse.load_incidents(con, path, "toronto-mci")
    assert con.execute("SELECT * FROM incidents ORDER BY ALL").fetchall() == before
    assert con.execute("SELECT count(*) FROM loads").fetchall() == loads
    db = str(tmp_path / "w.duckdb")
    con.close()
    result = runner.invoke(app, ["ingest", str(path), "--format", "toronto-mci", "--db", db])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "add --replace-period" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    replaced = runner.invoke(app, ["ingest", str(path), "--format", "toronto-mci", "--db", db, "--replace-period"])
    assert replaced.exit_code == 0, replaced.output
    assert f"replaced_period: {n:,} replaced" in replaced.stdout
    with duckdb.connect(db, read_only=True) as after:
        assert _count(after) == n


def test_append_loads_another_file_of_the_same_period(
    tmp_path: Path, toronto_rows: tuple[list[str], list[list[str]]]
) -> None:
    # two files of one period split by offence (break and enters, then the rest): the second is all new
    # incidents, which --append allows
    header, rows = toronto_rows
    mci = header.index("MCI")
    con = warehouse.connect(tmp_path / "w.duckdb")
    bne = [r for r in rows if r[mci] == "Break and Enter"]
    rest = [r for r in rows if r[mci] != "Break and Enter"]
    warehouse.load_incidents(con, _write(tmp_path / "bne.csv", header, bne), "toronto-mci")
    with pytest.raises(SourceError, match="add --append"):
        warehouse.load_incidents(con, _write(tmp_path / "rest.csv", header, rest), "toronto-mci")
    report = warehouse.load_incidents(con, tmp_path / "rest.csv", "toronto-mci", append=True)
    assert _count(con) == len(rows)
    assert report.reasons["new_in_period"][1] > 0


def test_migration_4_rekeys_raw_text_keys_as_a_new_load_would(
    tmp_path: Path, toronto_rows: tuple[list[str], list[list[str]]]
) -> None:
    header, rows = toronto_rows
    path = _write(tmp_path / "t.csv", header, rows)
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.load_incidents(con, path, "toronto-mci")
    fresh = sorted(r[0] for r in con.execute("SELECT incident_key FROM incidents").fetchall())
    # a warehouse from before migration 4: keys were md5(raw text) || '#n'
    con.execute("UPDATE incidents SET incident_key = md5(incident_key || 'raw text') || '#1'")
    con.execute("DELETE FROM schema_migrations WHERE version = 4")
    assert warehouse.migrate(con) == [4]
    assert sorted(r[0] for r in con.execute("SELECT incident_key FROM incidents").fetchall()) == fresh
    warehouse.load_incidents(con, _write(tmp_path / "t2.csv", header, [*rows, rows[0]]), "toronto-mci")
    assert _count(con) == N_ROWS + 1  # the same file again (plus one repeated row) adds only that row
    assert any(m.version == 4 for m in MIGRATIONS)
