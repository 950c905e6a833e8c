"""Render a :class:`~crimelens.analysis.result.ChartSpec` as inline, self-contained SVG with matplotlib.

The SVG needs nothing from outside the page: text stays text (``svg.fonttype = 'none'``, drawn with the
reader's sans-serif font), ids are prefixed so several charts can share one HTML document, and the XML
prologue, DOCTYPE and metadata that would point at remote DTDs are removed. Each chart carries a
``<title>`` and an ``aria-label``; :func:`render_figure` wraps it in a ``<figure>`` with a caption and the
underlying table in a ``<details>`` element.

Only the object-oriented :class:`matplotlib.figure.Figure` API is used: no pyplot, no global figure state.
"""

from __future__ import annotations

import html
import io
import math
import re
import sys
import warnings
from typing import Any

import pandas as pd
from markupsafe import Markup

from crimelens.analysis.result import ChartSpec
from crimelens.report.tables import render_table

__all__ = ["COMPACT_WIDTH_IN", "PALETTE", "ensure_headless", "render_figure", "render_svg", "slug"]

#: Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), blue first.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
_MUTED = "#9aa5b1"
_ACCENT = "#D55E00"
_INK = "#1f2933"
_GRID = "#e4e7eb"
_WIDTH_IN = 7.2
#: Width of a chart shown beside another one (two per row), in inches.
COMPACT_WIDTH_IN = 4.8
_MAX_SERIES_LEGEND_INSIDE = 5

_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.edgecolor": "#52606d",
    "axes.labelcolor": _INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": _GRID,
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "xtick.color": "#52606d",
    "ytick.color": "#52606d",
    "legend.frameon": False,
    "legend.fontsize": 8.0,
    "figure.facecolor": "white",
    "lines.linewidth": 1.8,
}

_XML_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_STYLE_BLOCK = re.compile(r"<style[^>]*>.*?</style>\s*", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_ID_ATTR = re.compile(r'\sid="([^"]+)"')
_REF = re.compile(r'(?:xlink:href|href)="#([^"]+)"|url\(#([^)]+)\)')
_SIZE_ATTRS = re.compile(r'\s(?:width|height)="[^"]*"')
_SLUG = re.compile(r"[^a-z0-9]+")


def ensure_headless() -> None:
    """Select matplotlib's non-interactive Agg backend, unless pyplot is already in use.

    crimelens never uses pyplot, so when a user's session (a notebook, say) has pyplot loaded with its
    own backend we leave it alone: switching would close the user's open figures.
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")


def slug(text: str) -> str:
    """A lowercase, dash-separated id fragment made from ``text`` (for anchors and SVG id prefixes)."""
    s = _SLUG.sub("-", text.lower()).strip("-")
    return s or "x"


def _t(text: object) -> str:
    """Text for matplotlib: ``$`` would start mathtext, so escape it."""
    return str(text).replace("$", r"\$")


def _humanize(column: str) -> str:
    return column.replace("_", " ").strip().capitalize()


def _numeric(values: pd.Series) -> pd.Series:
    """A float series (nullable integers and missing values become NaN)."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _is_year_like(values: pd.Series, name: str) -> bool:
    if name.lower() in {"year", "years"}:
        return True
    num = _numeric(values).dropna()
    return bool(len(num)) and bool(((num % 1 == 0) & (num >= 1800) & (num <= 2100)).all())


def _is_numeric(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return False
    return bool(pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values))


def _fmt_number(value: float, _pos: object = None) -> str:
    """Tick and bar labels: 12,345 · 123.4 · 1.25 (no trailing zeros)."""
    if not math.isfinite(value):
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if float(value).is_integer():
        return f"{int(value)}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def _fmt_share(value: float, _pos: object = None) -> str:
    if not math.isfinite(value):
        return ""
    return f"{value:.0%}" if abs(value) >= 0.1 or value == 0 else f"{value:.1%}"


def _is_share(column: str) -> bool:
    return "share" in column.lower()


def _is_rank(column: str) -> bool:
    return "rank" in column.lower()


def _style_value_axis(axis: Any, column: str = "") -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(_fmt_share if _is_share(column) else _fmt_number))


def _style_rank_axis(ax: Any, values: pd.Series) -> None:
    """Ranks read top-down: 1 (the highest) at the top, whole numbers only."""
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    num = _numeric(values).dropna()
    worst = float(num.max()) if len(num) else 1.0
    ax.set_ylim(max(worst, 5.0) + 0.5, 0.5)


def _style_x_axis(ax: Any, values: pd.Series, name: str, *, nbins: int = 8) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if pd.api.types.is_datetime64_any_dtype(values):
        return
    if _is_year_like(values, name):
        ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0f}"))
    elif _is_numeric(values):
        _style_value_axis(ax.xaxis, name)


