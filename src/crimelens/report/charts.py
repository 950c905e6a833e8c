"""Interactive, offline charts for the HTML report: Vega-Lite specs embedded with the JavaScript inlined once.

:mod:`crimelens.analysis.vega` turns a :class:`~crimelens.analysis.result.ChartSpec` (or a map) into a Vega-Lite
dict; this module wraps it for the page:

- :func:`render_figure` / :func:`embed_figure`: a ``<figure>`` with the spec as JSON (``<script
  type="application/json">``), a "Download CSV" button for the data behind the chart, a caption, the data as a
  table in ``<details>``, and a static SVG inside ``<noscript>`` for readers without JavaScript;
- :func:`page_script`: the Vega, Vega-Lite and vega-embed bundle (built from ``vl-convert-python`` by
  ``scripts/make_vega_bundle.py`` and shipped in ``report/vendor/``) plus the few lines that draw every figure,
  inlined ONCE per page. Nothing is fetched: the file works offline.

Charts are drawn by the browser as SVG (so printing keeps vectors) and fill their container's width, so they
reflow on a phone. A line chart that would be one flat line becomes a sentence instead.
"""

from __future__ import annotations

import functools
import html
import json
import re
from typing import Any

from markupsafe import Markup

from crimelens.analysis.result import ChartSpec
from crimelens.analysis.vega import PALETTE, chart_to_vegalite, flat_line_sentence
from crimelens.report.tables import render_table

__all__ = ["PALETTE", "embed_figure", "page_script", "render_figure", "slug", "static_svg"]

_SLUG = re.compile(r"[^a-z0-9]+")
_ID_ATTR = re.compile(r'\sid="([^"]+)"')
#: Width (px) of the static SVG drawn for readers without JavaScript.
STATIC_WIDTH_PX = 720


def slug(text: str) -> str:
    """A lowercase, dash-separated id fragment made from ``text`` (for anchors and chart ids)."""
    s = _SLUG.sub("-", text.lower()).strip("-")
    return s or "x"


