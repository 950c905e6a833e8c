"""mapped-csv: a rape definition and a jurisdiction kind per row (by a column or a cut-over year)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from crimelens import sources, warehouse
from crimelens.analysis.jurisdictions import trends
from crimelens.errors import ConfigError
from crimelens.sources import mapped_csv


def _files(tmp_path: Path, csv_text: str, toml_text: str) -> tuple[Path, Path]:
    data, mapping = tmp_path / "md.csv", tmp_path / "md.toml"
    data.write_text(textwrap.dedent(csv_text).lstrip(), encoding="utf-8")
    mapping.write_text(textwrap.dedent(toml_text), encoding="utf-8")
    return data, mapping


CSV = """
    name,kind,year,pop,rape,violent,def
    Anne Arundel County,county,2014,560000,150,2500,legacy
    Anne Arundel County,county,2015,563000,230,2600,revised
    Baltimore City,city,2014,623000,300,9000,legacy
    Baltimore City,city,2015,621000,460,9500,revised
"""


def test_rape_definition_by_cut_over_year_and_kind_per_row(tmp_path: Path) -> None:
    data, mapping = _files(
        tmp_path,
        CSV,
        """
        source = "maryland"
        [columns]
        jurisdiction = "name"
        kind = "kind"
        year = "year"
        population = "pop"
        rape = "rape"
        violent_crime = "violent"
        [constants]
        rape_revised_from = 2015
        """,
    )
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.load_parsed(con, sources.read(data, mapping=mapping))
    rows = con.execute(
        "SELECT j.name, j.kind, jy.year, jy.rape_definition FROM jurisdiction_year jy JOIN jurisdictions j "
        "USING (jurisdiction_id) ORDER BY 1, 3"
    ).fetchall()
    assert rows == [
        ("Anne Arundel County", "county", 2014, "legacy"),
        ("Anne Arundel County", "county", 2015, "revised"),
        ("Baltimore City", "city", 2014, "legacy"),
        ("Baltimore City", "city", 2015, "revised"),
    ]
    yoy = trends.year_over_year(con, jurisdiction="Baltimore City", offence="rape")
    assert any("revised rape definition" in n for n in yoy.notes)


def test_rape_definition_by_column_with_errors_by_line(tmp_path: Path) -> None:
    bad = CSV.replace("revised\n    Baltimore City,city,2014", "newest\n    Baltimore City,city,2014")
    data, mapping = _files(
        tmp_path,
        bad,
        """
        [columns]
        jurisdiction = "name"
        kind = "kind"
        year = "year"
        rape = "rape"
        rape_definition = "def"
        """,
    )
    parsed = sources.read(data, mapping=mapping)
    (error,) = parsed.errors
    # line 1 is the header; Anne Arundel 2015 is line 3
    assert (error.line, error.column, error.code) == (3, "def", "bad_rape_definition")
    assert "expected the rape definition 'legacy' or 'revised', got 'newest'" in error.message
    good = sources.read(_files(tmp_path, CSV, mapping.read_text())[0], mapping=mapping)
    assert list(good.rows["rape_definition"]) == ["legacy", "revised", "legacy", "revised"]


def test_bad_kind_is_reported_by_line_and_column(tmp_path: Path) -> None:
    data, mapping = _files(
        tmp_path,
        CSV.replace("Baltimore City,city,2015", "Baltimore City,town,2015"),
        """
        [columns]
        jurisdiction = "name"
        kind = "kind"
        year = "year"
        violent_crime = "violent"
        """,
    )
    (error,) = sources.read(data, mapping=mapping).errors
    assert (error.line, error.column, error.code) == (5, "kind", "bad_kind")


@pytest.mark.parametrize(
    "toml_extra",
    [
        '[constants]\nrape_revised_from = 2015\nrape_definition = "revised"',
        '[constants]\nrape_revised_from = "2015"',
        '[constants]\nkind = "city"',
    ],
)
def test_one_way_to_say_it(tmp_path: Path, toml_extra: str) -> None:
    _, mapping = _files(
        tmp_path,
        CSV,
        '[columns]\njurisdiction = "name"\nkind = "kind"\nyear = "year"\nrape = "rape"\n' + toml_extra + "\n",
    )
    with pytest.raises(ConfigError, match=r"md\.toml: "):
        mapped_csv.read_mapping(mapping)