def _ordered_unique(values: pd.Series) -> list[Any]:
    return list(dict.fromkeys(v for v in values.tolist() if not _missing(v)))


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _highlight_mask(data: pd.DataFrame, spec: ChartSpec) -> pd.Series:
    if spec.highlight is None or spec.highlight not in data.columns:
        return pd.Series(False, index=data.index)
    return data[spec.highlight].fillna(False).astype(bool)


def _widen_if_flat(ax: Any, x: pd.Series) -> None:
    """A single x value gives matplotlib identical axis limits (and a warning): give it some room."""
    num = _numeric(x).dropna()
    if len(num) and num.min() == num.max():
        ax.set_xlim(num.min() - 1, num.max() + 1)


def _legend(ax: Any, n_items: int) -> None:
    if n_items <= 0:
        return
    if n_items <= _MAX_SERIES_LEGEND_INSIDE:
        ax.legend(loc="best")
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _draw_lines(ax: Any, data: pd.DataFrame, spec: ChartSpec, *, legend: bool = True, nbins: int = 8) -> int:
    """Draw one line per ``series`` value (or one line); emphasise highlighted points. Returns legend size."""
    mask = _highlight_mask(data, spec)
    x_is_num = _is_numeric(data[spec.x])
    groups: list[tuple[Any, pd.DataFrame]]
    if spec.series and spec.series in data.columns:
        groups = [(name, data[data[spec.series] == name]) for name in _ordered_unique(data[spec.series])]
    else:
        groups = [(None, data)]
    n_items = 0
    for i, (name, part) in enumerate(groups):
        part = part.sort_values(spec.x) if x_is_num else part
        xs = part[spec.x] if x_is_num else part[spec.x].astype(str)
        colour = PALETTE[i % len(PALETTE)]
        ax.plot(
            xs,
            _numeric(part[spec.y]),
            color=colour,
            label=_t(name) if name is not None else None,
            marker="o" if len(part) <= 2 else None,
            markersize=4,
        )
        if name is not None:
            n_items += 1
    if mask.any():
        hi = data[mask]
        hx = hi[spec.x] if x_is_num else hi[spec.x].astype(str)
        assert spec.highlight is not None
        ax.scatter(
            hx,
            _numeric(hi[spec.y]),
            s=30,
            color=_ACCENT,
            edgecolor="white",
            linewidth=0.8,
            zorder=3,
            label=_t(_humanize(spec.highlight)),
        )
        n_items += 1
    _widen_if_flat(ax, data[spec.x])
    _style_x_axis(ax, data[spec.x], spec.x, nbins=nbins)
    _style_value_axis(ax.yaxis, spec.y)
    if _is_rank(spec.y):
        _style_rank_axis(ax, data[spec.y])
    if legend:
        _legend(ax, n_items)
    return n_items


def _bar_colours(mask: pd.Series, n: int) -> list[str]:
    if mask.any():
        return [_ACCENT if bool(m) else _MUTED for m in mask.tolist()]
    return [PALETTE[0]] * n


def _draw_bar(ax: Any, data: pd.DataFrame, spec: ChartSpec) -> None:
    labels = [_t(v) for v in data[spec.x].tolist()]
    values = _numeric(data[spec.y]).fillna(0.0)
    ax.bar(labels, values, color=_bar_colours(_highlight_mask(data, spec), len(data)))
    ax.grid(axis="x", visible=False)
    _style_value_axis(ax.yaxis, spec.y)
    if len(labels) > 12 or sum(len(v) for v in labels) > 60:
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")


def _draw_barh(ax: Any, data: pd.DataFrame, spec: ChartSpec) -> None:
    from matplotlib.ticker import MaxNLocator

    labels = [_t(v) for v in data[spec.x].tolist()]
    raw = _numeric(data[spec.y])
    values = raw.fillna(0.0)
    positions = list(range(len(labels)))
    ax.barh(positions, values, color=_bar_colours(_highlight_mask(data, spec), len(data)), height=0.7)
    ax.set_yticks(positions, labels)  # as in matplotlib, the first row is drawn at the bottom
    ax.grid(axis="y", visible=False)
    _style_value_axis(ax.xaxis, spec.y)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    label = _fmt_share if _is_share(spec.y) else _fmt_number
    if (values < 0).any():
        ax.axvline(0, color="#52606d", linewidth=0.8)
    for pos, value in zip(positions, raw.tolist(), strict=True):
        missing = math.isnan(value)
        left = not missing and value < 0
        ax.annotate(
            "no data" if missing else label(value),
            (0.0 if missing else value, pos),
            xytext=(-3 if left else 3, 0),
            textcoords="offset points",
            ha="right" if left else "left",
            va="center",
            fontsize=7.5,
            color="#52606d",
        )
    ax.margins(x=0.12)


