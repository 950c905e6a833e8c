"""Analyses: pure functions from a warehouse connection and parameters to result objects."""
