"""The report rendered by headless Chromium (Debian's ``chromium``, installed by .ci/run).

Checks that it rendered: page height from the screenshot, key headings and the embedded
figures in the DOM, no console errors, and that it prints (PDF with several pages).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from synthctl.runner import run_study
from tests.synthctl.conftest import CSV, write_spec

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)")
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    shutil.copy(CSV, tmp / "data.csv")
    result = run_study(write_spec(tmp), tmp / "out")
    return result.report


def test_report_renders_in_chromium(report: Path, tmp_path: Path):
    png = tmp_path / "report.png"
    res = _chromium(tmp_path, "--enable-logging=stderr", "--v=0", f"--screenshot={png}",
                    "--window-size=1280,8000", report.as_uri())
    assert png.is_file(), res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines()
               if "CONSOLE" in line or "Uncaught" in line or "Failed to load resource" in line]
    assert not console, console
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[1] == 1280
    ink = np.where((img[..., :3] < 0.9).any(axis=(1, 2)))[0]  # rows with something drawn
    height = int(ink.max()) + 1
    # the whole report is several screens long, and shorter than the 8000-px window
    assert 2500 < height < 7990, height
    # the figures were decoded and drawn: the PS overlap/KM colours cover real area
    coloured = (np.abs(img[..., 0] - img[..., 2]) > 0.3).sum()
    assert coloured > 5000, coloured


def test_report_dom_has_headings_and_figures(report: Path, tmp_path: Path):
    res = _chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = res.stdout
    headings = ("Result: PFS at 24 weeks", "Results: PFS", "Sensitivity analyses",
                "Covariate balance and propensity-score overlap", "Study design and data",
                "Attrition", "Baseline characteristics", "Methods", "Warnings",
                "Appendix: manifest")
    for heading in headings:
        assert f"<h2>{heading}" in dom, heading
    # results first, design and data after them (defect 15)
    positions = [dom.index(f"<h2>{h}") for h in headings]
    assert positions == sorted(positions)
    imgs = re.findall(r'<img alt="([^"]+)" src="data:image/svg\+xml;base64,', dom)
    assert len(imgs) == 3, imgs
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="flow"' in dom


def test_report_prints_to_pdf(report: Path, tmp_path: Path):
    pdf = tmp_path / "report.pdf"
    _chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", report.as_uri())
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    # the manifest JSON is a collapsed appendix, not printed (defect 15: it was 15 A4 pages,
    # 60% of it raw JSON); 7 pages measured for the demo
    assert 3 <= pages <= 8, pages
