"""The command line through its real entry point: help, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from crimelens.cli import app

runner = CliRunner()
COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


def test_console_script_help_and_version() -> None:
    exe = Path(sys.executable).with_name("crimelens")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "crimelens demo" in result.stdout
    for name in COMMANDS:
        assert name in result.stdout
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("crimelens ")


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_clear_help(name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    usage, _, rest = result.output.partition("\n\n")
    assert usage.startswith(f"Usage: crimelens {name}")
    summary = rest.strip().splitlines()[0]
    assert len(summary) > 20, f"{name}: help summary too short: {summary!r}"
    # every option explains itself: read from the command's own parameters, not from the formatted help (a metavar
    # such as TEXT would pass for help there)
    command = get_command(app).commands[name]  # type: ignore[attr-defined]
    commands = list(getattr(command, "commands", {}).values()) or [command]
    for cmd in commands:
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help":
                text = (param.help or "").strip()
                assert len(text) > 15, f"{name} {cmd.name}: option {param.opts} has no real help: {text!r}"


def test_the_entry_point_builds_only_the_command_it_runs() -> None:
    from crimelens.cli.app import _lean

    for name in COMMANDS:
        assert sorted(get_command(_lean([name, "--help"])).commands) == [name]  # type: ignore[attr-defined]
    # no command named (root help, version) or an unknown one: the whole app, whose usage error lists them all
    assert _lean([]) is app and _lean(["--help"]) is app and _lean(["--version"]) is app and _lean(["fidnings"]) is app
    exe = Path(sys.executable).with_name("crimelens")
    sub = subprocess.run([str(exe), "incidents", "when", "--help"], capture_output=True, text=True, timeout=60)
    assert sub.returncode == 0 and sub.stdout.startswith("Usage: crimelens incidents when"), sub.stderr
    typo = subprocess.run([str(exe), "fidnings"], capture_output=True, text=True, timeout=60)
    assert typo.returncode == 2 and "Did you mean 'findings'?" in typo.stderr


def test_usage_errors_exit_2() -> None:
    assert runner.invoke(app, ["ingest"]).exit_code == 2
    assert runner.invoke(app, ["rank", "--top", "many"]).exit_code == 2
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2


def test_user_errors_exit_1_with_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["loads", "--db", str(tmp_path / "absent.duckdb")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: warehouse ") and "not found" in lines[0]
    result = runner.invoke(app, ["ingest", str(tmp_path / "none.csv"), "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'none.csv'}: file not found"


def test_ingest_json_and_env_db(tmp_path: Path, real_file, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import json

    monkeypatch.setenv("CRIMELENS_DB", str(tmp_path / "env.duckdb"))
    result = runner.invoke(app, ["ingest", str(real_file("marshall-states")), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rows_loaded"] == 1683 and data["status"] == "loaded" and data["source"] == "marshall-states"
    assert (tmp_path / "env.duckdb").exists()
    again = runner.invoke(app, ["ingest", str(real_file("marshall-states")), "--json"])
    assert json.loads(again.stdout)["status"] == "unchanged"
    listing = runner.invoke(app, ["loads", "--json"])
    assert [row["rows_loaded"] for row in json.loads(listing.stdout)["rows"]] == [1683]


ANALYSIS_COMMANDS = [
    ["stats", "--year", "2015"],
    ["rates", "--offence", "homicide", "--year", "2015"],
    ["rank", "--by", "count", "--year", "2015", "--top", "3"],
    ["profile", "Chicago"],
    ["concentration", "--k", "5"],
    ["compare", "New York City", "Chicago"],
    ["trends", "--start", "1990"],
    ["yoy", "--offence", "homicide"],
    ["turning-points", "--jurisdiction", "New York City"],
    ["hotspots", "--k", "5"],
    ["findings"],
]


@pytest.fixture
def marshall_db(_real_warehouses: dict[str, Path], tmp_path: Path) -> Path:
    import shutil

    db = tmp_path / "m.duckdb"
    shutil.copy(_real_warehouses["ucr-marshall"], db)
    return db


@pytest.mark.parametrize("args", ANALYSIS_COMMANDS, ids=[a[0] for a in ANALYSIS_COMMANDS])
def test_analysis_commands_table_and_json(args: list[str], marshall_db: Path) -> None:
    import json

    table = runner.invoke(app, [*args, "--db", str(marshall_db)])
    assert table.exit_code == 0, table.output
    data = json.loads(runner.invoke(app, [*args, "--db", str(marshall_db), "--json"]).stdout)
    assert data["rows"], data
    # the table is the JSON's: its title, and the first row's name (or headline, or first short text), are printed
    flat = " ".join(table.stdout.split())
    assert data["title"] in flat or args[0] == "compare", (data["title"], flat[:300])
    row = data["rows"][0]
    first = (
        row.get("name")
        or (row.get("headline") or "")[:20]
        or next((v for v in row.values() if isinstance(v, str) and 2 < len(v) < 25), None)
    )
    if first is not None:
        assert first in table.stdout, f"{args}: {first!r} from --json is not in the table"


def test_rank_json_matches_the_table(marshall_db: Path) -> None:
    import json

    data = json.loads(
        runner.invoke(app, ["rank", "--year", "2015", "--by", "count", "--json", "--db", str(marshall_db)]).stdout
    )
    top = data["rows"][0]
    assert (top["rank"], top["name"], top["count"]) == (1, "New York City", 50088)
    text = runner.invoke(app, ["rank", "--year", "2015", "--by", "count", "--db", str(marshall_db)]).stdout
    assert "New York City" in text and "50,088" in text


def test_statistical_caveats_are_shown_as_one_line_notes(tmp_path: Path) -> None:
    # a steady city (about 1,000 a year) that reported only 3 months in 2006: the fall into 2006 is significant
    # and touches a partial year, so the caveat is shown as one line
    head = '"ORI","year","department_name","total_pop","homs_sum","rape_sum","rob_sum","agg_ass_sum","violent_crime",'
    head += '"months_reported","violent_per_100k","homs_per_100k","rape_per_100k","rob_per_100k","agg_ass_per_100k",'
    head += '"source","url"'
    lines = [head]
    for k, year in enumerate(range(1996, 2012)):
        total, months = (250, 3) if year == 2006 else (1000 + (k % 3) * 10, 12)
        lines.append(
            f'"XX00001",{year},"Steadyville",100000,10,20,{total - 130},100,{total},{months},NA,NA,NA,NA,NA,NA,NA'
        )
    csv_path = tmp_path / "ucr.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = str(tmp_path / "w.duckdb")
    assert runner.invoke(app, ["ingest", str(csv_path), "--format", "ucr-marshall", "--db", db]).exit_code == 0
    result = runner.invoke(app, ["yoy", "--jurisdiction", "Steadyville", "--db", db])
    assert result.exit_code == 0, result.output
    caveats = [ln for ln in result.stderr.splitlines() if ln.startswith("Caveat: ")]
    assert caveats and "2006" in caveats[0] and "fewer than 12 months" in caveats[0]


def test_unknown_jurisdiction_and_bad_offence_are_user_errors(marshall_db: Path) -> None:
    result = runner.invoke(app, ["profile", "Chicagoo", "--db", str(marshall_db)])
    assert result.exit_code == 1 and "Chicago" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(app, ["rank", "--offence", "arsonn", "--db", str(marshall_db)])
    assert result.exit_code == 1 and "allowed: violent_crime" in result.stderr


def test_issues_lists_what_was_recorded_at_load(marshall_db: Path) -> None:
    import json

    rows = json.loads(
        runner.invoke(app, ["issues", "--code", "partial_year", "--json", "--db", str(marshall_db)]).stdout
    )["rows"]
    # the Marshall file: 35 agency-years with 1-11 months (partial); its 18 zeros are "months not stated"
    assert len(rows) == 35 and all(r["column_name"] == "months_reported" and r["line"] > 1 for r in rows)
    unstated = json.loads(
        runner.invoke(app, ["issues", "--code", "months_not_stated", "--json", "--db", str(marshall_db)]).stdout
    )["rows"]
    # 18 zeros, of which 15 come with counts (Tampa 1988 and Cincinnati 1997-98 have none)
    assert len(unstated) == 15
    table = runner.invoke(app, ["issues", "--db", str(marshall_db)])
    assert table.exit_code == 0 and "partial_year" in table.stdout
    none = runner.invoke(app, ["issues", "--code", "no_such_code", "--db", str(marshall_db)])
    assert none.exit_code == 0 and "No issues recorded" in none.stdout


def test_rows_rejected_under_max_errors_are_listed(tmp_path: Path, real_file) -> None:  # type: ignore[no-untyped-def]
    lines = real_file("ucr-marshall").read_text().splitlines(keepends=True)
    bad = tmp_path / "one_bad.csv"
    bad.write_text("".join([*lines[:9], lines[9].replace(",12,", ",14,", 1), *lines[10:]]))
    result = runner.invoke(app, ["ingest", str(bad), "--max-errors", "1", "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 0, result.output
    assert "1 row was rejected" in result.stdout
    assert "one_bad.csv, line 10, column months_reported: expected months reported 0–12, got '14'" in result.stdout


def test_cli_starts_without_loading_heavy_libraries() -> None:
    """`crimelens --help` must be fast: pandas, duckdb, scipy and matplotlib load only when a command runs."""
    heavy = "('pandas', 'duckdb', 'scipy', 'matplotlib')"
    code = f"import sys, crimelens.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_jurisdiction_commands_on_an_incident_dataset_say_which_commands_apply(tmp_path: Path) -> None:
    from crimelens.simulate import simulate

    csv_path = tmp_path / "city.csv"
    simulate(300, 1, 3, csv_path)
    db = str(tmp_path / "w.duckdb")
    assert runner.invoke(app, ["ingest", str(csv_path), "--db", db]).exit_code == 0
    for command in (["rank"], ["stats"], ["trends"]):
        result = runner.invoke(app, [*command, "--source", "simulated-city", "--db", db])
        assert result.exit_code == 1, result.output
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1 and "holds incident records, not yearly counts per jurisdiction" in line
        assert "`crimelens incidents ... --source simulated-city`" in line


def test_compare_keeps_names_as_written_in_the_order_asked(marshall_db: Path) -> None:
    result = runner.invoke(
        app, ["compare", "New York City", "Los Angeles", "Chicago", "--limit", "2", "--db", str(marshall_db)]
    )
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "Year" in line)
    cells = [c.strip() for c in header.strip("┃ ").split("┃")]
    # the dataset's own national rows are the reference when no other dataset holds the nation
    assert cells == ["Year", "New York City", "Los Angeles", "Chicago", "United States (reference)",
                     "Partial year (< 12 months)"]  # fmt: skip
