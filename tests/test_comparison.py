"""Tests for crimelens.analysis.jurisdictions.comparison: side by side, in order, ranks among peers, a reference
series from another dataset, and one clear line for what the data do not hold."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crimelens import sources, warehouse
from crimelens.analysis.jurisdictions.comparison import compare_jurisdictions, parse_reference
from crimelens.cli import app
from crimelens.errors import DataError

runner = CliRunner()


def _load_nation(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    """A second dataset 'tiny-nation' holding only the nation (US), 2010-2012."""
    (tmp_path / "nation.csv").write_text(
        "name,id,yr,pop,rob,vio\nUnited States,US,2010,300000000,360000,1200000\n"
        "United States,US,2011,301000000,350000,1190000\nUnited States,US,2012,302000000,340000,1180000\n"
    )
    (tmp_path / "nation.toml").write_text(
        'source = "tiny-nation"\n[columns]\njurisdiction = "name"\njurisdiction_id = "id"\nyear = "yr"\n'
        'population = "pop"\nrobbery = "rob"\nviolent_crime = "vio"\n[constants]\nkind = "nation"\n'
    )
    warehouse.load_parsed(con, sources.read(tmp_path / "nation.csv", mapping=tmp_path / "nation.toml"))


def test_side_by_side_in_the_order_asked_with_ranks(tiny_con: duckdb.DuckDBPyConnection) -> None:
    r = compare_jurisdictions(tiny_con, "tiny", jurisdictions=["c", "City A"], offences=["robbery"])
    assert r.params["jurisdiction_ids"] == ["C", "A"]
    assert r.table["jurisdiction_id"].tolist() == ["C", "C", "C", "A", "A", "A"]
    t2010 = r.table[r.table["year"] == 2010].set_index("jurisdiction_id")
    # robbery 2010: A 30 / 100,000 → 30.0; B 300 / 1,000,000 → 30.0; C 3 / 50,000 → 6.0 per 100,000
    # ranks by rate (ties share the best): A 1, B 1, C 3 of 3
    assert t2010.loc["A", "rate_per_100k"] == pytest.approx(30.0)
    assert t2010.loc["C", "rate_per_100k"] == pytest.approx(6.0)
    assert (t2010.loc["A", "rank_by_rate"], t2010.loc["C", "rank_by_rate"]) == (1, 3)
    assert set(t2010["n_ranked"]) == {3} and str(r.table["n_ranked"].dtype) == "Int64"
    # C reported 6 months in 2012: flagged, and said in the notes
    assert r.table[(r.table["jurisdiction_id"] == "C") & (r.table["year"] == 2012)]["partial"].item()
    assert any("City C 2012" in n for n in r.notes)
    # over 2010-2012: A (30+30+35)/300,000 = 31.67; B 850/3,000,000 = 28.33; C 11/150,000 = 7.33 → A 1, B 2, C 3
    peers = r.peers.set_index("jurisdiction_id")
    assert peers.loc["A", "rate_per_100k"] == pytest.approx(95 / 300_000 * 1e5)
    assert (peers.loc["A", "rank_by_rate"], peers.loc["C", "rank_by_rate"]) == (1, 3)
    assert peers.loc["C", "partial_years"] == 1
    assert peers.loc["A", "rate_low"] < peers.loc["A", "rate_per_100k"] < peers.loc["A", "rate_high"]
    assert r.reference.empty and any("no national series" in n for n in r.notes)


def test_every_offence_by_default_and_span(tiny_con: duckdb.DuckDBPyConnection) -> None:
    r = compare_jurisdictions(tiny_con, "tiny", jurisdictions=["B"], start=2011, end=2012)
    # the tiny file holds these five count columns, in the schema's order
    assert r.params["offences"] == ["violent_crime", "homicide", "rape", "robbery", "aggravated_assault"]
    assert sorted(set(r.table["year"])) == [2011, 2012] and len(r.table) == 5 * 2
    spec = r.chart()
    assert spec.kind == "small_multiples" and spec.facet == "label" and spec.series == "name"


def test_reference_from_another_dataset(tiny_con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    _load_nation(tiny_con, tmp_path)
    r = compare_jurisdictions(tiny_con, "tiny", jurisdictions=["A"], offences=["robbery"])
    assert r.params["reference"] == "tiny-nation:US"
    ref = r.reference
    assert ref["year"].tolist() == [2010, 2011, 2012] and set(ref["source"]) == {"tiny-nation"}
    # 360,000 / 300,000,000 × 100,000 = 120.0
    assert ref["rate_per_100k"].iloc[0] == pytest.approx(120.0)
    spec = r.chart()
    assert "United States (reference)" in set(spec.data["name"]) and spec.kind == "line"
    # an offence the reference lacks: no line for it, and a note (homicide is not in tiny-nation)
    r2 = compare_jurisdictions(tiny_con, "tiny", jurisdictions=["A"], offences=["robbery", "homicide"])
    assert set(r2.reference["offence"]) == {"robbery"} and any("no homicide counts" in n for n in r2.notes)
    none = compare_jurisdictions(tiny_con, "tiny", jurisdictions=["A"], offences=["robbery"], with_reference=False)
    assert none.reference.empty and none.params["reference"] is None


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"offences": ["property_crime"]}, "dataset 'tiny' has no property_crime counts; offences it holds: violent"),
        ({"offences": ["theft"]}, "offence 'theft' is not known; allowed:"),
        ({"offences": ["robery"]}, "offence 'robery' is not known; close matches: robbery; allowed:"),
        ({"jurisdictions": ["City Z"]}, "close matches: City C, City B, City A"),
        ({"start": 2012, "end": 2010}, "expected start ≤ end"),
        ({"start": 2030}, "expected years within 2010–2012"),
        ({"reference": "elsewhere:US"}, "dataset 'elsewhere' is not in the warehouse"),
        ({"jurisdictions": "City A"}, "expected a list"),
    ],
)
def test_bad_input_is_one_clear_error(tiny_con: duckdb.DuckDBPyConnection, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    args = {"jurisdictions": ["City A"], **kwargs}
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        compare_jurisdictions(tiny_con, "tiny", **args)


def test_rape_definition_change_is_noted(marshall_con: duckdb.DuckDBPyConnection) -> None:
    r = compare_jurisdictions(marshall_con, jurisdictions=["Chicago"], offences=["rape"], start=2010, end=2015)
    assert any("legacy definition before 2013" in n for n in r.notes)
    before = compare_jurisdictions(marshall_con, jurisdictions=["Chicago"], offences=["rape"], start=2005, end=2012)
    assert not any("legacy definition" in n for n in before.notes)


def test_parse_reference() -> None:
    assert parse_reference("fbi-estimates") == ("fbi-estimates", "US")
    assert parse_reference("fbi-estimates:US-IL") == ("fbi-estimates", "US-IL")
    with pytest.raises(DataError, match="SOURCE:JURISDICTION"):
        parse_reference(":US")


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_real_cities_against_the_nation_from_the_fbi_file(real_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "w.duckdb"
    for fmt in ("ucr-marshall", "fbi-estimates"):
        assert runner.invoke(app, ["ingest", str(real_file(fmt)), "--db", str(db)]).exit_code == 0
    args = ["compare", "New York City", "Los Angeles", "Chicago", "--offence", "robbery", "--start", "1990",
            "--end", "2015", "--source", "ucr-marshall", "--db", str(db)]  # fmt: skip
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # independently from the raw files: robbery counts and populations, and the 1990 rank among the 67 agencies
    # with a robbery rate that year (the "National" rows are not peers)
    marshall = _raw_rows(real_file("ucr-marshall"))
    rows_1990 = [r for r in marshall if r["year"] == "1990" and r["department_name"] != "National"]
    rates = {
        r["department_name"]: int(r["rob_sum"]) / int(r["total_pop"]) * 1e5
        for r in rows_1990
        if r["rob_sum"] not in ("", "NA") and r["total_pop"] not in ("", "NA")
    }
    for name in ("New York City", "Los Angeles", "Chicago"):
        row = next(x for x in data["rows"] if x["name"] == name and x["year"] == 1990)
        raw = next(r for r in rows_1990 if r["department_name"] == name)
        assert row["count"] == int(raw["rob_sum"]) and row["population"] == int(raw["total_pop"])
        assert row["rank_by_rate"] == 1 + sum(v > rates[name] for v in rates.values())
        assert row["n_ranked"] == len(rates)
    assert [r["name"] for r in data["peers"]] == ["New York City", "Los Angeles", "Chicago"]
    assert not any("legacy definition" in n for n in data["notes"])  # robbery: no definition change to flag
    fbi = _raw_rows(real_file("fbi-estimates"))
    us = {int(r["year"]): int(r["robbery"]) for r in fbi if r["state_abbr"] == ""}
    ref = {r["year"]: r["count"] for r in data["reference"]}
    assert ref == {y: us[y] for y in range(1990, 2016)}
    assert data["params"]["reference"] == "fbi-estimates:US"
    # the terminal: names as written, in the order asked, the reference named; narrow terminals leave columns out
    # and name them, never cutting a name
    wide = runner.invoke(app, [*args, "--limit", "3"], env={"COLUMNS": "200"})
    assert wide.exit_code == 0, wide.output
    header = next(line for line in wide.stdout.splitlines() if "Year" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")][:5] == [
        "Year", "New York City", "Los Angeles", "Chicago", "United States (reference)"
    ]  # fmt: skip
    narrow = runner.invoke(app, [*args, "--limit", "3"], env={"COLUMNS": "60"})
    assert narrow.exit_code == 0, narrow.output
    assert max(len(line) for line in narrow.stdout.splitlines() if line[:1] in "┏┃┡│└") <= 60
    assert "Left out to fit the terminal (60 characters wide): Chicago, United States (reference)" in " ".join(
        narrow.stdout.split()
    )
    assert "New York City" in narrow.stdout and "Los Angeles" in narrow.stdout
    missing = runner.invoke(app, ["compare", "Chicago", "--offence", "property_crime", "--source", "ucr-marshall",
                                  "--db", str(db)])  # fmt: skip
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr.strip() == (
        "Error: offence 'property_crime': dataset 'ucr-marshall' has no property_crime counts; offences it holds: "
        "violent_crime, homicide, rape, robbery, aggravated_assault"
    )


def test_a_comma_separated_list_keeps_names_that_hold_commas() -> None:
    import pandas as pd

    from crimelens.analysis.jurisdictions.ranking import rejoin_names

    known = pd.DataFrame(
        {
            "jurisdiction_id": ["FL01300", "IL06316", "CA01942", "X1", "X2"],
            "name": ["Miami-Dade County, Fla.", "Chicago", "Los Angeles", "Springfield, Ill.", "Springfield"],
        }
    )
    # the --compare text "Miami-Dade County, Fla.,Chicago" split on commas, then joined back where a name needs it
    assert rejoin_names(known, ["Miami-Dade County", " Fla.", "Chicago"]) == ["Miami-Dade County, Fla.", "Chicago"]
    # the longest name wins ("Springfield, Ill." over "Springfield"); ids and case do not matter
    assert rejoin_names(known, ["springfield", "ill.", "ca01942"]) == ["springfield, ill.", "ca01942"]
    assert rejoin_names(known, ["Springfield", "Chicago"]) == ["Springfield", "Chicago"]
    # an unknown piece is kept as given, for find_jurisdiction to name it
    assert rejoin_names(known, ["Gotham", "Chicago"]) == ["Gotham", "Chicago"]
    assert rejoin_names(known, []) == []