def _script_json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` can close it early)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def static_svg(spec: dict[str, Any], chart_id: str) -> str:
    """The chart as a static SVG string (vl-convert: the same Vega as in the browser), ids prefixed."""
    import vl_convert

    fixed = dict(spec)
    if fixed.get("width") == "container":
        fixed["width"] = STATIC_WIDTH_PX
    svg = vl_convert.vegalite_to_svg(fixed)
    # vl-convert numbers clip paths across calls (clip118): renumber them per chart, so ids are unique on the
    # page and the same spec gives the same bytes
    for n, ident in enumerate(dict.fromkeys(_ID_ATTR.findall(svg))):
        new = f"{chart_id}-s{n}"
        svg = svg.replace(f'id="{ident}"', f'id="{new}"').replace(f"#{ident})", f"#{new})")
    return svg


@functools.cache
def _bundle() -> str:
    """The Vega, Vega-Lite and vega-embed bundle shipped with crimelens (``scripts/make_vega_bundle.py``)."""
    from importlib.resources import files

    return files("crimelens.report").joinpath("vendor", "vega-bundle.js").read_text(encoding="utf-8")


_INIT = r"""
(function () {
  "use strict";
  function cell(v) {
    if (v === null || v === undefined) return "";
    var s = typeof v === "object" ? JSON.stringify(v) : String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function toCsv(columns, rows) {
    var lines = [columns.map(cell).join(",")];
    rows.forEach(function (r) { lines.push(columns.map(function (c) { return cell(r[c]); }).join(",")); });
    return lines.join("\r\n") + "\r\n";
  }
  function fitFacets(spec, width) {
    if (!spec.facet || !spec.spec) return;
    var cols = Math.max(1, Math.min(spec.columns || 1, Math.floor(width / 250)));
    spec.columns = cols;
    spec.spec.width = Math.max(120, Math.floor(width / cols) - 60);
  }
  function draw(fig) {
    var spec = JSON.parse(fig.querySelector("script.vega-spec").textContent);
    var target = fig.querySelector(".vega-chart");
    fitFacets(spec, target.clientWidth || 700);
    var meta = spec.usermeta || {};
    if (spec.projection && spec.width === "container") {
      // a map is drawn once at its container's width and then scales with the page (CSS): re-fitting a
      // projection while the page is being resized drew paths at NaN for a moment
      spec.width = Math.max(280, target.clientWidth || 700);
      if (meta.aspect > 0) {
        // as tall as the cells' extent needs at this width (beside the colour legend), so a map in a half-width
        // column leaves no blank band below it
        spec.height = Math.round(Math.min(720, Math.max(220, (spec.width - 140) * meta.aspect)));
      }
      if (spec.autosize && spec.autosize.resize) delete spec.autosize.resize;
    }
    var button = fig.querySelector("button.csv-download");
    if (button) {
      button.addEventListener("click", function () {
        var rows = (spec.data && spec.data.values) || [];
        if (meta.csv_layer) {
          var layer = (spec.layer || []).filter(function (l) { return l.name === meta.csv_layer; })[0];
          rows = layer.data.values.map(function (f) { return f.properties; });
        }
        var blob = new Blob([toCsv(meta.columns || Object.keys(rows[0] || {}), rows)], {type: "text/csv"});
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = (fig.id || "chart") + ".csv";
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      });
    }
    return vegaEmbed(target, spec, {renderer: "svg", actions: false, tooltip: {theme: "light"}})
      .then(function () { fig.classList.add("vega-ready"); })
      .catch(function (e) { fig.classList.add("vega-failed"); console.error("chart " + fig.id + ": " + e); });
  }
  function drawAll() {
    var figs = Array.prototype.slice.call(document.querySelectorAll("figure[data-vega]"));
    Promise.all(figs.map(draw)).then(function () { document.documentElement.classList.add("charts-ready"); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
"""


def page_script() -> Markup:
    """The ``<script>`` that draws every chart on the page: Vega bundle (once) and the drawing code."""
    bundle = _bundle().replace("</script", "<\\/script")
    return Markup(f"<script>{bundle}</script>\n<script>{_INIT}</script>")


def embed_figure(
    spec: dict[str, Any],
    *,
    chart_id: str,
    title: str,
    caption: str = "",
    table: Markup | None = None,
    css_class: str = "",
    table_label: str = "Data behind this chart",
    fallback: bool = True,
) -> Markup:
    """A ``<figure>`` that draws the Vega-Lite ``spec``, with a CSV download, caption, table and SVG fallback."""
    cls = " ".join(["chart-figure", css_class]).strip()
    label = html.escape(title, quote=True)
    parts = [
        f'<figure class="{cls}" id="{html.escape(chart_id, quote=True)}" data-vega>',
        f'<div class="vega-chart" role="img" aria-label="{label}"></div>',
        f'<script type="application/json" class="vega-spec">{_script_json(spec)}</script>',
    ]
    if fallback:
        parts.append(f'<noscript><div class="static-chart">{static_svg(spec, chart_id)}</div></noscript>')
    else:
        where = "the table below" if table is not None else "the Download CSV file"
        parts.append(
            f'<noscript><p class="no-js">This chart is drawn with JavaScript, which is off; the figures behind it are '
            f"in {where}.</p></noscript>"
        )
    parts.append("<figcaption>")
    parts.append(f'<span class="fig-title">{html.escape(title)}</span>')
    if caption:
        parts.append(f" {html.escape(caption)}")
    parts.append(' <button type="button" class="csv-download">Download CSV</button>')
    parts.append("</figcaption>")
    if table is not None:
        parts.append(f"<details><summary>{html.escape(table_label)}</summary>{table}</details>")
    parts.append("</figure>")
    return Markup("".join(parts))


def render_figure(
    spec: ChartSpec,
    *,
    id_prefix: str | None = None,
    caption: str | None = None,
    max_rows: int = 20,
    fallback: bool = True,
) -> Markup:
    """The chart as a ``<figure>``; a chart that would be one flat line becomes a sentence instead."""
    flat = flat_line_sentence(spec)
    if flat is not None:
        return Markup(f'<p class="flat-chart">{html.escape(flat)}</p>')
    chart_id = slug(id_prefix or spec.title)
    words = [spec.note, caption or ""]
    return embed_figure(
        chart_to_vegalite(spec),
        chart_id=chart_id,
        title=spec.title,
        caption=" ".join(w for w in words if w),
        table=render_table(spec.data, max_rows=max_rows),
        fallback=fallback,
    )
