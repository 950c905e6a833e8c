"""Adapter for Houston Police Department incidents (the ggmap ``crime`` data, January–August 2010).

Local time is ``date`` (M/D/YYYY) plus ``hour`` (precision 'hour', America/Chicago); the ``time`` column is
UTC and is ignored. One row per record: ``number`` (offences counted at that record) is not expanded, so
counts are records, not offences. No incident id: keyed by content hash.
"""

from __future__ import annotations

from crimelens.sources.incident_spec import Extent, IncidentSpec, q, read_taxonomy

__all__ = ["EXTENT", "FORMAT", "matches", "spec"]

FORMAT = "houston"
#: Harris County's bounding box (the City of Houston lies within it); some geocodes fall far outside.
EXTENT = Extent(29.45, 30.20, -95.97, -94.90)
_REQUIRED = ("date", "hour", "offense", "lon", "lat")


def matches(header: set[str]) -> bool:
    return {"date", "hour", "offense", "beat", "premise", "lon", "lat"} <= header


def spec(header: list[str]) -> IncidentSpec:
    hour = f"TRY_CAST(trim({q('hour')}) AS INTEGER)"
    day = f"try_strptime(trim({q('date')}), '%m/%d/%Y')"
    return IncidentSpec(
        format=FORMAT,
        default_source=FORMAT,
        description="Houston Police Department crime records, Jan-Aug 2010 (one row per record)",
        timezone="America/Chicago",
        precision="hour",
        required=_REQUIRED,
        occurred_at=f"CASE WHEN {hour} BETWEEN 0 AND 23 THEN {day} + to_hours({hour}) END",
        code=f"'OFFENSE:' || lower(trim({q('offense')}))",
        offence_raw=q("offense"),
        offence_detail=q("location") if "location" in header else "NULL",
        taxonomy=read_taxonomy("houston"),
        extent=EXTENT,
        latitude=q("lat"),
        longitude=q("lon"),
        areas={
            "beat": q("beat") if "beat" in header else "NULL",
            "premise": q("premise") if "premise" in header else "NULL",
        },
    )
