"""Benchmark jobs, one per process so each peak RSS is that job's own.

Run as ``python bench/bench_jobs.py JOB [options]``; prints one JSON object on stdout:
``seconds`` (the timed work, imports excluded), ``phases`` (seconds per step), ``rows``,
``peak_rss_mb`` (``ru_maxrss`` of this process at the end) and ``import_rss_mb`` (after imports,
before the work), plus job-specific facts. Every timed block includes opening and closing the
DuckDB file it writes, so a checkpoint to disk is part of each ingest.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["JOBS", "main"]

Job = Callable[[argparse.Namespace], dict[str, Any]]
_TOP = 10  # ranked ids returned by the analysis jobs, to check they agree


def _rss_mb() -> float:
    """Peak resident set size of this process so far, in MB of 10**6 bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# -- ingest ------------------------------------------------------------------------------------------
def ingest_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    """crimelens: strict streaming parse with per-row validation, then one atomic load."""
    from crimelens.sources import read
    from crimelens.warehouse import connect, load_parsed

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    con = connect(args.db)
    t1 = time.perf_counter()
    parsed = read(Path(args.csv), "ucr-marshall")
    t2 = time.perf_counter()
    report = load_parsed(con, parsed)
    t3 = time.perf_counter()
    con.close()
    t4 = time.perf_counter()
    return {
        "seconds": t4 - t0,
        "phases": {"connect + migrate": t1 - t0, "parse + validate": t2 - t1, "load": t3 - t2, "close": t4 - t3},
        "rows": report.rows_loaded,
        "issues": len(report.issues),
        "rejected": report.rows_rejected,
        "import_rss_mb": rss0,
    }


def ingest_pandas(args: argparse.Namespace) -> dict[str, Any]:
    """The typical notebook: ``pandas.read_csv`` then ``CREATE TABLE AS`` from the frame, no validation."""
    import duckdb
    import pandas as pd

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    df = pd.read_csv(args.csv)
    t1 = time.perf_counter()
    con = duckdb.connect(args.db)
    con.register("df", df)
    con.execute("CREATE TABLE t AS SELECT * FROM df")
    fetched = con.execute("SELECT count(*) FROM t").fetchone()
    con.close()
    t2 = time.perf_counter()
    return {
        "seconds": t2 - t0,
        "phases": {"pandas.read_csv": t1 - t0, "write to DuckDB": t2 - t1},
        "rows": int(fetched[0]) if fetched else 0,
        "import_rss_mb": rss0,
    }


def ingest_duckdb(args: argparse.Namespace) -> dict[str, Any]:
    """The engine floor: DuckDB's own multi-threaded ``read_csv`` straight into a table."""
    import duckdb

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    con = duckdb.connect(args.db)
    con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [args.csv])
    fetched = con.execute("SELECT count(*) FROM t").fetchone()
    con.close()
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "phases": {}, "rows": int(fetched[0]) if fetched else 0, "import_rss_mb": rss0}


# -- analysis: span rate ranking -----------------------------------------------------------------------
def _warm(con: Any) -> None:
    """Pay one-off costs (DuckDB's lazy pandas import, the first query) before the clock starts."""
    import pandas  # noqa: F401

    con.execute("SELECT count(*) FROM jurisdiction_year").fetchone()
    con.execute("SELECT 1 AS x").df()


def rank_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    """crimelens ``rank(by='rate', start, end)`` over the loaded warehouse."""
    from crimelens.analysis.jurisdictions.ranking import rank
    from crimelens.warehouse import connect

    con = connect(args.db, read_only=True)
    _warm(con)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    result = rank(con, offence="violent_crime", by="rate", start=args.start, end=args.end)
    t1 = time.perf_counter()
    con.close()
    table = result.table
    return {
        "seconds": t1 - t0,
        "phases": {},
        "rows": len(table),
        "top": [str(x) for x in table["jurisdiction_id"].head(_TOP)],
        "import_rss_mb": rss0,
    }


_NOTEBOOK_SQL = "SELECT jy.*, j.name, j.kind FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)"


