"""The command line for people: tables that fit the terminal, progress while long commands run, the Spark hint
intact, differences in percentage points, and a reference that covers every sub-command."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

from crimelens.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def marshall_db(_real_warehouses: dict[str, Path], tmp_path: Path) -> Path:
    db = tmp_path / "m.duckdb"
    shutil.copy(_real_warehouses["ucr-marshall"], db)
    return db


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from crimelens.simulate import simulate

    folder = tmp_path_factory.mktemp("city")
    simulate(1500, 1, 7, folder / "city.csv")
    db = folder / "w.duckdb"
    assert runner.invoke(app, ["ingest", str(folder / "city.csv"), "--db", str(db)]).exit_code == 0
    return db


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]


def test_tables_fit_the_terminal_and_name_what_is_left_out(marshall_db: Path) -> None:
    args = ["rank", "--year", "2015", "--limit", "5", "--db", str(marshall_db)]
    narrow = runner.invoke(app, args, env={"COLUMNS": "60"})
    assert narrow.exit_code == 0, narrow.output
    lines = _table_lines(narrow.stdout)
    assert lines and max(len(line) for line in lines) <= 60
    assert "…" not in "".join(lines)  # nothing cut: before, names showed as "S…" and headers as "R…"
    header = [c.strip() for c in lines[1].strip("┃ ").split("┃")]
    assert header[:3] == ["Rank", "Name", "Rate per 100,000"]  # the rank, the name and the measure come first
    assert "St. Louis, Mo." in narrow.stdout  # the 2015 leader by rate, whole
    flat = " ".join(narrow.stdout.split())
    assert "Left out to fit the terminal (60 characters wide):" in flat and "Partial years." in flat
    wide = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert wide.exit_code == 0, wide.output
    assert "Left out" not in wide.stdout
    header = [c.strip() for c in _table_lines(wide.stdout)[1].strip("┃ ").split("┃")]
    assert len(header) == 11 and header[-1] == "Partial years"


def test_profile_shows_differences_in_percentage_points(marshall_db: Path) -> None:
    args = ["profile", "Chicago", "--db", str(marshall_db)]
    data = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    robbery = next(r for r in data["mix"] if r["offence"] == "robbery")
    assert robbery["difference_points"] == pytest.approx(100 * (robbery["share"] - robbery["peer_median_share"]))
    text = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    assert "Difference (percentage points)" in text.stdout
    row = next(line for line in text.stdout.splitlines() if "│ Robbery" in line)
    assert f"{robbery['difference_points']:+.1f}" in row and f"{robbery['share']:.1%}" in row


def test_the_spark_hint_names_the_extra(city_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as on a machine without the spark extra
    result = runner.invoke(app, ["incidents", "counts", "--engine", "spark", "--db", str(city_db)])
    assert result.exit_code == 1
    # before: "run: pip install 'crimelens'" (rich read [spark] as markup and dropped it)
    assert "pip install 'crimelens[spark]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_long_commands_show_progress_on_a_terminal_only(city_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crimelens.cli import render

    screen = io.StringIO()
    monkeypatch.setattr(render, "err", Console(file=screen, force_terminal=True, width=100))
    args = ["incidents", "near-repeat", "--permutations", "9", "--db", str(city_db)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "crimelens incidents near-repeat: all offences of simulated-city" in screen.getvalue()
    screen.seek(0)
    screen.truncate()
    quiet = runner.invoke(app, [*args, "--json"])
    assert quiet.exit_code == 0 and json.loads(quiet.stdout)["rows"]
    assert "near-repeat" not in screen.getvalue()
    # the report tells its steps
    out = city_db.parent / "r.html"
    assert runner.invoke(app, ["report", "--out", str(out), "--db", str(city_db)]).exit_code == 0
    assert "Report: writing HTML" in screen.getvalue() or "Report: incidents" in screen.getvalue()
    # not a terminal (pipes, CI): nothing
    screen.seek(0)
    screen.truncate()
    monkeypatch.setattr(render, "err", Console(file=screen, force_terminal=False))
    assert runner.invoke(app, args).exit_code == 0 and screen.getvalue() == ""


def test_the_reference_covers_every_sub_command() -> None:
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    root = get_command(app)
    expected = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        expected.append(f"## `crimelens {name}`")
        expected += [f"## `crimelens {name} {sub}`" for sub in getattr(command, "commands", {})]
    missing = [e for e in expected if e not in text]
    assert not missing, missing
    assert "## `crimelens incidents near-repeat`" in expected  # the groups were walked


def test_readme_shows_how_to_run_after_make_demo_and_links_only_inside() -> None:
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/crimelens" in readme and "source .venv/bin/activate" in readme
    assert "crimelens compare" in readme
    targets = re.findall(r"\]\(([^)]+)\)", readme)
    assert targets and all(not re.match(r"[a-z]+:", t) for t in targets), targets
    for t in targets:
        assert (REPO / t.split("#")[0]).exists(), t
    assert "http://" not in readme and "https://" not in readme


def test_span_options_on_profile_and_yoy(marshall_db: Path) -> None:
    for args in (["profile", "Chicago"], ["yoy", "--jurisdiction", "Chicago"]):
        data = json.loads(
            runner.invoke(app, [*args, "--start", "2010", "--end", "2012", "--json", "--db", str(marshall_db)]).stdout
        )
        assert [r["year"] for r in data["rows"]] == [2010, 2011, 2012], args
    bad = runner.invoke(app, ["profile", "Chicago", "--start", "1900", "--db", str(marshall_db)])
    assert bad.exit_code == 1 and "start: expected a year within 1975–2015" in bad.stderr


def test_jurisdiction_commands_on_an_incident_dataset_name_the_report(city_db: Path) -> None:
    result = runner.invoke(app, ["stats", "--source", "simulated-city", "--db", str(city_db)])
    assert result.exit_code == 1
    assert "`crimelens report --source simulated-city` (with --since/--until)" in result.stderr
