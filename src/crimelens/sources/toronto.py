"""Adapter for the Toronto Police Service Major Crime Indicators (MCI) table.

``occurrencedate`` holds the local date written as a UTC timestamp of local midnight (e.g.
``2014/03/02 05:00:00+00``): its date part is the local date, to which ``occurrencehour`` hours are added
(precision 'hour', America/Toronto). No incident id: keyed by content hash.
"""

from __future__ import annotations

from crimelens.sources.incident_spec import Extent, IncidentSpec, q, read_taxonomy

__all__ = ["EXTENT", "FORMAT", "matches", "spec"]

FORMAT = "toronto-mci"
#: The City of Toronto's bounding box.
EXTENT = Extent(43.57, 43.86, -79.64, -79.11)
_REQUIRED = ("occurrencedate", "occurrencehour", "MCI", "Lat", "Long")


def matches(header: set[str]) -> bool:
    return {"occurrencedate", "occurrencehour", "MCI"} <= header


def spec(header: list[str]) -> IncidentSpec:
    hour = f"TRY_CAST(trim({q('occurrencehour')}) AS INTEGER)"
    day = f"try_strptime(substr(trim({q('occurrencedate')}), 1, 10), ['%Y/%m/%d', '%Y-%m-%d'])"
    return IncidentSpec(
        format=FORMAT,
        default_source=FORMAT,
        description="Toronto Police Service Major Crime Indicators (local date + hour)",
        timezone="America/Toronto",
        precision="hour",
        required=_REQUIRED,
        occurred_at=f"CASE WHEN {hour} BETWEEN 0 AND 23 THEN {day} + to_hours({hour}) END",
        code=f"'MCI:' || trim({q('MCI')})",
        offence_raw=q("MCI"),
        taxonomy=read_taxonomy("toronto"),
        extent=EXTENT,
        latitude=q("Lat"),
        longitude=q("Long"),
        areas={
            "neighbourhood": q("Neighbourhood") if "Neighbourhood" in header else "NULL",
            "premise": q("premises_type") if "premises_type" in header else "NULL",
        },
    )
