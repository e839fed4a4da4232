"""connectors.response: RECIST 1.1 best overall response on hand-made assessment sequences."""

import numpy as np
import pandas as pd
import pytest

from connectors.errors import ConnectorError
from connectors.registry import IndexRule, RegistryConnector
from connectors.response import ResponseRule, derive_response


def _seq(*visits, key="K"):
    """visits: (day, code) or (day, code, clinical_progression)."""
    rows = [(key, v[0], v[1], v[2] if len(v) > 2 else False) for v in visits]
    return pd.DataFrame(rows, columns=["key", "days", "overall_response", "clinical_progression"])


def _one(frame, rule=None, key="K"):
    return derive_response(frame, [key], rule).loc[key]


@pytest.mark.parametrize(
    ("visits", "responder", "bor", "onset"),
    [
        # confirmed PR: PR at 56, PR at 84 (28 days later)
        ([(56, "PR"), (84, "PR")], 1, "PR", 56),
        # unconfirmed PR: the only later assessment is 27 days after
        ([(56, "PR"), (83, "PR")], 0, "SD", None),
        # unconfirmed PR, no later assessment
        ([(56, "SD"), (112, "PR")], 0, "SD", None),
        # PR then PD: progression before any confirmation
        ([(56, "PR"), (112, "PD"), (140, "PR")], 0, "SD", None),
        # PR, NE in between, PR: confirmed (NE does not break it)
        ([(56, "PR"), (70, "NE"), (98, "PR")], 1, "PR", 56),
        # PR, SD in between, PR: confirmed (RECIST 1.1 Table 3)
        ([(56, "PR"), (84, "SD"), (112, "PR")], 1, "PR", 56),
        # CR confirmed by CR -> CR; CR followed by PR -> confirmed PR
        ([(56, "PR"), (84, "CR"), (120, "CR")], 1, "CR", 84),
        ([(56, "CR"), (90, "PR")], 1, "PR", 56),
        # clinical progression ends the sequence
        ([(56, "PR"), (70, "NE", True), (98, "PR")], 0, "SD", None),
        # PD first
        ([(42, "PD"), (84, "PR"), (120, "PR")], 0, "PD", None),
        # baseline (day 0) and pre-index assessments are ignored
        ([(-10, "PR"), (0, "PR"), (56, "PR")], 0, "SD", None),
        ([(56, "NE")], 0, "NE", None),
    ],
)
def test_confirmed_response_sequences(visits, responder, bor, onset):
    got = _one(_seq(*visits))
    assert (got["response"], got["best_response"]) == (responder, bor)
    if onset is None:
        assert np.isnan(got["days_to_response"])
    else:
        assert got["days_to_response"] == onset


def test_unconfirmed_option_counts_a_single_pr():
    frame = _seq((56, "PR"), (112, "PD"))
    assert _one(frame)["response"] == 0
    got = _one(frame, ResponseRule(confirmed=False))
    assert (got["response"], got["best_response"], got["days_to_response"]) == (1, "PR", 56)


def test_window_applies_to_the_onset_not_the_confirmation():
    frame = _seq((160, "PR"), (196, "PR"))  # onset day 160 < 24 weeks (168), confirmed later
    assert _one(frame, ResponseRule(by=24, unit="weeks"))["response"] == 1
    late = _seq((170, "PR"), (200, "PR"))
    got = _one(late, ResponseRule(by=24, unit="weeks"))
    assert (got["response"], got["best_response"]) == (0, "NE")
    assert _one(late)["response"] == 1


def test_patients_without_assessments_are_counted_not_dropped():
    frame = _seq((56, "PR"), (84, "PR"), key="A")
    out = derive_response(frame, ["A", "B"])
    assert list(out.index) == ["A", "B"]
    assert out.loc["B", "response"] == 0 and not out.loc["B", "assessed"]
    assert out.loc["B", "best_response"] == "NE"


def test_undated_and_uncoded_rows_are_counted():
    frame = _seq((56, "PR"), (None, "PR"), (84, None), (100, "PR"))
    out = derive_response(frame, ["K"])
    assert out.attrs["n_undated"] == 1 and out.attrs["n_uncoded"] == 1
    assert out.loc["K", "response"] == 1


def test_unknown_code_is_an_error():
    with pytest.raises(ConnectorError, match="'XX' is not one of"):
        derive_response(_seq((56, "XX")), ["K"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"confirmation_days": 0}, "confirmation_days"),
        ({"unit": "fortnights"}, "unit"),
        ({"by": -1}, "window"),
        ({"confirmed": "yes"}, "confirmed"),
    ],
)
def test_rule_validation(kwargs, match):
    with pytest.raises(ConnectorError, match=match):
        ResponseRule(**kwargs)


def test_registry_sql_derivation_on_the_tiny_registry(tiny_sqlite):
    # conftest: P07 has SD, PR then NE after index (unconfirmed PR -> SD, non-responder);
    # P04 has no assessment after index (NE, not assessed); P01 SD then PD.
    with RegistryConnector(tiny_sqlite) as reg:
        pool = reg.candidate_pool(IndexRule())
        keys = pool.frame[["patient_id", "line_id", "index_date"]]
        out = reg.responses(keys).set_index("patient_id")
    assert out.loc["P07", "best_response"] == "SD" and out.loc["P07", "response"] == 0
    assert out.loc["P04", "best_response"] == "NE" and not out.loc["P04", "assessed"]
    assert out.loc["P01", "best_response"] == "SD"
    assert len(out) == len(keys) and out["response"].sum() == 0
    with RegistryConnector(tiny_sqlite) as reg:
        loose = reg.responses(keys, ResponseRule(confirmed=False)).set_index("patient_id")
    assert loose.loc["P07", "response"] == 1
