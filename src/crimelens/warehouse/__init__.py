"""The DuckDB warehouse: every write goes through here (atomic, idempotent loads with provenance), and the
parameterised read queries the analyses start from."""

from crimelens.warehouse.core import (
    IncidentLoadReport,
    LoadReport,
    connect,
    list_incident_sources,
    list_issues,
    list_loads,
    list_sources,
    load_incidents,
    load_parsed,
    migrate,
    resolve_incident_source,
    resolve_source,
)

__all__ = [
    "IncidentLoadReport",
    "LoadReport",
    "connect",
    "list_incident_sources",
    "list_issues",
    "list_loads",
    "list_sources",
    "load_incidents",
    "load_parsed",
    "migrate",
    "resolve_incident_source",
    "resolve_source",
]
