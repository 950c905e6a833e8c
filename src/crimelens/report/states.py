"""The US state map: a choropleth of a state dataset's rates, drawn offline from state shapes shipped with crimelens.

The shapes are the US Census Bureau's 2016 cartographic state boundaries (public domain), simplified to a
180 KB GeoJSON by ``scripts/make_state_shapes.py`` and shipped as ``crimelens/data/us_states.geojson`` (see
``crimelens/data/PROVENANCE.md``). A dataset's jurisdictions are matched to the shapes by postal code (the
``US-XX`` ids the state adapters write) or by name; the map is drawn when most of them are states, and the
ones that are not matched are named under it. The map uses the ``albersUsa`` projection (Alaska and Hawaii
moved beside the lower 48).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pandas as pd

from crimelens.sources.states import STATE_NAMES, resolve_state

__all__ = ["match_states", "state_shapes", "state_table"]

#: The map is drawn when at least this share of a dataset's jurisdictions (the nation left out) are states.
MIN_STATE_SHARE = 0.5


@functools.cache
def state_shapes() -> dict[str, dict[str, Any]]:
    """Postal code → GeoJSON feature (``fips``, ``postal``, ``name``) of the 50 states and DC."""
    from importlib.resources import files

    text = files("crimelens").joinpath("data", "us_states.geojson").read_text(encoding="utf-8")
    return {str(f["properties"]["postal"]): f for f in json.loads(text)["features"]}


def _postal(jurisdiction_id: str, name: str, kind: str) -> str | None:
    """The postal code of a jurisdiction that is a US state (by its ``US-XX`` id, else its name), or None."""
    if kind not in ("state", "agency"):
        return None  # a city or county named like a state ("Washington, D.C." the city) is not the state
    jid = jurisdiction_id.strip().upper()
    if jid.startswith("US-") and jid[3:] in STATE_NAMES:
        return jid[3:]
    place = resolve_state(name)
    return place[3] if place is not None and place[2] == "state" else None


def match_states(table: pd.DataFrame) -> tuple[pd.Series, list[str]]:
    """Each row's state postal code (None when not a state) and the names of the rows that are not states.

    ``table`` needs ``jurisdiction_id``, ``name`` and ``kind`` columns (e.g. a ranking's table).
    """
    postal = pd.Series(
        [
            _postal(str(j), str(n), str(k))
            for j, n, k in zip(table["jurisdiction_id"], table["name"], table["kind"], strict=True)
        ],
        index=table.index,
        dtype="object",
    )
    unmatched = sorted(str(n) for n, p in zip(table["name"], postal, strict=True) if p is None)
    return postal, unmatched


def state_table(ranking: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]], list[str]] | None:
    """The rows of a rate ranking that are states, the shapes in the same order, and the unmatched names.

    Returns None when fewer than half of the jurisdictions are states (a city file: no state map). The table has
    one row per state and DC in postal-code order (states without a rate are kept, their figures missing, and
    drawn as "no data"); its columns are what the map's tooltips show: ``state``, ``postal``, ``rate_per_100k``
    (with ``rate_low`` and ``rate_high``, its 95% interval), ``count``, ``population`` and ``partial_year``.
    """
    if ranking.empty:
        return None
    postal, unmatched = match_states(ranking)
    matched = ranking[postal.notna()].assign(postal=postal[postal.notna()])
    if len(matched) < MIN_STATE_SHARE * len(ranking):
        return None
    matched = matched.drop_duplicates("postal").set_index("postal")
    shapes = state_shapes()
    order = sorted(shapes)
    rows = matched.reindex(order)
    partial = rows["partial_years"]
    table = pd.DataFrame(
        {
            "state": [str(shapes[p]["properties"]["name"]) for p in order],
            "postal": order,
            "rate_per_100k": rows["rate_per_100k"].astype("float64").round(1).to_numpy(),
            "rate_low": rows["rate_low"].astype("float64").round(1).to_numpy(),
            "rate_high": rows["rate_high"].astype("float64").round(1).to_numpy(),
            "count": rows["count"].astype("float64").to_numpy(),
            "population": rows["population"].astype("float64").round(0).to_numpy(),
            "partial_year": [
                "no data" if pd.isna(n) else "yes: fewer than 12 months reported" if n > 0 else "no" for n in partial
            ],
        }
    )
    geometries = [shapes[p]["geometry"] for p in order]
    return table, geometries, unmatched
