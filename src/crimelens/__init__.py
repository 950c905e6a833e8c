"""crimelens."""
