"""Eligibility criteria: a whitelist parser from strings to SQL expressions and DataFrame masks.

A criterion is a Python-like boolean expression over the columns of the analysis frame::

    "age_at_index >= 18"
    "0 <= ecog_at_index <= 1"
    "not prior_immunotherapy"
    "histology in ['epithelioid', 'biphasic'] and pci < 20"
    "ki67 == None or ki67 < 20"          # == None / is None -> IS NULL

It is parsed with `ast` and every node is checked against a short whitelist (comparisons,
``and``/``or``/``not``, ``in``/``not in`` a list of literals, known column names, numeric /
string / boolean literals, ``None`` in (in)equality tests). Anything else (calls, attribute
access, subscripts, arithmetic, lambdas, f-strings, statements) raises `CriterionError`.
Nothing is ever ``eval``-ed, and values reach SQL as bound parameters only.

Missing data follow SQL's three-valued (Kleene) logic, on the database and on a DataFrame
alike: a comparison that reads a missing value is *unknown*; ``unknown and False`` is False,
``unknown or True`` is True, ``not unknown`` is unknown. A row whose criterion is unknown is
"missing" (excluded with reason ``missing <columns>``), not "failing". For a criterion that
reads one column (the usual case) this is simply: a row missing that column is "missing".
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from connectors import columns as cn
from connectors.errors import CriterionError

if TYPE_CHECKING:  # sqlalchemy is imported by the SQL path only (flat files: ~1 s saved)
    from sqlalchemy.sql.elements import ColumnElement

Kind = Literal["number", "str", "bool", "any"]

#: Columns of the analysis frame a criterion may read, with their kind (for type checks).
#: Outcome columns are deliberately absent: eligibility is part of the design stage.
FRAME_COLUMN_KINDS: dict[str, Kind] = {
    cn.CENTRE_ID: "str",
    cn.DISEASE: "str",
    cn.AGE: "number",
    cn.SEX: "str",
    cn.ECOG: "number",
    cn.HISTOLOGY: "str",
    cn.PCI: "number",
    cn.PRIOR_CRS: "bool",
    cn.CRS_HIPEC: "bool",
    cn.PFI_MONTHS: "number",
    cn.PRIOR_LINES: "number",
    cn.PRIOR_IMMUNOTHERAPY: "bool",
    cn.MONTHS_SINCE_DIAGNOSIS: "number",
    cn.KI67: "number",
    cn.BAP1: "str",
}

_MAX_LENGTH = 2000  # characters; a criterion is a line in a spec, not a program
_MAX_DEPTH = 50  # nesting; protects the recursive compiler

_CMP_OPS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}

_FORBIDDEN_NAMES = {
    ast.Call: "function calls",
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.BinOp: "arithmetic",
    ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignment expressions",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Starred: "starred expressions",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Dict: "dict literals",
    ast.Slice: "slices",
}


# -- the parsed tree: a tiny closed set of nodes ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _Col:
    name: str


@dataclass(frozen=True, slots=True)
class _Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class _Cmp:
    op: str
    left: _Col | _Lit
    right: _Col | _Lit


@dataclass(frozen=True, slots=True)
class _IsNull:
    column: _Col
    negated: bool


@dataclass(frozen=True, slots=True)
class _In:
    column: _Col
    values: tuple[Any, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class _Truth:  # a bare boolean column
    column: _Col


@dataclass(frozen=True, slots=True)
class _Not:
    operand: _Node


@dataclass(frozen=True, slots=True)
class _BoolOp:
    op: Literal["and", "or"]
    operands: tuple[_Node, ...]


_Node = _Cmp | _IsNull | _In | _Truth | _Not | _BoolOp


@dataclass(frozen=True, slots=True)
class Criterion:
    """A parsed, validated eligibility criterion.

    Attributes
    ----------
    text : str
        The criterion as written in the spec.
    columns : tuple of str
        The analysis-frame columns it reads, in order of appearance (for the attrition rows
        ``missing <columns>``).
    """

    text: str
    columns: tuple[str, ...]
    _tree: _Node

    @property
    def missing_reason(self) -> str:
        """Attrition reason for rows whose criterion is unknown because of missing data."""
        return "missing " + " or ".join(self.columns)

    def to_sql(self, columns: Mapping[str, ColumnElement]) -> ColumnElement:
        """Compile into a SQLAlchemy boolean expression; literals become bound parameters.

        Parameters
        ----------
        columns : mapping of column name -> SQLAlchemy column expression
            Must hold every name in `columns` (e.g. ``subquery.c``).
        """
        return _to_sql(self._tree, columns, self.text)

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """Evaluate on a DataFrame with SQL's three-valued logic.

        Returns
        -------
        pandas.Series of dtype ``"boolean"``, aligned with ``frame.index``
            True (eligible), False (fails) or <NA> (unknown: reads missing data).
        """
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise CriterionError(
                f"eligibility criterion {self.text!r}: the data have no column "
                f"{', '.join(map(repr, missing))}"
            )
        out = _evaluate(self._tree, frame, self.text)
        return out.astype("boolean")


def parse_criterion(
    text: str, known_columns: Iterable[str] | Mapping[str, Kind] | None = None
) -> Criterion:
    """Parse and validate one eligibility criterion.

    Parameters
    ----------
    text : str
        The criterion, e.g. ``"ecog_at_index <= 1"``.
    known_columns : iterable of str or mapping of str -> kind, optional
        Columns the criterion may read. With a mapping (kind ``"number"``, ``"str"``,
        ``"bool"`` or ``"any"``) literals are type-checked against the column; default
        `FRAME_COLUMN_KINDS`.

    Raises
    ------
    CriterionError
        Naming the criterion and the offending construct or unknown column.
    """
    if not isinstance(text, str):
        raise CriterionError(f"eligibility criterion {text!r}: must be a string")
    if known_columns is None:
        kinds: dict[str, Kind] = dict(FRAME_COLUMN_KINDS)
    elif isinstance(known_columns, Mapping):
        kinds = dict(known_columns)
    else:
        kinds = {name: "any" for name in known_columns}
    if len(text) > _MAX_LENGTH:
        raise CriterionError(
            f"eligibility criterion {text[:60]!r}...: longer than {_MAX_LENGTH} characters"
        )
    if not text.strip():
        raise CriterionError("eligibility criterion '': empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise CriterionError(
            f"eligibility criterion {text!r}: not a single boolean expression "
            f"({exc.msg}); write e.g. \"ecog_at_index <= 1\" (statements, ';' and '=' are "
            "not allowed)"
        ) from None
    parser = _Parser(text, kinds)
    node = parser.boolean(tree.body, depth=0)
    if not parser.columns:
        raise CriterionError(f"eligibility criterion {text!r}: reads no column")
    return Criterion(text=text, columns=tuple(parser.columns), _tree=node)


def parse_criteria(
    texts: Iterable[str], known_columns: Iterable[str] | Mapping[str, Kind] | None = None
) -> list[Criterion]:
    """Parse several criteria (strings or already parsed `Criterion` objects)."""
    return [
        t if isinstance(t, Criterion) else parse_criterion(t, known_columns) for t in texts
    ]


class _Parser:
    """Walks the `ast` of one criterion, accepting only whitelisted nodes."""

    def __init__(self, text: str, kinds: Mapping[str, Kind]):
        self.text = text
        self.kinds = kinds
        self.columns: list[str] = []

    def fail(self, message: str) -> CriterionError:
        return CriterionError(f"eligibility criterion {self.text!r}: {message}")

    def _forbidden(self, node: ast.AST) -> CriterionError:
        what = _FORBIDDEN_NAMES.get(type(node), f"'{type(node).__name__}' expressions")
        snippet = ast.get_source_segment(self.text.strip(), node) or type(node).__name__
        return self.fail(
            f"not allowed: {what} (found {snippet!r}); a criterion compares column names "
            "with literals using ==, !=, <, <=, >, >=, in [...], and, or, not"
        )

    def boolean(self, node: ast.AST, depth: int) -> _Node:
        if depth > _MAX_DEPTH:
            raise self.fail("nested too deeply")
        if isinstance(node, ast.BoolOp):
            op = "and" if isinstance(node.op, ast.And) else "or"
            return _BoolOp(op, tuple(self.boolean(v, depth + 1) for v in node.values))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return _Not(self.boolean(node.operand, depth + 1))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            col = self.column(node)
            kind = self.kinds[col.name]
            if kind not in ("bool", "any"):
                raise self.fail(
                    f"column {col.name!r} is not boolean ({kind}); compare it, "
                    f"e.g. \"{col.name} == ...\""
                )
            return _Truth(col)
        if isinstance(node, ast.Constant):
            raise self.fail(f"a bare literal ({node.value!r}) is not a criterion")
        raise self._forbidden(node)

    def column(self, node: ast.AST) -> _Col:
        if not isinstance(node, ast.Name):
            raise self._forbidden(node)
        if node.id not in self.kinds:
            known = ", ".join(sorted(self.kinds))
            raise self.fail(f"unknown column {node.id!r}; known columns: {known}")
        if node.id not in self.columns:
            self.columns.append(node.id)
        return _Col(node.id)

    def literal(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            value = node.value
            if value is None or isinstance(value, bool | int | float | str):
                if isinstance(value, float) and not np.isfinite(value):
                    raise self.fail("non-finite numbers are not allowed")
                return value
            raise self.fail(f"literal {value!r} of type {type(value).__name__} is not allowed")
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) in (int, float)
        ):
            v = node.operand.value
            return -v if isinstance(node.op, ast.USub) else v
        raise self._forbidden(node)

    def operand(self, node: ast.AST) -> _Col | _Lit:
        if isinstance(node, ast.Name):
            return self.column(node)
        return _Lit(self.literal(node))

    def check_kind(self, col: _Col, value: Any) -> None:
        kind = self.kinds[col.name]
        ok = {
            "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "str": lambda v: isinstance(v, str),
            "bool": lambda v: isinstance(v, bool),
            "any": lambda v: True,
        }[kind]
        if not ok(value):
            raise self.fail(f"column {col.name!r} is {kind} but is compared with {value!r}")

    def compare(self, node: ast.Compare) -> _Node:
        parts: list[_Node] = []
        left_ast = node.left
        for op, right_ast in zip(node.ops, node.comparators, strict=True):
            parts.append(self.one_comparison(left_ast, op, right_ast))
            left_ast = right_ast
        return parts[0] if len(parts) == 1 else _BoolOp("and", tuple(parts))

    def one_comparison(self, left_ast: ast.AST, op: ast.cmpop, right_ast: ast.AST) -> _Node:
        if isinstance(op, ast.In | ast.NotIn):
            col = self.column(left_ast)
            if not isinstance(right_ast, ast.List | ast.Tuple | ast.Set):
                raise self.fail("'in' needs a list of literals on the right, e.g. in ['a', 'b']")
            values = tuple(self.literal(e) for e in right_ast.elts)
            if not values:
                raise self.fail("'in' needs a non-empty list")
            for v in values:
                if v is None:
                    raise self.fail("None is not allowed in a list; use 'col == None'")
                self.check_kind(col, v)
            return _In(col, values, negated=isinstance(op, ast.NotIn))
        if isinstance(op, ast.Is | ast.IsNot):
            col = self.column(left_ast)
            if self.literal(right_ast) is not None:
                raise self.fail("'is' is only allowed as 'is None' / 'is not None'")
            return _IsNull(col, negated=isinstance(op, ast.IsNot))
        if type(op) not in _CMP_OPS:
            raise self.fail(f"operator {type(op).__name__} is not allowed")
        sym = _CMP_OPS[type(op)][0]
        left, right = self.operand(left_ast), self.operand(right_ast)
        if isinstance(left, _Lit) and isinstance(right, _Lit):
            raise self.fail("a comparison must involve a column")
        if (isinstance(right, _Lit) and right.value is None) or (
            isinstance(left, _Lit) and left.value is None
        ):
            if sym not in ("==", "!="):
                raise self.fail("None can only be tested with == or !=")
            col = left if isinstance(left, _Col) else right
            return _IsNull(col, negated=sym == "!=")
        if isinstance(left, _Col) and isinstance(right, _Lit):
            self.check_kind(left, right.value)
        elif isinstance(right, _Col) and isinstance(left, _Lit):
            self.check_kind(right, left.value)
        return _Cmp(sym, left, right)


# -- SQL ---------------------------------------------------------------------------------------


def _sql_operand(x: _Col | _Lit, columns: Mapping[str, ColumnElement], text: str):
    if isinstance(x, _Col):
        return _sql_column(x, columns, text)
    import sqlalchemy as sa

    return sa.bindparam(None, x.value, unique=True)


def _sql_column(col: _Col, columns: Mapping[str, ColumnElement], text: str) -> ColumnElement:
    try:
        return columns[col.name]
    except KeyError:
        raise CriterionError(
            f"eligibility criterion {text!r}: column {col.name!r} is not available here"
        ) from None


def _to_sql(node: _Node, columns: Mapping[str, ColumnElement], text: str) -> ColumnElement:
    import sqlalchemy as sa

    if isinstance(node, _BoolOp):
        parts = [_to_sql(n, columns, text) for n in node.operands]
        return sa.and_(*parts) if node.op == "and" else sa.or_(*parts)
    if isinstance(node, _Not):
        return sa.not_(_to_sql(node.operand, columns, text))
    if isinstance(node, _Truth):
        return _sql_column(node.column, columns, text) == sa.true()
    if isinstance(node, _IsNull):
        col = _sql_column(node.column, columns, text)
        return col.is_not(None) if node.negated else col.is_(None)
    if isinstance(node, _In):
        col = _sql_column(node.column, columns, text)
        return col.not_in(list(node.values)) if node.negated else col.in_(list(node.values))
    left = _sql_operand(node.left, columns, text)
    right = _sql_operand(node.right, columns, text)
    if isinstance(node.left, _Lit):  # literal on the left: flip, so the column drives typing
        flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
        return _CMP_OPS_BY_SYM[flipped[node.op]](right, left)
    return _CMP_OPS_BY_SYM[node.op](left, right)


_CMP_OPS_BY_SYM = {sym: fn for sym, fn in _CMP_OPS.values()}


# -- DataFrame (same three-valued semantics) ----------------------------------------------------


def _frame_values(x: _Col | _Lit, frame: pd.DataFrame) -> tuple[Any, pd.Series | bool]:
    if isinstance(x, _Col):
        s = frame[x.name]
        return s, s.isna().to_numpy()
    return x.value, False


def _kleene(values: np.ndarray, unknown: np.ndarray, index: pd.Index) -> pd.Series:
    arr = pd.array(values.astype(bool), dtype="boolean")
    arr[unknown] = pd.NA
    return pd.Series(arr, index=index)


def _compare_values(fn, left, right, known: np.ndarray, text: str, node: _Cmp) -> np.ndarray:
    out = np.zeros(known.shape, dtype=bool)
    if not known.any():
        return out
    lv = left[known] if isinstance(left, pd.Series) else left
    rv = right[known] if isinstance(right, pd.Series) else right
    lv = lv.to_numpy(dtype=object) if isinstance(lv, pd.Series) else lv
    rv = rv.to_numpy(dtype=object) if isinstance(rv, pd.Series) else rv
    try:
        out[known] = np.asarray(fn(lv, rv), dtype=bool)
    except TypeError:
        names = [x.name for x in (node.left, node.right) if isinstance(x, _Col)]
        raise CriterionError(
            f"eligibility criterion {text!r}: column {', '.join(names)} holds values that "
            f"cannot be compared with {node.op} (e.g. text in a numeric column)"
        ) from None
    return out


def _evaluate(node: _Node, frame: pd.DataFrame, text: str) -> pd.Series:
    index = frame.index
    if isinstance(node, _BoolOp):
        parts = [_evaluate(n, frame, text) for n in node.operands]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if node.op == "and" else (out | p)  # pandas "boolean" is Kleene
        return out
    if isinstance(node, _Not):
        return ~_evaluate(node.operand, frame, text)
    if isinstance(node, _IsNull):
        isna = frame[node.column.name].isna().to_numpy()
        return _kleene(~isna if node.negated else isna, np.zeros(len(frame), bool), index)
    if isinstance(node, _Truth):
        s = frame[node.column.name]
        unknown = s.isna().to_numpy()
        vals = s[~unknown].to_numpy(dtype=object)
        bad = [v for v in vals if not isinstance(v, bool | np.bool_) and v not in (0, 1)]
        if bad:
            raise CriterionError(
                f"eligibility criterion {text!r}: column {node.column.name!r} is used as a "
                f"boolean but holds {bad[0]!r} (expected True/False or 1/0)"
            )
        values = np.zeros(len(frame), dtype=bool)
        values[~unknown] = vals.astype(bool)
        return _kleene(values, unknown, index)
    if isinstance(node, _In):
        s = frame[node.column.name]
        unknown = s.isna().to_numpy()
        member = s.isin(list(node.values)).to_numpy()
        return _kleene(~member if node.negated else member, unknown, index)
    left, lna = _frame_values(node.left, frame)
    right, rna = _frame_values(node.right, frame)
    unknown = np.asarray(lna | rna, dtype=bool) & np.ones(len(frame), dtype=bool)
    fn = _CMP_OPS_BY_SYM[node.op]
    values = _compare_values(fn, left, right, ~unknown, text, node)
    return _kleene(values, unknown, index)
