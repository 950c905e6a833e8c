"""crimelens: crime statistics, rankings, trends, hotspots and findings from an embedded DuckDB warehouse."""

__version__ = "0.1.0"
__all__ = ["__version__"]
