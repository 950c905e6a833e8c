"""Area boundaries from GeoJSON: one row per feature in ``areas`` (geometry kept as GeoJSON text, WGS84).

An area set (e.g. ``chicago-community-areas``) is loaded atomically and idempotently: the same file again
(same sha256) is a no-op; a different file replaces the whole set. Area ids are normalised like the
incidents' area columns ('01' and '1.0' become '1') so that the two join.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from crimelens.errors import ConfigError, DataError, SourceError
from crimelens.sources.incident_spec import file_sha256, normalise_area_id

__all__ = ["AREA_KINDS", "PRESETS", "AreaLoadReport", "AreaPreset", "load_areas", "load_preset"]

FORMAT = "geojson-areas"
#: Area kinds, named as the incident columns they join to.
AREA_KINDS: tuple[str, ...] = ("district", "beat", "community_area", "neighbourhood", "census_tract")


@dataclass(frozen=True)
class AreaPreset:
    """Arguments of :func:`load_areas` for a known boundary file."""

    file_name: str
    area_set: str
    area_kind: str
    id_property: str
    name_property: str | None = None
    population_property: str | None = None
    population_year: int | None = None


PRESETS: dict[str, AreaPreset] = {
    "chicago-community-areas": AreaPreset(
        "chicago_community_areas_acs2014.geojson", "chicago-community-areas", "community_area", "ComAreaID",
        "community", "Pop2014", 2014,
    ),
    "portland-districts": AreaPreset(
        "portland_police_districts.geojson", "portland-districts", "district", "DISTRICT"
    ),
}  # fmt: skip


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


def _features(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected GeoJSON") from None
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"{path.name}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}); expected GeoJSON"
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("type") != "FeatureCollection"
        or not isinstance(data.get("features"), list)
    ):
        raise SourceError(f"{path.name}: expected a GeoJSON FeatureCollection, got {type(data).__name__}")
    if not data["features"]:
        raise DataError(f"{path.name}: the FeatureCollection has no features")
    return list(data["features"])


def _rows(
    path: Path,
    features: list[dict[str, Any]],
    id_property: str,
    name_property: str | None,
    population_property: str | None,
) -> list[tuple[str, str | None, str, int | None]]:
    rows: list[tuple[str, str | None, str, int | None]] = []
    seen: dict[str, int] = {}
    for n, feat in enumerate(features, start=1):
        props = feat.get("properties") or {}
        where = f"{path.name}, feature {n}"
        if id_property not in props:
            raise DataError(
                f"{where}: property {id_property!r} (the area id) is missing; properties found: "
                f"{', '.join(list(props)[:15])}"
            )
        area_id = normalise_area_id(props[id_property])
        if area_id is None:
            raise DataError(f"{where}: property {id_property!r} must hold an area id, got {props[id_property]!r}")
        if area_id in seen:
            raise DataError(f"{where}: area id {area_id!r} repeats feature {seen[area_id]}; ids must be unique")
        seen[area_id] = n
        geometry = feat.get("geometry")
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            got = geometry.get("type") if isinstance(geometry, dict) else geometry
            raise DataError(f"{where}: geometry must be a Polygon or MultiPolygon, got {got!r}")
        name = props.get(name_property) if name_property else None
        population: int | None = None
        if population_property:
            raw = props.get(population_property)
            if not isinstance(raw, int | float) or raw < 0 or raw != int(raw):
                raise DataError(f"{where}: property {population_property!r} must be a population ≥ 0, got {raw!r}")
            population = int(raw)
        rows.append(
            (area_id, None if name is None else str(name), json.dumps(geometry, separators=(",", ":")), population)
        )
    return rows


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
    """Load a GeoJSON FeatureCollection of polygons as the area set ``area_set`` (atomic, idempotent)."""
    path = Path(path)
    if area_kind not in AREA_KINDS:
        raise ConfigError(f"area kind must be one of {', '.join(AREA_KINDS)}, got {area_kind!r}")
    if not area_set.strip():
        raise ConfigError("area set name must not be empty")
    features = _features(path)
    rows = _rows(path, features, id_property, name_property, population_property)
    digest = file_sha256(path)
    existing = con.execute(
        "SELECT load_id FROM loads WHERE source = ? AND sha256 = ? AND status = 'loaded'", [area_set, digest]
    ).fetchone()
    with_pop = sum(1 for r in rows if r[3] is not None)
    if existing:
        return AreaLoadReport(
            int(existing[0]), area_set, area_kind, path.name, digest, len(rows), with_pop, "unchanged"
        )
    clash = con.execute(
        "SELECT (SELECT count(*) FROM jurisdiction_year WHERE source = ?) + "
        "(SELECT count(*) FROM incident_sources WHERE source = ?)",
        [area_set, area_set],
    ).fetchone()
    if clash and clash[0]:
        raise ConfigError(f"area set name {area_set!r} is already a crime dataset's name; choose another")
    started = dt.datetime.now()
    con.execute("BEGIN TRANSACTION")
    try:
        fetched = con.execute("SELECT nextval('load_id_seq')").fetchone()
        assert fetched is not None
        load_id = int(fetched[0])
        previous = tuple(
            int(r[0])
            for r in con.execute(
                "SELECT load_id FROM loads WHERE source = ? AND status = 'loaded'", [area_set]
            ).fetchall()
        )
        if previous:
            con.execute(
                "UPDATE loads SET status = 'replaced', replaced_by = ? WHERE source = ? AND status = 'loaded'",
                [load_id, area_set],
            )
        con.execute("DELETE FROM areas WHERE area_set = ?", [area_set])
        con.executemany(
            "INSERT INTO areas VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [area_set, area_kind, a, n, g, p, population_year if p is not None else None, load_id]
                for a, n, g, p in rows
            ],
        )
        con.execute(
            "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, 'loaded', NULL)",
            [load_id, area_set, FORMAT, path.name, digest, len(rows), len(rows), started, dt.datetime.now()],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return AreaLoadReport(load_id, area_set, area_kind, path.name, digest, len(rows), with_pop, "loaded", previous)


def load_preset(con: duckdb.DuckDBPyConnection, path: Path, preset: str) -> AreaLoadReport:
    """Load ``path`` with a named preset (see :data:`PRESETS`)."""
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
