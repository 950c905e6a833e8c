"""Incident benchmark jobs, one per process so each peak RSS is that job's own.

Run as ``python bench/incident_jobs.py JOB --db DB [--csv CSV]``; prints one JSON object on stdout with
``seconds`` (the timed work, imports excluded), ``phases``, ``rows``, ``peak_rss_mb`` and a ``check``
value (a total or checksum) that must agree between crimelens and its baselines for the same job.

Every job has three forms: ``*-crimelens`` (the library call an analyst's command makes), ``*-pandas``
(a plain pandas notebook doing the same job) and ``*-duckdb`` (the raw DuckDB SQL for the same query: the
engine's floor). ``*-spark`` runs the crimelens aggregation on the local PySpark engine.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["JOBS", "main"]

Job = Callable[[argparse.Namespace], dict[str, Any]]
CELL_M = 150.0
R_AUTHALIC = 6_371_007.181
CHICAGO_FORMAT = "%m/%d/%Y %I:%M:%S %p"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# -- ingest ------------------------------------------------------------------------------------------
def ingest_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    """crimelens ingest --format chicago: validated, keyed, atomic upsert into the warehouse."""
    from crimelens.warehouse import connect
    from crimelens.warehouse import load_incidents as load_incident_file

    t0 = time.perf_counter()
    con = connect(args.db)
    report = load_incident_file(con, Path(args.csv), "chicago", simulated=True)
    con.close()
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "rows": report.rows_loaded, "check": report.rows_loaded}


def ingest_pandas(args: argparse.Namespace) -> dict[str, Any]:
    """Notebook: pandas.read_csv, parse the dates, CREATE TABLE AS from the frame; no validation, no keys."""
    import duckdb
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_csv(args.csv, low_memory=False)
    df["Date"] = pd.to_datetime(df["Date"], format=CHICAGO_FORMAT)
    t1 = time.perf_counter()
    con = duckdb.connect(args.db)
    con.register("df", df)
    con.execute("CREATE TABLE incidents AS SELECT * FROM df")
    con.close()
    t2 = time.perf_counter()
    phases = {"read_csv": t1 - t0, "to DuckDB": t2 - t1}
    return {"seconds": t2 - t0, "phases": phases, "rows": len(df), "check": len(df)}


def ingest_duckdb(args: argparse.Namespace) -> dict[str, Any]:
    """Engine floor: DuckDB read_csv straight into a table (typed by its sniffer), nothing else."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(args.db)
    con.execute("CREATE TABLE incidents AS SELECT * FROM read_csv(?, timestampformat = ?)", [args.csv, CHICAGO_FORMAT])
    row = con.execute("SELECT count(*) FROM incidents").fetchone()
    con.close()
    t1 = time.perf_counter()
    n = int(row[0]) if row else 0
    return {"seconds": t1 - t0, "rows": n, "check": n}


# -- area × week × offence ----------------------------------------------------------------------------
def _frame_check(df: Any, column: str) -> dict[str, Any]:
    return {"rows": len(df), "check": int(df[column].sum())}


def _preload_ibis() -> None:
    """Import Ibis and its DuckDB backend before timing (imports are excluded for every job)."""
    import ibis

    ibis.duckdb.connect().disconnect()


def area_week_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    from crimelens.analysis.incidents.aggregate import area_counts
    from crimelens.engine import incident_table

    _preload_ibis()
    t0 = time.perf_counter()
    with incident_table(args.db, "duckdb") as t:
        out = area_counts(t, area="community_area", period="week", by_offence=True)
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, **_frame_check(out, "incidents")}


def area_week_spark(args: argparse.Namespace) -> dict[str, Any]:
    from crimelens.analysis.incidents.aggregate import area_counts
    from crimelens.engine import incident_table

    t0 = time.perf_counter()
    with incident_table(args.db, "spark") as t:
        t1 = time.perf_counter()
        out = area_counts(t, area="community_area", period="week", by_offence=True)
    t2 = time.perf_counter()
    return {
        "seconds": t2 - t0,
        "phases": {"session + Parquet snapshot": t1 - t0, "aggregate": t2 - t1},
        **_frame_check(out, "incidents"),
    }


