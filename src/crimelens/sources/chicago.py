"""Adapter for the City of Chicago "Crimes - 2001 to present" export (full schema) and its slim extract.

Full schema (with ``ID``): keyed by ``ID``, offence from ``FBI Code`` (``FBI:<code>`` in
``taxonomy/chicago.csv``), coordinates, beat, district and community area. Slim extract (no ``ID``, no
coordinates): keyed by a content hash, offence from ``Primary Type`` and ``Description``
(``TYPE:<primary type>|<description>``). Times are local (America/Chicago), to the minute.
"""

from __future__ import annotations

from crimelens.sources.incident_spec import Extent, IncidentSpec, q, read_taxonomy, sql_area_id

__all__ = ["EXTENT", "FORMAT", "FULL_COLUMNS", "SLIM_COLUMNS", "matches", "spec"]

FORMAT = "chicago"
FULL_COLUMNS: tuple[str, ...] = (
    "ID", "Case Number", "Date", "Block", "IUCR", "Primary Type", "Description", "Location Description", "Arrest",
    "Domestic", "Beat", "District", "Ward", "Community Area", "FBI Code", "X Coordinate", "Y Coordinate", "Year",
    "Updated On", "Latitude", "Longitude", "Location",
)  # fmt: skip
_FULL_REQUIRED = ("ID", "Date", "Primary Type", "Description", "FBI Code", "Latitude", "Longitude")
SLIM_COLUMNS: tuple[str, ...] = (
    "Date", "Block", "Primary Type", "Description", "Location Description", "Arrest", "Domestic", "Community Area",
)  # fmt: skip
#: The City of Chicago's bounding box (O'Hare to the Indiana line); 0/0 and points outside are set to NULL.
EXTENT = Extent(41.64, 42.03, -87.95, -87.52)
_DATE_FORMATS = "['%m/%d/%Y %I:%M:%S %p', '%Y-%m-%d %H:%M:%S', '%Y-%m-%dT%H:%M:%S', '%Y-%m-%dT%H:%M:%S.%f']"


def matches(header: set[str]) -> bool:
    """Whether a header is a Chicago export (full schema or the slim extract)."""
    return {"Date", "Primary Type", "Description", "Community Area"} <= header


def spec(header: list[str]) -> IncidentSpec:
    full = "ID" in header and "FBI Code" in header
    date = f"try_strptime(trim({q('Date')}), {_DATE_FORMATS})"
    common = {
        "format": FORMAT,
        "default_source": FORMAT,
        "timezone": "America/Chicago",
        "precision": "minute",
        "occurred_at": date,
        "offence_raw": q("Primary Type"),
        "offence_detail": q("Description"),
        "taxonomy": read_taxonomy("chicago"),
        "extent": EXTENT,
        # no lower(): the loader's TRY_CAST(... AS BOOLEAN) already ignores case ('TRUE', 'False'), and lower()
        # copied every value of two columns (about 0.1 s of CPU each per 10 million rows)
        "arrest": f"trim({q('Arrest')})" if "Arrest" in header else "NULL",
        "domestic": f"trim({q('Domestic')})" if "Domestic" in header else "NULL",
    }
    premise = q("Location Description") if "Location Description" in header else "NULL"
    area = sql_area_id(q("Community Area"))
    if full:
        return IncidentSpec(
            description="City of Chicago crimes export (full schema, keyed by ID)",
            required=_FULL_REQUIRED,
            key=q("ID"),
            code=f"'FBI:' || upper(trim({q('FBI Code')}))",
            latitude=q("Latitude"),
            longitude=q("Longitude"),
            areas={
                "district": sql_area_id(q("District")) if "District" in header else "NULL",
                "beat": q("Beat") if "Beat" in header else "NULL",
                "community_area": area if "Community Area" in header else "NULL",
                "premise": premise,
            },
            **common,  # type: ignore[arg-type]
        )
    return IncidentSpec(
        description="City of Chicago crimes, slim extract (no ID, no coordinates; keyed by content hash)",
        required=("Date", "Primary Type", "Description", "Community Area"),
        code=(
            f"CASE WHEN nullif(trim({q('Primary Type')}), '') IS NOT NULL THEN 'TYPE:' || "
            f"upper(trim({q('Primary Type')})) || '|' || upper(trim(coalesce({q('Description')}, ''))) END"
        ),
        areas={"community_area": area, "premise": premise},
        **common,  # type: ignore[arg-type]
    )
