"""A study in Python: the CLI's stages and their guarantees, one method per stage.

>>> from synthctl import Study
>>> study = Study.from_spec("sample_data/demo_study.yaml")   # doctest: +SKIP
>>> cohort = study.extract()       # both arms at index, covariates only (no outcome column)
>>> design = study.design()        # PS, matching or weighting, balance: locked before outcomes
>>> results = study.analyze()      # outcomes are read now, on the locked design
>>> study.report("report.html")    # the same report.html as `synthctl run`

Each method runs its stage through `synthctl.runner.run_study` in the study's output folder
(a temporary one unless ``out`` is given), so a notebook gets exactly what ``synthctl run``
writes: the same ``cohort.csv``, ``design.json``, ``results.json`` bytes and the same
``manifest.json`` audit trail, with the same checks (``analyze`` refuses a design that
changed since it was locked). A stage that is asked for runs the earlier stages it needs.
Nothing here re-implements a stage.

Patients are keyed by their id: the cohort's frame and the design's ``ps``, ``weights``,
``match_id`` and ``included`` are indexed by ``patient_id`` (by ``patient_id, line_id``
when the registry index selection is ``all``), never aligned by row position. Times are in
the spec's units (``analysis.landmark_unit``).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from connectors import columns as cn
from connectors.attrition import Attrition
from synthctl.errors import SpecError, SynthctlError
from synthctl.outdir import ATTRITION, COVARIATES, DESIGN, EXTRACT_INFO, REPORT, read_json
from synthctl.runner import RunResult, run_study
from synthctl.spec import StudySpec
from synthctl.specfile import LoadedSpec, load_spec, spec_from_mapping
from synthctl.stages._context import NullProgress, Progress

__all__ = ["BlindCohort", "Study", "StudyResults"]

#: the `matching.DesignResult` fields that hold one value per patient (re-keyed by id)
_PER_PATIENT = ("ps", "distance", "weights", "match_id", "included", "treated")


@dataclass(frozen=True, slots=True, repr=False)
class BlindCohort:
    """The extract stage's output: both arms at index, covariates only.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per patient (per patient and index line with ``selection: all``), indexed
        by ``patient_id`` (``patient_id, line_id``): the arm (``"trial"``/``"control"``),
        the index date and the covariates at index. No outcome column: the extract stage
        never reads them (the registry query and the flat-file reader leave them out).
    attrition : connectors.attrition.Attrition
        The registry's (or the flat file's control rows') attrition: every excluded
        patient counted at the step that excluded it, with the reason.
    counts : dict
        ``trial_source`` (trial patients in the files), ``trial`` (kept), ``control_pool``.
    """

    frame: pd.DataFrame
    attrition: Attrition
    counts: dict[str, int]

    @property
    def trial(self) -> pd.DataFrame:
        """The trial arm's rows."""
        return self.frame[self.frame[cn.ARM] == cn.TRIAL]

    @property
    def control(self) -> pd.DataFrame:
        """The candidate pool's rows (registry patients who meet the eligibility)."""
        return self.frame[self.frame[cn.ARM] == cn.CONTROL]

    def summary(self) -> pd.DataFrame:
        """Count of patients per arm (``trial``, ``control_pool``)."""
        return pd.DataFrame({"n": [self.counts["trial"], self.counts["control_pool"]]},
                            index=pd.Index(["trial", "control_pool"], name="arm"))

    def __repr__(self) -> str:
        return (f"BlindCohort(trial={self.counts['trial']}, "
                f"control_pool={self.counts['control_pool']}, "
                f"columns={len(self.frame.columns)})")

    def _repr_html_(self) -> str:
        return (f"<p><b>Blind cohort</b>: {self.counts['trial']} trial patients, "
                f"{self.counts['control_pool']} registry patients in the candidate pool "
                "(covariates at index only).</p>" + self.attrition._repr_html_())


