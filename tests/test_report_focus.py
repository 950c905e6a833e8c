"""The report pointed at one offence, a span of years and places compared side by side, or at one incident dataset
over a date range (``crimelens report --offence ... --compare ... --start ... --end ...``, ``--source ... --since``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crimelens.cli import app
from crimelens.errors import DataError
from crimelens.report import Focus, build_report
from test_comparison import _load_nation
from test_report import parse

runner = CliRunner()


def _section_order(html: str) -> list[str]:
    return re.findall(r'<section[^>]* id="([^"]+)"', html)


def test_focused_report_on_the_tiny_panel(tiny_con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    _load_nation(tiny_con, tmp_path)
    focus = Focus(offence="robbery", jurisdiction="City A", compare=("City C", "B"), start=2010, end=2012)
    out = build_report(tiny_con, tmp_path / "r.html", "tiny", focus=focus, models=False)
    page = parse(out.read_text(encoding="utf-8"))
    sections = _section_order(page.html)
    assert sections.index("comparison") < sections.index("statistics")  # the places asked for come first
    comparison = page.root.by_id("comparison").text()
    # the jurisdiction first, then the compared places in the order given
    assert comparison.index("City A") < comparison.index("City C") < comparison.index("City B")
    # robbery over 2010-2012: A (30+30+35)/300,000 = 31.7 per 100,000, rank 1 of 3; C 11/150,000 = 7.33, rank 3
    assert "City A 31.7 per 100,000 (rank 1 of 3)" in comparison
    assert "City C 7.33 per 100,000 (rank 3 of 3)" in comparison
    # the nation from the other dataset: (360,000 + 350,000 + 340,000) / 903,000,000 × 100,000 = 116.3
    assert "The reference, United States (dataset tiny-nation), recorded 116.3 per 100,000" in comparison
    assert "City C 2012" in comparison  # the partial year is flagged
    meta = page.metadata
    assert meta["params"]["offence"] == "robbery" and meta["params"]["focus"]["compare"] == ["City C", "B"]
    assert meta["title"] == "Crime report: tiny (robbery; City A, City C, B; 2010–2012)"
    assert "comparison.compare_jurisdictions" in meta["analyses"]
    # the rest of the report follows the offence: the rate chart is robbery's, and the single-series trends are the
    # focused jurisdiction's (City A), not the combined rate
    assert "Robbery rate over time" in page.root.by_id("statistics").text()
    assert "Year-over-year changes in the rate of City A" in page.root.by_id("trends").text()


@pytest.mark.parametrize(
    "focus,message",
    [
        (Focus(jurisdiction="City Q"), "jurisdiction 'City Q': expected the name or id of a jurisdiction"),
        (Focus(offence="burglary"), "dataset 'tiny' has no burglary counts; offences it holds: violent_crime"),
        (Focus(start=2011, end=2010), "expected start ≤ end"),
        (Focus(start=1990), "start: expected a year within 2010–2012"),
    ],
)
def test_bad_focus_is_one_clear_error_and_no_file(
    tiny_con: duckdb.DuckDBPyConnection, tmp_path: Path, focus: Focus, message: str
) -> None:
    out = tmp_path / "r.html"
    with pytest.raises(DataError, match=re.escape(message)):
        build_report(tiny_con, out, "tiny", focus=focus, models=False)
    assert not out.exists()


def test_report_on_an_incident_dataset_over_dates(tmp_path: Path) -> None:
    from crimelens.simulate import simulate

    csv_path, db = tmp_path / "city.csv", tmp_path / "w.duckdb"
    simulate(2000, 1, 5, csv_path)
    assert runner.invoke(app, ["ingest", str(csv_path), "--db", str(db)]).exit_code == 0
    out = tmp_path / "inc.html"
    args = ["report", "--source", "simulated-city", "--since", "2019-03-01", "--until", "2019-04-30"]
    result = runner.invoke(app, [*args, "--out", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    page = parse(out.read_text(encoding="utf-8"))
    # counted independently in SQL: the incidents of March and April 2019 (local time)
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT count(*) FROM incidents WHERE source = 'simulated-city' AND occurred_at >= '2019-03-01' "
            "AND occurred_at < '2019-05-01'"
        ).fetchone()
    assert row is not None and row[0] > 0
    text = " ".join(page.root.text().split())
    assert f"{row[0]:,} incidents from" in text
    assert "Only the incidents from 01 March 2019 to 30 April 2019 (--since/--until) are analysed here." in text
    assert json.loads(page.root.by_id("crimelens-metadata").text())["params"]["incident_sources"] == ["simulated-city"]
    # jurisdiction-year flags on an incident dataset, and a bad date: one line each, exit 1
    # --offence applies to incidents too: only robbery, counted independently
    robbery = tmp_path / "robbery.html"
    args_r = ["report", "--source", "simulated-city", "--offence", "robbery", "--out", str(robbery), "--db", str(db)]
    assert runner.invoke(app, args_r).exit_code == 0
    with duckdb.connect(str(db), read_only=True) as con:
        n_rob = con.execute(
            "SELECT count(*) FROM incidents WHERE source = 'simulated-city' AND offence = 'robbery'"
        ).fetchone()
    assert n_rob is not None and n_rob[0] > 0
    rob_text = " ".join(parse(robbery.read_text(encoding="utf-8")).root.text().split())
    assert f"{n_rob[0]:,} incidents from" in rob_text and "Only incidents of robbery (--offence)" in rob_text
    for bad, says in (
        (["--jurisdiction", "Chicago"], "for incidents use --offence, --since and --until"),
        (["--offence", "theft"], "offence 'theft' is not known; allowed:"),
        (["--since", "2019-02-30"], "since: expected a date as YYYY-MM-DD, got '2019-02-30'"),
    ):
        res = runner.invoke(app, ["report", "--source", "simulated-city", *bad, "--out", str(out), "--db", str(db)])
        assert res.exit_code == 1 and says in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.output


@pytest.mark.slow
def test_the_brief_comparison_on_real_data(real_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "w.duckdb"
    for fmt in ("ucr-marshall", "fbi-estimates"):
        assert runner.invoke(app, ["ingest", str(real_file(fmt)), "--db", str(db)]).exit_code == 0
    out = tmp_path / "focus.html"
    result = runner.invoke(
        app,
        ["report", "--offence", "robbery", "--jurisdiction", "Chicago", "--compare",
         "New York City,Los Angeles,Chicago", "--start", "1990", "--end", "2015", "--source", "ucr-marshall",
         "--out", str(out), "--db", str(db)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = parse(out.read_text(encoding="utf-8"))
    text = page.root.by_id("comparison").text()
    assert text.index("New York City") < text.index("Los Angeles") < text.index("Chicago")
    assert "The reference, United States (dataset fbi-estimates)" in text
    meta = page.metadata
    assert meta["params"]["year"] == 2015 and meta["params"]["offence"] == "robbery"
    # the trends follow Chicago (the --jurisdiction), though --compare lists it last
    assert "Year-over-year changes in the rate of Chicago" in page.root.by_id("trends").text()
