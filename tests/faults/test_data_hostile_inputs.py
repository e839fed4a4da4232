"""Hostile or damaged input files, through ``synthctl run``: each ends in exit 2 with a message
naming the file, the row and the column (or the damage), before any result is written."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from sample_data.paths import DEMO_SPEC, SAMPLE_REGISTRY, TRIAL_ADSL, TRIAL_ADTTE
from synthctl.cli import app
from tests.connectors.xport_writer import write_xport
from tests.synthctl.conftest import CSV, write_spec

cli = CliRunner()


def _registry_study(tmp_path, adsl_name: str = "trial_adsl.csv"):
    for src in (SAMPLE_REGISTRY, TRIAL_ADSL, TRIAL_ADTTE):
        shutil.copy(src, tmp_path / src.name)
    spec = DEMO_SPEC.read_text().replace("bootstrap: 200", "bootstrap: 0")
    spec = spec.replace("adsl: trial_adsl.csv", f"adsl: {adsl_name}")
    (tmp_path / "study.yaml").write_text(spec)
    return tmp_path / "study.yaml"


def _run(spec, tmp_path):
    res = cli.invoke(app, ["run", str(spec), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert "internal error" not in res.output
    assert not (tmp_path / "out" / "results.json").exists()
    return " ".join(res.output.split())  # the message may be wrapped


def test_nul_byte_in_the_trial_adsl(tmp_path):
    spec = _registry_study(tmp_path)
    adsl = tmp_path / "trial_adsl.csv"
    lines = adsl.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b"epithelioid", b"epith\x00elioid", 1)
    assert b"\x00" in lines[5]
    adsl.write_bytes(b"\n".join(lines))
    out = _run(spec, tmp_path)
    assert f"{adsl}, row 6, column HISTGR: control character U+0000 (NUL)" in out


def test_nul_byte_in_a_flat_analysis_file(tmp_path):
    df = pd.read_csv(CSV)
    df.loc[10, "histology"] = "epith\x00elioid"
    df.to_csv(tmp_path / "data.csv", index=False)
    out = _run(write_spec(tmp_path), tmp_path)
    assert (f"{tmp_path / 'data.csv'}: column 'histology': control character U+0000 (NUL) at "
            "position 6 of the value 'epith\\x00elioid' in row 11") in out


def test_cyrillic_lookalike_covariate_in_a_flat_file(tmp_path):
    pd.read_csv(CSV).rename(columns={"ecog": "есog"}).to_csv(tmp_path / "data.csv",
                                                            index=False)  # Cyrillic e, s
    out = _run(write_spec(tmp_path), tmp_path)
    assert "unknown covariate 'ecog'" in out
    assert "U+0435 (CYRILLIC SMALL LETTER IE) U+0441 (CYRILLIC SMALL LETTER ES)" in out


def test_full_width_header_in_a_flat_file_runs(tmp_path):
    pd.read_csv(CSV).rename(columns={"ecog": "ｅｃｏｇ"}).to_csv(tmp_path / "data.csv",
                                                             index=False)
    res = cli.invoke(app, ["run", str(write_spec(tmp_path)), "--out", str(tmp_path / "out")])
    assert res.exit_code in (0, 1), res.output  # 1: balance threshold not met is fine


@pytest.mark.slow
def test_truncated_adsl_xpt_is_blamed_on_adsl(tmp_path):
    spec = _registry_study(tmp_path, adsl_name="trial_adsl.xpt")
    adsl = pd.read_csv(TRIAL_ADSL, dtype=str, keep_default_na=False)
    for col in ("AGE", "ECOGBL", "PCIBL", "PFIMO", "PRLINES", "DIAGMO", "KI67BL"):
        adsl[col] = pd.to_numeric(adsl[col])
    path = tmp_path / "trial_adsl.xpt"
    write_xport(adsl, path, "ADSL")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 400])  # five 80-byte records: whole subjects lost
    out = _run(spec, tmp_path)
    assert f"{path}: truncated SAS XPORT file" in out
    assert "is not in ADSL" not in out  # the old symptom: ADTTE subjects missing from ADSL
