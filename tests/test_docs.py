"""Executable docs: the README's first commands, the mapped-csv example, the generated CLI reference."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from crimelens.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:\w+)?\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no code block"
    assert blocks[0].split() == ["make", "demo"]
    assert blocks[1].split() == ["make", "test"]


def test_mapped_csv_worked_example_runs_as_documented(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "mapped-csv.md").read_text()
    db = tmp_path / "example.duckdb"
    args = [
        "ingest",
        "docs/examples/city_panel.csv",
        "--mapping",
        "docs/examples/city_panel.toml",
        "--db",
        str(db),
    ]
    assert "crimelens " + " ".join(args[:-1]) in doc
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = runner.invoke(app, args)
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first in doc, first
    assert "column months" in result.stdout
    rank = runner.invoke(app, ["rank", "--db", str(db), "--year", "2020", "--json"])
    assert rank.exit_code == 0, rank.output


def test_cli_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, "docs/cli.md is stale: run `python scripts/gen_cli_docs.py`"
