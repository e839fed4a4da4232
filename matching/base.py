"""Minimal estimator base: sklearn-style ``get_params``/``set_params``/``repr``.

Shared by the estimators of `matching` and the survival fitters of `reports`.

``sklearn.base.clone`` works on any object with these two methods, so our estimators clone like
scikit-learn's without importing ``sklearn.base`` (seconds of import time on a busy machine;
only ``logistic_l2``/``gbm`` need scikit-learn, and import it when fitted).
"""

from __future__ import annotations

import inspect
from typing import Any


class Estimator:
    """Base class of our estimators and fitters (parameters in ``__init__``, state in ``attr_``)."""

    _constraints: dict = {}  # noqa: RUF012 - class-level table, read only

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (``deep`` is accepted for sklearn compatibility)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Estimator:
        """Set constructor arguments; an unknown name is an error naming it."""
        valid = set(self._get_param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {sorted(valid)}.")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if sig.parameters[k].default is not v and sig.parameters[k].default != v]
        return f"{type(self).__name__}({', '.join(changed)})"
