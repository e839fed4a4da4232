"""The output folder: contract (names, cohort.csv), ownership marker, lock, recovery, every
command refusing folders it did not write (issues 14 items 8-10, 20)."""

from __future__ import annotations

import grp
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from synthctl import outdir
from synthctl.atomic import atomic_output, folder_lock, recover
from synthctl.cli import app
from synthctl.errors import OutputFolderError
from synthctl.runner import run_study
from tests.faults._process import hashes
from tests.synthctl.conftest import CSV, write_spec

cli = CliRunner()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Path:
    """One complete flat-file run; tests copy its output folder."""
    tmp = tmp_path_factory.mktemp("analysed")
    shutil.copy(CSV, tmp / "data.csv")
    run_study(write_spec(tmp), tmp / "out")
    return tmp / "out"


def _copy(analysed: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(spec, out) in tmp_path: the data, a spec and a copy of the analysed folder."""
    shutil.copy(CSV, tmp_path / "data.csv")
    out = tmp_path / "out"
    shutil.copytree(analysed, out)
    return write_spec(tmp_path), out


# --- the contract -------------------------------------------------------------------------------
def test_cohort_round_trip_parses_included_once(analysed: Path):
    cohort = outdir.read_cohort(analysed)
    assert list(cohort.columns) == outdir.cohort_columns()
    assert cohort[outdir.INCLUDED].dtype == bool
    assert cohort[outdir.MATCH_ID].isna().equals(~cohort[outdir.INCLUDED])  # unmatched: NaN


def test_cohort_bad_included_value_names_file_row_and_column(analysed: Path, tmp_path: Path):
    text = (analysed / outdir.COHORT).read_text().splitlines()
    text[3] = text[3].rsplit(",", 1)[0] + ",yes"
    (tmp_path / outdir.COHORT).write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"cohort\.csv: row 4, column included: expected "
                                         r"True or False, got 'yes'"):
        outdir.read_cohort(tmp_path)


def test_write_cohort_refuses_columns_off_contract(tmp_path: Path):
    with pytest.raises(ValueError, match="columns"):
        outdir.write_cohort(tmp_path, pd.DataFrame({"patient_id": ["a"], "weight": [1.0]}))


# --- ownership ----------------------------------------------------------------------------------
def test_files_kept_inside_an_earlier_output_folder_are_never_deleted(analysed, tmp_path):
    """Issue 20: a spec, a SQLite registry and ADaM files kept inside an earlier output folder
    were deleted by the next run. Now the run refuses (exit 2) and lists them."""
    _spec, out = _copy(analysed, tmp_path)
    shutil.copy(CSV, out / "data.csv")
    spec = write_spec(out)  # the spec inside the output folder, its data beside it
    (out / "registry.sqlite").write_bytes(b"SQLite format 3\x00")
    (out / "adam").mkdir()
    (out / "adam" / "adsl.xpt").write_bytes(b"HEADER")
    before = hashes(tmp_path)
    res = cli.invoke(app, ["run", str(spec), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "4 file(s) synthctl did not write" in res.output
    for name in ("adam/adsl.xpt", "data.csv", "registry.sqlite", "study.yaml"):
        assert name in res.output
    assert hashes(tmp_path) == before


def test_a_file_added_during_the_run_is_not_lost(analysed, tmp_path, monkeypatch):
    spec, out = _copy(analysed, tmp_path)
    import synthctl.stages.report as report

    real = report.run_report

    def and_meanwhile(ctx):
        (out / "mine.txt").write_text("added while synthctl ran")
        return real(ctx)

    monkeypatch.setattr(report, "run_report", and_meanwhile)
    with pytest.raises(OutputFolderError, match=r"mine\.txt"):
        run_study(spec, out)
    assert (out / "mine.txt").read_text() == "added while synthctl ran"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_permissions_and_group_of_the_folder_are_kept(analysed, tmp_path):
    spec, out = _copy(analysed, tmp_path)
    os.chmod(out, 0o2750)
    groups = [g.gr_gid for g in grp.getgrall() if g.gr_gid != os.getgid()]
    gid = groups[0] if os.geteuid() == 0 and groups else os.stat(out).st_gid
    os.chown(out, -1, gid)
    run_study(spec, out)
    st = os.stat(out)
    assert (oct(st.st_mode & 0o7777), st.st_gid) == (oct(0o2750), gid)


def test_a_folder_written_before_markers_existed_is_still_ours(analysed, tmp_path):
    spec, out = _copy(analysed, tmp_path)
    (out / outdir.MARKER).unlink()  # a folder written by an earlier synthctl
    assert run_study(spec, out).exit_code == 0
    assert (out / outdir.MARKER).is_file()
    (out / outdir.MARKER).unlink()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match=r"notes\.txt"):
        run_study(spec, out)


def test_validate_refuses_a_folder_it_did_not_write_and_replaces_its_own(tmp_path):
    """Issue 14 item 9: validate wrote into any folder and replaced files there."""
    from sample_data.paths import SAMPLE_REGISTRY

    url = f"sqlite:///{SAMPLE_REGISTRY}"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "quality.json").write_text('{"mine": true}')
    res = cli.invoke(app, ["validate", "--registry", url, "--out", str(mine)])
    assert res.exit_code == 2 and "quality.json" in res.output, res.output
    assert (mine / "quality.json").read_text() == '{"mine": true}'
    out = tmp_path / "q"
    for _ in range(2):  # its own folder: replaced atomically
        res = cli.invoke(app, ["validate", "--registry", url, "--out", str(out)])
        assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted([outdir.MARKER,
                                                            *outdir.QUALITY_FILES])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "q"]


def test_simulate_refuses_a_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "simulation.csv").write_text("mine")
    spec = tmp_path / "sim.yaml"
    spec.write_text(yaml.safe_dump({"name": "t", "seed": 1, "designs": {"naive": {
        "method": "none"}}, "covariates": ["age_at_index"]}))
    res = cli.invoke(app, ["simulate", str(spec), "--replicates", "2", "--out", str(mine)])
    assert res.exit_code == 2 and "simulation.csv" in res.output, res.output
    assert (mine / "simulation.csv").read_text() == "mine"


@pytest.mark.parametrize("command", ["run", "validate", "simulate"])
def test_out_under_a_regular_file_is_exit_2(flat_study: Path, command: str):
    """Issue 14 item 10: it exited 70."""
    (flat_study.parent / "afile").write_text("x")
    out = str(flat_study.parent / "afile" / "o")
    args = {"run": ["run", str(flat_study)],
            "validate": ["validate", "--registry", "sqlite:///nowhere.sqlite"],
            "simulate": ["simulate"]}[command]
    res = cli.invoke(app, [*args, "--out", out])
    assert res.exit_code == 2, res.output
    assert "which is a file, not a folder" in res.output and "internal error" not in res.output


def test_a_folder_given_as_spec_or_data_path_is_named_as_such(flat_study: Path):
    folder = flat_study.parent / "adir"
    folder.mkdir()
    res = cli.invoke(app, ["run", str(folder), "--out", str(flat_study.parent / "o")])
    assert res.exit_code == 2 and "directory" in res.output
    spec = flat_study.parent / "s.yaml"
    spec.write_text(flat_study.read_text().replace("path: data.csv", "path: adir"))
    res = cli.invoke(app, ["run", str(spec), "--out", str(flat_study.parent / "o")])
    assert res.exit_code == 2 and "adir is a folder, not a file" in res.output, res.output


# --- redesigns (issue 14 item 8) ------------------------------------------------------------------
def test_every_redesign_is_recorded_with_old_and_new_hashes(analysed, tmp_path):
    spec, out = _copy(analysed, tmp_path)
    first = json.loads((out / outdir.MANIFEST).read_text())
    old_hash = first["stages"]["design"]["spec_design_sha256"]
    for caliper in ("0.1", "0.15"):
        spec.write_text(spec.read_text().replace("caliper: 0.2", f"caliper: {caliper}")
                        .replace("caliper: 0.1,", f"caliper: {caliper},"))
        res = cli.invoke(app, ["run", str(spec), "--out", str(out), "--allow-redesign"])
        assert res.exit_code == 0, res.output
    m = json.loads((out / outdir.MANIFEST).read_text())
    one, two = m["redesigns"]
    assert one["old_design_sha256"] == old_hash
    assert one["new_design_sha256"] == two["old_design_sha256"]
    assert two["new_design_sha256"] == m["stages"]["design"]["spec_design_sha256"] != old_hash
    assert one["old_results_sha256"] == first["stages"]["analyze"]["artifacts"]["results.json"]
    assert one["outcomes_analysed"] and one["time"] <= two["time"]


# --- lock and recovery ----------------------------------------------------------------------------
def test_a_second_run_on_a_locked_folder_exits_2(analysed, tmp_path):
    spec, out = _copy(analysed, tmp_path)
    before = hashes(out)
    with folder_lock(out, "test"):
        res = cli.invoke(app, ["run", str(spec), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "another synthctl run is writing" in res.output and "synthctl test" in res.output
    assert hashes(out) == before
    assert not (tmp_path / ".out.lock").exists()  # released and removed


def test_recovery_restores_the_moved_folder_and_keeps_foreign_files(analysed, tmp_path):
    _spec, out = _copy(analysed, tmp_path)
    before = hashes(out)
    os.rename(out, tmp_path / ".out.old-1")  # killed between the two renames
    stale = tmp_path / ".out.tmp-x"
    shutil.copytree(analysed, stale)  # a complete new folder, never swapped in
    (stale / "mine.txt").write_text("a user's file that landed here")
    writing = tmp_path / ".out.tmp-y"
    writing.mkdir()
    (writing / outdir.MARKER).write_text(json.dumps({"synthctl_output": 1, "state": "writing"}))
    (writing / "half.csv").write_text("partial")
    messages = recover(out)
    assert hashes(out) == before
    assert any("restored" in m for m in messages)
    assert not writing.exists()
    assert sorted(p.name for p in stale.iterdir()) == ["mine.txt"]  # only ours removed
    assert any("kept" in m and "mine.txt" in m for m in messages)


def test_failure_inside_the_block_leaves_no_trace(tmp_path):
    with pytest.raises(ZeroDivisionError), atomic_output(tmp_path / "o", command="t") as work:
        (work / "x.txt").write_text("x")
        raise ZeroDivisionError
    assert list(tmp_path.iterdir()) == []


def test_patient_ids_only_in_cohort_and_covariates(analysed: Path):
    """README: cohort.csv and covariates.parquet hold the ids; every other file counts only."""
    import re

    ids = set(outdir.read_cohort(analysed)["patient_id"])
    assert ids == set(pd.read_parquet(analysed / outdir.COVARIATES)["patient_id"].astype(str))
    for path in sorted(analysed.rglob("*")):
        if path.is_file() and path.name not in (outdir.COHORT, outdir.COVARIATES):
            tokens = set(re.findall(r"[A-Za-z0-9_.:-]+", path.read_text(errors="replace")))
            assert not ids & tokens, (path.name, sorted(ids & tokens)[:3])
