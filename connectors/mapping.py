"""Schema mapping files: a registry with other table/column names, without code changes.

A mapping file is YAML, one entry per logical table that is renamed; tables and columns
left out keep their logical names (``connectors.schema.LOGICAL_SCHEMA``)::

    patients:
      table: pat_registry          # physical table name
      columns:                     # logical -> physical, only the renamed ones
        patient_id: pid
        birth_date: dob
    treatment_lines:
      table: lignes
      columns: {line_number: num_ligne, regimen: protocole}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from connectors.errors import MappingError
from connectors.schema import LOGICAL_SCHEMA, TableMapping

_TABLE_KEYS = {"table", "columns"}


def load_mapping(
    source: str | Path | Mapping[str, Any] | None,
) -> dict[str, TableMapping]:
    """Read a mapping (YAML file path, or an already-parsed dict) into `TableMapping`s.

    Parameters
    ----------
    source : path to a YAML file, mapping, or None
        ``None`` (or an empty mapping) means the logical names are the physical ones.
        Values that already are `TableMapping` objects are accepted as they are.

    Returns
    -------
    dict of logical table name -> TableMapping
        Only for the tables the source names.

    Raises
    ------
    MappingError
        Unreadable file, invalid YAML, wrong structure, unknown logical tables or columns,
        or two logical elements mapped to the same physical name; the message names the
        file and every offending element.
    """
    if source is None:
        return {}
    if isinstance(source, str | Path):
        where = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(f"mapping file {where}: cannot be read ({exc.strerror})") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark is not None else ""
            raise MappingError(f"mapping file {where}: invalid YAML{line}") from None
        if raw is None:
            return {}
    else:
        where = "mapping"
        raw = source
    if not isinstance(raw, Mapping):
        raise MappingError(
            f"{where}: expected a mapping of logical table -> {{table, columns}}, "
            f"got {type(raw).__name__}"
        )
    problems: list[str] = []
    result: dict[str, TableMapping] = {}
    for logical, entry in raw.items():
        if logical not in LOGICAL_SCHEMA:
            problems.append(
                f"unknown table {logical!r} (known: {', '.join(LOGICAL_SCHEMA)})"
            )
            continue
        parsed = _parse_entry(logical, entry, problems)
        if parsed is not None:
            result[logical] = parsed
    _check_duplicates(result, problems)
    if problems:
        raise MappingError(f"{where}: " + "; ".join(problems))
    return result


def _parse_entry(logical: str, entry: Any, problems: list[str]) -> TableMapping | None:
    if isinstance(entry, TableMapping):
        entry = {"table": entry.table, "columns": dict(entry.columns)}
    if not isinstance(entry, Mapping):
        problems.append(f"{logical}: expected {{table: ..., columns: {{...}}}}")
        return None
    extra = set(entry) - _TABLE_KEYS
    if extra:
        problems.append(
            f"{logical}: unknown keys {sorted(map(str, extra))} (allowed: table, columns)"
        )
    physical = entry.get("table", logical)
    if not isinstance(physical, str) or not physical.strip():
        problems.append(f"{logical}.table: expected a non-empty table name, got {physical!r}")
        physical = logical
    cols = entry.get("columns") or {}
    if not isinstance(cols, Mapping):
        problems.append(f"{logical}.columns: expected a mapping logical -> physical column")
        cols = {}
    known = [spec.name for spec in LOGICAL_SCHEMA[logical]]
    columns: dict[str, str] = {}
    for col, phys in cols.items():
        if col not in known:
            problems.append(
                f"{logical}: unknown column {col!r} (known: {', '.join(known)})"
            )
        elif not isinstance(phys, str) or not phys.strip():
            problems.append(f"{logical}.columns.{col}: expected a column name, got {phys!r}")
        else:
            columns[col] = phys
    return TableMapping(table=physical, columns=columns)


def _check_duplicates(result: Mapping[str, TableMapping], problems: list[str]) -> None:
    seen_tables: dict[str, str] = {}
    for logical in LOGICAL_SCHEMA:
        tm = result.get(logical)
        physical = tm.table if tm else logical
        key = physical.lower()
        if key in seen_tables:
            problems.append(
                f"tables {seen_tables[key]!r} and {logical!r} both map to {physical!r}"
            )
        seen_tables[key] = logical
        if tm is None:
            continue
        seen_cols: dict[str, str] = {}
        for spec in LOGICAL_SCHEMA[logical]:
            phys = tm.columns.get(spec.name, spec.name).lower()
            if phys in seen_cols:
                problems.append(
                    f"{logical}: columns {seen_cols[phys]!r} and {spec.name!r} both map to "
                    f"{tm.columns.get(spec.name, spec.name)!r}"
                )
            seen_cols[phys] = spec.name
