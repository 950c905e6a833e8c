"""Write ``src/crimelens/data/us_states.geojson``: the 50 US states and DC, simplified, for the report's state map.

Source: the US Census Bureau's 2016 cartographic boundary file ``cb_2016_us_state_500k`` (1:500,000), as shipped
inside the PyPI package ``plotly-geo==1.0.0`` (``_plotly_geo/package_data/cb_2016_us_state_500k.shp``; pinned in
constraints.txt, a test/dev dependency only). Census cartographic boundary files are US-government works in the
public domain. The shapes are in NAD83 longitude/latitude (the shapefile ships no ``.prj``; the Census documents
NAD83), which differs from WGS84 by about a metre: nothing at the scale of a state map.

What is done to them, and nothing else:

- Puerto Rico, Guam, American Samoa, the Northern Mariana Islands and the US Virgin Islands are left out (the
  crime files cover the 50 states and DC);
- each state is simplified with Douglas-Peucker (``shapely.simplify``, ``preserve_topology=True``) at
  ``TOLERANCE_DEG`` degrees, and islands whose simplified area is under ``MIN_AREA_DEG2`` square degrees are
  dropped (Hawaii's and Alaska's main islands stay);
- rings are wound clockwise (exterior) as Vega's map projections (d3-geo) expect, and coordinates are rounded to
  ``DECIMALS`` decimals (about 100 m);
- properties: ``fips`` (2-digit state FIPS code), ``postal`` (USPS code) and ``name``.

Run ``python scripts/make_state_shapes.py`` after changing any of these; the file is committed.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

TOLERANCE_DEG = 0.02
MIN_AREA_DEG2 = 0.005
DECIMALS = 3
TERRITORIES = frozenset({"PR", "GU", "AS", "MP", "VI"})
OUT = Path(__file__).resolve().parents[1] / "src" / "crimelens" / "data" / "us_states.geojson"


def _round(geometry: dict[str, Any]) -> dict[str, Any]:
    def ring(coords: Any) -> list[list[float]]:
        return [[round(float(x), DECIMALS), round(float(y), DECIMALS)] for x, y, *_ in coords]

    if geometry["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": [ring(r) for r in geometry["coordinates"]]}
    return {"type": "MultiPolygon", "coordinates": [[ring(r) for r in p] for p in geometry["coordinates"]]}


def main() -> None:
    import pyogrio
    import shapely
    from shapely.geometry import MultiPolygon, Polygon, mapping
    from shapely.geometry.polygon import orient

    shp = files("_plotly_geo").joinpath("package_data", "cb_2016_us_state_500k.shp")
    frame = pyogrio.read_dataframe(str(shp))
    features = []
    for row in frame.sort_values("STATEFP").itertuples():
        if row.STUSPS in TERRITORIES:
            continue
        simple = shapely.simplify(row.geometry, TOLERANCE_DEG, preserve_topology=True)
        parts = [p for p in getattr(simple, "geoms", [simple]) if p.area >= MIN_AREA_DEG2]
        if not parts:  # a small state (DC): keep its largest piece whatever its size
            parts = [max(getattr(simple, "geoms", [simple]), key=lambda p: p.area)]
        wound = [orient(p, sign=-1.0) for p in parts]
        shape: Polygon | MultiPolygon = wound[0] if len(wound) == 1 else MultiPolygon(wound)
        features.append(
            {
                "type": "Feature",
                "properties": {"fips": str(row.STATEFP), "postal": str(row.STUSPS), "name": str(row.NAME)},
                "geometry": _round(dict(mapping(shape))),
            }
        )
    collection = {
        "type": "FeatureCollection",
        "source": "US Census Bureau, cb_2016_us_state_500k (public domain), via plotly-geo 1.0.0; "
        f"simplified at {TOLERANCE_DEG} degrees by scripts/make_state_shapes.py",
        "features": features,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(collection, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(features)} features (50 states and DC), {OUT.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
