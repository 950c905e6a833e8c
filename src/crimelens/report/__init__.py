"""The self-contained HTML report: findings, statistics, rankings, trends, hotspots, provenance, limits.

``build_report`` writes one HTML file with every chart inline (interactive Vega-Lite, the JavaScript bundled
once) and no outside requests; ``crimelens.analysis.vega`` turns any chart spec into Vega-Lite for other front
ends (the dashboard).
"""

from __future__ import annotations

from crimelens.report.build import STEPS, Focus, Section, build_report

__all__ = ["STEPS", "Focus", "Section", "build_report"]
