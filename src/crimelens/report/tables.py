"""HTML tables for the report; number formatting itself lives in ``crimelens.formatting``."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from markupsafe import Markup

from crimelens.formatting import format_value, humanize, is_missing

__all__ = ["format_value", "humanize", "is_missing", "records", "render_table"]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts (column name → value), for building sentences."""
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _numeric_column(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values)) and not pd.api.types.is_bool_dtype(values)


def render_table(
    frame: pd.DataFrame,
    *,
    max_rows: int | None = 20,
    columns: Sequence[str] | None = None,
    caption: str | None = None,
    labels: Mapping[str, str] | None = None,
    table_id: str | None = None,
) -> Markup:
    """An escaped HTML table of (the first ``max_rows`` rows of) ``frame``; numbers right-aligned."""
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    rows = frame if max_rows is None else frame.head(max_rows)
    names = labels or {}
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    out = [f'<div class="table-wrap"><table{ident}>']
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    numeric = {c: _numeric_column(frame[c]) for c in cols}
    out.append("<thead><tr>")
    for c in cols:
        cls = ' class="num"' if numeric[c] else ""
        out.append(f'<th scope="col"{cls}>{html.escape(names.get(c, humanize(str(c))))}</th>')
    out.append("</tr></thead><tbody>")
    for rec in rows[cols].itertuples(index=False, name=None):
        out.append("<tr>")
        for c, v in zip(cols, rec, strict=True):
            cls = ' class="num"' if numeric[c] else ""
            out.append(f"<td{cls}>{html.escape(format_value(v, str(c)))}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    if max_rows is not None and len(frame) > max_rows:
        out.append(f'<p class="table-note">First {max_rows} of {len(frame):,} rows.</p>')
    return Markup("".join(out))
