"""Paths of the shipped sample files, resolved through `importlib.resources`.

They work from a checkout and from an installed package (the files are package data of
``sample_data``). Regenerate them with ``python -m sample_data.build``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = [
    "DEMO_GTT_SPEC",
    "DEMO_ORR_SPEC",
    "DEMO_PLATFORM",
    "DEMO_SPEC",
    "EXPORT_MAPPING",
    "EXPORT_PARQUET",
    "EXPORT_SQLITE",
    "GTT_ADLB",
    "GTT_ADSL",
    "GTT_ADTTE",
    "GTT_MAPPING",
    "GTT_REGISTRY",
    "GTT_TRUTH",
    "SAMPLE_DIR",
    "SAMPLE_REGISTRY",
    "TRIAL_ADRS",
    "TRIAL_ADSL",
    "TRIAL_ADTTE",
    "TRUTH_JSON",
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
# the second cohort: gestational trophoblastic tumours, its own registry naming (sample_data.gtt)
GTT_REGISTRY: Path = SAMPLE_DIR / "gtt_registry.sqlite"
GTT_MAPPING: Path = SAMPLE_DIR / "gtt_registry_mapping.yaml"
GTT_ADSL: Path = SAMPLE_DIR / "gtt_adsl.csv"
GTT_ADTTE: Path = SAMPLE_DIR / "gtt_adtte.csv"
GTT_ADLB: Path = SAMPLE_DIR / "gtt_adlb.csv"
GTT_TRUTH: Path = SAMPLE_DIR / "gtt_truth.json"
DEMO_GTT_SPEC: Path = SAMPLE_DIR / "demo_gtt.yaml"
