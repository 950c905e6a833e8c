"""The benchmark runner works end to end (tiny size); real numbers come from `make bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The everyday commands of issue 7 (scope 10), as bench/everyday.py labels them.
EVERYDAY_COMMANDS = (
    "loads",
    "rank --source ucr-marshall",
    "trends --source ucr-marshall",
    "findings",
    "findings --source ucr-marshall",
    "findings --source toronto-mci",
    "incidents when --source toronto-mci",
    "incidents areas --source toronto-mci",
    "incidents hotspots --source toronto-mci",
    "report --out TMP/r.html",
)


@pytest.mark.slow
def test_bench_quick_mode_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    # sections the other bench scripts write (make bench runs them after bench/run.py) are kept as they are
    kept = "## Alerts backtest\n\nkept alerts table\n\n## Model evaluation\n\nkept model table\n"
    out.write_text("# old\n\n## Machine\n\nold machine\n\n" + kept, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--no-spark",
            "--out",
            str(out),
            "--tmpdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    assert "old machine" not in text and text.count("## Machine") == 1
    assert "## Alerts backtest\n\nkept alerts table\n" in text and "## Model evaluation\n\nkept model table\n" in text
    assert "crimelens ingest (validated, atomic)" in text
    assert "× (a) notebook" in text and "× (b) engine floor" in text
    assert "50,000 rows" in text
    # the incident jobs ran too, and the three forms of each job counted the same incidents
    assert "## Incidents: simulated city" in text and "20,000 simulated incidents" in text
    for job in ("crimelens ingest --format chicago", "crimelens area_counts", "crimelens grid_counts"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {job}"))
        assert row.rstrip(" |").endswith("20000"), row
    gi_rows = ("| crimelens getis_ord_gi_star", "| (a) notebook: libpysal", "| (b) engine floor: Gi*")
    checks = {line.split("|")[-2].strip() for line in text.splitlines() if line.startswith(gi_rows)}
    assert len(checks) == 1, checks  # crimelens, esda and the SQL floor agree on the hot side


@pytest.mark.slow
def test_everyday_quick_mode_writes_a_floor_for_every_command(real_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    out.write_text("# kept\n\n## Everyday commands\n\nold table\n\n## Kept after\n\nkept too\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "everyday.py"),
            "--quick",
            "--data",
            str(real_data),
            "--out",
            str(out),
            "--tmpdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    # the section is replaced in place; the rest of the file is kept
    assert text.count("## Everyday commands") == 1 and "old table" not in text
    assert text.startswith("# kept\n") and text.rstrip().endswith("## Kept after\n\nkept too")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    assert set(rows) == {f"`{label}`" for label in EVERYDAY_COMMANDS}, rows
    for label, row in rows.items():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        crimelens_s, floor_s = float(cells[1]), float(cells[4])
        assert crimelens_s > 0 and floor_s > 0, (label, row)  # both ran: no "failed" cell, no "–"
        assert cells[9] in ("yes", "**no**"), row
        import_s = float(cells[10].split()[0])  # "0.85 (ibis)": the import floor ran too
        assert import_s > 0 and cells[10].endswith(("(basic)", "(ibis)")), row
        assert float(cells[11]) == pytest.approx(crimelens_s - import_s, abs=0.011), row
    assert "Floors (what each fetches)" in text and "make bench-everyday" in text


@pytest.mark.slow
def test_model_bench_quick_mode_replaces_only_its_section(real_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    out.write_text("# kept\n\n## Model evaluation\n\nold table\n\n## Kept after\n\nkept too\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "model_bench.py"),
            "--quick",
            "--data",
            str(real_data),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    assert text.count("## Model evaluation") == 1 and "old table" not in text
    assert text.startswith("# kept\n") and text.rstrip().endswith("## Kept after\n\nkept too")
    rows = [line for line in text.splitlines() if line.startswith(("| Marshall", "| Chicago"))]
    timed = [r for r in rows if "≤ " in r]
    assert len(timed) == 2, rows
    for row in timed:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        assert float(cells[4]) > 0 and float(cells[6]) > 0, row  # crimelens and the notebook both ran
        assert cells[-1] == "– (quick)", row  # quick mode claims no target
    # crimelens and the notebook scored the same predictions: same features, folds and models
    agree = [r for r in rows if r.rstrip(" |").endswith(("yes", "**no**")) and "≤ " not in r]
    assert len(agree) == 4 and all(r.rstrip(" |").endswith("yes") for r in agree), agree
