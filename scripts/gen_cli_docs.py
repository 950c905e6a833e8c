"""Write docs/cli.md from the real `--help` output of every command (kept current by tests/test_docs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from typer.main import get_command
from typer.testing import CliRunner

from crimelens.cli import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def render() -> str:
    runner = CliRunner()
    parts = [
        "# Command-line reference\n",
        "Generated from `--help` by `scripts/gen_cli_docs.py`; do not edit.\n",
    ]
    root = get_command(app)
    commands: list[list[str]] = [[]]
    for name in sorted(root.commands):  # type: ignore[attr-defined]
        commands.append([name])
        group = root.commands[name]  # type: ignore[attr-defined]
        # every sub-command of a group (incidents, forecast, model, ...) gets its own section
        commands.extend([name, sub] for sub in sorted(getattr(group, "commands", {})))
    for path in commands:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100", "TERM": "dumb"})
        title = " ".join(["crimelens", *path])
        parts.append(f"## `{title}`\n\n```\n{result.output.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if DOC.exists() and DOC.read_text() == text else 1)
    DOC.write_text(text)
    print(f"wrote {DOC}")
