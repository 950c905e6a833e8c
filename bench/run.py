"""Benchmark crimelens ingest and analysis against baselines measured in the same run.

``make bench`` runs ``.venv/bin/python bench/run.py``: it generates a seeded ``ucr-marshall`` file of
1,000,000 rows in a temporary folder, times each job in fresh processes (best of ``--repeat``), records
each job's peak RSS, profiles the crimelens ingest, and writes ``bench/RESULTS.md``.
``bench/run.py --quick --out /tmp/x.md`` is the smoke-test form (50,000 rows, one run, no profile).
Exit status: 0 when every job ran, 1 when a job failed (or, with ``--check``, a target was missed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_report import MEMORY_TARGET_MB, TARGET_ROWS, Measured, RunInfo, machine_info, render
from incident_bench import INCIDENT_TARGET_ROWS, run_incident_bench
from synth_ucr import write_ucr_marshall

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
JOB_SCRIPT = BENCH / "bench_jobs.py"

INGEST_JOBS: dict[str, str] = {
    "ingest-crimelens": "crimelens ingest (validated, atomic)",
    "ingest-pandas": "(a) notebook: pandas.read_csv + CREATE TABLE AS",
    "ingest-duckdb": "(b) engine floor: DuckDB read_csv → table",
}
RANK_JOBS: dict[str, str] = {
    "rank-crimelens": "crimelens rank (rate, span)",
    "rank-pandas": "(a) notebook: pandas groupby",
    "rank-duckdb": "(b) engine floor: one DuckDB query",
}
TRENDS_JOBS: dict[str, str] = {"trends-crimelens": "crimelens long_run_trends (span)"}
#: Analysis jobs run only when the module they need can be found.
ANALYSIS_MODULES: dict[str, str] = {
    "crimelens.analysis.jurisdictions.ranking": "rank",
    "crimelens.analysis.jurisdictions.trends": "long_run_trends",
}
QUICK_ROWS = 50_000
#: Sections of RESULTS.md that other scripts write (bench/everyday.py, alerts_backtest.py, model_bench.py): kept
KEPT_SECTIONS = ("## Everyday commands", "## Alerts backtest", "## Model evaluation", "## Hotspot forecasting")
QUICK_INCIDENTS = 20_000
PROFILE_ROWS = 200_000
SPAN_YEARS = 10


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark crimelens ingest and analysis against pandas and DuckDB baselines.",
    )
    parser.add_argument(
        "--rows", type=int, help=f"rows in the generated file (default {TARGET_ROWS:,}; quick {QUICK_ROWS:,})"
    )
    parser.add_argument("--repeat", type=int, help="runs per job, best time kept (default 3; quick 1)")
    parser.add_argument("--seed", type=int, default=20240611, help="seed of the generated file (default 20240611)")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke-test size: {QUICK_ROWS:,} rows, one run, no profile"
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"cProfile the crimelens ingest on a {PROFILE_ROWS:,}-row file (default on; off with --quick)",
    )
    parser.add_argument(
        "--out", type=Path, default=BENCH / "RESULTS.md", help="results file (default bench/RESULTS.md)"
    )
    parser.add_argument(
        "--incidents",
        type=int,
        help=f"simulated incidents for the incident jobs (default {INCIDENT_TARGET_ROWS:,}; quick {QUICK_INCIDENTS:,}; "
        "0 skips them)",
    )
    parser.add_argument("--incident-repeat", type=int, help="runs per incident job, best kept (default 3; quick 1)")
    parser.add_argument("--no-spark", action="store_true", help="skip the local Spark run of the incident jobs")
    parser.add_argument("--tmpdir", type=Path, help="folder for the temporary files (default: the system's)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a stated target is missed")
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = QUICK_ROWS if args.quick else TARGET_ROWS
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.incidents is None:
        args.incidents = QUICK_INCIDENTS if args.quick else INCIDENT_TARGET_ROWS
    if args.incident_repeat is None:
        args.incident_repeat = 1 if args.quick else 3
    if args.profile is None:
        args.profile = not args.quick
    if args.rows < 1:
        parser.error(f"--rows: expected a whole number ≥ 1, got {args.rows}")
    if args.repeat < 1:
        parser.error(f"--repeat: expected a whole number ≥ 1, got {args.repeat}")
    return args


def _command(argv: list[str]) -> str:
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(Path.cwd()))
    except ValueError:
        shown = str(python)
    return shlex.join([shown, *argv])


def _remove(db: Path) -> None:
    for path in db.parent.glob(db.name + "*"):
        path.unlink()


def run_job(job: str, db: Path, *, csv: Path | None = None, span: tuple[int, int] | None = None) -> dict[str, Any]:
    """Run one job in a fresh interpreter; return its JSON measurements or raise RuntimeError."""
    cmd = [sys.executable, str(JOB_SCRIPT), job, "--db", str(db)]
    if csv is not None:
        cmd += ["--csv", str(csv)]
    if span is not None:
        cmd += ["--start", str(span[0]), "--end", str(span[1])]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        tail = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(tail[-1] if tail else f"exit status {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _measure(
    jobs: dict[str, str],
    repeat: int,
    work: Path,
    *,
    csv: Path | None = None,
    db: Path | None = None,
    span: tuple[int, int] | None = None,
    keep: str | None = None,
) -> dict[str, Measured]:
    """Run each job ``repeat`` times, interleaved; analysis jobs read ``db``, ingest jobs write a new one.

    The database written by the first successful run of job ``keep`` is left in place (the analysis input).
    """
    out = {key: Measured(key, label) for key, label in jobs.items()}
    for r in range(repeat):
        for key, m in out.items():
            if m.error is not None:
                continue
            target = db if db is not None else work / f"{key}-{r}.duckdb"
            try:
                result = run_job(key, target, csv=csv, span=span)
            except RuntimeError as exc:
                m.error = str(exc)
                _log(f"[{key} {r + 1}/{repeat}] FAILED: {exc}")
                continue
            finally:
                if db is None and not (key == keep and r == 0):
                    _remove(target)
            m.runs.append(result)
            _log(f"[{key} {r + 1}/{repeat}] {result['seconds']:.2f} s, peak RSS {result['peak_rss_mb']:,.0f} MB")
    return out


def _analysis_available() -> tuple[dict[str, str], list[str]]:
    jobs: dict[str, str] = {}
    notes: list[str] = []
    for module, function in ANALYSIS_MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            notes.append(f"`{module}` not found: its `{function}` benchmark was skipped")
            continue
        jobs.update(RANK_JOBS if function == "rank" else TRENDS_JOBS)
    return jobs, notes


def _duckdb_threads() -> int | None:
    import duckdb

    with duckdb.connect() as con:
        row = con.execute("SELECT current_setting('threads')").fetchone()
    return int(row[0]) if row else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t_start = time.perf_counter()
    analysis_jobs, notes = _analysis_available()
    for note in notes:
        _log(f"note: {note}")
    with tempfile.TemporaryDirectory(prefix="crimelens-bench-", dir=args.tmpdir) as tmp:
        work = Path(tmp)
        csv = work / "ucr_bench.csv"
        _log(f"generating {args.rows:,} rows (seed {args.seed}) in {work}")
        spec = write_ucr_marshall(csv, args.rows, seed=args.seed)
        span = (max(spec.first_year, spec.last_year - SPAN_YEARS + 1), spec.last_year)
        ingest = _measure(INGEST_JOBS, args.repeat, work, csv=csv, keep="ingest-crimelens")
        analysis: dict[str, Measured] = {}
        warehouse = work / "ingest-crimelens-0.duckdb"
        if analysis_jobs and ingest["ingest-crimelens"].ok:
            analysis = _measure(analysis_jobs, args.repeat, work, db=warehouse, span=span)
        elif analysis_jobs:
            notes.append("analysis jobs skipped: the crimelens ingest that builds their warehouse failed")
        profile: list[dict[str, Any]] | None = None
        profile_rows = min(args.rows, PROFILE_ROWS)
        if args.profile:
            small = work / "ucr_profile.csv"
            write_ucr_marshall(small, profile_rows, seed=args.seed)
            _log(f"profiling the crimelens ingest on {profile_rows:,} rows")
            try:
                profile = run_job("profile-crimelens", work / "profile.duckdb", csv=small)["profile"]
            except RuntimeError as exc:
                notes.append(f"profile failed: {exc}")
        info = RunInfo(
            command=_command([sys.argv[0], *argv]),
            started=started,
            rows=spec.rows,
            agencies=spec.agencies,
            first_year=spec.first_year,
            last_year=spec.last_year,
            seed=spec.seed,
            file_mb=csv.stat().st_size / 1e6,
            partial_rows=spec.partial_rows,
            missing_rape=spec.missing_rape,
            repeat=args.repeat,
            span=span,
            duckdb_threads=_duckdb_threads(),
            load_at_start=load_at_start,
            profile_rows=profile_rows if profile else None,
            notes=notes,
        )
        incident_text, incident_failed = "", []
        if args.incidents > 0:
            incident_text, incident_failed = run_incident_bench(
                work, rows=args.incidents, repeat=args.incident_repeat, seed=args.seed, spark=not args.no_spark
            )
    text = render(info, machine_info(REPO), ingest, analysis, profile)
    if incident_text:
        text = text.rstrip("\n") + "\n\n" + incident_text + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists():  # keep the sections the other bench scripts measure and write (make bench runs them after)
        from everyday import replace_section

        old = args.out.read_text(encoding="utf-8").splitlines(keepends=True)
        for heading in KEPT_SECTIONS:
            start = next((i for i, line in enumerate(old) if line.rstrip() == heading), None)
            if start is not None:
                end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
                text = replace_section(text, "".join(old[start:end]).rstrip("\n") + "\n", heading)
    args.out.write_text(text, encoding="utf-8")
    _log(f"wrote {args.out} in {time.perf_counter() - t_start:.0f} s")
    failed = [m.key for m in [*ingest.values(), *analysis.values()] if not m.ok] + incident_failed
    if failed:
        _log(f"failed jobs: {', '.join(failed)}")
        return 1
    crimelens = ingest["ingest-crimelens"]
    if args.check and spec.rows == TARGET_ROWS and crimelens.peak_rss_mb > MEMORY_TARGET_MB:
        _log(f"target missed: peak RSS {crimelens.peak_rss_mb:,.0f} MB > {MEMORY_TARGET_MB:,.0f} MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
