"""The biomarker normalisation endpoint in a study (issue 15): spec settings, the binary
source entry (``synthctl.stages._binary.BINARY_SOURCES["NORMALISATION"]``), a flat file's
``data.normalised`` column as the primary endpoint, and the units of the two arms."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from synthctl.cli import app
from synthctl.spec import StudySpec
from tests.synthctl.conftest import CSV, write_spec

cli = CliRunner()


def _spec(**changes) -> dict:
    base = {
        "study": {"name": "x", "seed": 1},
        "trial": {"adsl": "a.csv", "adtte": "b.csv"},
        "registry": {"url": "sqlite:///r.sqlite"},
        "covariates": ["age_at_index"],
    }
    for key, value in changes.items():
        base[key] = {**base.get(key, {}), **value}
    return base


def _validate(data: dict) -> StudySpec:
    return StudySpec.model_validate(data, context={"check_files": False})


def test_settings_and_their_defaults():
    spec = _validate(_spec(trial={"adlb": "lb.csv"},
                           analysis={"normalisation": {"analyte": "hcg"},
                                     "primary": "NORMALISATION"}))
    n = spec.analysis.normalisation
    assert (n.n_consecutive, n.by, n.unit, n.adlb_paramcd) == (2, 24.0, "weeks", "HCG")
    assert spec.analysis.primary_endpoint == "NORMALISATION"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"analysis": {"normalisation": {"analyte": "hcg"}}}, "needs the trial's ADLB"),
        ({"trial": {"adlb": "lb.csv"}, "analysis": {"normalisation": {"analyte": "hgc"}}},
         "analyte"),
        ({"trial": {"adlb": "lb.csv"},
          "analysis": {"normalisation": {"analyte": "hcg", "n_consecutive": 0}}},
         "n_consecutive"),
        ({"trial": {"adlb": "lb.csv"},
          "analysis": {"normalisation": {"analyte": "hcg", "unit": "fortnights"}}}, "unit"),
        ({"analysis": {"primary": "NORMALISATION"}}, "primary NORMALISATION needs"),
        ({"trial": {"adlb": "lb.csv"}, "analysis": {"normalisation": {"analyte": "hcg"}},
          "design": {"method": "weighting", "missing": "impute"}}, "NORMALISATION are not "
         "available with"),
        # the response endpoint as a secondary one: refused too, never left out of the pooled
        # analysis silently
        ({"trial": {"adrs": "rs.csv"}, "analysis": {"response": {}},
          "design": {"method": "weighting", "missing": "impute"}}, "ORR are not available with"),
    ],
)
def test_settings_errors(changes, match):
    with pytest.raises(ValidationError, match=match):
        _validate(_spec(**changes))


def test_flat_file_needs_its_column():
    flat = {"study": {"name": "x", "seed": 1}, "covariates": ["age"],
            "data": {"path": "d.csv", "time": "t", "event": "e"},
            "analysis": {"normalisation": {"analyte": "hcg"}}}
    with pytest.raises(ValidationError, match=r"needs data\.normalised"):
        _validate(flat)
    flat["data"]["normalised"] = "norm"
    assert _validate(flat).analysis.normalisation.analyte == "hcg"


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("norm")
    data = pd.read_csv(CSV)
    data["hcg_norm"] = np.random.default_rng(2).binomial(1, 0.45, len(data))
    data.to_csv(tmp / "data.csv", index=False)
    spec_path = write_spec(tmp)
    spec = yaml.safe_load(spec_path.read_text())
    spec["data"]["normalised"] = "hcg_norm"
    spec["analysis"].update(primary="NORMALISATION", simon={"p0": 0.35, "p1": 0.6})
    spec_path.write_text(yaml.safe_dump(spec))
    res = cli.invoke(app, ["run", str(spec_path), "--out", str(tmp / "out"), "--quiet"])
    assert res.exit_code in (0, 1), res.output
    return tmp, data


def test_flat_file_column_is_the_primary_endpoint(flat_run):
    tmp, data = flat_run
    res = json.loads((tmp / "out" / "results.json").read_text())
    assert res["primary_endpoint"] == "NORMALISATION"
    assert next(iter(res["endpoints"])) == "NORMALISATION"
    norm = res["endpoints"]["NORMALISATION"]
    assert norm["definition"] == "flat file column 'hcg_norm' (1 = normalised)"
    cohort = pd.read_csv(tmp / "out" / "cohort.csv", dtype={"patient_id": str})
    chosen = cohort[(cohort["arm"] == "trial") & cohort["included"]]["patient_id"]
    value = data.assign(patient_id=data["patient_id"].astype(str)).set_index("patient_id")[
        "hcg_norm"]
    assert norm["proportion"]["trial"]["estimate"] == pytest.approx(value[chosen].mean(),
                                                                    abs=1e-12)
    assert norm["proportion"]["responders"]["trial"] == int(value[chosen].sum())
    assert (norm["simon"]["r1"], norm["simon"]["n1"]) == (3, 9)  # Simon on the primary
    assert norm["trial_vs_null"]["null_rate"] == 0.35  # the Simon p0 (Simon on the primary)


def test_flat_file_bad_value_names_the_column(tmp_path):
    data = pd.read_csv(CSV)
    data["hcg_norm"] = 1
    data.loc[3, "hcg_norm"] = 2
    data.to_csv(tmp_path / "data.csv", index=False)
    spec_path = write_spec(tmp_path)
    spec = yaml.safe_load(spec_path.read_text())
    spec["data"]["normalised"] = "hcg_norm"
    spec_path.write_text(yaml.safe_dump(spec))
    res = cli.invoke(app, ["run", str(spec_path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "column 'hcg_norm': normalisation must be 0 or 1, found '2' in row(s) 4" in " ".join(
        res.output.split())


@pytest.mark.slow
def test_registry_and_trial_units_must_agree(tmp_path):
    """The GTT demo with the trial's hCG in another unit stops before any analysis, naming
    both units."""
    from sample_data import paths

    for p in (paths.GTT_REGISTRY, paths.GTT_MAPPING, paths.GTT_ADSL, paths.GTT_ADTTE,
              paths.DEMO_GTT_SPEC):
        shutil.copy(p, tmp_path / p.name)
    adlb = pd.read_csv(paths.GTT_ADLB, dtype=str, keep_default_na=False)
    adlb["AVALU"] = "ng/mL"
    adlb.to_csv(tmp_path / paths.GTT_ADLB.name, index=False)
    res = cli.invoke(app, ["run", str(tmp_path / paths.DEMO_GTT_SPEC.name), "--out",
                           str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "'IU/L' in the registry but in 'ng/mL' in the trial file gtt_adlb.csv" in text