def area_week_pandas(args: argparse.Namespace) -> dict[str, Any]:
    """Notebook: pull the three columns into pandas, then groupby with weeks starting Monday."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(args.db, read_only=True)
    df = con.sql("SELECT community_area, occurred_at, offence FROM incidents").df()
    con.close()
    t1 = time.perf_counter()
    week = df["occurred_at"].dt.to_period("W-SUN").dt.start_time
    out = df.groupby(["community_area", week, "offence"]).size().reset_index(name="incidents")
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "phases": {"fetch": t1 - t0, "groupby": t2 - t1}, **_frame_check(out, "incidents")}


def area_week_duckdb(args: argparse.Namespace) -> dict[str, Any]:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(args.db, read_only=True)
    out = con.sql(
        "SELECT community_area, date_trunc('week', occurred_at) AS period_start, offence, count(*) AS incidents "
        "FROM incidents GROUP BY ALL ORDER BY ALL"
    ).df()
    con.close()
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, **_frame_check(out, "incidents")}


# -- 150 m grid × week ---------------------------------------------------------------------------------
def grid_week_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    from crimelens.analysis.incidents.aggregate import grid_counts
    from crimelens.engine import incident_table

    _preload_ibis()
    t0 = time.perf_counter()
    with incident_table(args.db, "duckdb") as t:
        out = grid_counts(t, cell_m=CELL_M, period="week").table
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, **_frame_check(out, "incidents")}


def _origin(con: Any) -> tuple[float, float, float, float]:
    """The grid crimelens uses (projection centre lon0, lat0 and grid corner x0, y0 in metres), so that all three
    forms of the job bin into the same cells: centre = extent midpoint rounded to 0.01°, corner = south-west
    corner rounded down to 1 km. Untimed in effect (one tiny query)."""
    row = con.execute(
        "SELECT min(longitude), max(longitude), min(latitude), max(latitude) FROM incidents "
        "WHERE latitude IS NOT NULL AND longitude IS NOT NULL"
    ).fetchall()[0]
    lon_min, lon_max, lat_min, lat_max = (float(v) for v in row)
    lon0, lat0 = round((lon_min + lon_max) / 2, 2), round((lat_min + lat_max) / 2, 2)
    k = math.cos(math.radians(lat0))
    x0 = math.floor(R_AUTHALIC * k * math.radians(lon_min - lon0) / 1000) * 1000
    y0 = math.floor(R_AUTHALIC * math.sin(math.radians(lat_min)) / k / 1000) * 1000
    return lon0, lat0, x0, y0


def grid_week_pandas(args: argparse.Namespace) -> dict[str, Any]:
    """Notebook: pull coordinates and times, project with numpy (same equal-area plane), floor, groupby."""
    import duckdb
    import numpy as np

    t0 = time.perf_counter()
    con = duckdb.connect(args.db, read_only=True)
    lon0, lat0, x_min, y_min = _origin(con)
    df = con.sql(
        "SELECT latitude, longitude, occurred_at FROM incidents WHERE latitude IS NOT NULL AND longitude IS NOT NULL"
    ).df()
    con.close()
    t1 = time.perf_counter()
    k = R_AUTHALIC * math.cos(math.radians(lat0))
    x = k * np.radians(df["longitude"].to_numpy() - lon0)
    y = R_AUTHALIC * np.sin(np.radians(df["latitude"].to_numpy())) / math.cos(math.radians(lat0))
    df["cell_x"] = np.floor((x - x_min) / CELL_M).astype("int64")
    df["cell_y"] = np.floor((y - y_min) / CELL_M).astype("int64")
    df["week"] = df["occurred_at"].dt.to_period("W-SUN").dt.start_time
    out = df.groupby(["cell_x", "cell_y", "week"]).size().reset_index(name="incidents")
    t2 = time.perf_counter()
    phases = {"fetch": t1 - t0, "bin + groupby": t2 - t1}
    return {"seconds": t2 - t0, "phases": phases, **_frame_check(out, "incidents")}


def grid_week_duckdb(args: argparse.Namespace) -> dict[str, Any]:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(args.db, read_only=True)
    lon0, lat0, x_min, y_min = _origin(con)
    k = R_AUTHALIC * math.cos(math.radians(lat0))
    out = con.execute(
        "SELECT floor((? * radians(longitude - ?) - ?) / ?)::BIGINT AS cell_x, "
        "floor((? * sin(radians(latitude)) / ? - ?) / ?)::BIGINT AS cell_y, "
        "date_trunc('week', occurred_at) AS week, count(*) AS incidents FROM incidents "
        "WHERE latitude IS NOT NULL AND longitude IS NOT NULL GROUP BY ALL ORDER BY ALL",
        [k, lon0, x_min, CELL_M, R_AUTHALIC, math.cos(math.radians(lat0)), y_min, CELL_M],
    ).df()
    con.close()
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, **_frame_check(out, "incidents")}


# -- Gi* on the city grid (all weeks together) --------------------------------------------------------
def _city_grid(db: str) -> Any:
    """The 150 m grid totals, shared input of the three Gi* jobs (not timed)."""
    from crimelens.analysis.incidents.aggregate import grid_counts
    from crimelens.engine import incident_table

    with incident_table(db, "duckdb") as t:
        return grid_counts(t, cell_m=CELL_M, period=None).table


def gi_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    from crimelens.analysis.incidents.hotspots import getis_ord_gi_star

    grid = _city_grid(args.db)
    t0 = time.perf_counter()
    # the full rectangle, as the two baselines (the default study area, the footprint, tests fewer cells)
    res = getis_ord_gi_star(grid, neighbours="queen", permutations=0, alpha=0.05, fdr=True, study_area="rectangle")
    t1 = time.perf_counter()
    table = res.table
    hot = int((table["z"] > 0).sum())
    return {"seconds": t1 - t0, "rows": len(table), "check": hot, "cells": len(table)}


def gi_pandas(args: argparse.Namespace) -> dict[str, Any]:
    """Notebook: libpysal queen weights on the full lattice, then esda.G_Local(star=True), no permutations."""
    import numpy as np
    from esda.getisord import G_Local
    from libpysal.weights import lat2W

    grid = _city_grid(args.db)
    t0 = time.perf_counter()
    cx = grid["cell_x"].to_numpy() - int(grid["cell_x"].min())  # the cells' bounding rectangle, as crimelens
    cy = grid["cell_y"].to_numpy() - int(grid["cell_y"].min())
    nx, ny = int(cx.max()) + 1, int(cy.max()) + 1
    y = np.zeros(nx * ny)
    y[cy * nx + cx] = grid["incidents"].to_numpy()
    w = lat2W(ny, nx, rook=False)
    g = G_Local(y, w, transform="B", star=True, permutations=0)
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "rows": nx * ny, "check": int((g.Zs > 0).sum()), "cells": nx * ny}


def gi_duckdb(args: argparse.Namespace) -> dict[str, Any]:
    """Engine floor: Gi* z-scores in SQL, neighbour sums by a join over the 3×3 block of each cell."""
    import duckdb

    grid = _city_grid(args.db)
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.register("g", grid[["cell_x", "cell_y", "incidents"]])
    row = con.execute(
        """
        WITH dims AS (SELECT min(cell_x) AS x0, max(cell_x) + 1 AS x1, min(cell_y) AS y0, max(cell_y) + 1 AS y1 FROM g),
        cells AS (SELECT x AS cell_x, y AS cell_y FROM dims, range(x0, x1) t(x), range(y0, y1) u(y)),
        vals AS (SELECT c.cell_x, c.cell_y, coalesce(g.incidents, 0)::DOUBLE AS v
                 FROM cells c LEFT JOIN g USING (cell_x, cell_y)),
        stats AS (SELECT count(*)::DOUBLE AS n, avg(v) AS m, sqrt(avg(v * v) - avg(v) ^ 2) AS s FROM vals),
        nb AS (SELECT a.cell_x, a.cell_y, sum(b.v) AS lag, count(*)::DOUBLE AS w
               FROM vals a JOIN vals b ON b.cell_x BETWEEN a.cell_x - 1 AND a.cell_x + 1
                                       AND b.cell_y BETWEEN a.cell_y - 1 AND a.cell_y + 1
               GROUP BY a.cell_x, a.cell_y)
        SELECT count(*), count(*) FILTER (WHERE (lag - m * w) / (s * sqrt((n * w - w * w) / (n - 1))) > 0)
        FROM nb, stats
        """
    ).fetchone()
    con.close()
    t1 = time.perf_counter()
    cells, hot = (int(v) for v in row) if row else (0, 0)
    return {"seconds": t1 - t0, "rows": cells, "check": hot, "cells": cells}


# -- analyses at scale (recorded without a baseline; formerly timed asserts in the tests) ---------------
#: Sizes of the scale jobs: fixed, whatever the number of simulated incidents (each takes about a second).
KDE_POINTS = 1_000_000
KNOX_POINTS = 100_000


def kde_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    """kernel_density of seeded normal points (sd 5 km) on a 150 m grid over 40 × 40 km, 400 m bandwidth."""
    import numpy as np
    import pandas as pd

    from crimelens.analysis.incidents.spatial import kernel_density

    n = KDE_POINTS
    rng = np.random.default_rng(0)
    pts = pd.DataFrame({"x_m": rng.normal(0, 5000, n), "y_m": rng.normal(0, 5000, n)})
    t0 = time.perf_counter()
    res = kernel_density(pts, bandwidth_m=400, cell_m=CELL_M, extent=(-20_000, -20_000, 20_000, 20_000))
    t1 = time.perf_counter()
    # the surface integrates to the number of points (density per km² × cell area in km²)
    mass = float(res.table["density"].sum()) * (CELL_M / 1000) ** 2
    return {"seconds": t1 - t0, "rows": n, "check": round(mass), "points": n}


def knox_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    """knox_test of seeded uniform points over 25 × 25 km and one year, bands 0–50–100–200 m, 99 permutations."""
    import numpy as np
    import pandas as pd

    from crimelens.analysis.incidents.knox import knox_test

    n = KNOX_POINTS
    rng = np.random.default_rng(0)
    pts = pd.DataFrame({"x_m": rng.uniform(0, 25_000, n), "y_m": rng.uniform(0, 25_000, n)})
    pts["occurred_at"] = pd.Timestamp("2022-03-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    t0 = time.perf_counter()
    res = knox_test(pts, distance_bands_m=(0, 50, 100, 200), permutations=99)
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "rows": n, "check": res.n_pairs, "points": n}


def gi_permutations_crimelens(args: argparse.Namespace) -> dict[str, Any]:
    """getis_ord_gi_star on the 150 m city grid with 999 permutations (conditional randomisation)."""
    from crimelens.analysis.incidents.hotspots import getis_ord_gi_star

    grid = _city_grid(args.db)
    t0 = time.perf_counter()
    res = getis_ord_gi_star(
        grid, neighbours="queen", permutations=999, seed=1, alpha=0.05, fdr=True, study_area="rectangle"
    )
    t1 = time.perf_counter()
    table = res.table
    return {"seconds": t1 - t0, "rows": len(table), "check": int((table["z"] > 0).sum()), "cells": len(table)}


JOBS: dict[str, Job] = {
    "ingest-crimelens": ingest_crimelens,
    "ingest-pandas": ingest_pandas,
    "ingest-duckdb": ingest_duckdb,
    "area-week-crimelens": area_week_crimelens,
    "area-week-pandas": area_week_pandas,
    "area-week-duckdb": area_week_duckdb,
    "area-week-spark": area_week_spark,
    "grid-week-crimelens": grid_week_crimelens,
    "grid-week-pandas": grid_week_pandas,
    "grid-week-duckdb": grid_week_duckdb,
    "gi-crimelens": gi_crimelens,
    "gi-pandas": gi_pandas,
    "gi-duckdb": gi_duckdb,
    "kde-crimelens": kde_crimelens,
    "knox-crimelens": knox_crimelens,
    "gi-999-crimelens": gi_permutations_crimelens,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one incident benchmark job and print its measurements as JSON.")
    parser.add_argument("job", choices=sorted(JOBS))
    parser.add_argument("--csv", help="input CSV (ingest jobs)")
    parser.add_argument("--db", required=True, help="DuckDB file: created by ingest jobs, read by the others")
    args = parser.parse_args(argv)
    out = JOBS[args.job](args)
    out["peak_rss_mb"] = _rss_mb()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
