"""Mapping files: a registry as it is, read through our schema (format v2, ``docs/mapping.md``).

A mapping owns every difference between a registry and ``connectors.schema.LOGICAL_SCHEMA``:
table and column names, value codes, types, units, absent columns, derived flags (rules in
the eligibility syntax, never SQL text) and disease-specific covariates::

    version: 2
    unmapped: error                      # or missing: an unknown source code is read as NULL
    tables:
      patients:
        table: registre.patients_v       # a table or a view, schema-qualified or not
        columns:
          patient_id: id_patient          # a plain name: only renamed
          sex: {column: sexe, values: {homme: M, femme: F}}
          birth_date: {column: naissance, type: date, format: "%d/%m/%Y"}
      centres:
        columns: {region: {absent: true}}
      treatment_lines:
        columns:
          immunotherapy: {rule: "regimen in ['nivolumab', 'pembrolizumab']"}
    covariates:
      masaoka_stage: {table: diagnoses, column: masaoka, type: text,
                      values: {I: I, II: II, III: III, IVa: IV, IVb: IV}}

Version 1 files (no ``version`` key: logical tables at the top level with ``table`` and
``columns: {logical: physical}``) are read as version 2 with renames only.

Source codes in ``values`` are compared as text, trimmed and in lower case (``' Homme'``,
``'HOMME'`` and ``homme`` are one code; an integer column's ``1`` is ``'1'``).
"""

from __future__ import annotations

import collections.abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.dateformat import check_format
from connectors.errors import MappingError
from connectors.schema import (
    COLUMN_CODES,
    DERIVED_FLAGS,
    LOGICAL_SCHEMA,
    ColumnRecode,
    TableMapping,
    kind_of,
)
from connectors.yamlfile import YamlDocument, YamlFileError, load_yaml, locate, short

MAPPING_VERSION = 2
Kind = Literal["integer", "number", "text", "date", "boolean"]
Unmapped = Literal["error", "missing"]
#: Tables a covariate may come from, and when it is measured.
COVARIATE_TABLES: dict[str, str] = {
    "patients": "at diagnosis (one row per patient)",
    "diagnoses": "at diagnosis (the patient's earliest diagnosis record)",
    "treatment_lines": "at index (the index line)",
}
#: ``type: boolean`` without ``values``: these source codes (trimmed, lower case).
BOOLEAN_CODES: tuple[tuple[str, bool], ...] = (
    ("true", True), ("false", False), ("t", True), ("f", False), ("1", True), ("0", False),
    ("yes", True), ("no", False), ("y", True), ("n", False), ("oui", True), ("non", False),
    ("o", True), ("vrai", True), ("faux", False),
)
_COVARIATE_TYPES = {"integer": sa.Integer(), "number": sa.Float(), "text": sa.String(),
                    "boolean": sa.Boolean()}
_Code = str | int | float | bool


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnEntry(_Model):
    """One schema column: its physical column, or ``absent``, or a ``rule``."""

    column: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    absent: bool = False
    rule: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    type: Kind | None = None
    format: Annotated[str, Field(min_length=2, max_length=40)] | None = None
    values: dict[_Code, _Code | None] | None = None
    scale: float | None = None
    unmapped: Unmapped | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ColumnEntry:
        given = [k for k in ("column", "rule") if getattr(self, k) is not None]
        if self.absent:
            given.append("absent")
        if len(given) != 1:
            raise ValueError("give exactly one of 'column', 'absent: true' or 'rule'")
        if (self.absent or self.rule) and (self.type or self.format or self.values
                                           or self.scale is not None):
            raise ValueError("'type', 'format', 'values' and 'scale' need a 'column'")
        if self.format is not None and self.type != "date":
            raise ValueError("'format' is for 'type: date'")
        if self.scale is not None and (self.scale == 0 or self.scale != self.scale):
            raise ValueError("'scale' must be a non-zero number")
        return self


