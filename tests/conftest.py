"""Shared fixtures: the real shared datasets (skipped with a reason where absent) and warehouses."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from crimelens import sources, warehouse

REPO = Path(__file__).resolve().parents[1]

REAL_FILES = {
    "ucr-marshall": "marshall_ucr_crime_1975_2015/ucr_crime_1975_2015.csv",
    "fbi-estimates": "fbi_estimated_crimes_1979_2019/estimated_crimes_1979_2019.csv",
    "marshall-states": "marshall_ucr_state_rates_1985_2017/crime_rates_1985_2017_ucr_us_states.csv",
}


def data_dir() -> Path:
    """The shared real data: $CRIMELENS_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get("CRIMELENS_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    d = data_dir()
    if not d.is_dir():
        pytest.skip(f"real data folder {d} is absent (set CRIMELENS_DATA to its path)")
    return d


@pytest.fixture(scope="session")
def real_file(real_data: Path):  # type: ignore[no-untyped-def]
    def get(fmt: str) -> Path:
        p = real_data / REAL_FILES[fmt]
        if not p.exists():
            pytest.skip(f"real data file {p} is absent")
        return p

    return get


@pytest.fixture(scope="session")
def _real_warehouses(tmp_path_factory: pytest.TempPathFactory, real_file) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """One warehouse file per real dataset, built once per session."""
    out = {}
    base = tmp_path_factory.mktemp("real")
    for fmt in REAL_FILES:
        db = base / f"{fmt}.duckdb"
        con = warehouse.connect(db)
        warehouse.load_parsed(con, sources.read(real_file(fmt), fmt))
        con.close()
        out[fmt] = db
    return out


def _copy_open(src: Path, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    return warehouse.connect(dst)


@pytest.fixture
def marshall_con(_real_warehouses: dict[str, Path], tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private warehouse holding the Marshall Project 68-agency file (source 'ucr-marshall')."""
    con = _copy_open(_real_warehouses["ucr-marshall"], tmp_path)
    yield con
    con.close()


@pytest.fixture
def fbi_con(_real_warehouses: dict[str, Path], tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private warehouse holding the FBI state estimates (source 'fbi-estimates')."""
    con = _copy_open(_real_warehouses["fbi-estimates"], tmp_path)
    yield con
    con.close()


@pytest.fixture
def states_con(_real_warehouses: dict[str, Path], tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private warehouse holding the Marshall Project state file (source 'marshall-states')."""
    con = _copy_open(_real_warehouses["marshall-states"], tmp_path)
    yield con
    con.close()


@pytest.fixture
def tiny_con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse with a tiny hand-made panel (source 'tiny'), small enough to check by hand.

    Three cities A, B, C and the nation over 2010-2012 (see the CSV below). In 2012 city C reports 6
    months only.
    """
    csv_text = (
        "name,id,kind_year,pop,hom,rap,rob,agg,vio,months\n"
        "City A,A,2010,100000,10,20,30,40,100,12\n"
        "City A,A,2011,100000,12,20,30,48,110,12\n"
        "City A,A,2012,100000,15,20,35,50,120,12\n"
        "City B,B,2010,1000000,50,100,300,550,1000,12\n"
        "City B,B,2011,1000000,45,100,280,525,950,12\n"
        "City B,B,2012,1000000,40,90,270,500,900,12\n"
        "City C,C,2010,50000,1,2,3,4,10,12\n"
        "City C,C,2011,50000,1,2,4,5,12,12\n"
        "City C,C,2012,50000,1,2,4,6,13,6\n"
    )
    mapping = (
        'source = "tiny"\n[columns]\njurisdiction = "name"\njurisdiction_id = "id"\nyear = "kind_year"\n'
        'population = "pop"\nhomicide = "hom"\nrape = "rap"\nrobbery = "rob"\naggravated_assault = "agg"\n'
        'violent_crime = "vio"\nmonths_reported = "months"\n[constants]\nkind = "city"\n'
        'rape_definition = "legacy"\n'
    )
    (tmp_path / "tiny.csv").write_text(csv_text)
    (tmp_path / "tiny.toml").write_text(mapping)
    con = warehouse.connect(tmp_path / "tiny.duckdb")
    warehouse.load_parsed(con, sources.read(tmp_path / "tiny.csv", mapping=tmp_path / "tiny.toml"))
    yield con
    con.close()


def seeded_city_warehouse(folder: Path, *, n: int, seed: int, spread_deg: float, hot_lon: float) -> Path:
    """A warehouse of ``n`` seeded incidents over 2021–2022 (mapped-csv, source 'city'): half in a hot spot of
    ``spread_deg`` degrees around (43.70, ``hot_lon``), half spread over the city, in two neighbourhoods split
    at longitude −79.40 ("West End", "East End"); 30 % robberies, the rest thefts."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    hot = rng.random(n) < 0.5
    lat = np.where(hot, 43.70 + rng.normal(0, spread_deg, n), rng.uniform(43.68, 43.72, n))
    lon = np.where(hot, hot_lon + rng.normal(0, spread_deg, n), rng.uniform(-79.44, -79.36, n))
    days = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 730, n), unit="D")
    pd.DataFrame(
        {
            "id": np.arange(n),
            "date": days.strftime("%Y-%m-%d"),
            "offence": np.where(rng.random(n) < 0.3, "Robbery", "Theft"),
            "lat": lat,
            "lon": lon,
            "hood": np.where(lon < -79.40, "West End", "East End"),
        }
    ).to_csv(folder / "city.csv", index=False)
    (folder / "city.toml").write_text(
        'source = "city"\n[columns]\nkey = "id"\ndate = "date"\n'
        'offence = "offence"\nlatitude = "lat"\nlongitude = "lon"\nneighbourhood = "hood"\n'
        '[options]\ntimezone = "America/Toronto"\n[offences]\nRobbery = "robbery"\nTheft = "larceny"\n'
    )
    db = folder / "city.duckdb"
    con = warehouse.connect(db)
    warehouse.load_incidents(con, folder / "city.csv", "mapped-csv", mapping=folder / "city.toml")
    con.close()
    return db
