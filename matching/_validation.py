"""Parameter constraints for the estimators of :mod:`matching` (our own, not sklearn's private API).

Each estimator declares a ``_constraints`` table ``{param: [constraint, ...]}``; ``fit`` calls
:func:`check_params`, which raises a :class:`~matching.errors.MatchingError` naming the parameter,
the class, what is allowed and what was received (the message layout of sklearn's
``InvalidParameterError``, which we do not import because it is private).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import MatchingError


@dataclass(frozen=True, slots=True)
class Interval:
    """Numbers of ``kind`` (``int`` or ``float``) in [left, right] (bounds optional)."""

    kind: type
    left: float | None = None
    right: float | None = None
    closed: str = "both"  # "both", "left", "right", "neither"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or not np.isfinite(value):
            return False
        lo_ok = self.left is None or (
            value >= self.left if self.closed in ("both", "left") else value > self.left
        )
        hi_ok = self.right is None or (
            value <= self.right if self.closed in ("both", "right") else value < self.right
        )
        return bool(lo_ok and hi_ok)

    def describe(self) -> str:
        lb = "[" if self.closed in ("both", "left") else "("
        rb = "]" if self.closed in ("both", "right") else ")"
        lo = "-inf" if self.left is None else repr(self.left)
        hi = "inf" if self.right is None else repr(self.right)
        return f"{'an int' if self.kind is int else 'a number'} in {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True, slots=True)
class Options:
    """One of a closed set of values (strings, or None)."""

    values: frozenset

    def accepts(self, value: Any) -> bool:
        try:
            return value in self.values
        except TypeError:
            return False

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in sorted(self.values, key=repr))


@dataclass(frozen=True, slots=True)
class Predicate:
    """Anything ``check(value)`` accepts, described by ``text``."""

    check: Callable[[Any], bool]
    text: str

    def accepts(self, value: Any) -> bool:
        return bool(self.check(value))

    def describe(self) -> str:
        return self.text


def _is_seed(value: Any) -> bool:
    return value is None or isinstance(value, np.random.Generator) or (
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0
    )


SEED = Predicate(_is_seed, "None, a non-negative int or a numpy Generator")
BOOL = Predicate(lambda v: isinstance(v, bool | np.bool_), "a bool")
NONE = Predicate(lambda v: v is None, "None")


def options(*values: Any) -> Options:
    """Shorthand for :class:`Options`."""
    return Options(frozenset(values))


def check_params(estimator: Any, constraints: Mapping[str, Iterable[Any]]) -> None:
    """Raise :class:`MatchingError` for the first parameter no constraint accepts."""
    for name, allowed in constraints.items():
        value = getattr(estimator, name)
        allowed = list(allowed)
        if any(c.accepts(value) for c in allowed):
            continue
        what = " or ".join(c.describe() for c in allowed)
        raise MatchingError(
            f"The {name!r} parameter of {type(estimator).__name__} must be {what}; "
            f"got {value!r}."
        )


def check_random_state(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """A Generator from a seed. ``None`` gives a fresh unseeded Generator, never a global RNG."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)
