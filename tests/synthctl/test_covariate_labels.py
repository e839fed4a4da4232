"""Readable covariate labels from one source (issue 14, defect 16): the analysis frame's
labels in `connectors.columns.COVARIATE_LABELS`, overridable by the spec's ``labels:``, used
by the methods text, the report's balance table and the love plot."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from connectors.columns import COVARIATE_COLUMNS, COVARIATE_LABELS
from matching.design_matrix import term_labels
from synthctl.baseline import readable_variable
from synthctl.errors import SpecError
from synthctl.methods import covariate_labels, in_sentence, methods_paragraph
from synthctl.runner import run_study
from synthctl.specfile import load_spec
from tests.synthctl.conftest import CSV, write_spec

DICTIONARY = Path(__file__).resolve().parents[2] / "docs" / "data_dictionary.md"


def test_every_frame_covariate_has_a_documented_label():
    text = DICTIONARY.read_text()
    assert set(COVARIATE_LABELS) == set(COVARIATE_COLUMNS)
    for name in COVARIATE_COLUMNS:
        assert f"| `{name}` |" in text, name  # the label's meaning is the dictionary's row
    assert "COVARIATE_LABELS" in text


def test_term_labels_levels_indicators_and_prefixes():
    labels = {"prior_crs": "Prior CRS", "prior": "Prior anything", "histology": "Histology"}
    terms = ["distance", "prior_crs", "prior_x", "histology_biphasic", "pci_missing", "pci"]
    assert term_labels(terms, ["prior", "prior_crs", "histology", "pci"], labels) == {
        "distance": "distance",
        "prior_crs": "Prior CRS",  # the covariate itself, not a level of "prior"
        "prior_x": "Prior anything: x",
        "histology_biphasic": "Histology: biphasic",
        "pci_missing": "pci: missing",
        "pci": "pci",
    }


def test_readable_variable_and_sentence_case():
    labels = {"pci": "Peritoneal cancer index (PCI)", "crs_hipec": "Prior CRS with HIPEC"}
    assert readable_variable("pci: missing", labels) == "Peritoneal cancer index (PCI): missing"
    assert readable_variable("crs_hipec = 1", labels) == "Prior CRS with HIPEC = 1"
    assert readable_variable("age", labels) == "age"
    assert in_sentence("Age at index (years)") == "age at index (years)"
    assert in_sentence("ECOG performance status") == "ECOG performance status"
    assert in_sentence("Ki-67 index (%)") == "Ki-67 index (%)"


def _spec_text(folder: Path, labels: str) -> Path:
    path = write_spec(folder)
    path.write_text(path.read_text() + labels)
    return path


def test_spec_labels_override_and_must_name_covariates(tmp_path):
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = load_spec(_spec_text(tmp_path, 'labels: {pci: "PCI at index", pfi_months: '
                                          '"Platinum-free interval (months)"}\n')).spec
    labels = covariate_labels(spec)
    assert labels["pci"] == "PCI at index" and labels["age"] == "age"
    text = methods_paragraph(spec, {})
    # age/female/ecog are the flat file's own names (no label); the others are frame names
    assert "fitted on age, female, ecog, histology, PCI at index, prior cytoreductive " \
           "surgery with HIPEC, platinum-free interval (months), and" in text
    bad = _spec_text(tmp_path, 'labels: {sex: "Sex"}\n')
    with pytest.raises(SpecError, match=r"labels \['sex'\] are not covariates"):
        load_spec(bad)


def test_report_and_love_plot_use_the_labels(tmp_path):
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = _spec_text(tmp_path, 'labels: {histology: "Tumour histology", pci: '
                                '"Peritoneal cancer index"}\n')
    res = run_study(spec, tmp_path / "out")
    assert res.exit_code in (0, 1)
    html = (res.folder / "report.html").read_text()
    cells = re.findall(r"<td>([^<]*)</td>", html)
    assert any(c.startswith("Tumour histology: ") for c in cells)
    assert "Peritoneal cancer index" in cells
    assert not any(c.startswith("histology: ") for c in cells)
    svg = (res.folder / "figures" / "love_plot.svg").read_text()
    assert "Tumour histology: " in svg and "Peritoneal cancer index" in svg
    assert "fitted on age, female, ecog, tumour histology, peritoneal cancer index" in html
