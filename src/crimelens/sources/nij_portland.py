"""Adapter for Portland Police Bureau calls for service in the NIJ Real-Time Crime Forecasting format.

Calls for service are not confirmed crimes. ``occ_date`` is a date only (precision 'day',
America/Los_Angeles). ``offence_raw`` holds ``final_case_type`` (the call type code), ``offence_detail`` holds
``case_desc`` and ``call_group`` as "case_desc (call_group)"; the canonical offence comes from the NIJ
``category``. Coordinates 0 (not geocoded) leave latitude/longitude empty. Keyed by content hash.
"""

from __future__ import annotations

from crimelens.sources.incident_spec import Extent, IncidentSpec, q, read_taxonomy

__all__ = ["EXTENT", "FORMAT", "matches", "spec"]

FORMAT = "nij-portland"
#: Portland Police Bureau's service area.
EXTENT = Extent(45.35, 45.70, -122.95, -122.30)
_REQUIRED = ("category", "final_case_type", "occ_date", "latitude", "longitude")


def matches(header: set[str]) -> bool:
    return {"category", "call_group", "final_case_type", "occ_date"} <= header


def spec(header: list[str]) -> IncidentSpec:
    detail = q("case_desc") if "case_desc" in header else "NULL"
    if "call_group" in header:
        detail = f"concat_ws(' ', nullif(trim({detail}), ''), '(' || nullif(trim({q('call_group')}), '') || ')')"
    return IncidentSpec(
        format=FORMAT,
        default_source=FORMAT,
        description="Portland Police Bureau calls for service (NIJ challenge format; calls, not confirmed crimes)",
        timezone="America/Los_Angeles",
        precision="day",
        required=_REQUIRED,
        occurred_at=f"try_strptime(trim({q('occ_date')}), ['%Y-%m-%d', '%Y/%m/%d', '%m/%d/%Y'])",
        code=f"'CATEGORY:' || upper(trim({q('category')}))",
        offence_raw=f"coalesce(nullif(trim({q('final_case_type')}), ''), {q('category')})",
        offence_detail=detail,
        taxonomy=read_taxonomy("nij_portland"),
        extent=EXTENT,
        latitude=q("latitude"),
        longitude=q("longitude"),
        # tracts were written as numbers by the DBF export ('802.0'): the '.0' is dropped, other digits kept;
        # tract 0 (1,835 calls) means no tract was assigned, so it is left empty rather than ranked as an area
        areas={
            "census_tract": f"nullif(regexp_replace(trim({q('census_tract')}), '\\.0+$', ''), '0')"
            if "census_tract" in header
            else "NULL"
        },
    )
