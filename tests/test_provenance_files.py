"""Every file behind a report, with its fingerprint, rows and what each row is; load warnings that name agencies."""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimelens import warehouse
from crimelens.cli import app
from crimelens.report.provenance import incident_months, source_files
from crimelens.sources.registry import REGISTRY

runner = CliRunner()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gz_rows(path: Path) -> int:
    with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def test_every_real_format_declares_what_its_rows_are() -> None:
    for fmt in REGISTRY.values():
        if fmt.name == "mapped-csv":  # its rows are whatever the user's mapping says
            continue
        assert fmt.caveats and fmt.caveats[0].startswith("each row is"), fmt.name
    assert any("calls for service" in c or "call for service" in c for c in REGISTRY["nij-portland"].caveats)
    assert any("over $5,000" in c for c in REGISTRY["toronto-mci"].caveats)


def test_load_warnings_name_the_agency(real_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["ingest", str(real_file("ucr-marshall")), "--db", str(db)])
    assert result.exit_code == 0, result.output
    # line 36 of the file: ORI FL01300, "Miami-Dade County, Fla.", 11 months in 1975
    # before: "only 11 of 12 months reported for FL01300 in 1975"
    assert "only 11 of 12 months reported for Miami-Dade County, Fla. (FL01300) in 1975" in " ".join(
        result.stdout.split()
    )
    con = warehouse.connect(db, read_only=True)
    try:
        messages = [m for (m,) in con.execute("SELECT message FROM load_issues WHERE code = 'partial_year'").fetchall()]
    finally:
        con.close()
    assert messages and all(re.search(r"for .+ \([A-Z0-9]{7}\) in \d{4}", m) for m in messages), messages[:3]


@pytest.mark.slow
def test_report_lists_every_file_and_what_its_rows_are(real_data: Path, tmp_path: Path) -> None:
    chicago = real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz"
    portland = real_data / "portland_nij_cfs_2016_aug_sep" / "portland_cfs_2016_08_09.csv.gz"
    areas = real_data / "chicago_community_areas" / "chicago_community_areas_acs2014.geojson"
    marshall = real_data / "marshall_ucr_crime_1975_2015" / "ucr_crime_1975_2015.csv"
    db = tmp_path / "w.duckdb"
    for args in (
        ["ingest", str(chicago), "--source", "chicago"],
        ["ingest", str(portland), "--source", "portland"],
        ["areas", str(areas), "--preset", "chicago-community-areas"],
        ["ingest", str(marshall)],
    ):
        done = runner.invoke(app, [*args, "--db", str(db)])
        assert done.exit_code == 0, done.output
    con = warehouse.connect(db, read_only=True)
    try:
        months = incident_months(con, "chicago")
        files = source_files(con, ["ucr-marshall"], ["chicago", "portland"])
    finally:
        con.close()
    # Chicago 2022: the extract stops at 30 November (PROVENANCE.md), found from the data, not from the file name
    assert months[["year", "months", "first_day", "last_day"]].values.tolist() == [
        [2022, 11, "2022-01-01", "2022-11-30"]
    ]
    by_file = files.files.set_index("file_name")
    assert list(files.files["kind"]) == ["incidents", "incidents", "areas", "jurisdiction-years"]
    # fingerprints and rows, against the files themselves
    assert by_file.loc[chicago.name, "sha256"] == _sha256(chicago)
    assert by_file.loc[marshall.name, "sha256"] == _sha256(marshall)
    assert by_file.loc[chicago.name, "rows_loaded"] == _gz_rows(chicago) == 215_551
    assert "2022 covers 11 months, January–November" in by_file.loc[chicago.name, "what"]
    assert "call for service" in by_file.loc[portland.name, "what"]
    assert "2016 covers 2 months, August–September" in by_file.loc[portland.name, "what"]
    assert "populations (77 areas) are from 2014" in by_file.loc[areas.name, "what"]
    assert any("not annualised" in r for r in files.rates) and len(files.rates) == 2
    # and the report shows them, in its Data provenance section
    out = tmp_path / "r.html"
    done = runner.invoke(app, ["report", "--source", "ucr-marshall", "--out", str(out), "--db", str(db)])
    assert done.exit_code == 0, done.output
    page = out.read_text(encoding="utf-8")
    section = page[page.index('id="provenance"') :]
    for f in (chicago, portland, areas, marshall):
        assert f.name in section and _sha256(f) in section
    assert "2022 covers 11 months, January–November" in section and "not annualised" in section
