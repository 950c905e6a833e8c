"""Covariate writes: a checked covariate file becomes one covariate dataset in ``covariates``, in one transaction.

Atomic and idempotent as every load: the same file again (same sha256) under the same name is a no-op; a
different file under the same name replaces the whole dataset; every row carries its ``load_id`` and the load
is recorded in ``loads`` (format ``covariates:<preset>``) with the values it skipped as warnings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from crimelens.errors import ConfigError, DataError
from crimelens.sources.covariates import CovariateFile
from crimelens.warehouse.loads import next_load_id, supersede_loads
from crimelens.warehouse.transaction import transaction

__all__ = ["CovariateLoadReport", "covariate_values", "list_covariate_sources", "load_covariates"]


@dataclass(frozen=True)
class CovariateLoadReport:
    """What one covariate load did."""

    load_id: int
    source: str
    preset: str
    unit_kind: str
    file_name: str
    sha256: str
    units: int
    years: tuple[int, ...]
    covariates: tuple[str, ...]
    values_loaded: int
    skipped_missing: int
    status: str  # 'loaded' | 'unchanged'
    replaced_load_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_id": self.load_id,
            "source": self.source,
            "preset": self.preset,
            "unit_kind": self.unit_kind,
            "file": self.file_name,
            "sha256": self.sha256,
            "units": self.units,
            "years": list(self.years),
            "covariates": list(self.covariates),
            "values_loaded": self.values_loaded,
            "skipped_missing": self.skipped_missing,
            "status": self.status,
            "replaced_load_ids": list(self.replaced_load_ids),
        }


def load_covariates(
    con: duckdb.DuckDBPyConnection, parsed: CovariateFile, source: str | None = None
) -> CovariateLoadReport:
    """Write a covariate file (from :func:`crimelens.sources.covariates.read_covariates`) as dataset ``source``.

    ``source`` defaults to the preset's name. A name already used by a crime dataset or an area set is refused.
    """
    name = (source or parsed.preset).strip()
    if not name:
        raise ConfigError("covariate dataset name: expected a non-empty name, got ''")
    rows = parsed.rows
    report: dict[str, Any] = {
        "preset": parsed.preset,
        "unit_kind": parsed.unit_kind,
        "file_name": parsed.path.name,
        "sha256": parsed.sha256,
        "units": int(rows["unit_id"].nunique()),
        "years": tuple(sorted(int(y) for y in rows["year"].unique())),
        "covariates": tuple(dict.fromkeys(rows["name"])),
        "values_loaded": len(rows),
        "skipped_missing": parsed.skipped_missing,
    }
    existing = con.execute(
        "SELECT load_id FROM loads WHERE source = ? AND sha256 = ? AND status = 'loaded'", [name, parsed.sha256]
    ).fetchone()
    if existing:
        return CovariateLoadReport(int(existing[0]), name, status="unchanged", **report)
    clash = con.execute(
        "SELECT (SELECT count(*) FROM jurisdiction_year WHERE source = ?) + "
        "(SELECT count(*) FROM incident_sources WHERE source = ?) + (SELECT count(*) FROM areas WHERE area_set = ?)",
        [name, name, name],
    ).fetchone()
    if clash and clash[0]:
        raise ConfigError(
            f"covariate dataset name {name!r} is already a crime dataset's or area set's name; choose another"
        )
    if rows.empty:
        raise DataError(f"{parsed.path.name}: expected at least one covariate value, got none")
    with transaction(con, what=parsed.path.name):
        started = dt.datetime.now()
        load_id = next_load_id(con)
        previous = supersede_loads(con, name, load_id)
        con.execute("DELETE FROM covariates WHERE source = ?", [name])
        staged = rows.assign(source=name, load_id=load_id)[
            ["source", "unit_kind", "unit_id", "unit_name", "year", "name", "value", "load_id"]
        ]
        con.register("covariates_staged", staged)
        try:
            con.execute("INSERT INTO covariates SELECT * FROM covariates_staged")
        finally:
            con.unregister("covariates_staged")
        con.execute(
            "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, 'loaded', NULL)",
            [load_id, name, f"covariates:{parsed.preset}", parsed.path.name, parsed.sha256, parsed.rows_read,
             parsed.rows_read, parsed.skipped_missing, started, dt.datetime.now()],
        )  # fmt: skip
    return CovariateLoadReport(load_id, name, status="loaded", replaced_load_ids=previous, **report)


def list_covariate_sources(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Covariate datasets loaded: source, unit kind, units, years, covariates."""
    return con.execute(
        "SELECT source, unit_kind, count(DISTINCT unit_id) AS units, min(year) AS first_year, max(year) AS last_year, "
        "string_agg(DISTINCT name, ', ' ORDER BY name) AS covariates FROM covariates GROUP BY source, unit_kind "
        "ORDER BY source"
    ).df()


def covariate_values(con: duckdb.DuckDBPyConnection, sources: list[str]) -> pd.DataFrame:
    """The long covariate rows of ``sources`` (every one must be loaded)."""
    loaded = set(list_covariate_sources(con)["source"])
    missing = [s for s in sources if s not in loaded]
    if missing:
        raise DataError(
            f"covariate dataset(s) {', '.join(missing)} not loaded; loaded: {', '.join(sorted(loaded)) or 'none'} "
            "(load one with `crimelens covariates load FILE --preset NAME`)"
        )
    placeholders = ", ".join("?" for _ in sources)
    return con.execute(
        f"SELECT source, unit_kind, unit_id, unit_name, year, name, value FROM covariates "
        f"WHERE source IN ({placeholders}) ORDER BY source, unit_id, year, name",
        list(sources),
    ).df()
