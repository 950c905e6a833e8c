"""Incident adapters: every real file loads, and its counts match an independent count (csv + gzip modules and
the test's own reading of the taxonomy tables, not the loader's SQL); a generated Chicago full-schema file;
format detection; the CLI; list_sources keeps to jurisdiction-year datasets."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crimelens import sources, warehouse
from crimelens.cli import app
from crimelens.errors import DataError
from crimelens.sources import INCIDENT_FORMATS, chicago, houston, nij_portland, toronto
from crimelens.sources.incidents import Extent

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

REAL = {
    "chicago": "chicago_crimes_2022_slim/crimes-2022-slim.csv.gz",
    "toronto-mci": "toronto_mci_2014_2019/toronto_mci_2014_2019.csv.gz",
    "houston": "houston_crime_2010/houston_crime_jan_aug_2010.csv.gz",
    "nij-portland": "portland_nij_cfs_2016_aug_sep/portland_cfs_2016_08_09.csv.gz",
}


def _real(real_data: Path, fmt: str) -> Path:
    p = real_data / REAL[fmt]
    if not p.exists():
        pytest.skip(f"real data file {p} is absent")
    return p


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


def _taxonomy(name: str) -> Callable[[str], str | None]:
    """The test's own reading of taxonomy/<name>.csv: exact code first, else the longest 'prefix*' rule."""
    text = (resources.files("crimelens") / "taxonomy" / f"{name}.csv").read_text(encoding="utf-8")
    rules = {r["code"]: r["offence"] for r in csv.DictReader(io.StringIO(text))}

    def lookup(code: str) -> str | None:
        if code in rules:
            return rules[code]
        prefixes = [r for r in rules if r.endswith("*") and code.startswith(r[:-1])]
        return rules[max(prefixes, key=len)] if prefixes else None

    return lookup


def _inside(lat: str, lon: str, ext: Extent) -> bool | None:
    """None: no coordinates; else whether the point is inside the extent."""
    try:
        y, x = float(lat), float(lon)
    except ValueError:
        return None
    return ext.lat_min <= y <= ext.lat_max and ext.lon_min <= x <= ext.lon_max


def _offence_counts(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, int]:
    rows = con.execute("SELECT offence, count(*) FROM incidents WHERE source = ? GROUP BY 1", [source]).fetchall()
    return {str(o): int(n) for o, n in rows}


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = warehouse.connect(tmp_path / "w.duckdb")
    yield c
    c.close()


# -- real files ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_chicago_slim_extract_matches_an_independent_count(real_data: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = _real(real_data, "chicago")
    lookup = _taxonomy("chicago")
    expected: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for r in _rows(path):
        code = f"TYPE:{r['Primary Type'].strip().upper()}|{r['Description'].strip().upper()}"
        offence = lookup(code)
        if offence is None:
            unmapped[code] += 1
        expected[offence or "other"] += 1
        areas[str(int(r["Community Area"]))] += 1
    report = warehouse.load_incidents(con, path, "chicago")
    assert report.rows_read == report.rows_loaded == 215_551  # PROVENANCE.md: 215,551 incidents
    assert _offence_counts(con, "chicago") == dict(expected)
    assert report.unmapped_codes == dict(unmapped) == {}
    # the slim extract has no coordinates: every row is kept with NULL lat/lon, and counted
    assert report.reasons == {"no_coordinates": ("kept", 215_551)}
    # 649 first-degree + 1 second-degree murders; reckless homicide (3) and involuntary manslaughter (1) are 'other'
    assert expected["homicide"] == 650
    got = con.execute("SELECT community_area, count(*) FROM incidents GROUP BY 1").fetchall()
    assert {str(a): int(n) for a, n in got} == dict(areas)
    first = con.execute(
        "SELECT occurred_at, time_precision, offence_raw, offence_detail, premise, arrest, domestic, community_area "
        "FROM incidents ORDER BY occurred_at, incident_key LIMIT 1"
    ).fetchone()
    assert first is not None and first[0] == dt.datetime(2022, 1, 1, 0, 0) and first[1] == "minute"
    src = con.execute("SELECT format, timezone, simulated, taxonomy_version FROM incident_sources").fetchall()
    assert src == [("chicago", "America/Chicago", False, "chicago-1")]


