"""Survival comparison of the trial arm and the synthetic control; figures and HTML (pure).

Public entry points: `analyze_study` / `AnalysisSettings` / `AnalysisDesign` /
`StudyAnalysis` (reports.analysis: the whole study analysis), `analyze_imputed`
(reports.analysis_mi: the same over multiply imputed designs), `compare_arms` / `ArmComparison`
(reports.compare), the fitters `WeightedKM` (reports.km) and `WeightedCoxPH` (reports.cox),
`evalue_hr` / `evalue_rr` (reports.evalue) and `km_figure`
(reports.figures, imported on demand so that ``import reports`` does not load matplotlib).
"""

from importlib import import_module

# name -> module: imported on first use (PEP 562), so that importing one module of the package
# (``reports.km`` for the spec's CONF_TYPES) does not load the bootstrap, joblib, scipy.stats.
_EXPORTS = {
    "AnalysisDesign": "reports.analysis",
    "AnalysisSettings": "reports.analysis",
    "StudyAnalysis": "reports.analysis",
    "analyze_study": "reports.analysis",
    "time_to_event_settings": "reports.analysis",
    "analyze_imputed": "reports.analysis_mi",
    "BootstrapResult": "reports.bootstrap",
    "ArmComparison": "reports.compare",
    "compare_arms": "reports.compare",
    "HazardRatio": "reports.cox",
    "WeightedCoxPH": "reports.cox",
    "EstimationError": "reports.errors",
    "evalue_hr": "reports.evalue",
    "evalue_rr": "reports.evalue",
    "SurvivalCurve": "reports.km",
    "WeightedKM": "reports.km",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'reports' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
