"""How numbers read, wherever crimelens shows them (terminal tables, the report, the dashboard).

The column name decides: ``*share*`` → percent, ``*pct*`` → signed percent change, p-values to three
decimals, years and ids plain, other numbers with thousands separators.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from crimelens.schema import OFFENCE_LABELS

__all__ = ["COLUMN_LABELS", "MAX_EVIDENCE_ITEMS", "evidence_text", "format_value", "humanize", "is_missing"]

#: How many items of a list a finding's evidence shows before "and N more".
MAX_EVIDENCE_ITEMS = 10

_PLAIN_INT_COLUMNS = frozenset({"year", "start", "end", "load_id", "replaced_by", "line", "rank", "window"})
_P_COLUMNS = frozenset({"p_value", "q_value", "mk_p", "mk_q", "p", "q"})
_RATIO_COLUMNS = frozenset({"rate_ratio", "ci_low", "ci_high", "ci", "mk_tau", "tau"})

#: Readable headers for column names that ``humanize`` would render poorly.
COLUMN_LABELS: dict[str, str] = {
    "rate_per_100k": "Rate per 100,000",
    "share_of_violent": "Share of violent crime",
    "violent_rank": "Rank among violent offences",
    "national_count": "National count",
    "sha256_short": "SHA-256 (first 12)",
    "rows_read": "Rows read",
    "rows_loaded": "Rows loaded",
    "rows_rejected": "Rows rejected",
    "months_reported": "Months reported",
    "p_value": "p-value",
    "q_value": "q-value (FDR)",
    "mk_p": "Mann–Kendall p",
    "mk_q": "Mann–Kendall q (FDR)",
    "ci": "Confidence interval",
    "rate_ratio": "Rate ratio",
    "mk_tau": "Mann–Kendall τ",
    "jurisdiction_id": "ID",
    "file_name": "File",
}


def humanize(column: str) -> str:
    """A column name as a table header: ``rows_read`` → 'Rows read'."""
    if column in COLUMN_LABELS:
        return COLUMN_LABELS[column]
    return column.replace("_", " ").strip().capitalize()


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _is_plain_int_column(column: str) -> bool:
    c = column.lower()
    return (
        c in _PLAIN_INT_COLUMNS
        or c.endswith(("_year", "_id", "year", "_from", "_to", "_start", "_end"))
        or c.startswith("year")
    )


def format_value(value: Any, column: str = "") -> str:
    """``value`` as text for a reader; ``column`` (its name) picks percent, p-value or year styles."""
    if is_missing(value):
        return "—"
    if hasattr(value, "item") and not isinstance(value, str | pd.Timestamp):
        value = value.item()  # numpy scalar → Python
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    c = column.lower()
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isinf(value)):
        if _is_plain_int_column(c) and float(value).is_integer():
            return str(int(value))
        if "share" in c:
            return f"{float(value):.1%}"
        if "pct" in c or "percent" in c:
            return f"{float(value):+.1f}%"
        if "points" in c:
            return f"{float(value):+.1f}"
        if c in _P_COLUMNS:
            return "< 0.001" if value < 0.001 else f"{float(value):.3f}"
        if c in ("lat", "lon", "latitude", "longitude"):
            return f"{float(value):.5f}"  # about a metre: enough to find a grid cell on a map
        if c in _RATIO_COLUMNS:
            return f"{float(value):.3f}"
        if isinstance(value, int) or float(value).is_integer():
            return f"{int(value):,}"
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.3g}"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v, column) for v in value)
    return str(value)


def evidence_text(key: str, value: Any) -> str:
    """A finding's evidence value as text: lists shortened, offences labelled, numbers formatted."""
    if isinstance(value, dict):
        return "; ".join(f"{humanize(str(k))} {evidence_text(f'{key}_{k}', v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        items = list(value)
        shown = items[:MAX_EVIDENCE_ITEMS]
        parts = []
        for item in shown:
            if isinstance(item, dict) and item:
                values = list(item.items())
                head = format_value(values[0][1], str(values[0][0]))
                rest = ", ".join(format_value(v, str(k)) for k, v in values[1:])
                parts.append(f"{head} ({rest})" if rest else head)
            else:
                parts.append(format_value(item, key))
        more = f" and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
        return ", ".join(parts) + more
    if key == "offence" and isinstance(value, str):
        return OFFENCE_LABELS.get(value, value)
    return format_value(value, key)
