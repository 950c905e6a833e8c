"""Time crimelens' everyday commands on the real data against DuckDB floors measured in the same run.

``make bench-everyday`` runs ``.venv/bin/python bench/everyday.py``. It builds a warehouse in a temporary folder
with the real CLI (``crimelens ingest`` / ``crimelens areas``) from the shared data (``$CRIMELENS_DATA``, default
``../shared/data`` beside the repository): the Marshall UCR file, Chicago 2022 with its community areas, and
Toronto MCI 2014–19. Then each everyday command runs as a fresh process (``.venv/bin/crimelens CMD --db W``,
stdout to /dev/null): one warm-up run, not counted, then the median of ``--repeat`` (5) runs. Beside each command
a **floor** is measured the same way: a fresh ``python -c`` process that imports duckdb, opens the warehouse
read-only, runs the equivalent DuckDB queries (:data:`FLOORS`, SQL kept here beside each floor, parameters bound)
and fetches every row. Peak RSS is ``ru_maxrss`` of each process (``os.wait4``).

The table goes into the "## Everyday commands" section of ``bench/RESULTS.md`` (that section is replaced, the
rest of the file kept). ``--quick`` (one run each, no warm-up, floors included) is the smoke-test form.
Exit status: 0 when every command and floor ran, 1 when one failed (or, with ``--check``, a target was missed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_report import machine_info

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
HEADING = "## Everyday commands"
REPEAT = 5
#: Targets (issue 7, scope 10): within 2.5× of the floor, and 1 s allowed where the floor is under 0.4 s.
RATIO_TARGET = 2.5
SMALL_FLOOR_S = 0.4
SMALL_FLOOR_TARGET_S = 1.0
REPORT_TARGET_S = 5.0

#: The shared files, relative to the data folder: (path, how it is loaded).
MARSHALL = "marshall_ucr_crime_1975_2015/ucr_crime_1975_2015.csv"
CHICAGO = "chicago_crimes_2022_slim/crimes-2022-slim.csv.gz"
CHICAGO_AREAS = "chicago_community_areas/chicago_community_areas_acs2014.geojson"
TORONTO = "toronto_mci_2014_2019/toronto_mci_2014_2019.csv.gz"

#: Radius (m) of the authalic sphere, as crimelens.geo.AUTHALIC_RADIUS_M (kept literal: floors import duckdb only).
AUTHALIC_RADIUS_M = 6_371_007.181
CELL_M = 150.0  # the `cell_m` setting's default, used by hotspots, findings and the report

# -- floor queries ----------------------------------------------------------------------------------------
#: `loads`: the load table as it is.
LOADS_SQL = "SELECT * FROM loads"

#: `rank`: the latest year's violent-crime rate per 100,000 of every jurisdiction (nation left out), highest first.
RANK_SQL = """
SELECT jy.jurisdiction_id, j.name, jy.violent_crime, jy.population,
       jy.violent_crime * 1e5 / jy.population AS rate
FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)
WHERE jy.source = ? AND j.kind <> 'nation' AND jy.violent_crime IS NOT NULL AND jy.population > 0
  AND jy.year = (SELECT max(year) FROM jurisdiction_year WHERE source = ? AND violent_crime IS NOT NULL)
