"""Findings and recommendations: every finding, jurisdiction and incident alike, on one [0, 1] scale."""

from crimelens.insights.jurisdictions import Finding, Findings, key_findings

__all__ = ["Finding", "Findings", "key_findings"]
