"""Maps for the report: filled grid cells and filled polygons, as inline SVG, with no online tiles.

Everything is drawn in the local equal-area plane (metres) that the grids are binned in, so a square cell
is square on the page and areas compare fairly. Grids are drawn as a raster of cells (``imshow`` with no
smoothing: each cell one flat colour), polygons as a ``PolyCollection``. Each map has a scale bar, a
colour key, and a label when the data are simulated. No basemap is fetched: the report works offline.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from crimelens.geo import forward
from crimelens.report.charts import _RC, _clean_svg, slug

__all__ = ["GI_CLASSES", "area_map_svg", "grid_map_svg", "matrix_svg"]

#: Gi* classes and their colours (ColorBrewer RdBu ends; grey for cells that are not significant).
GI_CLASSES: dict[str, str] = {
    "hot": "#b2182b",
    "cold": "#2166ac",
    "not significant": "#e4e7eb",
}
_SEQUENTIAL = "YlOrRd"
_WIDTH_IN = 6.4


def _scale_bar(ax: Any, x0: float, x1: float, y0: float, y1: float) -> None:
    span = x1 - x0
    target = span / 5
    exponent = 10 ** math.floor(math.log10(target))
    length = max(v * exponent for v in (1, 2, 5) if v * exponent <= target)
    bx, by = x0 + span * 0.04, y0 + (y1 - y0) * 0.04
    ax.plot([bx, bx + length], [by, by], color="#1f2933", linewidth=2.5, solid_capstyle="butt")
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(bx + length / 2, by + (y1 - y0) * 0.015, label, ha="center", va="bottom", fontsize=8, color="#1f2933")


def _finish(fig: Any, title: str, description: str, prefix: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _clean_svg(buf.getvalue(), prefix, title, description)


def _style_axes(ax: Any, title: str, simulated: bool) -> None:
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for side in ("left", "bottom", "top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(title)
    if simulated:
        ax.text(
            0.99, 0.99, "SIMULATED DATA", transform=ax.transAxes, ha="right", va="top", fontsize=8,
            color="#7b8794", fontweight="bold",
        )  # fmt: skip


def grid_map_svg(
    cells: pd.DataFrame,
    *,
    value: str,
    cell_m: float,
    title: str,
    legend_label: str = "",
    categorical: dict[str, str] | None = None,
    simulated: bool = False,
    description: str | None = None,
    id_prefix: str | None = None,
) -> str:
    """Filled square cells: ``cells`` has ``x_m``, ``y_m`` (cell centres, metres) and ``value``.

    With ``categorical`` (class → colour, e.g. :data:`GI_CLASSES`), ``value`` holds class names; otherwise
    it is numeric and drawn on a sequential scale. Cells absent from ``cells`` stay blank (white).
    """
    import matplotlib
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    prefix = slug(id_prefix or title)
    data = cells.dropna(subset=["x_m", "y_m"])
    x0 = float(data["x_m"].min()) - cell_m / 2
    y0 = float(data["y_m"].min()) - cell_m / 2
    ix = np.rint((data["x_m"].to_numpy() - x0 - cell_m / 2) / cell_m).astype(int)
    iy = np.rint((data["y_m"].to_numpy() - y0 - cell_m / 2) / cell_m).astype(int)
    nx, ny = int(ix.max()) + 1, int(iy.max()) + 1
    raster = np.full((ny, nx), np.nan)
    rc: Any = {**_RC, "svg.hashsalt": prefix, "axes.grid": False}
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        height = max(3.0, min(7.5, _WIDTH_IN * ny / max(nx, 1) + 0.8))
        fig = Figure(figsize=(_WIDTH_IN, height), layout="constrained")
        ax = fig.add_subplot()
        extent = (x0, x0 + nx * cell_m, y0, y0 + ny * cell_m)
        if categorical is not None:
            names = list(categorical)
            codes = data[value].map({n: i for i, n in enumerate(names)}).to_numpy(dtype=float)
            raster[iy, ix] = codes
            cmap = ListedColormap([categorical[n] for n in names]).with_extremes(bad="white")
            ax.imshow(
                raster, origin="lower", extent=extent, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5,
                interpolation="nearest",
            )  # fmt: skip
            counts = data[value].value_counts()
            handles = [
                Patch(facecolor=categorical[n], edgecolor="#52606d", label=f"{n} ({int(counts.get(n, 0)):,})")
                for n in names
            ]
            ax.legend(handles=handles, loc="lower right", fontsize=8, title=legend_label or None)
        else:
            raster[iy, ix] = data[value].to_numpy(dtype=float)
            scale = matplotlib.colormaps[_SEQUENTIAL].with_extremes(bad="white")
            image = ax.imshow(raster, origin="lower", extent=extent, cmap=scale, interpolation="nearest")
            bar = fig.colorbar(image, ax=ax, shrink=0.7, pad=0.01)
            bar.set_label(legend_label)
        _style_axes(ax, title, simulated)
        _scale_bar(ax, *extent)
        desc = description or f"{title}: map of {len(data):,} cells of {cell_m:g} m"
        return _finish(fig, title, desc, prefix)


def _rings(geometry: dict[str, Any]) -> list[list[Sequence[float]]]:
    """Outer rings of a GeoJSON Polygon or MultiPolygon (holes are drawn over by the outer fill)."""
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    if kind == "Polygon":
        return [coords[0]] if coords else []
    if kind == "MultiPolygon":
        return [poly[0] for poly in coords if poly]
    return []


def _simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    import shapely

    if len(ring) < 8:
        return ring
    simple = shapely.simplify(shapely.linearrings(ring), tolerance, preserve_topology=False)
    coords = shapely.get_coordinates(simple)
    return coords if len(coords) >= 4 else ring


def area_map_svg(
    geometries: Sequence[dict[str, Any]],
    values: Sequence[float | None],
    *,
    title: str,
    legend_label: str = "",
    labels: Sequence[str] | None = None,
    simulated: bool = False,
    description: str | None = None,
    id_prefix: str | None = None,
) -> str:
    """A choropleth of GeoJSON polygons (WGS84) coloured by ``values`` (None or NaN: hatched, no data)."""
    import matplotlib
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    prefix = slug(id_prefix or title)
    rings = [_rings(g) for g in geometries]
    all_pts = np.array([pt[:2] for rs in rings for ring in rs for pt in ring], dtype=float)
    lon0, lat0 = float(all_pts[:, 0].mean()), float(all_pts[:, 1].mean())
    polys: list[np.ndarray] = []
    owner: list[int] = []
    x_all, y_all = forward(all_pts[:, 0], all_pts[:, 1], lon0, lat0)
    # simplify to about a thousandth of the map's width: invisible on the page, and keeps the SVG small
    tolerance = max(float(np.ptp(x_all)), float(np.ptp(y_all))) / 1000
    for i, rs in enumerate(rings):
        for ring in rs:
            arr = np.asarray([pt[:2] for pt in ring], dtype=float)
            x, y = forward(arr[:, 0], arr[:, 1], lon0, lat0)
            polys.append(_simplify(np.column_stack([x, y]), tolerance))
            owner.append(i)
    vals = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    rc: Any = {**_RC, "svg.hashsalt": prefix, "axes.grid": False}
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        xs = np.concatenate([p[:, 0] for p in polys])
        ys = np.concatenate([p[:, 1] for p in polys])
        ratio = (ys.max() - ys.min()) / max(xs.max() - xs.min(), 1.0)
        fig = Figure(figsize=(_WIDTH_IN, max(3.0, min(8.0, _WIDTH_IN * ratio * 0.8 + 0.8))), layout="constrained")
        ax = fig.add_subplot()
        finite = vals[np.isfinite(vals)]
        norm = Normalize(
            vmin=float(finite.min()) if finite.size else 0.0, vmax=float(finite.max()) if finite.size else 1.0
        )
        cmap = matplotlib.colormaps[_SEQUENTIAL]
        colours = [cmap(norm(vals[o])) if np.isfinite(vals[o]) else (1, 1, 1, 1) for o in owner]
        hatches = ["////" if not np.isfinite(vals[o]) else "" for o in owner]
        coll = PolyCollection(polys, facecolors=colours, edgecolors="#52606d", linewidths=0.4)
        ax.add_collection(coll)
        if any(hatches):
            nodata = [p for p, h in zip(polys, hatches, strict=True) if h]
            ax.add_collection(
                PolyCollection(nodata, facecolors="none", edgecolors="#9aa5b1", hatch="////", linewidths=0)
            )
        ax.set_xlim(xs.min(), xs.max())
        ax.set_ylim(ys.min(), ys.max())
        from matplotlib.cm import ScalarMappable

        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7, pad=0.01)
        bar.set_label(legend_label)
        if labels is not None and finite.size:
            top = np.argsort(np.where(np.isfinite(vals), vals, -np.inf))[::-1][:5]
            for i in top:
                if not np.isfinite(vals[i]) or not rings[i]:
                    continue
                mine = [p for p, o in zip(polys, owner, strict=True) if o == i]
                biggest = max(mine, key=len)
                cx, cy = biggest[:, 0].mean(), biggest[:, 1].mean()
                from matplotlib import patheffects

                halo = [patheffects.withStroke(linewidth=2.2, foreground="white")]
                ax.text(
                    cx, cy, str(labels[i]), fontsize=7, ha="center", va="center", color="#1f2933", path_effects=halo
                )
        _style_axes(ax, title, simulated)
        _scale_bar(ax, xs.min(), xs.max(), ys.min(), ys.max())
        desc = description or f"{title}: map of {len(geometries)} areas"
        return _finish(fig, title, desc, prefix)


def matrix_svg(
    matrix: pd.DataFrame,
    *,
    title: str,
    legend_label: str = "",
    x_label: str = "",
    description: str | None = None,
    id_prefix: str | None = None,
) -> str:
    """A heat map of a small matrix (rows × columns, e.g. weekday × hour), each cell labelled by its row/column."""
    import matplotlib
    from matplotlib.figure import Figure

    prefix = slug(id_prefix or title)
    values = matrix.to_numpy(dtype=float)
    rc: Any = {**_RC, "svg.hashsalt": prefix, "axes.grid": False}
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        fig = Figure(figsize=(_WIDTH_IN + 0.8, 0.32 * len(matrix) + 1.4), layout="constrained")
        ax = fig.add_subplot()
        image = ax.imshow(values, aspect="auto", cmap=_SEQUENTIAL, interpolation="nearest")
        ax.set_yticks(range(len(matrix)), [str(i) for i in matrix.index])
        ax.set_xticks(range(len(matrix.columns)), [str(c) for c in matrix.columns], fontsize=7)
        ax.set_xlabel(x_label)
        ax.grid(False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_title(title)
        bar = fig.colorbar(image, ax=ax, shrink=0.9, pad=0.01)
        bar.set_label(legend_label)
        return _finish(fig, title, description or title, prefix)