@dataclass(frozen=True, slots=True, repr=False)
class StudyResults:
    """The analysed study: ``results.json`` and the typed analysis behind it.

    Attributes
    ----------
    analysis : reports.StudyAnalysis or None
        Per endpoint the primary result (bootstrap limits when bootstrapped), the analytic
        and the naive (unadjusted) ones, the sensitivity analyses, the bootstrap. With
        ``missing: impute``, pooled over the imputations by Rubin's rules
        (`reports.analysis_mi.analyze_imputed`); None when the analysis was not run in this
        session.
    results : dict
        ``results.json`` as written (schema in the docs' results.json reference).
    spec : StudySpec
        The study's spec (its ``analysis`` block gives the time unit).
    """

    analysis: Any
    results: dict[str, Any]
    spec: StudySpec

    def to_dict(self) -> dict[str, Any]:
        """``results.json`` content (a copy of what the analyze stage wrote)."""
        import copy

        return copy.deepcopy(self.results)

    def summary(self) -> pd.DataFrame:
        """Every reported quantity of every endpoint: estimate, SE, limits and how they were
        obtained (``method``); times in the spec's ``analysis.landmark_unit``."""
        frames = []
        for name, res in self._typed().endpoints.items():
            table = (res.summary() if hasattr(res, "summary") else res.comparison.summary())
            frames.append(table.assign(endpoint=name))
        out = pd.concat(frames, ignore_index=True)
        return out[["endpoint", *[c for c in out.columns if c != "endpoint"]]]

    def plot_km(self):
        """Kaplan-Meier curves of the trial, the synthetic control and the unadjusted
        registry with numbers at risk, as in the report; a matplotlib Figure (not shown)."""
        from synthctl.stages.analyze import km_plot

        return km_plot(self._typed(), self.spec)

    def _typed(self):
        if self.analysis is None:
            raise SynthctlError("this study's typed analysis is not in memory (analysed by an "
                                "earlier session): its numbers are in to_dict() "
                                "(results.json)")
        return self.analysis

    def __repr__(self) -> str:
        c = self.results["counts"]
        return (f"StudyResults(study={self.results.get('study')!r}, trial={c['trial']}, "
                f"control_selected={c['control_selected']}, "
                f"endpoints={list(self.results['endpoints'])})")

    def _repr_html_(self) -> str:
        c = self.results["counts"]
        ess = c.get("control_ess")
        from html import escape

        head = (f"<p><b>{escape(str(self.results.get('study', '')))}</b>: trial "
                f"{c['trial_selected']} of "
                f"{c['trial']}, synthetic control {c['control_selected']} of "
                f"{c['control_pool']}" + (f" (ESS {ess:.1f})" if ess is not None else "")
                + f"; times in {self.spec.analysis.landmark_unit}.</p>")
        return head + (self.analysis._repr_html_() if self.analysis is not None else "")


