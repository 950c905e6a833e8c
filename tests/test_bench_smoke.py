"""The benchmark runner works end to end (tiny size); real numbers come from `make bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_quick_mode_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
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
