"""Area boundaries from GeoJSON: read and check one row per feature (geometry kept as GeoJSON text, WGS84).

Area ids are normalised like the incidents' area columns ('01' and '1.0' become '1') so that the two join.
Writing an area set into the warehouse (atomic and idempotent) is :func:`crimelens.warehouse.load_areas`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crimelens.errors import ConfigError, DataError, SourceError
from crimelens.sources.incident_spec import file_sha256, normalise_area_id

__all__ = ["AREA_KINDS", "FORMAT", "PRESETS", "AreaFile", "AreaPreset", "read_areas"]

FORMAT = "geojson-areas"
#: Area kinds, named as the incident columns they join to.
AREA_KINDS: tuple[str, ...] = ("district", "beat", "community_area", "neighbourhood", "census_tract")


@dataclass(frozen=True)
class AreaPreset:
    """Arguments of ``warehouse.load_areas`` for a known boundary file."""

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
class AreaFile:
    """A checked area boundary file: one ``(area_id, name, geometry GeoJSON, population)`` row per feature."""

    path: Path
    area_kind: str
    rows: tuple[tuple[str, str | None, str, int | None], ...]
    sha256: str

    @property
    def with_population(self) -> int:
        """How many areas carry a population."""
        return sum(1 for r in self.rows if r[3] is not None)


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


def read_areas(
    path: Path,
    *,
    area_kind: str,
    id_property: str,
    name_property: str | None = None,
    population_property: str | None = None,
) -> AreaFile:
    """Read and check a GeoJSON FeatureCollection of polygons (nothing is written; see ``warehouse.load_areas``).

    Parameters
    ----------
    path
        The GeoJSON file.
    area_kind
        One of :data:`AREA_KINDS`: the incident column the areas' ids join to.
    id_property, name_property, population_property
        The feature properties holding each area's id, name and population (the last two optional).

    Returns
    -------
    AreaFile
        One row per feature, ids normalised, geometry as compact GeoJSON text, and the file's sha256.

    Raises
    ------
    ConfigError
        ``area_kind`` is not one of :data:`AREA_KINDS`.
    SourceError
        The file is missing, not UTF-8, not JSON, or not a FeatureCollection.
    DataError
        A feature lacks its id, repeats an id, is not a polygon, or has a population that is not a count.
    """
    path = Path(path)
    if area_kind not in AREA_KINDS:
        raise ConfigError(f"area kind must be one of {', '.join(AREA_KINDS)}, got {area_kind!r}")
    features = _features(path)
    rows = _rows(path, features, id_property, name_property, population_property)
    return AreaFile(path, area_kind, tuple(rows), file_sha256(path))
