"""The incident mapping layer takes any DuckDB relation: a page of feed records maps as the same file would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from crimelens import warehouse
from crimelens.errors import SchemaError
from crimelens.sources import chicago
from crimelens.sources.incidents import (
    drop_staged,
    map_incidents,
    open_incident_file,
    stage_incident_file,
)
from crimelens.warehouse.incidents import write_incidents

HEADER = list(chicago.FULL_COLUMNS)


def record(id_: int, date: str = "2022-03-01 10:00:00", fbi: str = "06", lat: str = "41.9") -> list[str]:
    """One full-schema Chicago record, every field as text (as in the export)."""
    return [
        str(id_), f"JB{id_}", date, "001XX N STATE ST", "0820", "THEFT", "$500 AND UNDER", "STREET", "false",
        "false", "0111", "001", "42", "32", fbi, "1176000", "1900000", "2022", "03/05/2022 03:40:00 PM", lat,
        "-87.7", "",
    ]  # fmt: skip


RECORDS = [
    record(1),  # fine
    record(2, date="yesterday"),  # bad date: dropped
    record(3, fbi="99Z"),  # unmapped code: kept as 'other'
    record(4, lat=""),  # no coordinates: kept
    record(5, fbi=""),  # no offence: dropped
    record(1, fbi="08A"),  # id 1 again: the later record wins, the earlier one is a duplicate
    record(6, lat="48.85"),  # outside Chicago: repaired (coordinates set to NULL)
]
# 7 records; dropped: #2 (bad_date), #5 (missing_offence), #1 (duplicate_in_file, record 1) -> 4 kept
COUNTS = {
    "missing_offence": 1,
    "bad_date": 1,
    "duplicate_in_file": 1,
    "no_coordinates": 1,
    "outside_extent": 1,
    "unmapped_offence": 1,
}


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = warehouse.connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def _kept(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[object, ...]]:
    return con.execute(f"SELECT * FROM {view} ORDER BY ALL").fetchall()


def test_a_relation_maps_exactly_as_the_same_file(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    frame = pd.DataFrame(RECORDS, columns=HEADER)
    path = tmp_path / "page.csv"
    frame.to_csv(path, index=False)
    spec = chicago.spec(HEADER)

    page = map_incidents(con, con.from_df(frame), spec, name="feed page 1")
    assert (page.rows_read, page.rejected, page.kept) == (7, 3, 4)
    assert page.counts == COUNTS
    # positions are record numbers (1 = the first record)
    assert page.examples["bad_date"] == (2,) and page.examples["duplicate_in_file"] == (1,)
    assert page.unmapped == (("FBI:99Z", 1, 3),)
    from_relation = _kept(con, page.view)
    drop_staged(con)

    staged = stage_incident_file(con, open_incident_file(path, "chicago"))
    assert (staged.rows_read, staged.counts) == (page.rows_read, page.counts)
    # the file's positions are its lines: record n is line n + 1 (the header is line 1)
    assert staged.examples == {r: tuple(x + 1 for x in ex) for r, ex in page.examples.items()}
    assert staged.unmapped == (("FBI:99Z", 1, 4),)
    assert _kept(con, staged.view) == from_relation
    drop_staged(con)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)


def test_a_table_of_typed_records_maps_too(con: duckdb.DuckDBPyConnection) -> None:
    """A feed may hand typed values (integer ids, numeric coordinates): they are read as their text."""
    frame = pd.DataFrame(RECORDS, columns=HEADER).astype({"ID": "int64", "Latitude": "string"})
    con.register("frame", frame)
    con.execute("CREATE TEMP TABLE feed_page AS SELECT * FROM frame")
    page = map_incidents(con, "feed_page", chicago.spec(HEADER))
    assert page.counts == COUNTS
    keys = [r[0] for r in con.execute(f"SELECT incident_key FROM {page.view} ORDER BY 1").fetchall()]
    assert keys == ["1", "3", "4", "6"]
    drop_staged(con)


def test_a_relation_missing_a_required_column_is_named(con: duckdb.DuckDBPyConnection) -> None:
    frame = pd.DataFrame(RECORDS, columns=HEADER).drop(columns=["FBI Code"])
    with pytest.raises(SchemaError, match=r"^feed page 7: required column missing for format chicago \(missing: FBI"):
        map_incidents(con, con.from_df(frame), chicago.spec(HEADER), name="feed page 7")


def test_mapped_records_are_written_as_one_load(con: duckdb.DuckDBPyConnection) -> None:
    spec = chicago.spec(HEADER)
    page = map_incidents(con, con.from_df(pd.DataFrame(RECORDS, columns=HEADER)), spec)
    report = write_incidents(con, page, spec, source="chicago-feed", name="page-1", sha256="abc")
    drop_staged(con)
    assert (report.status, report.rows_read, report.rows_loaded, report.rows_rejected) == ("loaded", 7, 4, 3)
    rows = con.execute("SELECT incident_key, offence FROM incidents WHERE source = 'chicago-feed' ORDER BY 1")
    # id 1's later record (FBI 08A, simple assault) replaced the earlier theft; 99Z is unmapped -> other
    assert rows.fetchall() == [("1", "other_assault"), ("3", "other"), ("4", "larceny"), ("6", "larceny")]
    loads = con.execute("SELECT source, file_name, sha256, rows_loaded, status FROM loads").fetchall()
    assert loads == [("chicago-feed", "page-1", "abc", 4, "loaded")]
    assert warehouse.list_incident_sources(con) == ["chicago-feed"]


def test_an_incident_load_pins_the_grid_origin_once(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    from crimelens.warehouse.grid import grid_origin

    first, wider = tmp_path / "first.csv", tmp_path / "wider.csv"
    pd.DataFrame([record(1, lat="41.80"), record(2, lat="41.85")], columns=HEADER).to_csv(first, index=False)
    pd.DataFrame([record(3, lat="41.70"), record(4, lat="42.00")], columns=HEADER).to_csv(wider, index=False)
    assert grid_origin(con, "chicago") is None
    warehouse.load_incidents(con, first, "chicago")
    pinned = grid_origin(con, "chicago")
    assert pinned is not None  # written in the load's own transaction
    warehouse.load_incidents(con, wider, "chicago")
    assert grid_origin(con, "chicago") == pinned  # a wider extent later leaves the cells where they were
