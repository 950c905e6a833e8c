"""The DuckDB warehouse: every write goes through here (atomic, idempotent loads with provenance), and the
parameterised read queries the analyses start from.

One module per job: :mod:`~crimelens.warehouse.connection` (connect, migrations),
:mod:`~crimelens.warehouse.transaction` (the one transaction helper), :mod:`~crimelens.warehouse.loads` (load ids,
superseded loads), :mod:`~crimelens.warehouse.jurisdictions`
(jurisdiction-year loads), :mod:`~crimelens.warehouse.incidents` (incident loads),
:mod:`~crimelens.warehouse.areas` (area sets), :mod:`~crimelens.warehouse.grid` (grid origins pinned per source)
and :mod:`~crimelens.warehouse.queries` (what is loaded).
"""

from crimelens.warehouse.areas import AreaLoadReport, load_areas, load_preset
from crimelens.warehouse.connection import connect, migrate
from crimelens.warehouse.incidents import IncidentLoadReport, load_incidents
from crimelens.warehouse.jurisdictions import LoadReport, load_parsed
from crimelens.warehouse.queries import (
    list_incident_sources,
    list_issues,
    list_loads,
    list_sources,
    resolve_incident_source,
    resolve_source,
)
from crimelens.warehouse.transaction import transaction

__all__ = [
    "AreaLoadReport",
    "IncidentLoadReport",
    "LoadReport",
    "connect",
    "list_incident_sources",
    "list_issues",
    "list_loads",
    "list_sources",
    "load_areas",
    "load_incidents",
    "load_parsed",
    "load_preset",
    "migrate",
    "resolve_incident_source",
    "resolve_source",
    "transaction",
]
