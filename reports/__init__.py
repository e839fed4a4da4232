"""Survival comparison of the trial arm and the synthetic control; figures and HTML (pure).

Public entry points: `analyze_study` / `AnalysisSettings` / `AnalysisDesign` /
`StudyAnalysis` (reports.analysis: the whole study analysis), `compare_arms` / `ArmComparison`
(reports.compare), the fitters `WeightedKM` (reports.km) and `WeightedCoxPH` (reports.cox),
`evalue_hr` / `evalue_rr` (reports.evalue) and `km_figure`
(reports.figures, imported on demand so that ``import reports`` does not load matplotlib).
"""

from reports.analysis import (
    AnalysisDesign,
    AnalysisSettings,
    StudyAnalysis,
    analyze_study,
    time_to_event_settings,
)
from reports.bootstrap import BootstrapResult
from reports.compare import ArmComparison, compare_arms
from reports.cox import HazardRatio, WeightedCoxPH
from reports.errors import EstimationError
from reports.evalue import evalue_hr, evalue_rr
from reports.km import SurvivalCurve, WeightedKM

__all__ = [
    "AnalysisDesign",
    "AnalysisSettings",
    "ArmComparison",
    "BootstrapResult",
    "EstimationError",
    "HazardRatio",
    "StudyAnalysis",
    "SurvivalCurve",
    "WeightedCoxPH",
    "WeightedKM",
    "analyze_study",
    "compare_arms",
    "evalue_hr",
    "evalue_rr",
    "time_to_event_settings",
]