class TableEntry(_Model):
    """One schema table: its physical name (optional) and its columns."""

    table: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    columns: dict[str, Annotated[str, Field(min_length=1, max_length=128)] | ColumnEntry] = {}


class CovariateEntry(_Model):
    """A disease-specific covariate read from a mapped table."""

    table: Literal["patients", "diagnoses", "treatment_lines"]
    column: Annotated[str, Field(min_length=1, max_length=128)]
    type: Literal["integer", "number", "text", "boolean"] = "text"
    values: dict[_Code, _Code | None] | None = None
    scale: float | None = None
    unmapped: Unmapped | None = None
    description: Annotated[str, Field(max_length=500)] = ""


class MappingFile(_Model):
    """The whole file (format version 2)."""

    version: Literal[2]
    unmapped: Unmapped = "error"
    tables: dict[str, TableEntry] = {}
    covariates: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")],
                     CovariateEntry] = {}


@dataclass(frozen=True, slots=True)
class Covariate:
    """A declared disease-specific covariate (name, table, kind, when, description)."""

    name: str
    table: str
    kind: str
    recode: ColumnRecode
    description: str = ""

    @property
    def measured(self) -> str:
        return COVARIATE_TABLES[self.table]

    def to_dict(self) -> dict:
        return {"name": self.name, "table": self.table, "source_column": self.recode.column,
                "type": self.kind, "measured": self.measured,
                "description": self.description}