def rank_pandas(args: argparse.Namespace) -> dict[str, Any]:
    """A plain pandas ranking: fetch the table, filter the span, groupby, rate, sort (same definition)."""
    import duckdb

    con = duckdb.connect(args.db, read_only=True)
    _warm(con)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    df = con.execute(_NOTEBOOK_SQL).df()
    t1 = time.perf_counter()
    sel = df[df["year"].between(args.start, args.end) & (df["kind"] != "nation")]
    sel = sel.dropna(subset=["violent_crime", "population"])
    agg = sel.groupby(["jurisdiction_id", "name"], as_index=False)[["violent_crime", "population"]].sum()
    agg["rate_per_100k"] = agg["violent_crime"] / agg["population"] * 100_000
    agg = agg.sort_values(["rate_per_100k", "name"], ascending=[False, True]).reset_index(drop=True)
    t2 = time.perf_counter()
    con.close()
    return {
        "seconds": t2 - t0,
        "phases": {"fetch into pandas": t1 - t0, "filter + groupby + sort": t2 - t1},
        "rows": len(agg),
        "top": [str(x) for x in agg["jurisdiction_id"].head(_TOP)],
        "import_rss_mb": rss0,
    }


_RANK_SQL = """
SELECT jy.jurisdiction_id, j.name, sum(jy.violent_crime) * 100000.0 / sum(jy.population) AS rate_per_100k
FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)
WHERE jy.year BETWEEN ? AND ? AND j.kind <> 'nation'
  AND jy.violent_crime IS NOT NULL AND jy.population IS NOT NULL
GROUP BY jy.jurisdiction_id, j.name
ORDER BY rate_per_100k DESC, j.name
"""


def rank_duckdb(args: argparse.Namespace) -> dict[str, Any]:
    """The engine floor: the same ranking as one DuckDB query, result fetched into pandas."""
    import duckdb

    con = duckdb.connect(args.db, read_only=True)
    _warm(con)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    table = con.execute(_RANK_SQL, [args.start, args.end]).df()
    t1 = time.perf_counter()
    con.close()
    return {
        "seconds": t1 - t0,
        "phases": {},
        "rows": len(table),
        "top": [str(x) for x in table["jurisdiction_id"].head(_TOP)],
        "import_rss_mb": rss0,
    }


def trends_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    """crimelens ``long_run_trends(start, end)``: Theil–Sen + Mann–Kendall per jurisdiction (no baseline)."""
    from crimelens.analysis.jurisdictions.trends import long_run_trends
    from crimelens.warehouse import connect

    con = connect(args.db, read_only=True)
    _warm(con)
    import scipy.stats  # noqa: F401  (imported lazily by the analysis; keep it out of the timing)

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    result = long_run_trends(con, offence="violent_crime", start=args.start, end=args.end, alpha=0.05)
    t1 = time.perf_counter()
    con.close()
    return {"seconds": t1 - t0, "phases": {}, "rows": len(result.table), "import_rss_mb": rss0}


def _where(path: str) -> str:
    """A profile entry's file, shortened to its package-relative path."""
    for marker in ("/site-packages/", "/src/", "/lib/python3."):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def profile_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    """cProfile of the crimelens ingest: the functions with the most own time (``tottime``)."""
    import cProfile
    import pstats

    from crimelens.sources import read
    from crimelens.warehouse import connect, load_parsed

    con = connect(args.db)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    report = load_parsed(con, read(Path(args.csv), "ucr-marshall"))
    profiler.disable()
    t1 = time.perf_counter()
    con.close()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    top = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[: args.top]
    entries = [
        {
            "function": name if file == "~" else f"{_where(file)}:{line}({name})",
            "calls": v[1],
            "tottime": v[2],
            "cumtime": v[3],
            "share": v[2] / total if total else 0.0,
        }
        for (file, line, name), v in top
    ]
    return {"seconds": t1 - t0, "phases": {}, "rows": report.rows_loaded, "profile": entries, "import_rss_mb": 0.0}


JOBS: dict[str, Job] = {
    "ingest-crimelens": ingest_crimelens,
    "ingest-pandas": ingest_pandas,
    "ingest-duckdb": ingest_duckdb,
    "rank-crimelens": rank_crimelens,
    "rank-pandas": rank_pandas,
    "rank-duckdb": rank_duckdb,
    "trends-crimelens": trends_crimelens,
    "profile-crimelens": profile_crimelens,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark job and print its measurements as JSON.")
    parser.add_argument("job", choices=sorted(JOBS))
    parser.add_argument("--csv", help="input CSV (ingest jobs)")
    parser.add_argument("--db", required=True, help="DuckDB file: created by ingest jobs, read by analysis jobs")
    parser.add_argument("--start", type=int, help="first year of the span (analysis jobs)")
    parser.add_argument("--end", type=int, help="last year of the span (analysis jobs)")
    parser.add_argument("--top", type=int, default=15, help="profile entries to report (profile job)")
    args = parser.parse_args(argv)
    out = JOBS[args.job](args)
    out["peak_rss_mb"] = _rss_mb()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
