"""The house estimator contract, as one reusable check (sklearn's ``check_estimator`` in small).

Usage from a test file::

    from tests.estimator_contract import check_estimator_contract
    check_estimator_contract(lambda: NearestMatcher(random_state=0), (distance, treated))

``make_estimator`` builds a fresh estimator (with a fixed ``random_state`` where it has one);
``fit_args``/``fit_kwargs`` are what ``fit`` receives. The check asserts that:

1. ``__init__`` only stores its arguments, every argument after the first is keyword-only, and
   rebuilding the estimator from its parameters (``clone``) gives the same parameters;
2. ``fit`` returns ``self``;
3. ``fit`` adds only ``_``-suffixed learned attributes (or ``_``-prefixed private state) and
   leaves the parameters as they were;
4. the inputs are not modified;
5. the same parameters (same seed) give the same learned attributes;
6. each bad parameter value makes ``fit`` raise an error whose message names the parameter.
   Bad values come from ``bad_params`` or, when absent, from the class's ``_constraints`` table.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd


def _param_names(est: Any) -> list[str]:
    sig = inspect.signature(type(est).__init__)
    return [p.name for p in sig.parameters.values() if p.name != "self"]


def _params(est: Any) -> dict:
    if hasattr(est, "get_params"):
        return dict(est.get_params(deep=False))
    return {name: getattr(est, name) for name in _param_names(est)}


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame | pd.Series):
        return isinstance(b, type(a)) and a.equals(b)
    if isinstance(a, np.ndarray):
        if not isinstance(b, np.ndarray) or a.shape != b.shape:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(
            _equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(
            _equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    if isinstance(a, np.random.Generator):
        return isinstance(b, np.random.Generator)
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    if type(a).__eq__ is object.__eq__:
        return type(a) is type(b)  # no value equality defined (e.g. a fitted sklearn model)
    try:
        return bool(a == b)
    except Exception:  # objects without a usable ==
        return a is b


def _bad_values(est: Any) -> dict:
    """One invalid value per constrained parameter, from the ``_constraints`` table."""
    out = {}
    for name, allowed in getattr(est, "_constraints", {}).items():
        allowed = list(allowed)
        for candidate in (-1, 0, 1.5, "not-an-option", object()):
            if not any(c.accepts(candidate) for c in allowed):
                out[name] = candidate
                break
    return out


def check_estimator_contract(
    make_estimator: Callable[[], Any],
    fit_args: tuple = (),
    fit_kwargs: Mapping[str, Any] | None = None,
    *,
    bad_params: Mapping[str, Any] | None = None,
) -> None:
    """Assert the house estimator contract (module docstring); raises AssertionError."""
    fit_kwargs = dict(fit_kwargs or {})
    est = make_estimator()
    cls = type(est).__name__

    # 1. __init__ stores its arguments; keyword-only after the first; clone round trip
    sig = inspect.signature(type(est).__init__)
    kinds = [p.kind for p in sig.parameters.values() if p.name != "self"]
    assert all(k is inspect.Parameter.KEYWORD_ONLY for k in kinds[1:]), (
        f"{cls}: every __init__ parameter after the first must be keyword-only")
    assert not any(k in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
                   for k in kinds), f"{cls}: no *args/**kwargs in __init__"
    params = _params(est)
    assert set(params) == set(_param_names(est)), f"{cls}: get_params != __init__ arguments"
    rebuilt = type(est)(**params)
    for name, value in params.items():
        assert getattr(rebuilt, name) is value, f"{cls}.__init__ altered {name!r}"
    if hasattr(est, "get_params"):
        from sklearn.base import clone

        cloned = clone(est)
        assert _equal(_params(cloned), params), f"{cls}: clone changed the parameters"

    # 2-4. fit returns self, adds only learned/private attributes, leaves inputs untouched
    before_args = copy.deepcopy((fit_args, fit_kwargs))
    before_attrs = dict(vars(est))
    out = est.fit(*fit_args, **fit_kwargs)
    assert out is est, f"{cls}.fit must return self"
    new = set(vars(est)) - set(before_attrs)
    public_new = [a for a in new if not a.startswith("_") and not a.endswith("_")]
    assert not public_new, f"{cls}.fit set non-learned public attributes {public_new}"
    assert any(a.endswith("_") for a in new), f"{cls}.fit set no learned attribute"
    for name in params:
        assert getattr(est, name) is before_attrs[name], f"{cls}.fit overwrote {name!r}"
    assert _equal(before_args, (fit_args, fit_kwargs)), f"{cls}.fit modified its input"

    # 5. same parameters (same seed) -> same learned attributes
    other = make_estimator().fit(*copy.deepcopy(fit_args), **copy.deepcopy(fit_kwargs))
    for a in sorted(x for x in new if x.endswith("_") and not x.startswith("_")):
        assert _equal(getattr(est, a), getattr(other, a)), f"{cls}.{a} differs between fits"

    # 6. a bad parameter raises an error naming it
    bad = dict(bad_params) if bad_params is not None else _bad_values(est)
    assert bad, f"{cls}: no bad parameter values to test (declare _constraints or bad_params)"
    for name, value in bad.items():
        e = make_estimator()
        setattr(e, name, value)
        try:
            e.fit(*copy.deepcopy(fit_args), **copy.deepcopy(fit_kwargs))
        except (ValueError, TypeError) as exc:
            assert name in str(exc), f"{cls}: error for bad {name}={value!r} does not name it"
        else:
            raise AssertionError(f"{cls}: fit accepted bad {name}={value!r}")
