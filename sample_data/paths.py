"""Paths of the shipped sample files, resolved through `importlib.resources`.

They work from a checkout and from an installed package (the files are package data of
``sample_data``). Regenerate them with ``python -m sample_data.build``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = [
    "DEMO_ORR_SPEC", "DEMO_PLATFORM", "DEMO_SPEC", "EXPORT_MAPPING", "EXPORT_PARQUET",
    "EXPORT_SQLITE",
    "SAMPLE_DIR", "SAMPLE_REGISTRY", "TRIAL_ADRS", "TRIAL_ADSL", "TRIAL_ADTTE", "TRUTH_JSON",
]

# a regular (non-namespace, non-zipped) package: its resources are real files
SAMPLE_DIR: Path = Path(str(files("sample_data")))
SAMPLE_REGISTRY: Path = SAMPLE_DIR / "renape_sample.sqlite"
TRIAL_ADSL: Path = SAMPLE_DIR / "trial_adsl.csv"
TRIAL_ADTTE: Path = SAMPLE_DIR / "trial_adtte.csv"
TRIAL_ADRS: Path = SAMPLE_DIR / "trial_adrs.csv"
TRUTH_JSON: Path = SAMPLE_DIR / "truth.json"
DEMO_SPEC: Path = SAMPLE_DIR / "demo_study.yaml"
DEMO_PLATFORM: Path = SAMPLE_DIR / "demo_platform.yaml"
DEMO_ORR_SPEC: Path = SAMPLE_DIR / "demo_study_orr.yaml"  # ORR primary (issue 15)
# the same registry as a network exports it (sample_data.export)
EXPORT_PARQUET: Path = SAMPLE_DIR / "registry_export"
EXPORT_SQLITE: Path = SAMPLE_DIR / "registry_export.sqlite"
EXPORT_MAPPING: Path = SAMPLE_DIR / "registry_export_mapping.yaml"
