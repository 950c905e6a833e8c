"""The one transaction helper every warehouse write goes through.

A write is all or nothing: :func:`transaction` runs its body between ``BEGIN`` and ``COMMIT`` and rolls
back on any exception. Two failures need care:

- The rollback itself can fail (DuckDB has already ended a transaction whose ``COMMIT`` failed, or the
  connection is broken). That second error is logged and the *original* error is raised: a rollback
  never masks why the write failed.
- A full disk, an I/O error or exhausted memory while writing is not a bug but a condition the analyst
  can fix. It becomes one :class:`~crimelens.errors.SourceError` line naming the warehouse and the reason,
  e.g. ``warehouse crimelens.duckdb: could not write crimes.csv (No space left on device); nothing was
  loaded and the warehouse is as it was``, which the CLI prints as one line with exit status 1.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from crimelens.errors import SourceError

__all__ = ["transaction"]

log = logging.getLogger(__name__)

#: Errors that mean "the warehouse could not be written", wherever they happen inside a transaction.
_WRITE_FAILURES: tuple[type[duckdb.Error], ...] = (duckdb.IOException, duckdb.OutOfMemoryException)


@contextmanager
def transaction(
    con: duckdb.DuckDBPyConnection, *, what: str = "the load", undone: str = "nothing was loaded"
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the body as one warehouse transaction: committed whole, or rolled back whole.

    Parameters
    ----------
    con
        An open, writable warehouse connection with no transaction in progress.
    what
        What is being written, for the error message (e.g. the file's name).
    undone
        What the failure left undone, for the error message (e.g. ``"nothing was loaded"``).

    Yields
    ------
    duckdb.DuckDBPyConnection
        ``con`` itself, inside the open transaction.

    Raises
    ------
    SourceError
        The warehouse could not be written (disk full, I/O error, out of memory), in the body or at
        ``COMMIT``; the transaction was rolled back.
    BaseException
        Any other exception of the body, unchanged, after the rollback (also when the rollback fails).
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException as exc:
        _rollback(con, exc, after_commit=False)
        if isinstance(exc, _WRITE_FAILURES):
            raise _write_error(con, exc, what, undone) from exc
        raise
    try:
        con.execute("COMMIT")
    except duckdb.Error as exc:
        # DuckDB usually ends a transaction whose COMMIT failed; a ROLLBACK then only finds no transaction
        _rollback(con, exc, after_commit=True)
        if _is_write_failure(exc):
            raise _write_error(con, exc, what, undone) from exc
        raise


def _rollback(con: duckdb.DuckDBPyConnection, original: BaseException, *, after_commit: bool) -> None:
    """Roll back; a failure to do so is logged, never raised (the caller re-raises ``original``)."""
    try:
        con.execute("ROLLBACK")
    except Exception as exc:
        # after a failed COMMIT there is normally no transaction left to roll back: expected, so DEBUG only
        level = logging.DEBUG if after_commit else logging.WARNING
        log.log(level, "rollback after %s failed as well: %s", type(original).__name__, exc)


def _is_write_failure(exc: duckdb.Error) -> bool:
    """A COMMIT error that means the transaction could not be written (as opposed to a broken rule)."""
    if isinstance(exc, _WRITE_FAILURES):
        return True
    # DuckDB wraps the I/O error of writing the WAL at COMMIT: "TransactionContext Error: Failed to commit: ..."
    return isinstance(exc, duckdb.TransactionException) and "failed to commit" in str(exc).lower()


def _write_error(con: duckdb.DuckDBPyConnection, exc: BaseException, what: str, undone: str) -> SourceError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    reason = first.rsplit(": ", 1)[-1].strip() or first
    if isinstance(exc, duckdb.OutOfMemoryException):
        reason = f"out of memory: {reason}"
    return SourceError(
        f"warehouse {_name(con)}: could not write {what} ({reason}); {undone} and the warehouse is as it was"
    )


def _name(con: duckdb.DuckDBPyConnection) -> str:
    """The warehouse file as the user named it (its path), or "(in memory)"."""
    try:
        row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    except duckdb.Error:
        return "(unknown file)"
    return str(row[0]) if row and row[0] else "(in memory)"
