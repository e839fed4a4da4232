"""Shared helpers of the quality tests: a small clean registry and defect injection.

Defects are injected with plain SQL into a *copy* of a registry; each injector returns the
keys it broke so that a test asserts the check finds exactly those rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sample_data.writer import write_registry, write_registry_sqlite

TODAY = dt.date(2026, 1, 1)  # extraction date of the test registries
CENTRES = ("C01", "C02", "C03")


def clean_tables(n: int = 120, seed: int = 7) -> dict[str, pd.DataFrame]:
    """A small registry with no defect: every check passes on it."""
    rng = np.random.default_rng(seed)
    day = dt.timedelta(days=1)
    centres = pd.DataFrame({"centre_id": list(CENTRES), "centre_name": ["A", "B", "C"],
                            "region": ["N", "S", "E"]})
    pats, diags, surgs, lines, tas, fus = [], [], [], [], [], []
    line_id = ta_id = surg_id = 0
    for i in range(n):
        pid = f"P{i:05d}"
        diag_date = dt.date(2016, 1, 1) + int(rng.integers(0, 1500)) * day
        birth = diag_date - int(rng.integers(45 * 365, 80 * 365)) * day
        pats.append((pid, CENTRES[i % 3], "FM"[i % 2], birth))
        diags.append((i + 1, pid, diag_date, "peritoneal_mesothelioma",
                      ("epithelioid", "biphasic", "sarcomatoid")[i % 3],
                      int(rng.integers(0, 40)) if i % 10 != 5 else None,
                      float(rng.uniform(1, 60)), ("lost", "retained")[i % 2]))
        if i % 2 == 0:
            surg_id += 1
            surgs.append((surg_id, pid, diag_date + 20 * day, True, bool(i % 4 == 0),
                          int(rng.integers(0, 4))))
        start = diag_date + 60 * day
        n_lines = 1 + i % 3
        for k in range(1, n_lines + 1):
            line_id += 1
            end = start + int(rng.integers(60, 200)) * day
            reason = "progression" if k < n_lines or i % 2 else "completed"
            lines.append((line_id, pid, k, "platinum_pemetrexed" if k == 1 else "vinorelbine",
                          "platinum;antifolate" if k == 1 else "vinca_alkaloid", start, end,
                          reason, int(rng.integers(0, 3))))
            ta_id += 1
            tas.append((ta_id, pid, start + 30 * day, "mRECIST", "SD", False))
            if reason == "progression":
                ta_id += 1
                tas.append((ta_id, pid, end, "mRECIST", "PD", False))
            start = end + int(rng.integers(10, 40)) * day
        dead = i % 4 == 1
        last = start + int(rng.integers(30, 200)) * day
        if not dead:
            last = dt.date(2025, 6, 1) - int(rng.integers(0, 200)) * day
        fus.append((pid, last, "dead" if dead else "alive", last if dead else None))
    cols = {
        "patients": ["patient_id", "centre_id", "sex", "birth_date"],
        "diagnoses": ["diagnosis_id", "patient_id", "diagnosis_date", "disease", "histology",
                      "pci", "ki67_percent", "bap1_status"],
        "surgeries": ["surgery_id", "patient_id", "surgery_date", "crs", "hipec", "cc_score"],
        "treatment_lines": ["line_id", "patient_id", "line_number", "regimen", "drug_classes",
                            "start_date", "end_date", "end_reason", "ecog_at_start"],
        "tumour_assessments": ["assessment_id", "patient_id", "assessment_date", "criteria",
                               "overall_response", "clinical_progression"],
        "follow_up": ["patient_id", "last_contact_date", "vital_status", "death_date"],
    }
    rows = {"patients": pats, "diagnoses": diags, "surgeries": surgs, "treatment_lines": lines,
            "tumour_assessments": tas, "follow_up": fus}
    out = {"centres": centres}
    out.update({name: pd.DataFrame(rows[name], columns=cols[name]) for name in cols})
    return out


def write_sqlite(tables, path: Path) -> Path:
    write_registry_sqlite(tables, path)
    return path


def write_engine(engine: sa.Engine, tables, schema: str | None = None) -> None:
    write_registry(engine, tables, schema=schema)


def copy_registry(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def row_counts(engine: sa.Engine, schema: str | None = None) -> dict[str, int]:
    meta = sa.MetaData()
    meta.reflect(engine, schema=schema)
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in meta.sorted_tables}
