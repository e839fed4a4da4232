"""The spec's design: block is validated from the method table before any stage runs
(issue 14, defects 6 and 7): errors name the YAML line; nothing is silently dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthctl.cli import app
from synthctl.errors import SpecError
from synthctl.spec import parse_design
from synthctl.specfile import load_spec

runner = CliRunner()
DESIGN = "design: {method: nearest, ratio: 1, caliper: 0.2, caliper_scale: logit,"


def _with_design(flat_study: Path, block: str) -> tuple[Path, str]:
    """The flat study with its design: block replaced by ``block`` (one key per line)."""
    text = flat_study.read_text()
    start = text.index(DESIGN)
    end = text.index("analysis:")
    text = text[:start] + block + text[end:]
    path = flat_study.parent / "study.yaml"
    path.write_text(text)
    return path, text


def _design_json(flat_study: Path, block: str) -> tuple[dict, Path]:
    """Run extract and design with this design: block; design.json and the folder."""
    path, _ = _with_design(flat_study, block)
    out = flat_study.parent / "out"
    res = runner.invoke(app, ["extract", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["design", str(path), "--out", str(out)])
    assert res.exit_code in (0, 1), res.output  # 1: balance threshold not met
    return json.loads((out / "design.json").read_text()), out


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(("block", "needle", "where", "message"), [
    ("design:\n  method: nearest\n  estimand: ATE\n", "estimand: ATE", "design.estimand",
     "estimand ATE needs method weighting"),
    ("design:\n  method: weighting\n  weights: overlap\n  estimand: ATT\n", "weights: overlap",
     "design.weights", "target the estimand ATO"),
    ("design:\n  method: weighting\n  ratio: 2\n", "ratio: 2", "design.ratio",
     "option 'ratio' does not apply to method weighting (it applies to nearest and optimal)"),
    ("design:\n  method: weighting\n  caliper: 0.2\n", "caliper: 0.2", "design.caliper",
     "does not apply to method weighting"),
    ("design:\n  method: nearest\n  weights: ate\n", "weights: ate", "design.weights",
     "option 'weights' does not apply to method nearest (it applies to weighting)"),
    ("design:\n  method: optimal\n  replace: true\n", "replace: true", "design.replace",
     "does not apply to method optimal"),
    ("design:\n  method: weighting\n  stabilized: true\n", "stabilized: true",
     "design.stabilized", "ate weights only"),
    ("design:\n  method: nearest\n  distance: probit\n", "distance: probit", "design.distance",
     "'logit_ps' or 'ps'"),
    ("design:\n  method: nearest\n  colour: red\n", "colour: red", "design.colour",
     "unknown key 'colour'; method nearest takes: method, estimand"),
])
def test_design_errors_name_the_yaml_line(flat_study: Path, block, needle, where, message):
    path, text = _with_design(flat_study, block)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert f"study.yaml:{_line_of(text, needle)}: {where}: " in msg, msg
    assert message in msg, msg
    # before any stage: no output folder, exit code 2
    res = runner.invoke(app, ["run", str(path), "--out", str(flat_study.parent / "out")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert not (flat_study.parent / "out").exists()


def test_weighting_atm_runs_and_records_what_it_did(flat_study: Path):
    """Defect 7: method weighting with estimand ATM exited 70; weights follow the estimand
    and design.json records no matching option."""
    design, _ = _design_json(flat_study, "design:\n  method: weighting\n  estimand: ATM\n")
    assert design["schema_version"] == 2
    assert design["estimand"] == "ATM" and design["yields"] == "weights"
    assert design["variance_cluster"] == "row"
    assert not {"caliper", "ratio", "distance"} & set(design["options"])
    assert not {"caliper", "ratio"} & set(design["spec"]["design"])


def test_nearest_with_replacement_runs_through_design(flat_study: Path):
    """Defect 6: replace: true passes the design stage and records pairs_with_replacement."""
    design, out = _design_json(flat_study, "design:\n  method: nearest\n  replace: true\n")
    assert design["yields"] == "pairs_with_replacement"
    assert design["variance_cluster"] == "row" and design["options"]["replace"] is True
    cohort = (out / "cohort.csv").read_text().splitlines()
    match_col = cohort[0].split(",").index("match_id")
    assert all(line.split(",")[match_col] == "" for line in cohort[1:])


def test_caliper_scale_is_accepted_as_the_old_name_of_distance(flat_study: Path):
    old = load_spec(flat_study).spec.design  # the fixture spells caliper_scale: logit
    assert old.distance == "logit_ps" and old.caliper_scale == "logit"  # read in old values
    new = parse_design({"method": "nearest", "distance": "logit_ps"})
    assert new.distance == old.distance
    path, _ = _with_design(flat_study, "design:\n  method: nearest\n  distance: ps\n"
                                          "  caliper_scale: ps\n")
    with pytest.raises(SpecError, match="give distance or its old name caliper_scale, not both"):
        load_spec(path)


def test_design_defaults_come_from_the_table():
    from matching.methods import METHODS

    for method, entry in METHODS.items():
        design = parse_design({"method": method})
        assert design.method_options() == entry.defaults()
        assert design.yields == entry.yields({})


def test_methods_text_reads_the_table(flat_study: Path):
    from matching.methods import METHODS
    from synthctl.methods import describe_design, methods_paragraph

    spec = load_spec(flat_study).spec
    d = spec.design
    phrase = METHODS["nearest"].describe({**d.method_options()}, d.estimand)
    assert describe_design(spec) == phrase
    assert "logit of the propensity score" in phrase and "without replacement" in phrase
    assert "clustered on matched sets" in methods_paragraph(spec, {})
    replaced = spec.model_copy(update={"design": parse_design({"method": "nearest",
                                                                "replace": True})})
    assert "clustered on matched sets" not in methods_paragraph(replaced, {})


def test_copy_with_another_method_is_that_methods_design():
    """The alternative-design sensitivity analysis copies the design with another method:
    the copy must be a valid design of that method, not the old model with foreign keys."""
    nearest = parse_design({"method": "nearest", "caliper": 0.1, "balance_threshold": 0.3})
    alt = nearest.model_copy(update={"method": "weighting", "weights": None})
    assert type(alt).__name__ == "WeightingDesign" and alt.balance_threshold == 0.3
    assert "caliper" not in alt.model_dump() and alt.yields == "weights"
    back = alt.model_copy(update={"method": "nearest", "ratio": 1, "caliper": 0.2,
                                  "caliper_scale": "logit", "estimand": "ATT"})
    assert back.distance == "logit_ps" and "weights" not in back.model_dump()
    with pytest.raises(ValueError, match=r"nearest\.weights"):
        nearest.model_copy(update={"weights": "ate"})


def test_nearest_with_replacement_runs_end_to_end(flat_study: Path):
    path, _ = _with_design(flat_study, "design:\n  method: nearest\n  replace: true\n"
                                       "  balance_threshold: 0.25\n")
    res = runner.invoke(app, ["run", str(path), "--out", str(flat_study.parent / "out")])
    assert res.exit_code in (0, 1), res.output