ORDER BY rate DESC
"""

#: `trends`: the source's violent-crime rate panel (jurisdiction, year, rate), nation left out, ordered.
TRENDS_SQL = """
SELECT jy.jurisdiction_id, jy.year, jy.violent_crime * 1e5 / jy.population AS rate
FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id)
WHERE jy.source = ? AND j.kind <> 'nation'
ORDER BY jy.jurisdiction_id, jy.year
"""

#: `incidents when`: counts by weekday (0 = Monday) × hour; incidents known to the day only have no hour.
WHEN_SQL = """
SELECT isodow(occurred_at) - 1 AS weekday, hour(occurred_at) AS hour, count(*) AS incidents
FROM incidents
WHERE source = ? AND time_precision <> 'day'
GROUP BY ALL ORDER BY weekday, hour
"""

#: `incidents areas` on Toronto: counts by neighbourhood (no area populations are loaded for it), busiest first.
AREAS_SQL = """
SELECT neighbourhood AS area_id, count(*) AS incidents
FROM incidents
WHERE source = ? AND neighbourhood IS NOT NULL
GROUP BY ALL ORDER BY incidents DESC, area_id
"""

#: The report's areas on Chicago: counts by community area with the loaded populations, rate per 100,000.
AREA_RATES_SQL = """
WITH c AS (
    SELECT community_area AS area_id, count(*) AS incidents
    FROM incidents WHERE source = ? AND community_area IS NOT NULL GROUP BY ALL
)
SELECT c.area_id, a.name, c.incidents, c.incidents * 1e5 / a.population AS rate
FROM c LEFT JOIN areas a ON a.area_kind = 'community_area' AND a.area_id = c.area_id
ORDER BY c.incidents DESC, c.area_id
"""

#: `incidents hotspots`: incidents per 150 m cell. The equivalent of crimelens' binning, in one query: the
#: source's pinned origin (``grid_origins``) and the same equal-area projection as crimelens.geo
#: (x = R·cos φ0·(λ − λ0), y = R·sin φ / cos φ0, radians), then ⌊(x − x0) / c⌋, ⌊(y − y0) / c⌋. The Gi* statistic
#: and its permutations are computation on these counts, not a query, so the floor stops here.
GRID_SQL = """
SELECT floor((radians(i.longitude - g.lon0) * ? * cos(radians(g.lat0)) - g.x0) / ?)::BIGINT AS cell_x,
       floor((sin(radians(i.latitude)) * ? / cos(radians(g.lat0)) - g.y0) / ?)::BIGINT AS cell_y,
       count(*) AS incidents
FROM incidents i JOIN grid_origins g USING (source)
WHERE i.source = ? AND i.latitude IS NOT NULL AND i.longitude IS NOT NULL
GROUP BY ALL ORDER BY cell_x, cell_y
"""

Query = tuple[str, list[object]]


def _rank(source: str) -> Query:
    return RANK_SQL, [source, source]


def _trends(source: str) -> Query:
    return TRENDS_SQL, [source]


def _when(source: str) -> Query:
    return WHEN_SQL, [source]


def _grid(source: str) -> Query:
    return GRID_SQL, [AUTHALIC_RADIUS_M, CELL_M, AUTHALIC_RADIUS_M, CELL_M, source]


#: Each floor: what it stands for and the queries one fresh process runs (in order, each result fetched).
FLOORS: dict[str, tuple[str, list[Query]]] = {
    "loads": ("`SELECT * FROM loads`", [(LOADS_SQL, [])]),
    "rank": ("the latest year's rate ranking (`RANK_SQL`)", [_rank("ucr-marshall")]),
    "trends": ("the rate panel, jurisdiction × year (`TRENDS_SQL`)", [_trends("ucr-marshall")]),
    "findings": (
        "ranking of ucr-marshall + hour × weekday counts of chicago and toronto-mci + 150 m cell counts of "
        "toronto-mci (chicago has no coordinates)",
        [_rank("ucr-marshall"), _when("chicago"), _when("toronto-mci"), _grid("toronto-mci")],
    ),
    "findings-ucr": ("the ranking (`RANK_SQL`)", [_rank("ucr-marshall")]),
    "findings-toronto": (
        "hour × weekday counts + 150 m cell counts of toronto-mci",
        [_when("toronto-mci"), _grid("toronto-mci")],
    ),
    "when": ("hour × weekday counts (`WHEN_SQL`)", [_when("toronto-mci")]),
    "areas": ("counts by neighbourhood (`AREAS_SQL`)", [(AREAS_SQL, ["toronto-mci"])]),
    "hotspots": ("150 m cell counts on the pinned origin (`GRID_SQL`)", [_grid("toronto-mci")]),
    "report": (
        "every query of the report's sections in one process: ranking + rate panel of ucr-marshall; hour × "
        "weekday and community-area rates of chicago; hour × weekday, neighbourhood and 150 m cell counts of "
        "toronto-mci",
        [
            _rank("ucr-marshall"),
            _trends("ucr-marshall"),
            _when("chicago"),
            (AREA_RATES_SQL, ["chicago"]),
            _when("toronto-mci"),
            (AREAS_SQL, ["toronto-mci"]),
            _grid("toronto-mci"),
        ],
    ),
}

#: The floor process: imports duckdb, opens the warehouse read-only, runs and fetches each query, prints row counts.
FLOOR_PROGRAM = """\
import json, sys
import duckdb
spec = json.loads(sys.argv[1])
con = duckdb.connect(spec["db"], read_only=True)
rows = [len(con.execute(sql, params).fetchall()) for sql, params in spec["queries"]]
con.close()
print(json.dumps(rows))
"""


#: Import floors: a fresh process that only imports the libraries the commands are built on and exits. What a
#: command takes beyond its import floor is what crimelens itself does (its own imports, queries, statistics,
#: output). ``basic``: the CLI toolkit, numpy, pandas and duckdb (every command); ``ibis``: the same plus Ibis with
#: its DuckDB backend, which the report still imports (the other commands run the incident queries as SQL compiled
#: ahead of time from their Ibis expressions, :mod:`crimelens.analysis.incidents.compiled`).
IMPORT_PROGRAMS: dict[str, tuple[str, str]] = {
    "basic": ("typer, rich, numpy, pandas, duckdb", "import typer, rich, numpy, pandas, duckdb"),
    "ibis": (
        "the same + Ibis with its DuckDB backend",
        "import typer, rich, numpy, pandas, duckdb, ibis; ibis.duckdb.connect().disconnect()",
    ),
}


@dataclass(frozen=True)
class Command:
    """One everyday command: table label, CLI arguments (``{tmp}`` is the work folder) and its floor's key."""

    label: str
    args: tuple[str, ...]
    floor: str
    imports: str = "basic"