def test_toronto_mci_matches_an_independent_count(real_data: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = _real(real_data, "toronto-mci")
    lookup = _taxonomy("toronto")
    expected: Counter[str] = Counter()
    hours: Counter[dt.datetime] = Counter()
    identical: Counter[tuple[str, ...]] = Counter()
    outside = 0
    for r in _rows(path):
        expected[lookup(f"MCI:{r['MCI'].strip()}") or "other"] += 1
        day = dt.datetime.strptime(r["occurrencedate"][:10], "%Y/%m/%d")
        at = day + dt.timedelta(hours=int(r["occurrencehour"]))
        hours[at] += 1
        # the canonical values an id-less row is keyed by: local time, offence, coordinates (none when outside
        # the extent), neighbourhood; not descriptive fields such as the premises type
        where = (
            (f"{float(r['Lat']):.6f}", f"{float(r['Long']):.6f}")
            if _inside(r["Lat"], r["Long"], toronto.EXTENT)
            else ()
        )
        identical[(at, r["MCI"].strip(), *where, r["Neighbourhood"].strip())] += 1
        outside += _inside(r["Lat"], r["Long"], toronto.EXTENT) is False
    report = warehouse.load_incidents(con, path, "toronto-mci")
    assert report.rows_read == report.rows_loaded == 180_886  # PROVENANCE.md
    assert _offence_counts(con, "toronto-mci") == dict(expected)
    assert expected["other_assault"] == 94_156  # Toronto's 'Assault' MCI: every assault level
    assert report.reasons.get("outside_extent", ("repaired", 0))[1] == outside
    # exact-duplicate rows are real records (PROVENANCE.md): all kept, each with its own key; keys '#2', '#3',
    # ... number the repeats after the first of each group of rows with the same canonical values (1,208 repeats
    # of whole rows in this file, 1,747 of the canonical values)
    keys = con.execute("SELECT count(DISTINCT incident_key), count(*) FROM incidents").fetchone()
    assert keys == (180_886, 180_886)
    repeats = sum(n - 1 for n in identical.values())
    dup_keys = con.execute("SELECT count(*) FROM incidents WHERE NOT incident_key LIKE '%#1'").fetchone()
    assert dup_keys == (repeats,) and repeats > 1_000
    # local date + hour: the busiest local hour agrees with the independent reading
    (when, n), *_ = hours.most_common(1)
    assert con.execute("SELECT count(*) FROM incidents WHERE occurred_at = ?", [when]).fetchone() == (n,)


def test_houston_matches_an_independent_count(real_data: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = _real(real_data, "houston")
    lookup = _taxonomy("houston")
    expected: Counter[str] = Counter()
    missing = outside = 0
    for r in _rows(path):
        expected[lookup(f"OFFENSE:{r['offense'].strip().lower()}") or "other"] += 1
        inside = _inside(r["lat"], r["lon"], houston.EXTENT)
        missing += inside is None
        outside += inside is False
    report = warehouse.load_incidents(con, path, "houston")
    assert report.rows_read == report.rows_loaded == 86_314  # PROVENANCE.md
    # PROVENANCE.md: theft 46,556; burglary 17,802; auto theft 7,946; aggravated assault 7,177; robbery 6,298;
    # rape 378; murder 157 (records, not the `number` of offences)
    assert _offence_counts(con, "houston") == dict(expected) == {
        "larceny": 46_556, "burglary": 17_802, "motor_vehicle_theft": 7_946, "aggravated_assault": 7_177,
        "robbery": 6_298, "rape": 378, "homicide": 157,
    }  # fmt: skip
    assert missing == 5  # PROVENANCE.md: 5 rows without lon/lat
    assert report.reasons["no_coordinates"] == ("kept", missing)
    assert report.reasons["outside_extent"] == ("repaired", outside) and outside > 0
    nulls = con.execute("SELECT count(*) FROM incidents WHERE latitude IS NULL").fetchone()
    assert nulls == (missing + outside,)
    # local time is date + hour, never the UTC `time` column: the first record is 1/1/2010 hour 0
    first = con.execute("SELECT min(occurred_at) FROM incidents").fetchone()
    assert first == (dt.datetime(2010, 1, 1, 0, 0),)


def test_nij_portland_matches_an_independent_count(real_data: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = _real(real_data, "nij-portland")
    lookup = _taxonomy("nij_portland")
    expected: Counter[str] = Counter()
    no_category = no_coords = no_tract = 0
    for r in _rows(path):
        if not r["category"].strip():
            no_category += 1
            continue
        expected[lookup(f"CATEGORY:{r['category'].strip().upper()}") or "other"] += 1
        no_coords += _inside(r["latitude"], r["longitude"], nij_portland.EXTENT) is None
        no_tract += r["census_tract"].strip() in ("", "0", "0.0")
    report = warehouse.load_incidents(con, path, "nij-portland")
    assert report.rows_read == 37_819  # PROVENANCE.md
    assert _offence_counts(con, "nij-portland") == dict(expected)
    assert report.rows_loaded == 37_819 - no_category
    assert report.reasons["missing_offence"] == ("dropped", no_category)
    assert report.reasons.get("no_coordinates", ("kept", 0))[1] == no_coords
    row = con.execute(
        "SELECT time_precision, offence_raw, offence_detail, census_tract FROM incidents "
        "WHERE offence_raw = 'PROWLP' ORDER BY occurred_at LIMIT 1"
    ).fetchone()
    assert row is not None and row[0] == "day" and row[2] == "PROWLER (SUSPICIOUS)"
    assert row[3] is not None and not row[3].endswith(".0")
    # tract 0 is "no tract assigned", not an area of its own
    tracts = con.execute(
        "SELECT count(*) FILTER (WHERE census_tract IS NULL), count(*) FILTER (WHERE census_tract = '0') "
        "FROM incidents WHERE source = 'nij-portland'"
    ).fetchall()[0]
    assert tracts == (no_tract, 0) and no_tract > 1000


# -- Chicago full schema, generated ------------------------------------------------------------------------
FULL_HEADER = ",".join(chicago.FULL_COLUMNS)


def _full_row(
    id_: str, date: str, fbi: str, lat: str = "41.88", lon: str = "-87.63", ptype: str = "THEFT", area: str = "32"
) -> str:
    return (
        f"{id_},JA{id_},{date},001XX W MADISON ST,0820,{ptype},$500 AND UNDER,STREET,false,false,0111,001,42,{area},"
        f'{fbi},1176000,1900000,2022,01/05/2023 03:40:00 PM,{lat},{lon},"({lat}, {lon})"'
    )


def write_chicago_full(path: Path) -> None:
    """30 rows: both date formats, every mapped FBI code family, an unknown code, missing/0/outside coordinates,
    a bad date, an out-of-range date and a repeated ID."""
    rows = [
        _full_row("1", "01/31/2022 11:05:00 PM", "01A"),  # homicide, 12-hour clock -> 23:05
        _full_row("2", "2022-01-31 23:05:00", "02"),  # rape, ISO date
        _full_row("3", "02/01/2022 12:30:00 AM", "03"),  # robbery, 12:30 AM -> 00:30
        _full_row("4", "02/01/2022 12:30:00 PM", "04A"),  # aggravated assault, 12:30 PM -> 12:30
        _full_row("5", "2022-02-02 10:00:00", "04B"),  # aggravated battery
        _full_row("6", "2022-02-02 10:00:00", "05"),
        _full_row("7", "2022-02-02 10:00:00", "06"),
        _full_row("8", "2022-02-02 10:00:00", "07"),
        _full_row("9", "2022-02-02 10:00:00", "08A"),
        _full_row("10", "2022-02-02 10:00:00", "08B"),
        _full_row("11", "2022-02-02 10:00:00", "09"),
        _full_row("12", "2022-02-02 10:00:00", "01B"),  # involuntary manslaughter -> other
        _full_row("13", "2022-02-02 10:00:00", "26"),  # misc non-index -> other
        _full_row("14", "2022-02-02 10:00:00", "XX"),  # unknown code -> other, counted
        _full_row("15", "2022-02-02 10:00:00", "XX"),
        _full_row("16", "2022-02-02 10:00:00", "ZZ9"),  # another unknown code
        _full_row("17", "2022-02-02 10:00:00", "06", lat="", lon=""),  # no coordinates: kept
        _full_row("18", "2022-02-02 10:00:00", "06", lat="0", lon="0"),  # 0/0: repaired to NULL
        _full_row("19", "2022-02-02 10:00:00", "06", lat="36.1", lon="-115.1"),  # Las Vegas: outside extent
        _full_row("20", "31/31/2022 10:00:00", "06"),  # bad date: dropped
        _full_row("21", "1955-06-01 10:00:00", "06"),  # before 1960: dropped
        _full_row("22", "2022-02-03 10:00:00", "06", area="01"),  # community area '01' -> '1'
        _full_row("23", "2022-02-03 10:00:00", "06", area="1.0"),  # '1.0' -> '1'
        _full_row("24", "2022-02-03 10:00:00", "", ptype="THEFT"),  # no FBI code: missing_offence, dropped
        _full_row("25", "2022-02-03 10:00:00", "06"),
        _full_row("26", "2022-02-03 10:00:00", "06"),
        _full_row("27", "2022-02-03 10:00:00", "06"),
        _full_row("28", "2022-02-03 10:00:00", "06"),
        _full_row("5", "2022-02-04 11:00:00", "04A"),  # ID 5 again: the last one wins
        _full_row("29", "2022-02-03 10:00:00", "05"),
    ]
    path.write_text(FULL_HEADER + "\n" + "\n".join(rows) + "\n")


def test_chicago_full_schema_generated_file(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = tmp_path / "chicago-full.csv"
    write_chicago_full(path)
    assert sources.detect_format(path) == "chicago"
    report = warehouse.load_incidents(con, path, None)
    # 30 rows read; dropped: bad date (ID 20), before 1960 (21), no FBI code (24), first ID 5 (duplicate) = 4
    assert (report.rows_read, report.rows_rejected, report.rows_loaded) == (30, 4, 26)
    assert report.reasons == {
        "bad_date": ("dropped", 1),
        "date_out_of_range": ("dropped", 1),
        "missing_offence": ("dropped", 1),
        "duplicate_in_file": ("dropped", 1),
        "no_coordinates": ("kept", 1),
        "outside_extent": ("repaired", 2),  # 0/0 and Las Vegas
        "unmapped_offence": ("kept", 3),  # XX twice, ZZ9 once
    }
    # record n is line n + 1: ID 20 is record 20 (line 21); the first ID 5 is record 5 (line 6)
    assert report.examples["bad_date"] == (21,) and report.examples["duplicate_in_file"] == (6,)
    assert report.unmapped_codes == {"FBI:XX": 2, "FBI:ZZ9": 1}
    got = dict(con.execute("SELECT incident_key, offence FROM incidents").fetchall())
    assert got["1"] == "homicide" and got["2"] == "rape" and got["3"] == "robbery"
    assert got["4"] == got["5"] == "aggravated_assault" and got["6"] == "burglary" and got["7"] == "larceny"
    assert got["8"] == "motor_vehicle_theft" and got["9"] == got["10"] == "other_assault" and got["11"] == "arson"
    assert got["12"] == got["13"] == got["14"] == got["16"] == "other"
    times = dict(con.execute("SELECT incident_key, occurred_at FROM incidents").fetchall())
    assert times["1"] == times["2"] == dt.datetime(2022, 1, 31, 23, 5)
    assert times["3"] == dt.datetime(2022, 2, 1, 0, 30) and times["4"] == dt.datetime(2022, 2, 1, 12, 30)
    assert times["5"] == dt.datetime(2022, 2, 4, 11, 0)  # the later row for ID 5
    coords = dict(con.execute("SELECT incident_key, latitude FROM incidents").fetchall())
    assert coords["17"] is None and coords["18"] is None and coords["19"] is None and coords["25"] == 41.88
    areas = dict(con.execute("SELECT incident_key, community_area FROM incidents").fetchall())
    assert areas["22"] == areas["23"] == "1" and areas["25"] == "32"
    issues = con.execute("SELECT line, code, message FROM load_issues ORDER BY line").fetchall()
    assert [(i[0], i[1]) for i in issues] == [(15, "unmapped_offence"), (17, "unmapped_offence")]
    assert "'FBI:XX'" in issues[0][2] and "2 rows" in issues[0][2]
    reasons = con.execute("SELECT reason, action, rows, example_lines FROM load_reasons ORDER BY reason").fetchall()
    assert ("bad_date", "dropped", 1, "21") in reasons
    flags = con.execute("SELECT DISTINCT arrest, domestic, beat, district FROM incidents").fetchall()
    assert flags == [(False, False, "0111", "1")]
    loads = con.execute("SELECT format, rows_read, rows_loaded, rows_rejected, warnings FROM loads").fetchall()
    assert loads == [("chicago", 30, 26, 4, 2)]
    offence_map = con.execute("SELECT count(*) FROM offence_map WHERE source = 'chicago' AND code = 'FBI:04B'")
    assert offence_map.fetchone() == (1,)


def test_simulated_flag_is_recorded(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = tmp_path / "sim.csv"
    write_chicago_full(path)
    warehouse.load_incidents(con, path, "chicago", source="sim-city", simulated=True)
    assert con.execute("SELECT source, simulated FROM incident_sources").fetchall() == [("sim-city", True)]
    # a later file merged into the same dataset without --simulated does not make simulated rows pass as real
    newer = tmp_path / "newer.csv"
    newer.write_text(path.read_text(encoding="utf-8").replace("01/0", "02/0"), encoding="utf-8")
    report = warehouse.load_incidents(con, newer, "chicago", source="sim-city")
    assert report.status == "loaded"
    assert con.execute("SELECT simulated FROM incident_sources WHERE source = 'sim-city'").fetchall() == [(True,)]


# -- detection, sources, CLI ---------------------------------------------------------------------------------
def test_formats_are_detected_from_the_header(real_data: Path) -> None:
    for fmt in REAL:
        assert sources.detect_format(_real(real_data, fmt)) == fmt
    assert set(INCIDENT_FORMATS) <= set(sources.FORMATS)


def test_list_sources_keeps_to_jurisdiction_year_datasets(
    tmp_path: Path, real_file: Callable[[str], Path], con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "c.csv"
    write_chicago_full(path)
    warehouse.load_incidents(con, path, "chicago")
    assert warehouse.list_sources(con) == []
    assert warehouse.list_incident_sources(con) == ["chicago"]
    assert warehouse.resolve_incident_source(con, None) == "chicago"
    warehouse.load_parsed(con, sources.read(real_file("fbi-estimates")))
    # the Foundation analyses still see exactly one dataset
    assert warehouse.list_sources(con) == ["fbi-estimates"]
    assert warehouse.resolve_source(con, None) == "fbi-estimates"
    warehouse.load_incidents(con, path, "chicago", source="chicago-2")
    with pytest.raises(DataError, match=r"several incident datasets \(chicago, chicago-2\)"):
        warehouse.resolve_incident_source(con, None)
    with pytest.raises(DataError, match="'nope' is not in the warehouse; loaded incident datasets: chicago"):
        warehouse.resolve_incident_source(con, "nope")
    with pytest.raises(DataError, match="already holds incidents"):
        warehouse.load_parsed(con, sources.read(real_file("marshall-states")), source="chicago")


def test_resolve_incident_source_on_an_empty_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(DataError, match="no incident data yet"):
        warehouse.resolve_incident_source(con, None)


def test_cli_ingest_prints_counts_by_reason(tmp_path: Path) -> None:
    path = tmp_path / "chicago-full.csv"
    write_chicago_full(path)
    db = str(tmp_path / "w.duckdb")
    result = runner.invoke(app, ["ingest", str(path), "--format", "chicago", "--db", db])
    assert result.exit_code == 0, result.output
    assert "Loaded 26 of 30 incidents from chicago-full.csv as dataset chicago" in result.stdout
    assert "bad_date: 1 dropped (e.g. line 21)" in result.stdout
    assert "outside_extent: 2 repaired" in result.stdout
    assert "unmapped offence code 'FBI:XX': 2 rows loaded as 'other'" in result.stdout
    again = runner.invoke(app, ["ingest", str(path), "--db", db, "--json"])
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["status"] == "unchanged" and data["rows_read"] == 30
    assert data["reasons"]["duplicate_in_file"]["rows"] == 1


def test_cli_ingest_json_of_a_new_load(tmp_path: Path) -> None:
    path = tmp_path / "chicago-full.csv"
    write_chicago_full(path)
    result = runner.invoke(app, ["ingest", str(path), "--db", str(tmp_path / "w.duckdb"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["status"], data["rows_loaded"], data["rows_rejected"]) == ("loaded", 26, 4)
    assert data["reasons"]["bad_date"] == {"action": "dropped", "rows": 1, "example_lines": [21]}
    assert data["unmapped_codes"] == {"FBI:XX": 2, "FBI:ZZ9": 1}


def test_cli_max_errors_rejects_an_incident_file(tmp_path: Path) -> None:
    path = tmp_path / "chicago-full.csv"
    write_chicago_full(path)
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["ingest", str(path), "--db", str(db), "--max-errors", "2"])
    assert result.exit_code == 1
    assert "3 rows are invalid" in result.output and "nothing was loaded" in result.output
    con = warehouse.connect(db)
    assert con.execute("SELECT count(*) FROM incidents").fetchone() == (0,)
    con.close()


def test_mapped_csv_incident_example_runs_as_documented(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "mapped-csv.md").read_text()
    args = ["ingest", "docs/examples/metro_incidents.csv", "--mapping", "docs/examples/metro_incidents.toml"]
    assert "crimelens " + " ".join(args) + " --db metro.duckdb" in doc
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = runner.invoke(app, [*args, "--db", str(tmp_path / "metro.duckdb")])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():
        assert line.strip() in doc, line
    con = warehouse.connect(tmp_path / "metro.duckdb")
    got = con.execute("SELECT incident_key, occurred_at FROM incidents ORDER BY 1").fetchall()
    con.close()
    # M-1002: 03:20Z = 22:20 the day before in New York (UTC-5 in March before DST);
    # M-1003: 09:30+01:00 = 08:30Z = 03:30 New York
    assert got == [
        ("M-1001", dt.datetime(2023, 3, 4, 22, 15)),
        ("M-1002", dt.datetime(2023, 3, 4, 22, 20)),
        ("M-1003", dt.datetime(2023, 3, 5, 3, 30)),
        ("M-1004", dt.datetime(2023, 3, 5, 10, 0)),
        ("M-1006", dt.datetime(2023, 3, 6, 8, 45)),
    ]