class Study:
    """A synthctl study driven from Python, stage by stage, with the CLI's guarantees.

    Parameters
    ----------
    spec : LoadedSpec, StudySpec or dict
        The study spec; see `from_spec` (YAML file) and `from_dict`.
    out : str or Path, optional
        Output folder (as ``synthctl run --out``). Default: a temporary folder, removed with
        the `Study` (or by `close`).
    n_jobs : int, default=1
        Bootstrap workers (the results do not depend on it).
    progress : Progress, optional
        Progress display of the stages (default: none).

    Notes
    -----
    The study is outcome-blind until `analyze`: `extract` and `design` never read an
    outcome column, and `analyze` reads the outcomes only after checking that the locked
    design (``design.json``, ``cohort.csv``, the spec's design part and the extracted pool)
    is unchanged. The spec is immutable: to try another design, `with_design` returns a new
    study (a new output folder, like a new ``--out``), so a design cannot be changed after
    its outcomes were seen.
    """

    def __init__(self, spec: LoadedSpec | StudySpec | Mapping[str, Any], *,
                 out: str | Path | None = None, n_jobs: int = 1,
                 progress: Progress | None = None) -> None:
        self._loaded = spec if isinstance(spec, LoadedSpec) else spec_from_mapping(
            spec if isinstance(spec, StudySpec) else dict(spec))
        self._n_jobs = n_jobs
        self._progress = progress or NullProgress()
        if out is None:
            self._tmp: Path | None = Path(tempfile.mkdtemp(prefix="synthctl-study-"))
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._tmp, True)
            self._out = self._tmp / "study"
        else:
            self._tmp, self._finalizer = None, None
            self._out = Path(out).expanduser().resolve()
        self._done: list[str] = []
        self._cohort: BlindCohort | None = None
        self._design: Any = None
        self._results: StudyResults | None = None

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_spec(cls, path: str | Path, **kwargs: Any) -> Study:
        """A study from a YAML spec file (``synthctl run``'s SPEC); see `Study`.

        Raises
        ------
        SpecError
            With the file, the YAML path and the line of every problem.
        """
        return cls(load_spec(path), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: str | Path = ".",
                  **kwargs: Any) -> Study:
        """A study from a spec given as a dict (the YAML's structure); relative paths in it
        are relative to ``base_dir``. Validated like a YAML spec (unknown keys are errors)."""
        return cls(spec_from_mapping(dict(data), base_dir=base_dir), **kwargs)

    def with_design(self, **options: Any) -> Study:
        """A new study whose ``design:`` block has ``options`` changed (a new ``method``
        takes that method's options). It has its own output folder and starts from
        nothing: this study, and its locked design, are untouched.

        Raises
        ------
        SpecError
            If the changed design is not a valid ``design:`` block.
        """
        from pydantic import ValidationError

        from synthctl.spec import unknown_key_message, yaml_loc

        try:
            design = self.spec.design.model_copy(update=options)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                loc = ("design", *err["loc"])
                msg = (unknown_key_message(loc) if err["type"] == "extra_forbidden"
                       else err["msg"])
                lines.append(f"  {'.'.join(map(str, yaml_loc(loc)))}: {msg}")
            raise SpecError("with_design: invalid design:\n" + "\n".join(lines)) from None
        return self._derived({"design": design})

    def with_analysis(self, **options: Any) -> Study:
        """A new study whose ``analysis:`` block has ``options`` changed (e.g.
        ``bootstrap=0``); its own output folder, starting from nothing."""
        data = self.spec.analysis.model_dump()
        return self._derived({"analysis": {**data, **options}})

    def _derived(self, update: dict[str, Any]) -> Study:
        data = self.spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
        design = update.get("design")
        if design is not None:
            update = {**update, "design": {"method": design.method, **design.model_dump(
                mode="json", exclude_defaults=True)}}
        loaded = spec_from_mapping({**data, **update})
        loaded = dataclasses.replace(loaded, secrets=self._loaded.secrets)
        return Study(loaded, n_jobs=self._n_jobs, progress=self._progress)

    # -- state ----------------------------------------------------------------------------

    @property
    def spec(self) -> StudySpec:
        """The validated, frozen spec."""
        return self._loaded.spec

    @property
    def folder(self) -> Path:
        """The output folder (``manifest.json``, ``cohort.csv``, ``results.json``...)."""
        return self._out

    @property
    def stages_done(self) -> tuple[str, ...]:
        """The stages run so far, in order."""
        return tuple(self._done)

    def close(self) -> None:
        """Remove the temporary output folder (nothing when ``out`` was given)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Study({self.spec.study.name!r}, source={self.spec.source_kind}, "
                f"design={self.spec.design.method}, done={list(self._done)})")

    # -- stages ---------------------------------------------------------------------------

    def _run(self, *stages: str) -> RunResult:
        """Run the missing stages up to and including ``stages`` through the runner."""
        from synthctl.runner import STAGES

        last = max(STAGES.index(s) for s in stages)
        todo = [s for s in STAGES[: last + 1] if s not in self._done]
        keep: dict[str, Any] = {}
        run = run_study(self._loaded, self._out, stages=todo, progress=self._progress,
                        n_jobs=self._n_jobs, keep=keep)
        self._done += [s for s in run.stages if s not in self._done]
        if "design" in keep:
            self._design = self._keyed(keep["design"])
        if "analyze" in run.stages:
            self._results = StudyResults(keep.get("analysis"), run.results or {}, self.spec)
        return run

    def extract(self) -> BlindCohort:
        """Run the extract stage: the blind cohort (covariates at index, no outcome).

        Returns
        -------
        BlindCohort
            ``frame`` indexed by patient id, ``attrition``, ``counts``.
        """
        if "extract" not in self._done:
            self._run("extract")
        if self._cohort is None:
            info = read_json(self._out / EXTRACT_INFO)
            table = pd.read_csv(self._out / ATTRITION, keep_default_na=False)
            self._cohort = BlindCohort(self._covariates(), Attrition(table, self._unit()),
                                       dict(info["counts"]))
        return self._cohort

    def design(self):
        """Run the design stage (extract first if needed) and lock the design.

        Returns
        -------
        matching.DesignResult or matching.imputed_design.ImputedDesign
            Its per-patient series (``ps``, ``weights``, ``match_id``, ``included``...) are
            indexed by patient id like `BlindCohort.frame`; ``summary()`` is the balance
            table, ``plot()`` the Love plot or the PS overlap. With ``missing: impute``, an
            `ImputedDesign`: ``designs`` (one DesignResult per imputation, keyed the same
            way), ``completed`` (each imputation's completed covariates), ``balance`` (the
            mean over imputations), ``imputed`` (counts per covariate and arm).
        """
        if "design" not in self._done:
            self._run("design")
        if self._design is None:
            raise SynthctlError(
                f"the design of {self._out} was locked by an earlier session and is not in "
                f"memory: read {self._out / DESIGN}")
        return self._design

    def analyze(self) -> StudyResults:
        """Read the outcomes on the locked design and analyse (earlier stages first).

        Returns
        -------
        StudyResults
            ``to_dict()`` is ``results.json``; ``summary()``, ``plot_km()``; ``analysis``
            the typed `reports.StudyAnalysis`.

        Raises
        ------
        DesignChangedError
            The locked design, an input file or the registry pool changed since the
            design stage: no outcome was read.
        """
        if "analyze" not in self._done:
            self._run("analyze")
        return self._results

    def report(self, path: str | Path | None = None) -> Path:
        """Render ``report.html`` (analysing first if needed); copy it to ``path`` if given.

        Returns
        -------
        Path
            ``path``, or the output folder's ``report.html``.
        """
        if "report" not in self._done:
            self.analyze()
            self._run("report")
        src = self._out / REPORT
        if path is None:
            return src
        dest = Path(path).expanduser()
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest

    def run(self) -> StudyResults:
        """Every stage (extract, design, analyze, report), like ``synthctl run``."""
        self.report()
        return self.analyze()

    # -- helpers --------------------------------------------------------------------------

    def _keys(self) -> list[str]:
        multi = self.spec.registry is not None and self.spec.registry.index.selection == "all"
        return [cn.PATIENT_ID, cn.LINE_ID] if multi else [cn.PATIENT_ID]

    def _covariates(self) -> pd.DataFrame:
        frame = pd.read_parquet(self._out / COVARIATES)
        frame[cn.PATIENT_ID] = frame[cn.PATIENT_ID].astype(str)
        return frame.set_index(self._keys())

    def _unit(self) -> str:
        if self.spec.data is not None:
            return "rows"
        return "patient-lines" if len(self._keys()) > 1 else "patients"

    def _keyed(self, res):
        """The design result with its per-patient series indexed by patient id.

        The design stage fits the rows of ``covariates.parquet`` in order; that file's ids
        become the index, so nothing downstream relies on row positions. An imputed design
        (`matching.imputed_design.ImputedDesign`) has each imputation's design and completed
        covariates keyed the same way.
        """
        index = self._covariates().index
        if hasattr(res, "completed"):
            return dataclasses.replace(
                res, designs=tuple(self._keyed(d) for d in res.designs),
                completed=tuple(c.set_axis(index) for c in res.completed))
        if any(len(getattr(res, f)) != len(index) for f in _PER_PATIENT):
            raise RuntimeError("the design result and covariates.parquet differ in length")
        return dataclasses.replace(res, **{f: getattr(res, f).set_axis(index)
                                           for f in _PER_PATIENT})