def _draw_stacked_barh(ax: Any, data: pd.DataFrame, spec: ChartSpec) -> int:
    categories = _ordered_unique(data[spec.x])
    if not spec.series or spec.series not in data.columns:
        _draw_barh(ax, data, spec)
        return 0
    stacks = _ordered_unique(data[spec.series])
    values = data.assign(_v=_numeric(data[spec.y])).pivot_table(
        index=spec.x, columns=spec.series, values="_v", aggfunc="sum", fill_value=0.0, sort=False
    )
    values = values.reindex(index=categories, columns=stacks, fill_value=0.0)
    positions = list(range(len(categories)))
    left = [0.0] * len(categories)
    for i, stack in enumerate(stacks):
        widths = [float(v) for v in values[stack].tolist()]
        ax.barh(positions, widths, left=left, color=PALETTE[i % len(PALETTE)], label=_t(stack), height=0.7)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(positions, [_t(c) for c in categories])
    ax.grid(axis="y", visible=False)
    _style_value_axis(ax.xaxis, spec.y)
    ax.figure.legend(loc="outside lower center", ncols=min(len(stacks), 4))
    return len(stacks)


def _draw_scatter(ax: Any, data: pd.DataFrame, spec: ChartSpec) -> None:
    mask = _highlight_mask(data, spec)
    x = _numeric(data[spec.x])
    y = _numeric(data[spec.y])
    n_items = 0
    if spec.series and spec.series in data.columns:
        for i, name in enumerate(_ordered_unique(data[spec.series])):
            sel = (data[spec.series] == name) & ~mask
            ax.scatter(x[sel], y[sel], s=18, alpha=0.8, color=PALETTE[i % len(PALETTE)], label=_t(name))
            n_items += 1
    else:
        ax.scatter(x[~mask], y[~mask], s=18, alpha=0.75, color=PALETTE[0])
    if mask.any():
        assert spec.highlight is not None
        ax.scatter(x[mask], y[mask], s=40, color=_ACCENT, edgecolor="white", label=_t(_humanize(spec.highlight)))
        n_items += 1
    _widen_if_flat(ax, data[spec.x])
    _style_x_axis(ax, data[spec.x], spec.x)
    _style_value_axis(ax.yaxis, spec.y)
    _legend(ax, n_items)


def _figure_height(spec: ChartSpec, data: pd.DataFrame) -> float:
    if data.empty:
        return 1.2
    if spec.kind in ("barh", "stacked_barh"):
        n = len(_ordered_unique(data[spec.x])) if spec.x in data.columns else 1
        return min(max(0.26 * n + 1.3, 2.4), 14.0)
    if spec.kind == "small_multiples":
        n = _n_facets(spec, data)
        return 1.9 * math.ceil(n / _facet_cols(n)) + 0.6
    return 3.6


def _n_facets(spec: ChartSpec, data: pd.DataFrame) -> int:
    if spec.facet and spec.facet in data.columns:
        return max(len(_ordered_unique(data[spec.facet])), 1)
    return 1


def _facet_cols(n: int) -> int:
    return 1 if n == 1 else 2 if n in (2, 4) else 3


def _check_columns(spec: ChartSpec) -> None:
    wanted = [spec.x, spec.y, spec.series, spec.facet, spec.highlight]
    missing = [c for c in wanted if c is not None and c not in spec.data.columns]
    if missing:
        raise ValueError(
            f"chart {spec.title!r}: column {missing[0]!r} is not in its data; "
            f"allowed: {', '.join(map(str, spec.data.columns))}"
        )


def _draw(fig: Any, spec: ChartSpec, data: pd.DataFrame) -> None:
    if data.empty:
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No data to show", ha="center", va="center", color="#52606d")
        return
    if spec.kind == "small_multiples":
        _draw_small_multiples(fig, spec, data)
        return
    ax = fig.add_subplot()
    if spec.kind == "line":
        _draw_lines(ax, data, spec)
    elif spec.kind == "bar":
        _draw_bar(ax, data, spec)
    elif spec.kind == "barh":
        _draw_barh(ax, data, spec)
    elif spec.kind == "stacked_barh":
        _draw_stacked_barh(ax, data, spec)
    elif spec.kind == "scatter":
        _draw_scatter(ax, data, spec)
    else:  # pragma: no cover - ChartKind is a closed Literal
        raise ValueError(f"chart {spec.title!r}: kind {spec.kind!r} is not supported")
    if spec.kind in ("barh", "stacked_barh"):
        ax.set_xlabel(_t(spec.y_label))
        ax.set_ylabel(_t(spec.x_label))
    else:
        ax.set_xlabel(_t(spec.x_label))
        ax.set_ylabel(_t(spec.y_label))


