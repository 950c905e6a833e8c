"""Area-set writes: a checked GeoJSON boundary file becomes one area set in ``areas``, in one transaction.

An area set (e.g. ``chicago-community-areas``) is loaded atomically and idempotently: the same file again
(same sha256) is a no-op; a different file replaces the whole set. Reading and checking the file is
:func:`crimelens.sources.boundaries.read_areas`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from crimelens.errors import ConfigError
from crimelens.sources.boundaries import FORMAT, PRESETS, AreaFile, read_areas
from crimelens.warehouse.loads import next_load_id, supersede_loads
from crimelens.warehouse.transaction import transaction

__all__ = ["AreaLoadReport", "load_areas", "load_preset"]


@dataclass(frozen=True)
class AreaLoadReport:
    """What one area load did."""

    load_id: int
    area_set: str
    area_kind: str
    file_name: str
    sha256: str
    areas: int
    with_population: int
    status: str  # 'loaded' | 'unchanged'
    replaced_load_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_id": self.load_id,
            "area_set": self.area_set,
            "area_kind": self.area_kind,
            "file": self.file_name,
            "sha256": self.sha256,
            "areas": self.areas,
            "with_population": self.with_population,
            "status": self.status,
            "replaced_load_ids": list(self.replaced_load_ids),
        }


def load_areas(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    area_set: str,
    area_kind: str,
    id_property: str,
    name_property: str | None = None,
    population_property: str | None = None,
    population_year: int | None = None,
) -> AreaLoadReport:
    """Load a GeoJSON FeatureCollection of polygons as the area set ``area_set`` (atomic, idempotent).

    Parameters
    ----------
    con
        A writable warehouse connection.
    path
        The GeoJSON file (see :func:`crimelens.sources.boundaries.read_areas` for what it must hold).
    area_set
        The set's name; a new file under the same name replaces the whole set.
    area_kind, id_property, name_property, population_property
        As in :func:`crimelens.sources.boundaries.read_areas`.
    population_year
        The year the populations refer to.

    Returns
    -------
    AreaLoadReport
        Status ``'loaded'``, or ``'unchanged'`` when this file (same sha256) is already the set's load.
    """
    if not area_set.strip():
        raise ConfigError("area set name must not be empty")
    checked = read_areas(
        Path(path), area_kind=area_kind, id_property=id_property, name_property=name_property,
        population_property=population_property,
    )  # fmt: skip
    name, digest, n = checked.path.name, checked.sha256, len(checked.rows)
    existing = con.execute(
        "SELECT load_id FROM loads WHERE source = ? AND sha256 = ? AND status = 'loaded'", [area_set, digest]
    ).fetchone()
    if existing:
        return AreaLoadReport(
            int(existing[0]), area_set, area_kind, name, digest, n, checked.with_population, "unchanged"
        )
    clash = con.execute(
        "SELECT (SELECT count(*) FROM jurisdiction_year WHERE source = ?) + "
        "(SELECT count(*) FROM incident_sources WHERE source = ?)",
        [area_set, area_set],
    ).fetchone()
    if clash and clash[0]:
        raise ConfigError(f"area set name {area_set!r} is already a crime dataset's name; choose another")
    with transaction(con, what=name):
        load_id, previous = _write(con, checked, area_set, population_year)
    return AreaLoadReport(load_id, area_set, area_kind, name, digest, n, checked.with_population, "loaded", previous)


def _write(
    con: duckdb.DuckDBPyConnection, checked: AreaFile, area_set: str, population_year: int | None
) -> tuple[int, tuple[int, ...]]:
    """The writes of one area load, inside its transaction: (the new load id, the load ids it replaced)."""
    started = dt.datetime.now()
    load_id = next_load_id(con)
    previous = supersede_loads(con, area_set, load_id)
    con.execute("DELETE FROM areas WHERE area_set = ?", [area_set])
    con.executemany(
        "INSERT INTO areas VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [area_set, checked.area_kind, a, n, g, p, population_year if p is not None else None, load_id]
            for a, n, g, p in checked.rows
        ],
    )
    n = len(checked.rows)
    con.execute(
        "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, 'loaded', NULL)",
        [load_id, area_set, FORMAT, checked.path.name, checked.sha256, n, n, started, dt.datetime.now()],
    )
    return load_id, previous


def load_preset(con: duckdb.DuckDBPyConnection, path: Path, preset: str) -> AreaLoadReport:
    """Load ``path`` with a named preset (see :data:`crimelens.sources.boundaries.PRESETS`)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown area preset {preset!r}; allowed: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    return load_areas(
        con,
        path,
        area_set=p.area_set,
        area_kind=p.area_kind,
        id_property=p.id_property,
        name_property=p.name_property,
        population_property=p.population_property,
        population_year=p.population_year,
    )
