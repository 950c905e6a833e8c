"""Queries compiled ahead of time (crimelens.analysis.incidents.compiled): the SQL in the package is what the
Ibis expressions compile to today, and running it on an IncidentScope gives the frame Ibis gives, for every
compiled query and shape, under several filters; the everyday commands then never import Ibis."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from crimelens import warehouse
from crimelens.analysis.incidents import aggregate as ag
from crimelens.analysis.incidents import compiled
from crimelens.analysis.incidents import scope as inc
from crimelens.engine import IncidentScope, incident_scope
from crimelens.geo import GridOrigin

pytestmark = [pytest.mark.filterwarnings(r"ignore:fetch_arrow_table\(\) is deprecated:DeprecationWarning")]

INSERT = (
    "INSERT INTO incidents (source, incident_key, occurred_at, time_precision, offence, offence_raw, latitude, "
    "longitude, district, beat, community_area, neighbourhood, census_tract, load_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
)
OFFENCES = ("robbery", "burglary", "larceny", "homicide", "aggravated_assault")


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """Two sources of 400 seeded incidents: times over 2023–24 (some known to the day only), five offences,
    coordinates around Chicago (one in ten missing), area ids in every column (one in five missing)."""
    rng = np.random.default_rng(7)
    c = warehouse.connect(tmp_path_factory.mktemp("compiled") / "w.duckdb")
    rows = []
    for source in ("north", "south"):
        c.execute(
            "INSERT INTO incident_sources VALUES (?, 'mapped-csv', 'America/Chicago', false, 'test', 'test city')",
            [source],
        )
        for k in range(400):
            when = dt.datetime(2023, 1, 1) + dt.timedelta(minutes=int(rng.integers(0, 730 * 24 * 60)))
            day = rng.random() < 0.2
            located = rng.random() > 0.1
            area = (lambda: None) if rng.random() < 0.2 else (lambda: str(int(rng.integers(1, 6))))
            rows.append(
                (
                    source, f"{source}-{k}", when.replace(hour=0, minute=0) if day else when,
                    "day" if day else "minute", str(rng.choice(OFFENCES)), "RAW",
                    41.80 + 0.1 * rng.random() if located else None,
                    -87.70 + 0.1 * rng.random() if located else None,
                    area(), area(), area(), area(), area(),
                )
            )  # fmt: skip
    c.executemany(INSERT, rows)
    yield c
    c.close()


def _scopes(con: duckdb.DuckDBPyConnection) -> list[IncidentScope]:
    every = IncidentScope(con)
    north = IncidentScope(con, "north")
    return [
        every,
        north,
        north.narrowed(offences=("robbery", "larceny")),
        north.narrowed(start=dt.datetime(2023, 6, 1), end=dt.datetime(2024, 3, 1)),
        every.narrowed(offences=("burglary",), start=dt.datetime(2024, 1, 1)),
    ]


def _values(query: compiled.CompiledQuery) -> dict[str, Any]:
    origin = GridOrigin(lon0=-87.65, lat0=41.85, x0=-2000.0, y0=4_400_000.0)
    given = {**origin.expr_constants(), "cell_m": 250.0, "limit": 37}
    return {k: given[k] for k in query.values}


def test_the_compiled_sql_is_what_the_ibis_expressions_compile_to() -> None:
    on_disk = json.loads(compiled.CATALOG_PATH.read_text(encoding="utf-8"))
    fresh = compiled.compile_catalog()
    stale = sorted(k for k in fresh["queries"] if on_disk["queries"].get(k) != fresh["queries"][k])
    gone = sorted(set(on_disk["queries"]) - set(fresh["queries"]))
    assert not stale and not gone, f"run python scripts/compile_queries.py (changed: {stale[:5]}, gone: {gone[:5]})"
    # every registered shape is compiled, and the scopes' 16 filter combinations
    shapes = sum(len(q.shapes) for q in compiled.registered())
    assert len(fresh["queries"]) == shapes + 16


def test_every_compiled_query_gives_the_frame_ibis_gives(con: duckdb.DuckDBPyConnection) -> None:
    checked = 0
    for base in _scopes(con):
        ibis_table = base.ibis()
        for query in compiled.registered():
            for shape in query.shapes:
                scope = IncidentScope(base.con, base.source, base.offences, base.start, base.end)
                kwargs = {**_values(query), **shape}
                from_sql = compiled.run(query.build, scope, **kwargs)
                assert "ibis" not in scope._cache, f"{query.name} {shape} fell back to Ibis"
                from_ibis = compiled.run(query.build, ibis_table, **kwargs)
                assert len(from_ibis) > 0
                if not query.sort_by(shape):  # an unsorted query: rows in any order
                    from_sql, from_ibis = (
                        f.sort_values(list(f.columns)).reset_index(drop=True) for f in (from_sql, from_ibis)
                    )
                pd.testing.assert_frame_equal(from_sql, from_ibis, obj=f"{query.name} {shape}")
                checked += 1
    assert checked == 5 * sum(len(q.shapes) for q in compiled.registered())


def test_the_filters_select_what_they_say(con: duckdb.DuckDBPyConnection) -> None:
    # counted straight from the table, not by the code under test
    n = con.execute(
        "SELECT count(*) FROM incidents WHERE source = 'north' AND offence IN ('robbery', 'larceny') "
        "AND occurred_at >= TIMESTAMP '2023-06-01' AND occurred_at < TIMESTAMP '2024-03-01'"
    ).fetchall()[0]
    scope = IncidentScope(con, "north").narrowed(
        offences=("robbery", "larceny"), start=dt.datetime(2023, 6, 1), end=dt.datetime(2024, 3, 1)
    )
    assert n is not None and 0 < n[0] < 400
    assert ag.extent(scope)["rows_total"] == n[0]
    assert inc.coverage(scope)[2] == n[0]


def test_a_scope_asks_the_engine_once_per_query(con: duckdb.DuckDBPyConnection) -> None:
    scope = IncidentScope(con, "south")
    first = ag.extent(scope)
    con.execute("INSERT INTO incident_sources VALUES ('west', 'mapped-csv', 'UTC', false, 'test', 'test')")
    assert ag.extent(scope) == first
    assert len(scope._cache["results"]) == 1


def test_a_shape_not_compiled_ahead_runs_through_ibis(con: duckdb.DuckDBPyConnection) -> None:
    scope = IncidentScope(con, "north")
    # only the full list of area columns is compiled ahead; two of them is another shape
    frame = compiled.run(inc._area_ids_filled_expr, scope, columns=["beat", "district"])
    assert "ibis" in scope._cache
    direct = con.execute("SELECT count(beat), count(district) FROM incidents WHERE source = 'north'").fetchall()[0]
    assert direct is not None and frame.iloc[0].tolist() == list(direct)


def test_findings_on_incidents_never_import_ibis(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    made = subprocess.run(
        [str(Path(sys.executable).with_name("crimelens")), "simulate", "--incidents", "3000", "--out",
         str(tmp_path / "city.csv"), "--seed", "3"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    code = (
        "import sys\n"
        "from crimelens.warehouse import connect, load_incidents\n"
        f"con = connect({str(db)!r})\n"
        f"load_incidents(con, {str(tmp_path / 'city.csv')!r}, source='simulated-city', simulated=True)\n"
        "from crimelens.insights import key_findings\n"
        "found = key_findings(con, permutations=99)\n"
        "print(len(found.findings), 'ibis' in sys.modules, 'sqlglot' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    n, ibis_loaded, sqlglot_loaded = done.stdout.split()
    assert int(n) >= 3 and ibis_loaded == "False" and sqlglot_loaded == "False"


def test_an_incident_scope_checks_its_source(con: duckdb.DuckDBPyConnection) -> None:
    from crimelens.errors import DataError

    with (
        pytest.raises(DataError, match="incident source 'east' is not in the warehouse"),
        incident_scope(con, source="east"),
    ):
        pass


def test_a_scope_naming_no_offence_holds_every_offence(con: duckdb.DuckDBPyConnection) -> None:
    every = ag.extent(IncidentScope(con, "north"))["rows_total"]
    assert every == 400
    assert ag.extent(IncidentScope(con, "north", offences=()))["rows_total"] == every
    assert ag.extent(IncidentScope(con, "north").narrowed(offences=()))["rows_total"] == every
