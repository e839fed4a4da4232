"""compare_arms().to_dict() is results.json["endpoints"]["PFS"] (ARCHITECTURE.md contract)."""

from __future__ import annotations

import json

from reports.compare import compare_arms
from tests.reports._reference import PM_COLUMNS, eligible


def _estimate_objects(obj, path=""):
    if isinstance(obj, dict):
        if "estimate" in obj:
            yield path, obj
        for k, v in obj.items():
            yield from _estimate_objects(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _estimate_objects(v, f"{path}[{i}]")


def test_endpoint_dict_follows_the_contract():
    comp = compare_arms(
        eligible(),
        **PM_COLUMNS,
        weight_col="w_att",
        landmarks=[24, 200],
        time_unit="weeks",
        null_rate=0.35,
        rmst_tau=52,
    )
    out = json.loads(json.dumps(comp.to_dict(), allow_nan=False))  # strict JSON, no NaN
    assert set(out) >= {"landmarks", "median", "hazard_ratio", "rmst", "logrank", "evalues"}
    lm = out["landmarks"][0]
    assert (lm["time"], lm["unit"]) == (24.0, "weeks")
    for arm in ("trial", "control", "difference"):
        assert set(lm[arm]) >= {"estimate", "se", "lower", "upper", "method"}
    assert set(out["median"]) >= {"trial", "control"}
    assert set(out["hazard_ratio"]) >= {"estimate", "lower", "upper", "se_log", "p_value", "method"}
    rm = out["rmst"]
    assert (rm["tau"], rm["unit"]) == (52.0, "weeks")
    assert set(rm["trial"]) >= {"estimate", "se"} and "difference" in rm
    objects = list(_estimate_objects(out))
    assert len(objects) >= 12
    assert all(o.get("method") for _, o in objects), [p for p, o in objects if not o.get("method")]
    # a landmark beyond follow-up is null with a reason, not an extrapolation
    beyond = out["landmarks"][1]
    assert beyond["control"]["estimate"] is None and "beyond" in beyond["control"]["reason"]
