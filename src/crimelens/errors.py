"""The crimelens exception hierarchy and typed warnings.

Every error a user can cause derives from :class:`CrimeLensError`; the CLI turns it into one line
and exit status 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CrimeLensError",
    "CrimeLensWarning",
    "DataError",
    "LoadRejected",
    "NotFittedError",
    "PartialReportingWarning",
    "SchemaError",
    "SourceError",
    "SparseDataWarning",
]


class CrimeLensError(Exception):
    """Base class of every error crimelens reports to the user."""


class DataError(CrimeLensError, ValueError):
    """A value in the input or in the warehouse is not what it must be."""


class SchemaError(DataError):
    """An input file does not have the columns its format requires."""


class SourceError(CrimeLensError, OSError):
    """An input file or feed cannot be read (missing, unreadable, unknown format)."""


class ConfigError(CrimeLensError, ValueError):
    """A setting, option or mapping file is invalid."""


class NotFittedError(CrimeLensError, ValueError, AttributeError):
    """A model was used before ``fit``."""


class LoadRejected(DataError):
    """A file had more invalid rows than allowed; nothing was loaded.

    ``issues`` holds every problem found (errors and warnings), each naming file, line and column.
    """

    def __init__(self, message: str, issues: list[object]) -> None:
        super().__init__(message)
        self.issues = issues


class CrimeLensWarning(UserWarning):
    """Base class of crimelens' statistical and data-quality caveats."""


class PartialReportingWarning(CrimeLensWarning):
    """Some jurisdiction-years cover fewer than 12 months of reporting."""


class SparseDataWarning(CrimeLensWarning):
    """Too few observations for a statistic to be reliable."""
