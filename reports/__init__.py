"""Survival comparison of the trial arm and the synthetic control; figures and HTML (pure).

Public entry points: `compare_arms` / `ArmComparison` (reports.compare), the fitters
`WeightedKM` (reports.km) and `WeightedCoxPH` (reports.cox), `bootstrap_comparison`
(reports.bootstrap), `evalue_hr` / `evalue_rr` (reports.evalue) and `km_figure`
(reports.figures, imported on demand so that ``import reports`` does not load matplotlib).
"""

from reports.bootstrap import BootstrapResult, bootstrap_comparison
from reports.compare import ArmComparison, compare_arms
from reports.cox import HazardRatio, WeightedCoxPH
from reports.errors import EstimationError
from reports.evalue import evalue_hr, evalue_rr
from reports.km import SurvivalCurve, WeightedKM

__all__ = [
    "ArmComparison",
    "BootstrapResult",
    "EstimationError",
    "HazardRatio",
    "SurvivalCurve",
    "WeightedCoxPH",
    "WeightedKM",
    "bootstrap_comparison",
    "compare_arms",
    "evalue_hr",
    "evalue_rr",
]
