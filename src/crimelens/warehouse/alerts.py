"""Alert writes: the ``alerts`` table (each alert once, by its stable key) and its deliveries per channel.

Every write goes through :func:`crimelens.warehouse.transaction.transaction`: an alert run is stored whole or
not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from crimelens.warehouse.transaction import transaction

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

__all__ = ["ALERT_COLUMNS", "pending_keys", "record_delivery", "store_alerts", "stored_alerts"]

#: Columns of ``alerts`` written from an alert frame (``detected_at`` is added on insert).
ALERT_COLUMNS: tuple[str, ...] = (
    "alert_key",
    "source",
    "unit",
    "where_kind",
    "where_id",
    "where_name",
    "offence",
    "period",
    "method",
    "observed",
    "expected",
    "expected_low",
    "expected_high",
    "p_value",
    "q_value",
    "score",
    "elevated_since",
    "control",
    "data_version",
)


def _value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and v != v:  # NaN
        return None
    if hasattr(v, "item"):
        return _value(v.item())
    return v


def store_alerts(con: duckdb.DuckDBPyConnection, alerts: pd.DataFrame) -> list[str]:
    """Insert the alerts not stored before (by ``alert_key``); return the keys that are new, in order.

    Parameters
    ----------
    con
        A writable warehouse connection.
    alerts
        One row per alert with the :data:`ALERT_COLUMNS`.

    Returns
    -------
    list of str
        The keys inserted now; alerts already in the table are left as first stored (with the data version
        they were first computed on).
    """
    if alerts.empty:
        return []
    keys = [str(k) for k in alerts["alert_key"]]
    placeholders = ", ".join("?" for _ in keys)
    existing = {
        str(r[0])
        for r in con.execute(f"SELECT alert_key FROM alerts WHERE alert_key IN ({placeholders})", keys).fetchall()
    }
    new = alerts.loc[~alerts["alert_key"].isin(existing)].drop_duplicates("alert_key")
    if new.empty:
        return []
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [[_value(r[c]) for c in ALERT_COLUMNS] + [now] for _, r in new.iterrows()]
    cols = ", ".join((*ALERT_COLUMNS, "detected_at"))
    marks = ", ".join("?" for _ in range(len(ALERT_COLUMNS) + 1))
    with transaction(con, what="the alerts", undone="no alert was stored"):
        con.executemany(f"INSERT INTO alerts ({cols}) VALUES ({marks})", rows)
    return [str(k) for k in new["alert_key"]]


def pending_keys(con: duckdb.DuckDBPyConnection, keys: Sequence[str], channel: str) -> list[str]:
    """Of ``keys``, those not yet sent on ``channel`` (never tried, or failed before), in the order given."""
    if not keys:
        return []
    placeholders = ", ".join("?" for _ in keys)
    sent = {
        str(r[0])
        for r in con.execute(
            f"SELECT alert_key FROM alert_deliveries WHERE channel = ? AND status = 'sent' "
            f"AND alert_key IN ({placeholders})",
            [channel, *keys],
        ).fetchall()
    }
    return [k for k in keys if k not in sent]


def record_delivery(
    con: duckdb.DuckDBPyConnection, keys: Iterable[str], channel: str, status: str, error: str | None = None
) -> None:
    """Record that ``keys`` were sent (``status`` 'sent') or could not be ('failed', with the error)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [[k, channel, status, error, now] for k in keys]
    if not rows:
        return
    with transaction(con, what="the alert deliveries", undone="no delivery was recorded"):
        con.executemany(
            "INSERT INTO alert_deliveries (alert_key, channel, status, attempts, last_error, updated_at) "
            "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (alert_key, channel) DO UPDATE SET status = excluded.status, "
            "attempts = alert_deliveries.attempts + 1, last_error = excluded.last_error, "
            "updated_at = excluded.updated_at",
            rows,
        )


def stored_alerts(con: duckdb.DuckDBPyConnection, source: str | None = None) -> pd.DataFrame:
    """The stored alerts (of ``source``, or all), newest period first."""
    if source is None:
        return con.execute("SELECT * FROM alerts ORDER BY period DESC, alert_key").df()
    return con.execute("SELECT * FROM alerts WHERE source = ? ORDER BY period DESC, alert_key", [source]).df()
