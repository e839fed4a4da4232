"""Survival comparison of the trial arm and the synthetic control; figures and HTML (pure)."""