@dataclass(frozen=True, eq=False)
class RegistryMapping(collections.abc.Mapping):
    """A validated mapping: logical table -> `TableMapping`, plus covariates and defaults.

    Behaves as a read-only dict of the mapped tables (what `build_metadata` takes).
    """

    tables: Mapping[str, TableMapping] = field(default_factory=dict)
    covariates: Mapping[str, Covariate] = field(default_factory=dict)
    unmapped: str = "error"
    source: str = "mapping"

    def __getitem__(self, key: str) -> TableMapping:
        return self.tables[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    def recode(self, table: str, column: str) -> ColumnRecode | None:
        """The recoding of a logical column (None: read as it is)."""
        tm = self.tables.get(table)
        return None if tm is None else tm.recode.get(column)

    def absent(self) -> dict[tuple[str, str], ColumnRecode]:
        """(table, column) -> recode of every column declared absent."""
        return {(t, c): rc for t, tm in self.tables.items() for c, rc in tm.recode.items()
                if rc.absent}


def load_mapping(source: str | Path | Mapping[str, Any] | None) -> RegistryMapping:
    """Read a mapping (YAML file path, or an already-parsed dict) into a `RegistryMapping`.

    Parameters
    ----------
    source : path to a YAML file, mapping, RegistryMapping or None
        ``None`` (or an empty mapping) means the logical names are the physical ones.
        Values that already are `TableMapping` objects are accepted as they are.

    Raises
    ------
    MappingError
        Unreadable, too large or invalid YAML, wrong structure, unknown tables or columns,
        codes that are not schema codes, malformed rules, two elements mapped to one
        physical name; every problem with the file, the YAML line and the element.
    """
    if source is None:
        return RegistryMapping()
    if isinstance(source, RegistryMapping):
        return source
    doc: YamlDocument | None = None
    if isinstance(source, str | Path):
        try:
            doc = load_yaml(source, what="mapping file")
        except YamlFileError as exc:
            raise MappingError(str(exc)) from None
        raw, where = doc.data, str(source)
        if raw is None:
            return RegistryMapping(source=where)
    else:
        raw, where = source, "mapping"
    if not isinstance(raw, Mapping):
        raise MappingError(f"{where}: expected a mapping (version: 2, tables: ...), got "
                           f"{type(raw).__name__}")
    raw, prefix = _as_version2(raw)
    return _Builder(raw, prefix, where, doc).build()


def _as_version2(raw: Mapping) -> tuple[dict, tuple]:
    """Version 1 (logical tables at the top level) as version 2; loc prefix to strip."""
    if "version" in raw:
        return dict(raw), ()
    tables = {}
    for k, v in raw.items():
        tables[k] = ({"table": v.table, "columns": dict(v.columns)}
                     if isinstance(v, TableMapping) else v)
    if any(isinstance(v, TableMapping) and (v.recode or v.extra) for v in raw.values()):
        raise MappingError("mapping: recoded TableMapping objects need a RegistryMapping")
    return {"version": MAPPING_VERSION, "tables": tables}, ("tables",)


class _Builder:
    def __init__(self, raw: dict, prefix: tuple, where: str, doc: YamlDocument | None):
        self.raw, self.prefix, self.where, self.doc = raw, prefix, where, doc
        self.problems: list[str] = []

    def at(self, loc: tuple, msg: str, *, missing: bool = False) -> None:
        loc = tuple(loc)
        if self.prefix and loc[: len(self.prefix)] == self.prefix:
            loc = loc[len(self.prefix):]
        if self.doc is not None:
            self.problems.append(locate(self.doc.path, self.doc.root, loc, msg,
                                        missing=missing))
        else:
            from connectors.yamlfile import dotted_path

            self.problems.append(f"  {dotted_path(loc) or '(top level)'}: {msg}")

    def line(self, loc: tuple) -> str:
        if self.prefix and loc[: len(self.prefix)] == self.prefix:
            loc = loc[len(self.prefix):]
        if self.doc is None:
            return self.where
        n = self.doc.line(loc)
        return f"{self.doc.path.name}:{n}" if n else self.doc.path.name

    def fail(self) -> MappingError:
        return MappingError(f"invalid mapping {self.where}:\n" + "\n".join(self.problems[:20])
                            + (f"\n  ... and {len(self.problems) - 20} more"
                               if len(self.problems) > 20 else ""))

    def build(self) -> RegistryMapping:
        version = self.raw.get("version")
        if version != MAPPING_VERSION:
            self.at(("version",), f"unsupported mapping version {short(version)} "
                                  f"(this synthctl reads version {MAPPING_VERSION})")
            raise self.fail()
        try:
            model = MappingFile.model_validate(self.raw)
        except ValidationError as exc:
            errors = exc.errors()
            # a column is a name or an entry: when the entry fails, drop "not a string"
            entry_locs = {tuple(e["loc"][:-1]) for e in errors if e["type"] != "string_type"}
            errors = [e for e in errors if not (e["type"] == "string_type" and any(
                loc[:len(e["loc"]) - 1] == tuple(e["loc"][:-1]) for loc in entry_locs))]
            for err in errors:
                loc = tuple(err["loc"])
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    msg = f"unknown key {short(loc[-1])}"
                elif err["type"] == "missing":
                    msg = "required key missing"
                # pydantic's union errors name the branch ("str", "ColumnEntry"): drop it
                loc = tuple(p for p in loc if not (isinstance(p, str) and (
                    p in ("str", "ColumnEntry", "constrained-str") or "[" in p)))
                self.at(loc, msg, missing=err["type"] == "missing")
            raise self.fail() from None
        tables = {name: self.table(name, entry, model.unmapped)
                  for name, entry in model.tables.items()}
        if self.problems:
            raise self.fail()
        covariates = self.covariates(model, tables)
        self.check_rules(tables)
        self.check_duplicates(tables)
        if self.problems:
            raise self.fail()
        return RegistryMapping(tables, covariates, model.unmapped, self.where)

    def table(self, logical: str, entry: TableEntry, unmapped: str) -> TableMapping:
        loc = ("tables", logical)
        if logical not in LOGICAL_SCHEMA:
            self.at(loc, f"unknown table {short(logical)} (known: {', '.join(LOGICAL_SCHEMA)})")
            return TableMapping(logical, {})
        specs = {s.name: s for s in LOGICAL_SCHEMA[logical]}
        flags = DERIVED_FLAGS.get(logical, {})
        columns: dict[str, str] = {}
        recode: dict[str, ColumnRecode] = {}
        for name, value in entry.columns.items():
            cloc = (*loc, "columns", name)
            if name not in specs and name not in flags:
                known = ", ".join([*specs, *flags])
                self.at(cloc, f"unknown column {short(name)} of {logical} (known: {known})")
                continue
            if isinstance(value, str):
                if name in flags:
                    self.at(cloc, f"{name} is a derived flag: give it as {{rule: ...}}")
                    continue
                columns[name] = value
                continue
            if name in flags and value.rule is None:
                self.at(cloc, f"{name} is a derived flag: give it as {{rule: ...}}")
                continue
            if name in specs and specs[name].primary_key and (value.absent or value.rule):
                self.at(cloc, f"{name} is the table's key: it cannot be absent or a rule")
                continue
            target = specs[name].type_ if name in specs else sa.Boolean()
            if value.rule is not None and kind_of(target) != "boolean":
                self.at(cloc, f"a rule gives a yes/no flag; {name} is not boolean")
                continue
            codes = COLUMN_CODES.get((logical, name))
            spec = specs.get(name)
            is_key = spec is not None and (spec.primary_key or spec.foreign_key is not None)
            rc = self.recode(cloc, value, target, codes, unmapped, is_key)
            if rc is None:
                continue
            if rc.column is not None:
                columns[name] = rc.column
            if rc != ColumnRecode(column=rc.column, unmapped=rc.unmapped, where=rc.where):
                recode[name] = rc
        return TableMapping(entry.table or logical, columns, recode)

    def recode(self, loc: tuple, e: ColumnEntry | CovariateEntry, target: sa.types.TypeEngine,
               codes: tuple | None, unmapped: str, is_key: bool = False
               ) -> ColumnRecode | None:
        kind = kind_of(target)
        pairs: list[tuple[str, Any]] = []
        ok = True
        for src, dst in (e.values or {}).items():
            if isinstance(src, bool):
                self.at((*loc, "values"), "a source code read as a YAML boolean (yes/no/on/off/"
                        "true/false): write it in quotes, e.g. 'yes'")
                ok = False
                continue
            dst = _coerce_code(dst, kind)
            if dst is _BAD or (codes is not None and dst is not None and dst not in codes):
                allowed = f" (schema codes: {', '.join(map(str, codes))})" if codes else ""
                self.at((*loc, "values", src), f"{short(e.values[src])} is not a {kind} "
                        f"schema code{allowed}")
                ok = False
                continue
            key = _normalise(src)
            if any(k == key for k, _ in pairs):
                self.at((*loc, "values", src), f"source code {short(src)} is listed twice "
                        "(codes are compared trimmed and in lower case)")
                ok = False
            pairs.append((key, dst))
        declared = getattr(e, "type", None)
        if declared == "text" and is_key:
            kind = "text"  # record keys of any type
        if declared is not None and not e.values and declared != kind and not (
                declared in ("integer", "number") and kind in ("integer", "number")) and not (
                declared == "text" and kind == "text"):
            self.at((*loc, "type"), f"type {declared} does not fit the schema's {kind} column")
            ok = False
        if e.scale is not None and kind not in ("number", "integer"):
            self.at((*loc, "scale"), f"'scale' needs a number column, this one is {kind}")
            ok = False
        fmt = getattr(e, "format", None)
        if fmt is not None:
            problem = check_format(fmt, short)
            if problem:
                self.at((*loc, "format"), problem)
                ok = False
        if not ok:
            return None
        if declared == "boolean" and not pairs:
            pairs = list(BOOLEAN_CODES)
        return ColumnRecode(
            column=e.column, absent=getattr(e, "absent", False), rule=getattr(e, "rule", None),
            type=declared, format=fmt,
            values=tuple(pairs) if (e.values is not None or declared == "boolean") else None,
            scale=e.scale,
            unmapped=e.unmapped or unmapped, where=self.line(loc))

    def covariates(self, model: MappingFile, tables: dict[str, TableMapping]
                   ) -> dict[str, Covariate]:
        from connectors import columns as cn

        out: dict[str, Covariate] = {}
        builtin = {*cn.COVARIATE_COLUMNS, cn.PATIENT_ID, cn.LINE_ID, cn.CENTRE_ID,
                   cn.INDEX_DATE, cn.DISEASE, cn.ARM, *cn.OUTCOME_COLUMNS}
        for name, entry in model.covariates.items():
            loc = ("covariates", name)
            if name in builtin:
                self.at(loc, f"{name} is a built-in column; choose another name")
                continue
            target = _COVARIATE_TYPES[entry.type]
            rc = self.recode(loc, entry, target, None, model.unmapped)
            if rc is None:
                continue
            tm = tables.get(entry.table) or TableMapping(entry.table, {})
            tables[entry.table] = TableMapping(tm.table, tm.columns, tm.recode,
                                               {**tm.extra, name: (rc, target)})
            out[name] = Covariate(name, entry.table, entry.type, rc, entry.description)
        return out

    def check_rules(self, tables: dict[str, TableMapping]) -> None:
        from connectors.eligibility import parse_criterion
        from connectors.errors import CriterionError

        for logical, tm in tables.items():
            kinds = rule_kinds(logical)
            for name, rc in tm.recode.items():
                if rc.rule is None:
                    continue
                try:
                    parse_criterion(rc.rule, kinds)
                except CriterionError as exc:
                    self.at(("tables", logical, "columns", name, "rule"), str(exc))

    def check_duplicates(self, tables: Mapping[str, TableMapping]) -> None:
        seen_tables: dict[str, str] = {}
        for logical in LOGICAL_SCHEMA:
            tm = tables.get(logical)
            physical = tm.table if tm else logical
            key = physical.lower()
            if key in seen_tables:
                self.at(("tables", logical), f"tables {seen_tables[key]!r} and {logical!r} "
                        f"both map to {short(physical)}")
            seen_tables[key] = logical
            if tm is None:
                continue
            seen_cols: dict[str, str] = {}
            for spec in LOGICAL_SCHEMA[logical]:
                rc = tm.recode.get(spec.name)
                if rc is not None and rc.column is None:
                    continue
                phys = tm.columns.get(spec.name, spec.name).lower()
                if phys in seen_cols:
                    self.at(("tables", logical, "columns", spec.name),
                            f"columns {seen_cols[phys]!r} and {spec.name!r} both map to "
                            f"{short(tm.columns.get(spec.name, spec.name))}")
                seen_cols[phys] = spec.name


#: The eligibility parser's kind of each mapping type.
PARSER_KIND = {"integer": "number", "number": "number", "text": "str", "boolean": "bool",
               "date": "any"}


def rule_kinds(logical: str) -> dict[str, str]:
    """Columns a rule on ``logical`` may read, with their eligibility-parser kinds."""
    return {s.name: PARSER_KIND[kind_of(s.type_)] for s in LOGICAL_SCHEMA[logical]}


def criterion_kinds(mapping: RegistryMapping | None) -> dict[str, str]:
    """Columns an eligibility criterion on a registry may read: the frame's and the
    mapping's covariates, with their kinds."""
    from connectors.eligibility import FRAME_COLUMN_KINDS

    covariates = mapping.covariates if mapping is not None else {}
    return {**FRAME_COLUMN_KINDS, **{n: PARSER_KIND[c.kind] for n, c in covariates.items()}}


_BAD = object()


def _normalise(code: Any) -> str:
    """A source code as it is compared: text, trimmed, lower case."""
    if isinstance(code, float) and code.is_integer():
        code = int(code)
    return str(code).strip().lower()


def _coerce_code(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "text":
        return value if isinstance(value, str) else _BAD
    if kind == "boolean":
        return value if isinstance(value, bool) else _BAD
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _BAD
    if kind == "integer":
        return int(value) if float(value).is_integer() else _BAD
    return float(value)
