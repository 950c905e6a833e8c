"""Known open-data crime feeds: where each lives, its key and time fields, its mapping, and its caveats.

A preset names a Socrata dataset (domain and four-by-four id) and maps the dataset's API field names into the
canonical ``incidents`` columns with an :class:`~crimelens.sources.incident_spec.IncidentSpec`, the same
mapping layer files go through. Where a file adapter already exists for the dataset (Chicago), the preset
renames the API fields to the file's column names and reuses the adapter's mapping. Records are always
keyed by the dataset's own id field, so that an updated record replaces its earlier version.

Sources (checked when the presets were written; see ``docs/feeds.md``):

- Chicago: "Crimes - 2001 to Present", https://data.cityofchicago.org/d/ijzp-q8t2 (City of Chicago Data
  Portal; the portal's description says the latest seven days are withheld).
- New York City: "NYPD Complaint Data Current (Year To Date)", https://data.cityofnewyork.us/d/5uac-w243;
  the NYPD's data dictionary gives ``CMPLNT_FR_DT`` as text in M/D/YY form, ``CMPLNT_FR_TM`` as HH:MM:SS and
  ``KY_CD`` as the three-digit offence classification code.
- Los Angeles: "Crime Data from 2020 to Present", https://data.lacity.org/d/2nrs-mtv8 (LAPD); LAPD began
  moving to NIBRS records on 7 March 2024 and the dataset stopped being fed as each bureau moved
  (Crosstown LA, "Public access to Los Angeles crime data begins to go dark", 27 March 2024).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from crimelens.errors import ConfigError
from crimelens.sources import chicago
from crimelens.sources.incident_spec import Extent, IncidentSpec, q, read_taxonomy, sql_area_id

__all__ = ["PRESETS", "FeedPreset", "get_preset", "preset_names"]


@dataclass(frozen=True)
class FeedPreset:
    """One open-data crime feed.

    ``fields`` maps each API field the mapping reads to the column name the mapping uses (the file adapter's
    name where one is reused); ``key_field`` is the API field holding the record's id (the incident key);
    ``time_fields`` are the API fields that say when the offence happened (and was reported), for the docs.
    """

    name: str
    title: str
    domain: str
    dataset: str
    key_field: str
    time_fields: tuple[str, ...]
    fields: dict[str, str]
    make_spec: Callable[[], IncidentSpec]
    caveats: tuple[str, ...]
    updated_field: str = ":updated_at"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def default_url(self) -> str:
        return f"https://{self.domain}"

    @property
    def default_source(self) -> str:
        """The dataset name a feed loads into unless told otherwise (its own: feeds key by the feed's ids)."""
        return f"{self.name}-feed"

    def spec(self) -> IncidentSpec:
        """The feed's mapping, keyed by the dataset's id field."""
        spec = self.make_spec()
        key = q(self.fields[self.key_field])
        return spec if spec.key == key else replace(spec, key=key)


# -- Chicago: the file adapter's mapping, over the API's field names renamed to the export's column names --------
_CHICAGO_FIELDS = {
    "id": "ID", "case_number": "Case Number", "date": "Date", "block": "Block", "iucr": "IUCR",
    "primary_type": "Primary Type", "description": "Description", "location_description": "Location Description",
    "arrest": "Arrest", "domestic": "Domestic", "beat": "Beat", "district": "District", "ward": "Ward",
    "community_area": "Community Area", "fbi_code": "FBI Code", "latitude": "Latitude", "longitude": "Longitude",
    "updated_on": "Updated On",
}  # fmt: skip


def _chicago_spec() -> IncidentSpec:
    """The Chicago export's full-schema mapping; records without an FBI code fall back to the slim mapping.

    Both code families (``FBI:<code>`` and ``TYPE:<primary type>|<description>``) are in the same taxonomy,
    ``taxonomy/chicago.csv``; the fallback is per record, so a page's mapping never depends on its neighbours.
    """
    full = chicago.spec(list(chicago.FULL_COLUMNS))
    slim = chicago.spec(list(chicago.SLIM_COLUMNS))
    return replace(
        full,
        description="City of Chicago crimes feed (SODA ijzp-q8t2), keyed by ID",
        required=("ID", "Date", "Primary Type"),
        code=f"coalesce({full.code}, {slim.code})",
    )


# -- New York City: NYPD complaints (year to date) ---------------------------------------------------------------
_NYC_FIELDS = {
    f: f
    for f in (
        "cmplnt_num", "cmplnt_fr_dt", "cmplnt_fr_tm", "rpt_dt", "ky_cd", "ofns_desc", "pd_desc", "law_cat_cd",
        "boro_nm", "addr_pct_cd", "prem_typ_desc", "latitude", "longitude",
    )
}  # fmt: skip
#: New York City's five boroughs (Tottenville to the Bronx's northern edge, Staten Island's west shore to Queens).
NYC_EXTENT = Extent(40.49, 40.92, -74.26, -73.69)


def _nyc_date(day: str, time: str) -> str:
    """SQL: a local timestamp from NYPD's date text (M/D/YY or M/D/YYYY, or an ISO date) and HH:MM:SS time."""
    # two-digit years first: '%Y' would read '24' as the year 24 (dropped as out of range)
    d, t = f"trim({q(day)})", f"coalesce(nullif(trim({q(time)}), ''), '00:00:00')"
    return (
        f"CASE WHEN {d} LIKE '____-__-__%' THEN try_strptime(substr({d}, 1, 10) || ' ' || {t}, '%Y-%m-%d %H:%M:%S') "
        f"ELSE try_strptime({d} || ' ' || {t}, ['%m/%d/%y %H:%M:%S', '%m/%d/%Y %H:%M:%S']) END"
    )


def _nyc_spec() -> IncidentSpec:
    return IncidentSpec(
        format="nyc-complaints",
        default_source="nyc-complaints",
        description="NYPD complaints, current year to date (SODA 5uac-w243), keyed by CMPLNT_NUM",
        timezone="America/New_York",
        precision="minute",
        required=("cmplnt_num", "cmplnt_fr_dt", "ky_cd"),
        key=q("cmplnt_num"),
        occurred_at=_nyc_date("cmplnt_fr_dt", "cmplnt_fr_tm"),
        code=f"'KY:' || trim({q('ky_cd')})",
        offence_raw=q("ofns_desc"),
        offence_detail=q("pd_desc"),
        taxonomy=read_taxonomy("nyc"),
        extent=NYC_EXTENT,
        latitude=q("latitude"),
        longitude=q("longitude"),
        areas={"district": sql_area_id(q("addr_pct_cd")), "premise": q("prem_typ_desc")},
    )


# -- Los Angeles: LAPD crime data 2020 to present ----------------------------------------------------------------
_LA_FIELDS = {
    f: f
    for f in (
        "dr_no", "date_rptd", "date_occ", "time_occ", "area", "area_name", "rpt_dist_no", "crm_cd", "crm_cd_desc",
        "premis_desc", "status", "lat", "lon",
    )
}  # fmt: skip
#: The City of Los Angeles (San Pedro to the northern San Fernando Valley, Chatsworth to Eagle Rock).
LA_EXTENT = Extent(33.70, 34.34, -118.67, -118.15)


def _la_spec() -> IncidentSpec:
    day = f"try_strptime(trim({q('date_occ')}), ['%Y-%m-%dT%H:%M:%S.%f', '%m/%d/%Y %I:%M:%S %p', '%Y-%m-%d'])"
    # TIME OCC is 24-hour HHMM text without leading zeros ('5' is 00:05, '1330' is 13:30)
    occurred = (
        f"try_strptime(strftime({day}, '%Y-%m-%d') || ' ' || lpad(coalesce(nullif(trim({q('time_occ')}), ''), "
        f"'0'), 4, '0'), '%Y-%m-%d %H%M')"
    )
    return IncidentSpec(
        format="la-crime",
        default_source="la-crime",
        description="LAPD crime data from 2020 (SODA 2nrs-mtv8), keyed by DR_NO; frozen since March 2024",
        timezone="America/Los_Angeles",
        precision="minute",
        required=("dr_no", "date_occ", "crm_cd"),
        key=q("dr_no"),
        occurred_at=occurred,
        code=f"'CRM:' || trim({q('crm_cd')})",
        offence_raw=q("crm_cd_desc"),
        taxonomy=read_taxonomy("la"),
        extent=LA_EXTENT,
        latitude=q("lat"),
        longitude=q("lon"),
        areas={"district": sql_area_id(q("area")), "beat": q("rpt_dist_no"), "premise": q("premis_desc")},
    )


PRESETS: dict[str, FeedPreset] = {
    p.name: p
    for p in [
        FeedPreset(
            name="chicago",
            title="City of Chicago, Crimes - 2001 to Present",
            domain="data.cityofchicago.org",
            dataset="ijzp-q8t2",
            key_field="id",
            time_fields=("date", "updated_on"),
            fields=_CHICAGO_FIELDS,
            make_spec=_chicago_spec,
            caveats=(
                "The City of Chicago withholds the most recent seven days: the latest week is always missing, "
                "so a spike in the last days cannot be seen yet.",
                "Addresses are shown at the block level and locations are shifted within the block.",
                "Records are updated as investigations progress (offence re-classified, records removed as "
                "unfounded); crimelens keeps the latest version and removes deleted ones at each reconciliation.",
            ),
        ),
        FeedPreset(
            name="nyc-complaints",
            title="NYPD Complaint Data Current (Year To Date)",
            domain="data.cityofnewyork.us",
            dataset="5uac-w243",
            key_field="cmplnt_num",
            time_fields=("cmplnt_fr_dt", "cmplnt_fr_tm", "rpt_dt"),
            fields=_NYC_FIELDS,
            make_spec=_nyc_spec,
            caveats=(
                "Complaint dates are text in M/D/YY (month/day/year) form with a separate HH:MM:SS time, not "
                "timestamps: they are parsed as dates, and a record whose date cannot be read is dropped and "
                "counted (bad_date).",
                "The dataset is refreshed quarterly and holds the current year only; earlier years are in the "
                "historic dataset (qgea-i56i).",
                "Offence codes are NYPD's KY_CD classification mapped to UCR-like categories (taxonomy/nyc.csv); "
                "New York's legal definitions differ from the FBI's (e.g. rape).",
            ),
        ),
        FeedPreset(
            name="la-crime",
            title="LAPD Crime Data from 2020 to Present",
            domain="data.lacity.org",
            dataset="2nrs-mtv8",
            key_field="dr_no",
            time_fields=("date_occ", "time_occ", "date_rptd"),
            fields=_LA_FIELDS,
            make_spec=_la_spec,
            caveats=(
                "Frozen: LAPD moved to NIBRS records from March 2024 and this dataset stopped receiving new "
                "records as each bureau moved; it shows a false drop in crime from then on. Watching it adds "
                "nothing new; use it for history.",
                "Times are HHMM text without leading zeros ('5' is 00:05); coordinates are rounded to the "
                "nearest hundred block, and 0/0 means no location.",
            ),
        ),
    ]
}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def get_preset(name: str) -> FeedPreset:
    """The preset called ``name`` (ConfigError naming the allowed ones otherwise)."""
    found = PRESETS.get(name)
    if found is None:
        raise ConfigError(f"unknown feed {name!r}; allowed: {', '.join(preset_names())}")
    return found
