"""Survival comparison of the trial arm and the synthetic control; figures and HTML (pure).

Public entry points: `compare_arms` / `ArmComparison` (reports.compare), `WeightedKM`
(reports.km), `bootstrap_comparison` (reports.bootstrap), `km_figure` (reports.figures),
`evalue_hr` / `evalue_rr` (reports.evalue).
"""

from reports.compare import ArmComparison, compare_arms
from reports.errors import EstimationError
from reports.km import SurvivalCurve, WeightedKM

__all__ = ["ArmComparison", "EstimationError", "SurvivalCurve", "WeightedKM", "compare_arms"]
