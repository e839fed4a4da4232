"""The landmarks and the RMST horizon checked against each arm's potential follow-up (issue 14).

Before the design is locked, and without reading an outcome, each arm's potential follow-up
(data cut-off minus index date, `connectors.followup`) bounds what the analysis can estimate:
a landmark or ``rmst_tau`` beyond an arm's largest potential follow-up is refused at extract
(on every extracted patient) and again at design (on the patients the design keeps), with a
`DataError` naming the setting, the arm, its cut-off and its largest potential follow-up.

Cut-offs: the trial's is ``trial.data_cutoff`` in the spec, else ADSL ``DCUTDT``; the
registry's is ``registry.data_cutoff``. An arm without a cut-off is not checked; the record
says so and, when ``rmst_tau`` is set, the manifest warns. A flat analysis file has no index
dates: nothing is checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd

from connectors import columns as cn
from connectors.followup import ArmFollowUp, horizon_problem, potential_follow_up
from synthctl.errors import DataError
from synthctl.spec import StudySpec

#: the record's key in ``extract.json`` and ``design.json``
FOLLOW_UP = "follow_up"


def arm_cutoffs(spec: StudySpec, adsl_cutoff: dt.date | None
                ) -> tuple[dict[str, dict[str, str] | None], list[str]]:
    """Each arm's data cut-off ``{"date": ISO, "source": ...}`` (None when unknown), and
    warnings (a spec cut-off that differs from ADSL ``DCUTDT``: the spec's is used)."""
    warnings: list[str] = []
    if spec.registry is None or spec.trial is None:
        return {cn.TRIAL: None, cn.CONTROL: None}, warnings
    trial = None
    if spec.trial.data_cutoff is not None:
        trial = {"date": spec.trial.data_cutoff.isoformat(), "source": "trial.data_cutoff"}
        if adsl_cutoff is not None and adsl_cutoff != spec.trial.data_cutoff:
            warnings.append(f"trial.data_cutoff {spec.trial.data_cutoff.isoformat()} differs "
                            f"from ADSL DCUTDT {adsl_cutoff.isoformat()}; the spec's is used")
    elif adsl_cutoff is not None:
        trial = {"date": adsl_cutoff.isoformat(), "source": "ADSL DCUTDT"}
    control = None
    if spec.registry.data_cutoff is not None:
        control = {"date": spec.registry.data_cutoff.isoformat(),
                   "source": "registry.data_cutoff"}
    return {cn.TRIAL: trial, cn.CONTROL: control}, warnings


def follow_up_record(spec: StudySpec, frame: pd.DataFrame,
                     cutoffs: Mapping[str, Mapping[str, str] | None], *, stage: str,
                     population: str) -> tuple[dict[str, Any], list[str]]:
    """Check the landmarks and ``rmst_tau`` against the arms of ``frame``; the JSON record.

    ``frame`` holds ``arm`` and ``index_date`` (no outcome). Raises `DataError` (naming the
    stage) when a horizon is beyond an arm's largest potential follow-up or the dates
    contradict a cut-off; returns the record and the warnings for the manifest.
    """
    from connectors.followup import FollowUpError

    a = spec.analysis
    unit = a.landmark_unit
    arms: dict[str, ArmFollowUp] = {}
    record: dict[str, Any] = {"rule": "potential follow-up = data cut-off - index date; every "
                              "landmark and rmst_tau must be within each arm's largest",
                              "population": population, "unit": unit, "arms": {}}
    warnings: list[str] = []
    for arm in (cn.TRIAL, cn.CONTROL):
        cut = cutoffs.get(arm)
        if cut is None:
            record["arms"][arm] = {"arm": arm, "data_cutoff": None, "checked": False}
            continue
        dates = frame.loc[frame[cn.ARM] == arm, cn.INDEX_DATE]
        try:
            fu = potential_follow_up(dates, dt.date.fromisoformat(cut["date"]), arm=arm,
                                     cutoff_source=cut["source"])
        except FollowUpError as exc:
            raise DataError(f"{stage} stage: {exc}") from None
        arms[arm] = fu
        entry = {**fu.to_dict(unit), "checked": True}
        if a.rmst_tau is not None:
            entry["n_potentially_followed_to_rmst_tau"] = fu.n_reaching(
                cn.to_days(unit, a.rmst_tau))
        record["arms"][arm] = entry
    problems = [p for arm in arms.values() for what, h in _horizons(spec)
                if (p := horizon_problem(what, h, unit, arm)) is not None]
    if problems:
        raise DataError(f"{stage} stage ({population}): " + "; ".join(problems)
                        + ". Lower it in the spec (analysis), or check the data cut-off.")
    unchecked = [arm for arm in (cn.TRIAL, cn.CONTROL) if arm not in arms]
    if unchecked and a.rmst_tau is not None and spec.registry is not None:
        keys = {cn.TRIAL: "trial.data_cutoff or ADSL DCUTDT",
                cn.CONTROL: "registry.data_cutoff"}
        warnings.append(
            f"analysis.rmst_tau = {a.rmst_tau:g} {unit} not checked against the follow-up of "
            f"the {' and '.join(unchecked)} arm(s): no data cut-off (set "
            f"{'; '.join(keys[u] for u in unchecked)})")
    return record, warnings


def _horizons(spec: StudySpec) -> list[tuple[str, float]]:
    a = spec.analysis
    out = [(f"analysis.landmarks[{i}]", float(t)) for i, t in enumerate(a.landmarks)]
    if a.rmst_tau is not None:
        out.append(("analysis.rmst_tau", float(a.rmst_tau)))
    return out


def design_follow_up(spec: StudySpec, extract_info: Mapping[str, Any], frame: pd.DataFrame,
                     included) -> dict[str, Any] | None:
    """The design stage's check on the patients the design keeps (``included``), with the
    cut-offs the extract stage recorded; the record for ``design.json`` (None without one)."""
    recorded = extract_info.get(FOLLOW_UP)
    if recorded is None:  # flat file, or a folder extracted before this check existed
        return None
    kept = frame.loc[pd.Series(included, index=frame.index).astype(bool),
                     [cn.ARM, cn.INDEX_DATE]]
    record, _ = follow_up_record(spec, kept, recorded["cutoffs"], stage="design",
                                 population="the patients the design keeps")
    return record