def _draw_small_multiples(fig: Any, spec: ChartSpec, data: pd.DataFrame) -> None:
    facets = _ordered_unique(data[spec.facet]) if spec.facet and spec.facet in data.columns else [None]
    ncols = _facet_cols(len(facets))
    nrows = math.ceil(len(facets) / ncols)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    n_legend = 0
    for i, facet in enumerate(facets):
        ax = axes[i // ncols][i % ncols]
        part = data if facet is None else data[data[spec.facet] == facet]
        n_legend = _draw_lines(ax, part, spec, legend=False, nbins=4 if ncols > 1 else 8)
        if facet is not None:
            ax.set_title(_t(facet), fontsize=8.5)
    for j in range(len(facets), nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    if n_legend:
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    if spec.x_label:
        fig.supxlabel(_t(spec.x_label), fontsize=8.5)
    if spec.y_label:
        fig.supylabel(_t(spec.y_label), fontsize=8.5)


def _clean_svg(svg: str, prefix: str, title: str, description: str) -> str:
    """Make matplotlib's SVG safe to inline: no prologue/DOCTYPE, no global <style>, unique ids."""
    svg = _XML_PROLOGUE.sub("", svg, count=1)
    svg = _STYLE_BLOCK.sub("", svg)
    svg = _METADATA.sub("", svg)
    referenced = {a or b for a, b in _REF.findall(svg)}

    def fix_id(m: re.Match[str]) -> str:
        return f' id="{prefix}-{m.group(1)}"' if m.group(1) in referenced else ""

    svg = _ID_ATTR.sub(fix_id, svg)
    svg = re.sub(r'((?:xlink:href|href)="#)([^"]+)"', lambda m: f'{m.group(1)}{prefix}-{m.group(2)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    head_end = svg.index(">")
    head = _SIZE_ATTRS.sub("", svg[:head_end])
    label = html.escape(description or title, quote=True)
    head += f' role="img" aria-label="{label}" class="chart" style="stroke-linejoin: round; stroke-linecap: butt"'
    return head + ">\n <title>" + html.escape(title, quote=False) + "</title>" + svg[head_end + 1 :]


def render_svg(
    spec: ChartSpec,
    *,
    id_prefix: str | None = None,
    description: str | None = None,
    width: float | None = None,
) -> str:
    """The chart as an inline ``<svg>`` element (a string), with a ``<title>`` and an ``aria-label``.

    ``id_prefix`` keeps ids unique when several charts share a page (default: a slug of the title);
    ``width`` is the drawing width in inches (it scales to the page; smaller means larger text).
    Output is deterministic: the same spec gives the same bytes.
    """
    import matplotlib
    from matplotlib.figure import Figure

    _check_columns(spec)
    prefix = slug(id_prefix or spec.title)
    data = spec.data.reset_index(drop=True)
    rc: Any = {**_RC, "svg.hashsalt": prefix}  # matplotlib types keys as a Literal of rc names
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        # Text stays text in the SVG (svg.fonttype 'none'): the reader's browser draws it with its own
        # fonts, which cover scripts DejaVu Sans lacks. matplotlib only uses DejaVu Sans to measure the
        # layout, so its "Glyph ... missing from font" notice does not apply here. Nothing else is hidden.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        fig = Figure(figsize=(width or _WIDTH_IN, _figure_height(spec, data)), layout="constrained")
        _draw(fig, spec, data)
        buf = io.StringIO()
        fig.savefig(
            buf,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    desc = description or spec.title + (f". {spec.note}" if spec.note else "")
    return _clean_svg(buf.getvalue(), prefix, spec.title, desc)


def render_figure(
    spec: ChartSpec,
    *,
    id_prefix: str | None = None,
    caption: str | None = None,
    max_rows: int = 20,
    width: float | None = None,
) -> Markup:
    """``<figure>``: the SVG, a ``<figcaption>`` (title, note, caption) and the data in ``<details>``."""
    svg = render_svg(spec, id_prefix=id_prefix, width=width)
    parts = [
        '<figure class="chart-figure">',
        svg,
        "<figcaption>",
        f'<span class="fig-title">{html.escape(spec.title)}</span>',
    ]
    if spec.note:
        parts.append(f" {html.escape(spec.note)}")
    if caption:
        parts.append(f" {html.escape(caption)}")
    parts.append("</figcaption>")
    parts.append("<details><summary>Data behind this chart</summary>")
    parts.append(str(render_table(spec.data, max_rows=max_rows)))
    parts.append("</details></figure>")
    return Markup("".join(parts))
