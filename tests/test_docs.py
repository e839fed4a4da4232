"""The documentation site: strict build, executed tutorials, complete references.

The slow tests build the site once (``mkdocs build --strict``: any warning fails; the tutorial
notebooks are executed during the build, an error in a cell fails it). The fast ones check the
sources: notebooks kept without outputs, a page per design method, every tolerance a page
states is the one its test uses, the spec reference covers every key of the models.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGES = ("synthctl", "connectors", "matching", "reports")


def _hook():
    spec = importlib.util.spec_from_file_location("docs_reference_hook",
                                                  DOCS / "_hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_names(package: str) -> list[str]:
    """A package's ``__all__``; for a package without one, its submodules' ``__all__``."""
    mod = importlib.import_module(package)
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    names = []
    for path in sorted(Path(mod.__file__).parent.iterdir()):
        name = path.stem if path.suffix == ".py" else path.name if path.is_dir() else None
        if name is None or name.startswith("_") or not (
                path.suffix == ".py" or (path / "__init__.py").is_file()):
            continue
        sub = importlib.import_module(f"{package}.{name}")
        names += list(getattr(sub, "__all__", []))
    return names


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert not re.search(r"^WARNING\b", log, re.M), log[-5000:]
    return out


@pytest.mark.slow
def test_tutorials_are_executed_in_the_build(site: Path):
    epi = (site / "tutorials" / "epidemiologist" / "index.html").read_text()
    stat = (site / "tutorials" / "trial-statistician" / "index.html").read_text()
    assert "DesignResult(method=" in epi and "max |SMD| after" in epi
    assert "times in weeks" in stat and "S(24 weeks)" in stat and "one-sided Wald" in stat
    assert epi.count("<img") >= 2 and stat.count("<img") >= 1  # Love plot, overlap, KM
    registry = (site / "tutorials" / "registry-manager" / "index.html").read_text()
    assert "completeness" in registry and "Attrition (patients)" in registry
    # map-init's draft, validate on it (codes left to map) and on the shipped export mapping
    # (strings of cell outputs only: map-init's draft, validate with it and with EXPORT_MAPPING)
    assert "draft mapping written to" in registry and "rows with unmapped codes" in registry
    assert "PASSED (" in registry
    # the Simon analysis of PFS, the ORR's exact test against the null rate
    assert "conditional-p-value" in stat and "Clopper-Pearson" in stat


@pytest.mark.slow
@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_in_the_api_reference(site: Path, package: str):
    page = (site / "reference" / "api" / package / "index.html").read_text()
    ids = set(re.findall(r'id="([A-Za-z0-9_.]+)"', page))
    missing = [n for n in public_names(package)
               if not any(i == f"{package}.{n}" or (i.startswith(f"{package}.")
                                                    and i.endswith(f".{n}")) for i in ids)]
    assert not missing, f"not in reference/api/{package}.md: {missing}"


@pytest.mark.slow
def test_generated_references_are_in_the_site(site: Path):
    spec = (site / "reference" / "spec" / "index.html").read_text()
    assert "method: weighting" in spec and "balance_threshold" in spec
    results = (site / "reference" / "results-json" / "index.html").read_text()
    for key in ("counts.control_ess", "endpoints.PFS.hazard_ratio.estimate",
                "sensitivity.alternative_design.status", "bootstrap.statistics[].n_valid"):
        assert f"<code>{key}</code>" in results, key


def test_notebooks_are_kept_without_outputs():
    import nbformat

    notebooks = sorted(DOCS.rglob("*.ipynb"))
    assert len(notebooks) >= 2
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def test_nav_lists_every_page_and_a_page_per_method():
    import yaml

    from matching.methods import METHODS

    nav = json.dumps(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*")
             if p.suffix in (".md", ".ipynb") and "_hooks" not in p.parts}
    assert not [p for p in pages if f'"{p}"' not in nav], "pages missing from the nav"
    for method in METHODS:
        assert f"methods/{method}.md" in pages, method


def test_stated_tolerances_are_the_tested_ones():
    """`X` in `tests/...py` on a method or estimator page: X is in that test file."""
    pages = [*sorted((DOCS / "methods").glob("*.md")), *sorted((DOCS / "estimators").glob("*.md"))]
    checked = 0
    for page in pages:
        text = page.read_text()
        if page.stem != "index" and page.parent.name in ("methods", "estimators"):
            assert "**Tested at**" in text or "tested at" in text, page.name
        for snippet, test in re.findall(r"`([^`]+)` in `(tests/[^`]+\.py)`", text):
            source = (ROOT / test).read_text()
            assert snippet in source, f"{page.name}: {snippet!r} not in {test}"
            checked += 1
    assert checked >= 10


def test_spec_reference_covers_every_key_of_the_models():
    from synthctl.spec import (
        DESIGN_MODELS,
        Analysis,
        FlatData,
        IndexSpec,
        Registry,
        StudySpec,
        Trial,
    )
    from synthctl.spec import Study as StudyBlock

    text = _hook().spec_reference()
    for model in (StudySpec, StudyBlock, Trial, Registry, IndexSpec, FlatData, Analysis,
                  *DESIGN_MODELS.values()):
        for name, field in model.model_fields.items():
            assert f"| `{field.alias or name}` |" in text, (model.__name__, name)
    for method in DESIGN_MODELS:
        assert f"`method: {method}`" in text
