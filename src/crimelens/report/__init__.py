"""The self-contained HTML report: findings, statistics, rankings, trends, hotspots, provenance, limits.

``build_report`` writes one HTML file with every chart inline (SVG) and no outside requests;
``charts.render_svg`` renders any analysis chart spec the same way for other front ends.
"""

from __future__ import annotations

from crimelens.report.build import STEPS, Focus, Section, build_report

__all__ = ["STEPS", "Focus", "Section", "build_report"]
