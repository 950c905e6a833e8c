"""The one-off 50-million-incident run: simulate, ingest, aggregate; time and peak memory of each step.

``make bench-50m`` runs ``.venv/bin/python bench/huge.py`` and writes ``bench/RESULTS-50M.md``. It takes a
while (tens of minutes) and about 10 GB of temporary disk; ``make bench`` does not run it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from bench_report import machine_info
from incident_bench import REPO, run_job, simulate

JOBS = {
    "ingest-crimelens": "crimelens ingest --format chicago",
    "area-week-crimelens": "community area × week × offence (Ibis on DuckDB)",
    "grid-week-crimelens": "150 m grid × week (Ibis on DuckDB)",
    "gi-crimelens": "Gi* on the 150 m city grid",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the 50M-incident scale check once.")
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "RESULTS-50M.md")
    parser.add_argument("--tmpdir", type=Path)
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    lines: list[str] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="crimelens-50m-", dir=args.tmpdir) as tmp:
        work = Path(tmp)
        csv = work / "city.csv"
        sim = simulate(csv, args.rows, args.seed, args.years)
        size = csv.stat().st_size / 1e9
        db = work / "w.duckdb"
        rows = []
        for key, label in JOBS.items():
            t0 = time.perf_counter()
            try:
                r = run_job(key, db, csv if key.startswith("ingest") else None, timeout=4 * 3600)
            except Exception as exc:  # a failed step is recorded, not hidden
                rows.append(f"| {label} | failed: {exc} | | |")
                failed = True
                continue
            wall = time.perf_counter() - t0
            rows.append(f"| {label} | {r['seconds']:.1f} | {wall:.1f} | {r['peak_rss_mb']:,.0f} |")
        db_gb = sum(p.stat().st_size for p in work.glob("w.duckdb*")) / 1e9
    info = machine_info(REPO)
    lines += [
        "# crimelens at 50 million incidents (one run)",
        "",
        f"Generated {started:%Y-%m-%d %H:%M} UTC by `.venv/bin/python bench/huge.py` (`make bench-50m`). "
        "Do not edit by hand. The data are **simulated** (`crimelens simulate`).",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
        f"- Input: {args.rows:,} simulated incidents over {args.years} years (seed {args.seed}), "
        f"{size:.1f} GB of CSV written in {sim:.0f} s; warehouse file {db_gb:.1f} GB.",
        "- One run per step, each in a fresh process; peak RSS is that process's own (MB = 10⁶ bytes).",
        "",
        "| step | work (s) | wall incl. start-up (s) | peak RSS (MB) |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
