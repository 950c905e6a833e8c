"""The report's incident section (crimelens.report.incidents) on real incident files and on a simulated city."""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from crimelens import warehouse
from crimelens.simulate import simulate
from crimelens.warehouse import load_areas, load_preset
from test_report import Parsed, build

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def houston_report(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Parsed, Path]:
    """Incidents only (Houston 2010): the report is an incident report."""
    base = tmp_path_factory.mktemp("report-houston")
    con = warehouse.connect(base / "w.duckdb")
    warehouse.load_incidents(con, real_data / "houston_crime_2010" / "houston_crime_jan_aug_2010.csv.gz", "houston")
    try:
        return build(con, base / "report.html"), base / "w.duckdb"
    finally:
        con.close()


@pytest.fixture(scope="module")
def chicago_report(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Parsed:
    """Chicago 2022 slim extract (no coordinates) with the 77 community areas and their population."""
    base = tmp_path_factory.mktemp("report-chicago")
    con = warehouse.connect(base / "w.duckdb")
    warehouse.load_incidents(con, real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz", "chicago")
    areas = real_data / "chicago_community_areas" / "chicago_community_areas_acs2014.geojson"
    load_preset(con, areas, "chicago-community-areas")
    try:
        return build(con, base / "report.html")
    finally:
        con.close()


def _section(report: Parsed, source: str) -> Any:
    return report.root.by_id(f"incidents-{source}")


def test_incident_only_report_has_every_block(houston_report: tuple[Parsed, Path]) -> None:
    report, _ = houston_report
    section = _section(report, "houston")
    titles = [h.text() for h in section.find_all("h3")]
    assert titles == [
        "What was loaded",
        "When",
        "Areas: beats",
        "Concentration",
        "Kernel density",
        "Hot and cold spots (Getis-Ord Gi*)",
        "Persistent hot spots",
        "Near repeats (Knox test)",
    ]
    assert "could not be computed" not in report.html
    meta = report.metadata
    assert meta["analyses_failed"] == {}
    assert meta["seeds"] == {"permutations": 0, "models": 0}
    assert meta["params"]["incident_sources"] == ["houston"]
    assert [load["file"] for load in meta["loads"]] == ["houston_crime_jan_aug_2010.csv.gz"]
    # three maps (density, Gi*, persistent hot spots) and the hour × weekday heat map, all inline SVG
    assert len(section.find_all("figure", cls="map-figure")) == 4
    # no jurisdiction-year sections in an incident-only report; its Data provenance lists the incident file (before:
    # an incident-only report had no provenance section at all)
    assert "statistics" not in meta["sections"] and meta["sections"][-1] == "provenance"
    files = report.root.by_id("source-files-table").text()
    assert "houston_crime_jan_aug_2010.csv.gz" in files and meta["loads"][0]["sha256"] in files
    assert "2010 covers 8 months, January–August" in report.root.by_id("provenance").text()


def test_offence_table_matches_an_independent_count(houston_report: tuple[Parsed, Path], real_data: Path) -> None:
    report, _ = houston_report
    path = real_data / "houston_crime_2010" / "houston_crime_jan_aug_2010.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        raw = Counter(row["offense"] for row in csv.DictReader(fh))
    # the Houston mapping (taxonomy/houston.csv): theft → larceny, auto theft → motor vehicle theft, murder → homicide
    expected = {
        "Larceny-theft": raw["theft"],
        "Burglary": raw["burglary"],
        "Motor vehicle theft": raw["auto theft"],
        "Aggravated assault": raw["aggravated assault"],
        "Robbery": raw["robbery"],
        "Rape": raw["rape"],
        "Homicide": raw["murder"],
    }
    table = _section(report, "houston").find_all("table")[0]
    rows = {tr.find_all("td")[0].text(): tr.find_all("td")[1].text() for tr in table.find_all("tr")[1:]}
    assert rows == {k: f"{v:,}" for k, v in expected.items()}


def test_load_reasons_and_findings_are_reported(houston_report: tuple[Parsed, Path]) -> None:
    report, db = houston_report
    con = duckdb.connect(str(db), read_only=True)
    try:
        outside = con.execute("SELECT rows FROM load_reasons WHERE reason = 'outside_extent'").fetchall()[0][0]
    finally:
        con.close()
    loaded = _section(report, "houston").find_all("p", cls="note")[0].text()
    assert f"{outside:,} repaired (outside extent)" in loaded
    headlines = [li.text() for li in report.root.by_id("findings-list").find_all("li")]
    assert any("houston: half of all located incidents fall in" in h for h in headlines)
    # the Gi* block says how many hot cells passed the FDR (exact p-values on the footprint: on these 8 months
    # of Houston at 150 m, none), and a hot-spot finding is made exactly when there are some
    text = _section(report, "houston").text()
    hot = re.search(r"([\d,]+) cells are hot spots", text)
    assert hot is not None and "Study area: the 150 m cells with at least one incident" in text
    assert "p-values: two-sided exact randomisation p" in text
    assert any("statistically significant hot spots" in h for h in headlines) == (int(hot[1].replace(",", "")) > 0)


def test_areas_with_population_give_rates_and_a_choropleth(chicago_report: Parsed) -> None:
    section = _section(chicago_report, "chicago")
    assert [h.text() for h in section.find_all("h3")] == ["What was loaded", "When", "Areas: community areas"]
    ranking = chicago_report.root.by_id("chicago-areas").find_all("table")[0]
    header = [th.text() for th in ranking.find_all("th")]
    assert "Rate" in header and "Population" in header
    assert "no coordinates" in section.text()
    maps = section.find_all("figure", cls="map-figure")
    assert ranking.find_all("tr")[1].find_all("td")[1].text().isdigit()  # community-area numbers
    assert len(maps) == 2  # the heat map and the community-area choropleth
    assert "Rate per 100,000 residents by community area" in maps[1].text()


def test_simulated_incidents_are_labelled_everywhere(tmp_path: Path, fbi_con: duckdb.DuckDBPyConnection) -> None:
    csv_path, areas = tmp_path / "city.csv", tmp_path / "areas.geojson"
    simulate(5_000, 1, 3, csv_path, areas_out=areas)
    warehouse.load_incidents(fbi_con, csv_path, "chicago", source="sim", simulated=True)
    load_areas(
        fbi_con, areas, area_set="sim-areas", area_kind="community_area", id_property="area_id",
        population_property="population",
    )  # fmt: skip
    report = build(fbi_con, tmp_path / "report.html")
    assert "SIMULATED" in report.root.find_all("h1")[0].text()
    section = _section(report, "sim")
    assert section.find_all("h2")[0].text() == "Incidents: sim (SIMULATED DATA)"
    assert "SIMULATED by crimelens" in section.text()
    limitations = report.root.by_id("limitations").text()
    assert "Simulated data." in limitations
    # the jurisdiction-year report is still all there, the incident section then the model sections (which cover
    # the incident data too) before provenance
    sections = report.metadata["sections"]
    assert sections.index("incidents-sim") == sections.index("models") - 1
    assert sections.index("model-card") == sections.index("provenance") - 1
    assert "statistics" in sections