COMMANDS: tuple[Command, ...] = (
    Command("loads", ("loads",), "loads"),
    Command("rank --source ucr-marshall", ("rank", "--source", "ucr-marshall"), "rank"),
    Command("trends --source ucr-marshall", ("trends", "--source", "ucr-marshall"), "trends"),
    Command("findings", ("findings",), "findings"),
    Command("findings --source ucr-marshall", ("findings", "--source", "ucr-marshall"), "findings-ucr"),
    Command("findings --source toronto-mci", ("findings", "--source", "toronto-mci"), "findings-toronto"),
    Command("incidents when --source toronto-mci", ("incidents", "when", "--source", "toronto-mci"), "when"),
    Command("incidents areas --source toronto-mci", ("incidents", "areas", "--source", "toronto-mci"), "areas"),
    Command(
        "incidents hotspots --source toronto-mci", ("incidents", "hotspots", "--source", "toronto-mci"), "hotspots"
    ),
    Command("report --out TMP/r.html", ("report", "--out", "{tmp}/r.html"), "report", "ibis"),
)


@dataclass
class Timing:
    """Runs of one process kind (a command or a floor): seconds and peak RSS (MB) per counted run."""

    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    rows: list[int] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak_rss_mb(self) -> float:
        return max(self.rss_mb)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _env() -> dict[str, str]:
    """The environment of every measured process: ours without CRIMELENS_* settings, so defaults apply."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CRIMELENS_")}


def run_process(argv: list[str], cwd: Path, stdout: Path) -> tuple[float, float, str | None]:
    """Run ``argv`` once in a fresh process; return (wall seconds, peak RSS in MB, error or None).

    Wall time runs from spawning to reaping the process (interpreter start-up and imports included). Peak RSS is
    that child's own ``ru_maxrss`` (KiB on Linux) from ``os.wait4``; MB = 10**6 bytes.
    """
    errors = cwd / "stderr.txt"
    with stdout.open("wb") as out, errors.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = errors.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        return seconds, 0.0, f"exit {code}: " + " / ".join(tail)
    return seconds, usage.ru_maxrss * 1024 / 1e6, None


def _crimelens_exe() -> Path:
    beside = Path(sys.executable).parent / "crimelens"
    return beside if beside.exists() else REPO / ".venv" / "bin" / "crimelens"


def build_warehouse(work: Path, data: Path, exe: Path) -> Path:
    """Load the real files into ``work/everyday.duckdb`` with the real CLI; raise RuntimeError on a failed load."""
    db = work / "everyday.duckdb"
    steps = [
        ["ingest", str(data / MARSHALL)],
        ["ingest", str(data / CHICAGO)],
        ["areas", str(data / CHICAGO_AREAS), "--preset", "chicago-community-areas"],
        ["ingest", str(data / TORONTO)],
    ]
    for step in steps:
        seconds, _, error = run_process([str(exe), *step, "--db", str(db)], work, Path(os.devnull))
        if error is not None:
            raise RuntimeError(f"crimelens {shlex.join(step)}: {error}")
        _log(f"built: crimelens {step[0]} {Path(step[1]).name} in {seconds:.1f} s")
    return db


def _warehouse_facts(db: Path) -> str:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        jy = con.execute("SELECT source, count(*) FROM jurisdiction_year GROUP BY ALL ORDER BY 1").fetchall()
        inc = con.execute("SELECT source, count(*) FROM incidents GROUP BY ALL ORDER BY 1").fetchall()
        areas = con.execute("SELECT area_set, count(*) FROM areas GROUP BY ALL ORDER BY 1").fetchall()
    parts = [f"{s} {n:,} jurisdiction-years" for s, n in jy]
    parts += [f"{s} {n:,} incidents" for s, n in inc]
    parts += [f"{s} {n:,} areas" for s, n in areas]
    return "; ".join(parts) + f" ({db.stat().st_size / 1e6:.0f} MB)"


def _time_once(t: Timing, argv: list[str], cwd: Path, stdout: Path, label: str, round_: int) -> bool:
    """Run ``argv`` once unless ``t`` already failed; count its time and RSS in ``t`` when ``round_`` ≥ 0 (not
    the warm-up). Returns whether a counted run succeeded; a failure is kept in ``t.error`` and logged."""
    if t.error is not None:
        return False
    seconds, rss, error = run_process(argv, cwd, stdout)
    if error is not None:
        t.error = error
        _log(f"[{label}] FAILED: {error}")
        return False
    _log(f"[{label}] {seconds:.2f} s")
    if round_ < 0:
        return False
    t.seconds.append(seconds)
    t.rss_mb.append(rss)
    return True


def _measure(
    work: Path, db: Path, exe: Path, repeat: int, warmup: bool
) -> tuple[dict[str, Timing], dict[str, Timing], dict[str, Timing]]:
    """Run every command, floor and import floor ``repeat`` times (after an uncounted warm-up), interleaved run by
    run."""
    commands = {c.label: Timing() for c in COMMANDS}
    floors = {key: Timing() for key in FLOORS}
    imports = {key: Timing() for key in IMPORT_PROGRAMS}
    stdout = work / "floor-stdout.json"
    rounds = ([-1] if warmup else []) + list(range(repeat))
    for r in rounds:
        tag = "warm-up" if r < 0 else f"{r + 1}/{repeat}"
        for key, (_, program) in IMPORT_PROGRAMS.items():
            _time_once(imports[key], [sys.executable, "-c", program], work, Path(os.devnull), f"imports {key} {tag}", r)
        for cmd in COMMANDS:
            args = [a.replace("{tmp}", str(work)) for a in cmd.args]
            argv = [str(exe), *args, "--db", str(db)]
            _time_once(commands[cmd.label], argv, work, Path(os.devnull), f"{cmd.label} {tag}", r)
            f = floors[cmd.floor]
            spec = json.dumps({"db": str(db), "queries": FLOORS[cmd.floor][1]})
            if _time_once(f, [sys.executable, "-c", FLOOR_PROGRAM, spec], work, stdout, f"floor {cmd.floor} {tag}", r):
                f.rows = json.loads(stdout.read_text(encoding="utf-8"))
    return commands, floors, imports


def target_for(cmd: Command, floor: Timing) -> tuple[float | None, str]:
    """The time limit (s) of a command and how it is stated; None when the floor did not run."""
    if cmd.floor == "report":
        return REPORT_TARGET_S, f"≤ {REPORT_TARGET_S:g} s"
    if not floor.ok:
        return None, "–"
    if floor.median < SMALL_FLOOR_S:
        return SMALL_FLOOR_TARGET_S, f"≤ {SMALL_FLOOR_TARGET_S:g} s (floor < {SMALL_FLOOR_S:g} s)"
    limit = RATIO_TARGET * floor.median
    return limit, f"≤ {RATIO_TARGET:g}× floor = {limit:.2f} s"


def _runs(t: Timing) -> str:
    return ", ".join(f"{s:.2f}" for s in t.seconds)


def render(
    commands: dict[str, Timing],
    floors: dict[str, Timing],
    imports: dict[str, Timing],
    *,
    started: dt.datetime,
    command: str,
    repeat: int,
    warmup: bool,
    warehouse: str,
    data: Path,
    load: tuple[float | None, float | None],
) -> tuple[str, list[str]]:
    """The "Everyday commands" section and the labels of the commands that missed their target."""
    missed: list[str] = []
    head = [
        "command",
        "crimelens median (s)",
        "runs (s)",
        "peak RSS (MB)",
        "floor median (s)",
        "floor runs (s)",
        "floor RSS (MB)",
        "ratio",
        "target",
        "met",
        "import floor (s)",
        "beyond imports (s)",
    ]
    table = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * 7 + "---|:---:|---:|---:|"]
    for cmd in COMMANDS:
        t, f = commands[cmd.label], floors[cmd.floor]
        limit, stated = target_for(cmd, f)
        cells = [f"`{cmd.label}`"]
        cells += [f"{t.median:.2f}", _runs(t), f"{t.peak_rss_mb:,.0f}"] if t.ok else [f"failed: {t.error}", "–", "–"]
        cells += [f"{f.median:.2f}", _runs(f), f"{f.peak_rss_mb:,.0f}"] if f.ok else [f"failed: {f.error}", "–", "–"]
        cells.append(f"{t.median / f.median:.1f}×" if t.ok and f.ok and f.median > 0 else "–")
        met = t.ok and limit is not None and t.median <= limit
        if t.ok and limit is not None and not met:
            missed.append(cmd.label)
        cells += [stated, "yes" if met else "**no**"]
        i = imports[cmd.imports]
        cells.append(f"{i.median:.2f} ({cmd.imports})" if i.ok else "–")
        cells.append(f"{t.median - i.median:.2f}" if i.ok and t.ok else "–")
        table.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    report_sum = sum(floors[k].median for k in ("rank", "trends", "when", "areas", "hotspots") if floors[k].ok)
    info = machine_info(REPO)
    machine = ", ".join(f"{k} {v}" for k, v in info.items())
    lo, hi = (f"{v:.2f}" if v is not None else "?" for v in load)
    floor_lines = []
    for key, (what, queries) in FLOORS.items():
        rows = floors[key].rows
        fetched = f" ({', '.join(f'{n:,}' for n in rows)} rows)" if rows else ""
        floor_lines.append(f"- `{key}`: {what}; {len(queries)} quer{'y' if len(queries) == 1 else 'ies'}{fetched}.")
    runs = f"one warm-up run (not counted), then the median of {repeat}" if warmup else f"{repeat} run(s), no warm-up"
    lines = [
        HEADING,
        "",
        f"Generated {started:%Y-%m-%d %H:%M} UTC by `{command}`. Rerun with `make bench-everyday` "
        "(`.venv/bin/python bench/everyday.py`; `--quick` for one run each, `--check` to exit 1 on a missed target).",
        "",
        f"- **Warehouse**: built in a temporary folder by the real CLI (`crimelens ingest` / `crimelens areas "
        f"--preset chicago-community-areas`) from `{_shown_path(data)}`: {warehouse}.",
        f"- **crimelens**: each command is a fresh process, `.venv/bin/crimelens COMMAND --db W`, stdout to "
        f"/dev/null; {runs}; time is wall time from spawn to exit (start-up and imports included). crimelens' "
        "modules are byte-compiled first, as a regular `pip install` does (`compile_bytecode`). Peak RSS is the "
        "process's `ru_maxrss` (`os.wait4`), the highest over its runs; MB = 10⁶ bytes.",
        "- **floor**: a fresh `.venv/bin/python -c` process that imports duckdb, opens W read-only, runs the "
        "equivalent DuckDB queries (SQL beside each floor in `bench/everyday.py`, parameters bound) and fetches "
        "every row; timed the same way, interleaved with the commands run by run.",
        "- **ratio** = crimelens median / floor median. **Target** (issue 7): within 2.5× of the floor, with 1 s "
        "allowed where the floor is under 0.4 s (so the limit is max(2.5 × floor, 1 s)); `report` ≤ 5 s.",
        "- **import floor**: a fresh `.venv/bin/python -c` process that only imports the libraries the command is "
        "built on and exits, timed the same way: "
        + "; ".join(
            f"`{k}` = {what}: {imports[k].median:.2f} s" if imports[k].ok else f"`{k}` = {what}: failed"
            for k, (what, _) in IMPORT_PROGRAMS.items()
        )
        + ". **beyond imports** = crimelens median − import floor: what crimelens itself adds (its own modules, "
        "queries, statistics and output).",
        "",
        *table,
        "",
        "Floors (what each fetches):",
        "",
        *floor_lines,
        "",
        f"The report's floor runs all its queries in one process; the sum of the separate rank, trends, when, "
        f"areas and hotspots floors (each paying its own start-up) would be {report_sum:.2f} s. Floors count "
        "queries only: Theil–Sen fits, Gi* and Knox permutations, charts and HTML are computation on top.",
        "",
        f"Targets met: {len(COMMANDS) - len(missed)} of {len(COMMANDS)}"
        + (f" (missed: {', '.join(f'`{m}`' for m in missed)})." if missed else "."),
        "",
        f"Machine: {machine}. Load average (1 min) {lo} at start, {hi} at the end (other processes count here; "
        "the machine is shared).",
    ]
    return "\n".join(lines) + "\n", missed


def replace_section(existing: str, section: str, heading: str = HEADING) -> str:
    """``existing`` with its ``heading`` section ("## Everyday commands") replaced by ``section`` (appended when
    absent); every other section is kept as it is."""
    lines = existing.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        body = existing.rstrip("\n")
        return (body + "\n\n" if body else "") + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    before = "".join(lines[:start]).rstrip("\n")
    after = "".join(lines[end:])
    return (before + "\n\n" if before else "") + section + ("\n" + after if after else "")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time crimelens' everyday commands on the real data against DuckDB floors in the same run.",
    )
    parser.add_argument("--repeat", type=int, help=f"counted runs per command and floor (default {REPEAT}; quick 1)")
    parser.add_argument("--quick", action="store_true", help="smoke-test form: one run each, no warm-up")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("CRIMELENS_DATA", REPO.parent / "shared" / "data")),
        help="folder of the shared real data (default: $CRIMELENS_DATA, else ../shared/data beside the repository)",
    )
    parser.add_argument(
        "--out", type=Path, default=BENCH / "RESULTS.md", help="results file (default bench/RESULTS.md)"
    )
    parser.add_argument("--tmpdir", type=Path, help="folder for the temporary warehouse (default: the system's)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else REPEAT
    if args.repeat < 1:
        parser.error(f"--repeat: expected a whole number ≥ 1, got {args.repeat}")
    missing = [p for p in (MARSHALL, CHICAGO, CHICAGO_AREAS, TORONTO) if not (args.data / p).is_file()]
    if missing:
        parser.error(f"--data: expected the shared files under {args.data}, missing: {', '.join(missing)}")
    return args


def _shown_path(path: Path) -> str:
    """``path`` relative to the repository when it is inside or beside it (no machine paths in RESULTS.md)."""
    rel = os.path.relpath(os.path.abspath(path), REPO)
    return rel if not rel.startswith("../..") else str(path)


def _shown_command(argv: list[str]) -> str:
    return shlex.join([_shown_path(Path(sys.executable).absolute()), _shown_path(Path(sys.argv[0])), *argv])


def _load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def compile_bytecode() -> None:
    """Byte-compile crimelens' own modules, as a regular ``pip install`` does.

    The libraries in site-packages were byte-compiled when pip installed them; crimelens is installed editable,
    and where ``PYTHONDONTWRITEBYTECODE`` is set (it is on this machine) its modules would be compiled from
    source again in every process, 0.15 s a command that no installed crimelens pays.
    """
    import compileall

    compileall.compile_dir(str(BENCH.parent / "src" / "crimelens"), quiet=1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    load_start = _load()
    t_start = time.perf_counter()
    exe = _crimelens_exe()
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="crimelens-everyday-", dir=args.tmpdir) as tmp:
        work = Path(tmp)
        try:
            db = build_warehouse(work, args.data, exe)
        except RuntimeError as exc:
            _log(f"could not build the warehouse: {exc}")
            return 1
        facts = _warehouse_facts(db)
        commands, floors, imports = _measure(work, db, exe, args.repeat, warmup=not args.quick)
    section, missed = render(
        commands,
        floors,
        imports,
        started=started,
        command=_shown_command(argv),
        repeat=args.repeat,
        warmup=not args.quick,
        warehouse=facts,
        data=args.data,
        load=(load_start, _load()),
    )
    existing = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(replace_section(existing, section), encoding="utf-8")
    _log(f"wrote the {HEADING[3:]!r} section of {args.out} in {time.perf_counter() - t_start:.0f} s")
    failed = [label for label, t in commands.items() if not t.ok] + [k for k, f in floors.items() if not f.ok]
    failed += [f"imports {k}" for k, i in imports.items() if not i.ok]
    if failed:
        _log(f"failed: {', '.join(failed)}")
        return 1
    if missed:
        _log(f"targets missed: {', '.join(missed)}")
        if args.check:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
