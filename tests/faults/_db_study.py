"""Shared pieces of the database fault tests: a small registry study on the real databases.

The registry is the simulator's (300 patients), written to a scratch PostgreSQL schema or
MariaDB database (`tests.databases`); `registry_fingerprint` proves nothing was written.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import sqlalchemy as sa

from connectors.schema import REQUIRED_TABLES
from sample_data.paths import SAMPLE_DIR

SPEC = """\
study: {{name: "fault study", seed: 11}}
trial: {{adsl: trial_adsl.csv, adtte: trial_adtte.csv, paramcd: PFS}}
registry:
  url: "{url}"
{schema}{timeouts}  index: {{after_regimen: platinum_pemetrexed, selection: first}}
eligibility: ["age_at_index >= 18", "ecog_at_index <= 1"]
covariates: [age_at_index, sex, ecog_at_index, histology, crs_hipec, pfi_months]
design: {{method: weighting, weights: att_odds, estimand: ATT, balance_threshold: 0.5}}
analysis: {{landmarks: [24], landmark_unit: weeks, null_rate: 0.35, rmst_tau: 52,
           bootstrap: 0}}
"""


def simulate_registry():
    """Registry tables of a small simulated scenario (seed 7, 300 patients)."""
    from sample_data.simulator import SimulationConfig, simulate_scenario

    return simulate_scenario(SimulationConfig(seed=7, n_registry=300, n_trial=27,
                                              truth_pool=1000, truth_draws=1000)).registry_tables


def write_study(folder: Path, url: str, *, schema: str | None = None,
                connect_s: float | None = None, statement_s: float | None = None) -> Path:
    """The sample trial files and a spec on ``url`` in ``folder``; returns the spec path."""
    for name in ("trial_adsl.csv", "trial_adtte.csv"):
        shutil.copy(SAMPLE_DIR / name, folder / name)
    timeouts = ""
    if connect_s is not None or statement_s is not None:
        parts = [f"connect_s: {connect_s}" if connect_s is not None else "",
                 f"statement_s: {statement_s}" if statement_s is not None else ""]
        timeouts = "  timeouts: {" + ", ".join(p for p in parts if p) + "}\n"
    path = folder / "study.yaml"
    path.write_text(SPEC.format(url=url, schema=f"  schema: {schema}\n" if schema else "",
                                timeouts=timeouts))
    return path


def registry_fingerprint(admin: sa.Engine, schema: str) -> dict[str, str]:
    """SHA-256 of every registry table's rows (sorted), per table."""
    out = {}
    with admin.connect() as con:
        for name in REQUIRED_TABLES:  # the sample registry has no lab_results
            table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=con)
            rows = sorted(repr(tuple(r)) for r in con.execute(sa.select(table)))
            out[name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


def files_containing(folder: Path, secret: str) -> list[str]:
    """Files under ``folder`` whose bytes contain ``secret`` (raw or URL-encoded)."""
    from urllib.parse import quote, quote_plus

    needles = {secret.encode(), quote(secret).encode(), quote_plus(secret).encode()}
    return [str(p) for p in folder.rglob("*")
            if p.is_file() and any(n in p.read_bytes() for n in needles)]
