"""Canonical tables, their column types, versioned migrations and the offence taxonomy.

Every source adapter maps its input into these tables; nothing downstream reads raw files.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COUNT_COLUMNS",
    "INCIDENT_COLUMNS",
    "JURISDICTION_KINDS",
    "KEY_AREA_COLUMNS",
    "MIGRATIONS",
    "MONTHS_UNSTATED_SQL",
    "OFFENCES",
    "OFFENCE_LABELS",
    "PARTIAL_YEAR_SQL",
    "PROPERTY_OFFENCES",
    "RAPE_DEFINITIONS",
    "SIMULATED_COLUMN",
    "SIMULATED_SOURCE",
    "TIME_PRECISIONS",
    "VIOLENT_OFFENCES",
    "Migration",
    "canonical_key_sql",
    "months_status",
]

#: The one reporting-months rule (docs/methods.md, "Reporting months"), used by loaders, analyses and the report.
#: ``months_reported`` 12 is a full year; 1–11 a partial year (its counts cover only those months: flagged,
#: left out of trend fits); 0 or missing means the source does not say how many months its counts cover. The
#: Marshall file has both: 0 for 18 agency-years whose counts are clearly annual (Chicago 1984: 60,579 violent
#: crimes, between 1983's and 1985's) and NA for every agency in 2015 (figures gathered from "Crime in the
#: U.S."): both are kept as annual figures, never dropped, and flagged "months not stated".
PARTIAL_YEAR_SQL = "coalesce(months_reported BETWEEN 1 AND 11, false)"
MONTHS_UNSTATED_SQL = "(months_reported IS NULL OR months_reported = 0)"


def months_status(months: int | None) -> str:
    """'full' (12), 'partial' (1–11) or 'unstated' (0 or missing): :data:`PARTIAL_YEAR_SQL` in Python."""
    if months is None or months == 0:
        return "unstated"
    return "full" if months >= 12 else "partial"


#: The area columns that are part of an id-less incident's canonical key (not ``premise``: a description).
KEY_AREA_COLUMNS = ("district", "beat", "community_area", "neighbourhood", "census_tract")


def canonical_key_sql(occurred_at: str, offence_raw: str, latitude: str, longitude: str, areas: list[str]) -> str:
    """SQL for the key stem of an incident without an id: the md5 of its canonical values.

    The local time to the second, the offence as recorded, the coordinates rounded to 1e-6 degrees (about 0.1 m;
    empty when missing or outside the extent) and the area ids of :data:`KEY_AREA_COLUMNS`, joined with the unit
    separator. The loader computes it from each row's mapped values, and migration 4 from the stored columns, so
    both give the same key: a re-export with its columns reordered or renamed, padding stripped or a descriptive
    field corrected keeps every key (an ``#n`` suffix numbers rows with the same stem).
    """
    parts = [
        f"coalesce(strftime({occurred_at}, '%Y-%m-%d %H:%M:%S'), '')",
        f"coalesce({offence_raw}, '')",
        f"coalesce(printf('%.6f', {latitude}), '')",
        f"coalesce(printf('%.6f', {longitude}), '')",
        *(f"coalesce({a}, '')" for a in areas),
    ]
    return "md5(concat_ws(chr(31), " + ", ".join(parts) + "))"


_STORED_KEY = canonical_key_sql("occurred_at", "offence_raw", "latitude", "longitude", list(KEY_AREA_COLUMNS))

#: The column ``crimelens simulate`` adds to every file it writes (value ``SIMULATED`` on every row): an ingest
#: that sees it loads the file only as a simulated dataset, never under a real dataset's name.
SIMULATED_COLUMN = "crimelens_simulated"
#: The dataset name a simulated file loads as when no other is given.
SIMULATED_SOURCE = "simulated-city"

#: The four UCR Part I violent offences, in the FBI's order.
VIOLENT_OFFENCES: tuple[str, ...] = ("homicide", "rape", "robbery", "aggravated_assault")
#: UCR Part I property offences (arson is rarely estimated at jurisdiction-year level).
PROPERTY_OFFENCES: tuple[str, ...] = ("burglary", "larceny", "motor_vehicle_theft", "arson")
#: Canonical offences (incident grain): UCR Part I plus two catch-alls.
OFFENCES: tuple[str, ...] = (*VIOLENT_OFFENCES, *PROPERTY_OFFENCES, "other_assault", "other")

#: Count columns of ``jurisdiction_year`` (aggregates first, then their parts).
COUNT_COLUMNS: tuple[str, ...] = (
    "violent_crime",
    "homicide",
    "rape",
    "robbery",
    "aggravated_assault",
    "property_crime",
    "burglary",
    "larceny",
    "motor_vehicle_theft",
)

OFFENCE_LABELS: dict[str, str] = {
    "violent_crime": "Violent crime",
    "homicide": "Homicide",
    "rape": "Rape",
    "robbery": "Robbery",
    "aggravated_assault": "Aggravated assault",
    "property_crime": "Property crime",
    "burglary": "Burglary",
    "larceny": "Larceny-theft",
    "motor_vehicle_theft": "Motor vehicle theft",
    "arson": "Arson",
    "other_assault": "Other assault",
    "other": "Other",
}

JURISDICTION_KINDS: tuple[str, ...] = ("state", "city", "county", "agency", "nation")
#: The FBI changed its rape definition in 2013: 'legacy' (forcible rape of a female) and 'revised'.
RAPE_DEFINITIONS: tuple[str, ...] = ("legacy", "revised")


#: How precisely an incident's ``occurred_at`` is known.
TIME_PRECISIONS: tuple[str, ...] = ("minute", "hour", "day")

#: Columns of ``incidents`` in table order (``source`` first, ``load_id`` last).
INCIDENT_COLUMNS: tuple[str, ...] = (
    "source",
    "incident_key",
    "occurred_at",
    "time_precision",
    "offence",
    "offence_raw",
    "offence_detail",
    "latitude",
    "longitude",
    "district",
    "beat",
    "community_area",
    "neighbourhood",
    "census_tract",
    "premise",
    "arrest",
    "domestic",
    "load_id",
)

_OFFENCE_CHECK = ", ".join(f"'{o}'" for o in OFFENCES)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "jurisdiction-year warehouse",
        """
        CREATE SEQUENCE load_id_seq START 1;
        CREATE TABLE loads (
            load_id INTEGER PRIMARY KEY,
            source VARCHAR NOT NULL,
            format VARCHAR NOT NULL,
            file_name VARCHAR NOT NULL,
            sha256 VARCHAR NOT NULL,
            rows_read BIGINT NOT NULL,
            rows_loaded BIGINT NOT NULL,
            rows_rejected BIGINT NOT NULL,
            warnings BIGINT NOT NULL,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP NOT NULL,
            status VARCHAR NOT NULL CHECK (status IN ('loaded', 'replaced')),
            replaced_by INTEGER
        );
        CREATE TABLE load_issues (
            load_id INTEGER NOT NULL,
            line BIGINT,
            column_name VARCHAR,
            severity VARCHAR NOT NULL CHECK (severity IN ('error', 'warning')),
            code VARCHAR NOT NULL,
            message VARCHAR NOT NULL
        );
        CREATE TABLE jurisdictions (
            jurisdiction_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL CHECK (kind IN ('state', 'city', 'county', 'agency', 'nation')),
            state VARCHAR,
            ori VARCHAR
        );
        CREATE TABLE jurisdiction_year (
            source VARCHAR NOT NULL,
            jurisdiction_id VARCHAR NOT NULL,
            year INTEGER NOT NULL CHECK (year BETWEEN 1900 AND 2100),
            population BIGINT CHECK (population > 0),
            months_reported INTEGER CHECK (months_reported BETWEEN 0 AND 12),
            violent_crime BIGINT CHECK (violent_crime >= 0),
            homicide BIGINT CHECK (homicide >= 0),
            rape BIGINT CHECK (rape >= 0),
            robbery BIGINT CHECK (robbery >= 0),
            aggravated_assault BIGINT CHECK (aggravated_assault >= 0),
            property_crime BIGINT CHECK (property_crime >= 0),
            burglary BIGINT CHECK (burglary >= 0),
            larceny BIGINT CHECK (larceny >= 0),
            motor_vehicle_theft BIGINT CHECK (motor_vehicle_theft >= 0),
            rape_definition VARCHAR CHECK (rape_definition IN ('legacy', 'revised')),
            rape_legacy BIGINT CHECK (rape_legacy >= 0),
            load_id INTEGER NOT NULL,
            PRIMARY KEY (source, jurisdiction_id, year)
        );
        """,
    ),
    Migration(
        2,
        "incident warehouse",
        f"""
        -- one row per incident; (source, incident_key) is unique, enforced by the loader's upsert
        -- (an ART index on tens of millions of keys costs more memory than the 2 GB budget allows)
        CREATE TABLE incidents (
            source VARCHAR NOT NULL,
            incident_key VARCHAR NOT NULL,
            occurred_at TIMESTAMP NOT NULL,
            time_precision VARCHAR NOT NULL CHECK (time_precision IN ('minute', 'hour', 'day')),
            offence VARCHAR NOT NULL CHECK (offence IN ({_OFFENCE_CHECK})),
            offence_raw VARCHAR NOT NULL,
            offence_detail VARCHAR,
            latitude DOUBLE CHECK (latitude BETWEEN -90 AND 90),
            longitude DOUBLE CHECK (longitude BETWEEN -180 AND 180),
            district VARCHAR,
            beat VARCHAR,
            community_area VARCHAR,
            neighbourhood VARCHAR,
            census_tract VARCHAR,
            premise VARCHAR,
            arrest BOOLEAN,
            domestic BOOLEAN,
            load_id INTEGER NOT NULL
        );
        -- per incident source: the local time zone its timestamps are in, whether it is simulated, and the
        -- offence mapping version used by its latest load
        CREATE TABLE incident_sources (
            source VARCHAR PRIMARY KEY,
            format VARCHAR NOT NULL,
            timezone VARCHAR NOT NULL,
            simulated BOOLEAN NOT NULL,
            taxonomy_version VARCHAR NOT NULL,
            description VARCHAR NOT NULL
        );
        -- versioned mapping from each source's offence codes to the canonical offences
        CREATE TABLE offence_map (
            source VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            code VARCHAR NOT NULL,
            offence VARCHAR NOT NULL CHECK (offence IN ({_OFFENCE_CHECK})),
            PRIMARY KEY (source, version, code)
        );
        -- area boundaries (GeoJSON geometry in WGS84) and population, grouped in named sets
        CREATE TABLE areas (
            area_set VARCHAR NOT NULL,
            area_kind VARCHAR NOT NULL,
            area_id VARCHAR NOT NULL,
            name VARCHAR,
            geometry VARCHAR NOT NULL,
            population BIGINT CHECK (population >= 0),
            population_year INTEGER,
            load_id INTEGER NOT NULL,
            PRIMARY KEY (area_set, area_id)
        );
        -- what a load did with rows, counted by reason: dropped, repaired (kept after a fix), replaced (upsert)
        CREATE TABLE load_reasons (
            load_id INTEGER NOT NULL,
            reason VARCHAR NOT NULL,
            action VARCHAR NOT NULL CHECK (action IN ('dropped', 'repaired', 'kept', 'replaced')),
            rows BIGINT NOT NULL,
            example_lines VARCHAR,
            PRIMARY KEY (load_id, reason)
        );
        """,
    ),
    Migration(
        3,
        "grid origins pinned per incident source",
        """
        -- per incident source: the origin its grid cells are counted from, pinned once (from the source's whole
        -- extent, by crimelens.warehouse.grid.pin_grid_origin) so cells keep their ids whatever the time window
        -- or offence filter; the extent it was computed from is kept beside it
        CREATE TABLE grid_origins (
            source VARCHAR PRIMARY KEY,
            lon0 DOUBLE CHECK (lon0 BETWEEN -180 AND 180),
            lat0 DOUBLE CHECK (lat0 BETWEEN -80 AND 80),
            x0 DOUBLE,
            y0 DOUBLE,
            min_lon DOUBLE NOT NULL,
            max_lon DOUBLE NOT NULL,
            min_lat DOUBLE NOT NULL,
            max_lat DOUBLE NOT NULL,
            pinned_at TIMESTAMP NOT NULL
        );
        -- backfill for sources loaded before this migration: their whole extent now (the origin, NULL here, is
        -- derived from it by crimelens.geo, the one copy of the projection, when read and written by the next pin)
        INSERT INTO grid_origins (source, min_lon, max_lon, min_lat, max_lat, pinned_at)
        SELECT source, min(longitude), max(longitude), min(latitude), max(latitude), CAST(now() AS TIMESTAMP)
        FROM incidents
        WHERE latitude IS NOT NULL AND longitude IS NOT NULL
        GROUP BY source;
        """,
    ),
    Migration(
        4,
        "id-less incidents keyed by their canonical values",
        f"""
        -- incidents of sources without ids were keyed by the md5 of their raw text ('<32 hex>#<n>'), so a
        -- re-export that differed only in form (columns reordered, padding stripped) loaded every row again;
        -- rekey them from their stored canonical values (crimelens.schema.canonical_key_sql), numbering rows
        -- with the same values within a source
        CREATE TEMP TABLE _rekey AS
        SELECT rowid AS r, {_STORED_KEY} AS stem,
               row_number() OVER (PARTITION BY source, {_STORED_KEY} ORDER BY load_id, incident_key) AS n
        FROM incidents
        WHERE regexp_full_match(incident_key, '[0-9a-f]{{32}}#[0-9]+');
        UPDATE incidents SET incident_key = _rekey.stem || '#' || _rekey.n FROM _rekey WHERE incidents.rowid = _rekey.r;
        DROP TABLE _rekey;
        """,
    ),
    Migration(
        5,
        "socio-economic covariates",
        """
        -- socio-economic covariates in long form: one value per unit (a community area, a state, a county),
        -- year and covariate name, per covariate dataset (source); every row carries the load that wrote it
        CREATE TABLE covariates (
            source VARCHAR NOT NULL,
            unit_kind VARCHAR NOT NULL,
            unit_id VARCHAR NOT NULL,
            unit_name VARCHAR,
            year INTEGER NOT NULL CHECK (year BETWEEN 1900 AND 2100),
            name VARCHAR NOT NULL,
            value DOUBLE NOT NULL CHECK (isfinite(value)),
            load_id INTEGER NOT NULL,
            PRIMARY KEY (source, unit_kind, unit_id, year, name)
        );
        """,
    ),
    Migration(
        6,
        "live feed state",
        """
        -- per feed dataset (an incident source): the :updated_at watermark of the last complete poll, and the poll
        -- or reconciliation in progress, so that `crimelens watch` resumes after a crash at any point; every
        -- change is committed in the same transaction as the page of records it follows
        CREATE TABLE feed_state (
            source VARCHAR PRIMARY KEY,
            preset VARCHAR NOT NULL,
            url VARCHAR NOT NULL,
            -- every record updated at or before this instant (the feed's :updated_at, UTC) is in the warehouse
            watermark TIMESTAMP,
            -- the poll in progress: records updated in [watermark, poll_upper] are being read in :id order;
            -- poll_cursor is the last :id committed, poll_offset the records committed so far (offset paging)
            poll_upper TIMESTAMP,
            poll_cursor VARCHAR,
            poll_offset BIGINT NOT NULL DEFAULT 0,
            polls BIGINT NOT NULL DEFAULT 0,
            pages BIGINT NOT NULL DEFAULT 0,
            last_poll_at TIMESTAMP,
            -- the reconciliation in progress: the last :id listed, and the newest load whose rows it may delete
            reconcile_cursor VARCHAR,
            reconcile_load_id INTEGER,
            reconciliations BIGINT NOT NULL DEFAULT 0,
            last_reconciled_at TIMESTAMP,
            updated_at TIMESTAMP NOT NULL
        );
        -- the incident keys a reconciliation in progress has listed so far (emptied when it ends)
        CREATE TABLE feed_reconcile_ids (
            source VARCHAR NOT NULL,
            incident_key VARCHAR NOT NULL
        );
        """,
    ),
    Migration(
        7,
        "alerts and their deliveries",
        """
        -- one row per alert: a series (source, where, offence, unit) unusually high in one period by one method;
        -- alert_key is stable (a hash of those fields), so the same alert found again is not stored or sent twice
        CREATE TABLE alerts (
            alert_key VARCHAR PRIMARY KEY,
            source VARCHAR NOT NULL,
            unit VARCHAR NOT NULL,
            where_kind VARCHAR NOT NULL,
            where_id VARCHAR NOT NULL,
            where_name VARCHAR,
            offence VARCHAR NOT NULL,
            period VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            observed DOUBLE NOT NULL,
            expected DOUBLE,
            expected_low DOUBLE,
            expected_high DOUBLE,
            p_value DOUBLE,
            q_value DOUBLE,
            score DOUBLE,
            elevated_since VARCHAR,
            control VARCHAR NOT NULL,
            data_version INTEGER,
            detected_at TIMESTAMP NOT NULL
        );
        -- each alert's delivery per channel (stdout, jsonl, webhook): sent once; a failed delivery is retried on
        -- the next run, a sent one never again
        CREATE TABLE alert_deliveries (
            alert_key VARCHAR NOT NULL,
            channel VARCHAR NOT NULL,
            status VARCHAR NOT NULL CHECK (status IN ('sent', 'failed')),
            attempts INTEGER NOT NULL,
            last_error VARCHAR,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (alert_key, channel)
        );
        """,
    ),
)
