"""Propensity scores, matching, weighting and balance diagnostics (pure; no I/O)."""
