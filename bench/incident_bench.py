"""The incident half of ``make bench``: simulated city → ingest, area × week × offence, 150 m grid × week, Gi*.

Called by ``bench/run.py``; returns the Markdown section it renders into ``bench/RESULTS.md``. Each job runs in a
fresh process (``bench/incident_jobs.py``), best of ``repeat``, jobs interleaved run by run, and is compared
with (a) a plain pandas notebook doing the same job and (b) the raw DuckDB SQL for the same query.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_report import Measured

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
JOB_SCRIPT = BENCH / "incident_jobs.py"

INCIDENT_TARGET_ROWS = 10_000_000
SPEEDUP_TARGET = 5.0  # crimelens at least 5× faster than the pandas notebook (aggregation and binning)
FLOOR_TARGET = 1.3  # crimelens within 1.3× of the raw DuckDB SQL
MEMORY_TARGET_MB = 2_000.0
#: Time targets of the analyses at scale (seconds); they were timed asserts in the tests before.
SCALE_TARGETS: dict[str, float] = {"kde-crimelens": 5.0, "knox-crimelens": 10.0, "gi-999-crimelens": 5.0}

GROUPS: dict[str, tuple[str, dict[str, str]]] = {
    "ingest": (
        "Ingest: Chicago-format CSV → DuckDB warehouse",
        {
            "ingest-crimelens": "crimelens ingest --format chicago (validated, keyed upsert, atomic)",
            "ingest-pandas": "(a) notebook: pandas.read_csv + to_datetime + CREATE TABLE AS",
            "ingest-duckdb": "(b) engine floor: DuckDB read_csv → table",
        },
    ),
    "area-week": (
        "Aggregate: community area × week × offence",
        {
            "area-week-crimelens": "crimelens area_counts (Ibis on DuckDB)",
            "area-week-pandas": "(a) notebook: fetch 3 columns + pandas groupby",
            "area-week-duckdb": "(b) engine floor: one DuckDB GROUP BY",
        },
    ),
    "grid-week": (
        "Binning: 150 m grid (equal-area projection) × week",
        {
            "grid-week-crimelens": "crimelens grid_counts (Ibis on DuckDB)",
            "grid-week-pandas": "(a) notebook: fetch + numpy projection + pandas groupby",
            "grid-week-duckdb": "(b) engine floor: the same arithmetic in one DuckDB query",
        },
    ),
    "gi": (
        "Getis-Ord Gi* on the 150 m city grid (all weeks), queen weights, FDR",
        {
            "gi-crimelens": "crimelens getis_ord_gi_star (sparse, vectorised)",
            "gi-pandas": "(a) notebook: libpysal lat2W + esda.G_Local(star=True)",
            "gi-duckdb": "(b) engine floor: Gi* z-scores in DuckDB SQL (3×3 join)",
        },
    ),
    "scale": (
        "Analyses at scale (recorded without a baseline)",
        {
            "kde-crimelens": "crimelens kernel_density: 1,000,000 points, 150 m grid, 400 m bandwidth",
            "knox-crimelens": "crimelens knox_test: 100,000 points, bands 0–50–100–200 m, 99 permutations",
            "gi-999-crimelens": "crimelens getis_ord_gi_star on the 150 m city grid, 999 permutations",
        },
    ),
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_job(job: str, db: Path, csv: Path | None = None, timeout: float = 3600) -> dict[str, Any]:
    cmd = [sys.executable, str(JOB_SCRIPT), job, "--db", str(db)]
    if csv is not None:
        cmd += ["--csv", str(csv)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO, timeout=timeout)
    if done.returncode != 0:
        tail = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(tail[-1] if tail else f"exit status {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _remove(db: Path) -> None:
    for path in db.parent.glob(db.name + "*"):
        if path.is_file():
            path.unlink()


def _measure(
    jobs: dict[str, str], repeat: int, work: Path, *, csv: Path | None = None, db: Path | None = None
) -> dict[str, Measured]:
    out = {key: Measured(key, label) for key, label in jobs.items()}
    for r in range(repeat):
        for key, m in out.items():
            if m.error is not None:
                continue
            target = db if db is not None else work / f"{key}-{r}.duckdb"
            try:
                m.runs.append(run_job(key, target, csv))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                m.error = str(exc)
                _log(f"[{key} {r + 1}/{repeat}] FAILED: {exc}")
                continue
            finally:
                if db is None and not (key == "ingest-crimelens" and r == 0):
                    _remove(target)
            last = m.runs[-1]
            _log(f"[{key} {r + 1}/{repeat}] {last['seconds']:.2f} s, peak RSS {last['peak_rss_mb']:,.0f} MB")
    return out


def simulate(csv: Path, rows: int, seed: int, years: int) -> float:
    """Write the simulated city file with `crimelens simulate`; return its wall time in seconds."""
    exe = Path(sys.executable).with_name("crimelens")
    t0 = time.perf_counter()
    cmd = [str(exe), "simulate", "--incidents", str(rows), "--years", str(years), "--seed", str(seed)]
    subprocess.run([*cmd, "--out", str(csv)], check=True, cwd=REPO, capture_output=True, text=True)
    return time.perf_counter() - t0


def _ratio(job: Measured, base: Measured | None) -> str:
    if base is None or not base.ok or not job.ok:
        return "–"
    return f"{job.seconds / base.seconds:.2f}×"


def _table(group: dict[str, Measured], rows: int) -> list[str]:
    ms = list(group.values())
    pandas = next((m for m in ms if m.key.endswith("-pandas")), None)
    floor = next((m for m in ms if m.key.endswith("-duckdb")), None)
    lines = [
        "| job | time (s), best | all runs (s) | peak RSS (MB) | × (a) notebook | × (b) engine floor | check |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in ms:
        if not m.ok:
            lines.append(f"| {m.label} | failed: {m.error} | | | | | |")
            continue
        runs = ", ".join(f"{float(r['seconds']):.2f}" for r in m.runs)
        lines.append(
            f"| {m.label} | {m.seconds:.2f} | {runs} | {m.peak_rss_mb:,.0f} | {_ratio(m, pandas)} | "
            f"{_ratio(m, floor)} | {m.best.get('check', '')} |"
        )
    phased = [m for m in ms if m.ok and m.best.get("phases")]
    for m in phased:
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in m.best["phases"].items())
        lines.append("")
        lines.append(f"Phases of the best {m.label.split(':')[0]} run: {parts}.")
    return lines


def _verdicts(groups: dict[str, dict[str, Measured]], rows: int) -> list[str]:
    lines = ["### Targets", ""]
    lines.append("| target | measured | met? |")
    lines.append("|---|---:|:---:|")
    for name in ("area-week", "grid-week"):
        g = groups.get(name, {})
        c, p, f = g.get(f"{name}-crimelens"), g.get(f"{name}-pandas"), g.get(f"{name}-duckdb")
        if c and p and c.ok and p.ok:
            speedup = p.seconds / c.seconds
            ok = "yes" if speedup >= SPEEDUP_TARGET else "**no**"
            lines.append(f"| {GROUPS[name][0]}: ≥ {SPEEDUP_TARGET:g}× faster than pandas | {speedup:.1f}× | {ok} |")
        if c and f and c.ok and f.ok:
            ratio = c.seconds / f.seconds
            ok = "yes" if ratio <= FLOOR_TARGET else "**no**"
            lines.append(f"| {GROUPS[name][0]}: ≤ {FLOOR_TARGET:g}× raw DuckDB | {ratio:.2f}× | {ok} |")
    for name, (title, _) in GROUPS.items():
        if name in ("area-week", "grid-week", "scale"):
            continue
        g = groups.get(name, {})
        c, f = g.get(f"{name}-crimelens"), g.get(f"{name}-duckdb")
        if c and f and c.ok and f.ok:
            ratio = c.seconds / f.seconds
            ok = "yes" if ratio <= FLOOR_TARGET else "**no**"
            lines.append(f"| {title}: ≤ {FLOOR_TARGET:g}× raw DuckDB | {ratio:.2f}× | {ok} |")
    notes: list[str] = []
    for name in ("area-week", "grid-week"):
        g = groups.get(name, {})
        c, p, f = g.get(f"{name}-crimelens"), g.get(f"{name}-pandas"), g.get(f"{name}-duckdb")
        if c and p and f and c.ok and p.ok and f.ok and p.seconds / c.seconds < SPEEDUP_TARGET:
            rows_out = int(c.best.get("rows", 0))
            notes.append(
                f"- {GROUPS[name][0]}: the raw DuckDB query itself is only {p.seconds / f.seconds:.1f}× faster than "
                f"the pandas notebook here, so no implementation on this engine reaches {SPEEDUP_TARGET:g}×: the "
                f"job returns {rows_out:,} rows (cell-weeks) to Python, sorted, and moving that result dominates. "
                "The numpy notebook is a strong baseline (vectorised projection, one groupby)."
            )
    for key, limit in SCALE_TARGETS.items():
        m = groups.get("scale", {}).get(key)
        if m and m.ok:
            ok = "yes" if m.seconds <= limit else "**no**"
            lines.append(f"| {m.label.removeprefix('crimelens ')}: ≤ {limit:g} s | {m.seconds:.2f} s | {ok} |")
    peak = max((m.peak_rss_mb for g in groups.values() for m in g.values() if m.ok and "crimelens" in m.key), default=0)
    ok = "yes" if peak <= MEMORY_TARGET_MB else "**no**"
    target = f"peak memory of every crimelens job ({rows:,} rows) ≤ {MEMORY_TARGET_MB:,.0f} MB"
    lines.append(f"| {target} | {peak:,.0f} MB | {ok} |")
    if notes:
        lines += ["", "Where a target is missed:", "", *notes]
    return lines


def run_incident_bench(
    work: Path, *, rows: int, repeat: int, seed: int, years: int = 5, spark: bool = True
) -> tuple[str, list[str]]:
    """Run every incident job; return (Markdown section, names of failed jobs)."""
    csv = work / "simulated_city.csv"
    _log(f"simulating {rows:,} incidents over {years} years (seed {seed})")
    sim_seconds = simulate(csv, rows, seed, years)
    _log(f"simulated in {sim_seconds:.1f} s ({csv.stat().st_size / 1e9:.2f} GB)")
    groups: dict[str, dict[str, Measured]] = {}
    groups["ingest"] = _measure(GROUPS["ingest"][1], repeat, work, csv=csv)
    warehouse = work / "ingest-crimelens-0.duckdb"
    if groups["ingest"]["ingest-crimelens"].ok:
        for name in ("area-week", "grid-week", "gi", "scale"):
            groups[name] = _measure(GROUPS[name][1], repeat, work, db=warehouse)
    spark_run: Measured | None = None
    if spark and warehouse.exists():
        spark_jobs = {"area-week-spark": "crimelens area_counts on local PySpark (2 cores)"}
        spark_run = _measure(spark_jobs, 1, work, db=warehouse)["area-week-spark"]
    lines = [
        "## Incidents: simulated city",
        "",
        f"- {rows:,} simulated incidents (`crimelens simulate --incidents {rows} --years {years} --seed {seed}`, "
        f"Chicago export schema, {csv.stat().st_size / 1e9:.2f} GB of CSV), written in {sim_seconds:.1f} s. "
        "The data are **simulated**: a seeded self-exciting point process, not real crime.",
        f"- Each job runs {repeat} time(s) in a fresh process (`bench/incident_jobs.py`), best run kept; time excludes "
        "interpreter start-up and imports. Analysis jobs read the warehouse written by the first crimelens ingest. "
        "**×** = this job's best time / the baseline's best time (< 1 is faster). **check** is a total that must "
        "agree across the three forms of a job (incidents counted, or cells with z > 0 for Gi*).",
        "- The analyses at scale run on their own seeded points (normal, sd 5 km, for the density; uniform over "
        "25 × 25 km and one year for Knox), except Gi*, which reads the city grid; their **check** is the density's "
        "integral (≈ the points inside the 40 × 40 km extent), the Knox pairs within 200 m, and cells with z > 0.",
        "",
    ]
    for name, (title, _) in GROUPS.items():
        if name not in groups:
            lines += [f"### {title}", "", "not run: the crimelens ingest failed", ""]
            continue
        lines += [f"### {title}", "", *_table(groups[name], rows), ""]
    lines += _verdicts(groups, rows)
    lines.append("")
    if spark_run is not None:
        lines += ["### Local Spark run (same Ibis expressions, `--engine spark`)", ""]
        if spark_run.ok:
            floor = groups.get("area-week", {}).get("area-week-crimelens")
            phases = ", ".join(f"{k} {v:.1f} s" for k, v in spark_run.best.get("phases", {}).items())
            rel = f", {spark_run.seconds / floor.seconds:.1f}× the DuckDB engine" if floor and floor.ok else ""
            lines.append(
                f"Community area × week × offence on PySpark `local[2]`: {spark_run.seconds:.1f} s ({phases}){rel}; "
                f"peak RSS of the Python driver {spark_run.peak_rss_mb:,.0f} MB (the JVM is a separate process); "
                f"check {spark_run.best.get('check')}. Spark is slower on one 2-core machine; the point is that the "
                "same pipeline runs on a cluster unchanged."
            )
        else:
            lines.append(f"failed: {spark_run.error}")
        lines.append("")
    failed = [m.key for g in groups.values() for m in g.values() if not m.ok]
    if spark_run is not None and not spark_run.ok:
        failed.append(spark_run.key)
    _remove(warehouse)
    return "\n".join(lines), failed
