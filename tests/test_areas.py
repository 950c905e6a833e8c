"""Area boundaries: presets on the real GeoJSON files, the join to incidents, idempotent and atomic loads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from crimelens import warehouse
from crimelens.cli import app
from crimelens.errors import ConfigError, DataError, SourceError

runner = CliRunner()
CHICAGO = "chicago_community_areas/chicago_community_areas_acs2014.geojson"
PORTLAND = "portland_nij_cfs_2016_aug_sep/portland_police_districts.geojson"


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = warehouse.connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def _file(real_data: Path, rel: str) -> Path:
    p = real_data / rel
    if not p.exists():
        pytest.skip(f"real data file {p} is absent")
    return p


def _square(x: float) -> dict[str, object]:
    return {"type": "Polygon", "coordinates": [[[x, 0], [x + 1, 0], [x + 1, 1], [x, 1], [x, 0]]]}


def _collection(path: Path, props: list[dict[str, object]]) -> Path:
    feats = [{"type": "Feature", "properties": p, "geometry": _square(i)} for i, p in enumerate(props)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def test_chicago_community_areas_preset(real_data: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = _file(real_data, CHICAGO)
    report = warehouse.load_preset(con, path, "chicago-community-areas")
    assert (report.areas, report.with_population, report.status) == (77, 77, "loaded")
    ids = {r[0] for r in con.execute("SELECT area_id FROM areas").fetchall()}
    assert ids == {str(i) for i in range(1, 78)}
    # PROVENANCE / the GeoJSON itself: feature 1 is DOUGLAS (35), Pop2014 19,430
    row = con.execute("SELECT name, population, population_year, area_kind FROM areas WHERE area_id = '35'")
    assert row.fetchone() == ("DOUGLAS", 19430, 2014, "community_area")
    geometry = con.execute("SELECT geometry FROM areas WHERE area_id = '35'").fetchone()
    assert geometry is not None and json.loads(geometry[0])["type"] in ("Polygon", "MultiPolygon")
    assert warehouse.list_sources(con) == []  # an area set is not a jurisdiction-year dataset
    again = warehouse.load_preset(con, path, "chicago-community-areas")
    assert (again.status, again.load_id) == ("unchanged", report.load_id)


def test_chicago_incidents_join_community_areas(real_data: Path, con: duckdb.DuckDBPyConnection) -> None:
    warehouse.load_preset(con, _file(real_data, CHICAGO), "chicago-community-areas")
    warehouse.load_incidents(con, _file(real_data, "chicago_crimes_2022_slim/crimes-2022-slim.csv.gz"), "chicago")
    unmatched = con.execute(
        "SELECT count(*) FROM incidents i LEFT JOIN areas a ON a.area_set = 'chicago-community-areas' "
        "AND a.area_id = i.community_area WHERE a.area_id IS NULL"
    ).fetchone()
    assert unmatched == (0,)


def test_portland_districts_preset(real_data: Path, con: duckdb.DuckDBPyConnection) -> None:
    report = warehouse.load_preset(con, _file(real_data, PORTLAND), "portland-districts")
    # PROVENANCE.md: 60 police-district polygons, no population
    assert (report.areas, report.with_population, report.area_kind) == (60, 0, "district")
    assert con.execute("SELECT count(*) FROM areas WHERE area_id = '510'").fetchone() == (1,)


def test_a_new_file_replaces_the_area_set(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    kw: dict[str, Any] = {"area_set": "beats", "area_kind": "beat", "id_property": "id", "name_property": "n"}
    first = warehouse.load_areas(
        con, _collection(tmp_path / "a.geojson", [{"id": "01", "n": "A"}, {"id": 2, "n": "B"}]), **kw
    )
    assert {r[0] for r in con.execute("SELECT area_id FROM areas").fetchall()} == {"1", "2"}
    second = warehouse.load_areas(con, _collection(tmp_path / "b.geojson", [{"id": 3.0, "n": "C"}]), **kw)
    assert second.replaced_load_ids == (first.load_id,)
    assert con.execute("SELECT area_id, name FROM areas").fetchall() == [("3", "C")]
    statuses = con.execute("SELECT status FROM loads ORDER BY load_id").fetchall()
    assert statuses == [("replaced",), ("loaded",)]


def test_bad_area_files_load_nothing(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    kw: dict[str, Any] = {"area_set": "x", "area_kind": "district", "id_property": "id"}
    (tmp_path / "broken.geojson").write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(SourceError, match=r"broken\.geojson, line 1, column \d+: not valid JSON"):
        warehouse.load_areas(con, tmp_path / "broken.geojson", **kw)
    with pytest.raises(DataError, match=r"feature 2: property 'id' \(the area id\) is missing"):
        warehouse.load_areas(con, _collection(tmp_path / "noid.geojson", [{"id": 1}, {"name": "b"}]), **kw)
    with pytest.raises(DataError, match="area id '1' repeats feature 1"):
        warehouse.load_areas(con, _collection(tmp_path / "dup.geojson", [{"id": 1}, {"id": "1.0"}]), **kw)
    with pytest.raises(ConfigError, match="area kind must be one of"):
        warehouse.load_areas(
            con, _collection(tmp_path / "ok.geojson", [{"id": 1}]), area_set="x", area_kind="ward", id_property="id"
        )
    assert con.execute("SELECT count(*) FROM areas").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM loads").fetchone() == (0,)


def test_cli_areas_command(real_data: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "w.duckdb")
    path = str(_file(real_data, CHICAGO))
    result = runner.invoke(app, ["areas", path, "--preset", "chicago-community-areas", "--db", db])
    assert result.exit_code == 0, result.output
    assert "Loaded 77 areas (community_area, 77 with population)" in result.stdout
    again = runner.invoke(app, ["areas", path, "--preset", "chicago-community-areas", "--db", db, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["status"] == "unchanged"
    usage = runner.invoke(app, ["areas", path, "--db", db])
    assert usage.exit_code == 1 and "give --preset, or all of --set, --kind and --id" in usage.output
