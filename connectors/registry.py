"""The registry connector: read-only access, schema check, candidate pool, endpoints.

The database does the work (SQLAlchemy Core, window functions, aggregates): only the eligible
pool, one row per patient (or patient x line), comes back, streamed in chunks. The derivation
rules are in `connectors.derivation` and ``docs/data_dictionary.md``.

Examples
--------
>>> from connectors.registry import RegistryConnector, IndexRule      # doctest: +SKIP
>>> with RegistryConnector("sqlite:///renape_sample.sqlite") as conn:
...     pool = conn.candidate_pool(IndexRule(), eligibility=["ecog_at_index <= 1"])
...     outcomes = conn.outcomes(pool.frame[["patient_id", "line_id", "index_date"]])
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from connectors import columns as cn
from connectors.attrition import Attrition, AttritionBuilder
from connectors.biomarker import (
    LAB_COLUMNS,
    NormalisationRule,
    derive_normalisation,
    lab_select,
)
from connectors.derivation import (
    DESIGN_TABLES,
    IO_FLAG,
    OUTCOME_TABLES,
    RAW_OUTCOME_COLUMNS,
    IndexRule,
    derive_endpoints,
    design_select,
    outcome_select,
    progression_interval_select,
    read_columns,
    unavailable_features,
)
from connectors.eligibility import FRAME_COLUMN_KINDS, Criterion, parse_criteria
from connectors.errors import (
    ConnectorError,
    CriterionError,
    MappingError,
    RegistrySchemaError,
    RegistryUnavailableError,
)
from connectors.frame import FRAME_COLUMNS, as_key, finish_frame
from connectors.introspect import columns, relations
from connectors.mapping import RegistryMapping, criterion_kinds, load_mapping, rule_kinds
from connectors.privileges import RoleCheck, check_role
from connectors.readonly import in_one_parameter, open_readonly_engine
from connectors.recode import CodeProblem, code_problems, logical_views
from connectors.response import (
    ASSESSMENT_COLUMNS,
    ResponseRule,
    assessments_select,
    derive_response,
)
from connectors.schema import REQUIRED_TABLES, TableMapping, build_metadata
from connectors.timeouts import Timeouts, watched
from connectors.urls import mask_url

__all__ = [
    "DESIGN_TABLES",
    "FRAME_COLUMNS",
    "OUTCOME_TABLES",
    "CandidatePool",
    "IndexRule",
    "RegistryConnector",
    "Timeouts",
]

READ_COLUMNS = read_columns()  # what the derivations read: all a registry must have
CHUNK_ROWS = 20_000  # rows per fetched chunk: memory follows the pool, not the registry
# line ids per IN (...) list in `outcomes`: each list costs one pass over the assessments, so
# as long as the drivers allow (PostgreSQL/MariaDB 65,535 parameters; SQLite its own limit)
KEY_CHUNK = 50_000

@dataclass(frozen=True, slots=True)
class CandidatePool:
    """The eligible registry patients at their index line.

    Attributes
    ----------
    frame : pandas.DataFrame
        Analysis frame, ``arm="control"``, one row per patient (per patient x line with
        ``selection="all"``), sorted by patient_id and line_id; outcome columns only when
        extracted with ``include_outcomes=True``.
    attrition : Attrition
        Counts from the whole registry down to ``frame``.
    index_rule : IndexRule
    criteria : tuple of str
        Eligibility criteria, in the order applied.
    registry : str
        Database URL without password (for the manifest).
    recoding : tuple of CodeProblem
        Source values read as missing (``unmapped: missing``): column, codes, row counts.
    """

    frame: pd.DataFrame
    attrition: Attrition
    index_rule: IndexRule
    criteria: tuple[str, ...]
    registry: str
    recoding: tuple[CodeProblem, ...] = ()

    def content_hash(self) -> str:
        """SHA-256 of the extracted rows (canonical CSV), for the manifest.

        The CSV is ``frame.to_csv(index=False, date_format="%Y-%m-%d", float_format="%.10g")``;
        float and date columns are turned into that text first, a float formatted once per
        distinct value and the dates by numpy (pandas formats each cell in Python), which
        gives the same bytes in a fraction of the time on a 320,000-row pool.
        """
        text = _csv_ready(self.frame).to_csv(index=False, date_format="%Y-%m-%d",
                                             float_format=_HASH_FLOAT)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return (f"CandidatePool(n={len(self.frame)}, selection={self.index_rule.selection!r}, "
                f"criteria={len(self.criteria)}, registry={self.registry!r})")


class RegistryConnector:
    """Read-only connection to a RENAPE-like registry.

    Parameters
    ----------
    url : str or sqlalchemy.URL
        ``sqlite:///path.sqlite``, ``postgresql+psycopg://user@host/db``,
        ``mysql+pymysql://user@host/db`` (MariaDB), ``duckdb:///registry.duckdb``, or a
        folder of export files ``parquet:///path/to/folder`` / ``csv:///path/to/folder``
        (`connectors.exports`).
    mapping : path to a YAML mapping file, or mapping, optional
        How the registry differs from the schema (`connectors.mapping`): names, codes,
        types, units, absent columns, derived flags, disease-specific covariates.
    schema : str, optional
        PostgreSQL schema / MariaDB database holding the tables.
    timeouts : Timeouts, optional
        Connect and statement timeouts (`connectors.timeouts`); default ``Timeouts()``.

    Attributes
    ----------
    url : str
        The URL with every password masked (`connectors.urls.mask_url`), for messages and
        the manifest.
    role_check : RoleCheck
        Whether the database role could write (checked at connect; a `RegistryWritableWarning`
        is issued when it could). Its ``to_dict()`` is for the manifest.

    Raises
    ------
    RegistryUnavailableError
        Missing driver, unreachable database, missing SQLite file (URL shown without password);
        `RegistryTimeoutError` when the database does not answer in time.
    MappingError
        Malformed mapping.

    Notes
    -----
    The connector exposes no engine: queries of other modules go through `connection`, whose
    statements pass the read-only guard of `connectors.readonly` (no data-modifying statement,
    no session setting).
    """

    def __init__(
        self,
        url: str | sa.URL,
        mapping: str | Path | RegistryMapping | Mapping[str, TableMapping | Mapping] | None = None,
        schema: str | None = None,
        timeouts: Timeouts | None = None,
    ):
        self.url = mask_url(url)
        self.schema = schema
        self.timeouts = timeouts or Timeouts()
        self.mapping = load_mapping(mapping)
        _, self._physical = build_metadata(self.mapping, schema=schema, with_constraints=False)
        self._tables = logical_views(self._physical, self.mapping)
        self._engine = open_readonly_engine(url, self.timeouts)
        self._checked: set[str] = set()
        self._recoding: list[CodeProblem] = []
        self._missing: dict[str, set[str]] = {}  # unread columns the registry lacks
        with self._connect() as con:  # fail now, with a clear message, if unreachable
            self.role_check: RoleCheck = check_role(con, schema, self.url)

    # -- plumbing -------------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        """The database's SQLAlchemy dialect name (sqlite, postgresql, mysql, mariadb, duckdb)."""
        return self._engine.dialect.name

    def connection(self) -> sa.Connection:
        """A new read-only connection (use as a context manager).

        Every statement passes the read-only guard (`connectors.readonly.check_statement`);
        every database error is raised as a connector error, password masked.
        """
        return self._connect()

    def _connect(self) -> sa.Connection:
        try:
            return self._engine.connect()
        except RegistryUnavailableError as exc:  # translated by the engine; drop the DBAPI
            raise type(exc)(str(exc)) from None  # error (its text may quote the DSN)
        except SQLAlchemyError as exc:  # not a database error (those are translated)
            raise RegistryUnavailableError(
                f"registry {self.url}: cannot connect ({type(exc).__name__})"
            ) from None

    def close(self) -> None:
        """Release the connections."""
        self._engine.dispose()

    def __enter__(self) -> RegistryConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegistryConnector({self.url!r}, schema={self.schema!r})"

    def _where(self) -> str:
        return f"registry {self.url}" + (f" (schema {self.schema})" if self.schema else "")

    # -- schema ---------------------------------------------------------------------------

    def check_schema(self, tables: Iterable[str] | None = None) -> None:
        """Check that the (mapped) tables and columns exist.

        Parameters
        ----------
        tables : iterable of logical table names, optional
            Default: every required table of the schema (``REQUIRED_TABLES``; an optional
            table is checked when an endpoint that reads it asks).

        Raises
        ------
        RegistrySchemaError
            Listing every missing table and column, physical and logical names.
        """
        wanted = list(REQUIRED_TABLES) if tables is None else list(tables)
        todo = [t for t in wanted if t not in self._checked]
        if not todo:
            return
        problems: list[str] = []
        with self._connect() as con:
            present: dict[str | None, set[str]] = {}
            for logical in todo:
                table = self._physical[logical]
                if table.schema not in present:
                    present[table.schema] = relations(con, table.schema)
                names = present[table.schema]
                shown = f"{table.schema}.{table.name}" if table.schema else table.name
                label = shown if table.name == logical else f"{shown} ({logical})"
                if table.name not in names:
                    hint = [p for p in names if p.lower() == table.name.lower()]
                    extra = f"; found {hint[0]!r}: names are case-sensitive" if hint else ""
                    problems.append(f"missing table or view {label}{extra}")
                    continue
                found = {name for name, _ in columns(con, table.name, table.schema)}
                needed = self._needed(logical)
                for column in table.columns:
                    if column.name in found:
                        continue
                    if column.key not in needed:  # nobody reads it: read as NULL
                        self._missing.setdefault(logical, set()).add(column.key)
                        continue
                    name = (column.name if column.name == column.key
                            else f"{column.name} ({column.key})")
                    problems.append(f"missing column {shown}.{name}")
            if problems:
                raise RegistrySchemaError(
                    f"{self._where()} does not match the schema: " + "; ".join(problems)
                    + " (a registry with other names needs a mapping file; a column the "
                    "registry does not have is declared {absent: true})"
                )
            found_codes = self._check_codes(con, tuple(todo))
        self._recoding += found_codes
        self._checked.update(todo)
        if self._missing:
            self._tables = logical_views(self._physical, self.mapping, self._missing)

    def _needed(self, logical: str) -> set[str]:
        """Columns of a table the registry must have: what the derivations read, what the
        mapping names explicitly, and what its rules and covariates read."""
        needed = set(READ_COLUMNS.get(logical, ()))
        tm = self.mapping.get(logical)
        if tm is None:
            return needed
        needed |= set(tm.columns) | set(tm.extra)
        for flag, rc in tm.recode.items():
            if rc.rule is not None:
                needed |= set(parse_criteria([rc.rule], rule_kinds(logical))[0].columns)
                if flag == IO_FLAG:
                    needed.discard("drug_classes")  # the rule replaces the drug classes
        return needed

    def _check_codes(self, con: sa.Connection, tables: tuple[str, ...]) -> list[CodeProblem]:
        """Source values without a schema code or that do not cast (before any pool query)."""
        try:
            found = code_problems(con, self._physical, self.mapping, tables)
        except SQLAlchemyError as exc:
            raise self._query_failed(exc) from exc
        errors = [p for p in found if p.action == "error"]
        if errors:
            raise MappingError(
                f"mapping {self.mapping.source}: {len(errors)} column(s) of {self._where()} "
                "hold values the mapping cannot translate (add them to 'values', fix the "
                "'type'/'format', or set 'unmapped: missing' to read them as missing):\n"
                + "\n".join("  " + p.message() for p in errors)
            )
        return found

    @property
    def recoding(self) -> tuple[CodeProblem, ...]:
        """Source values read as missing so far (``unmapped: missing``), per column."""
        return tuple(self._recoding)

    def frame_columns(self) -> dict[str, str]:
        """Columns criteria may read: the frame's, plus the mapping's covariates (kinds)."""
        return criterion_kinds(self.mapping)

    # -- the candidate pool ---------------------------------------------------------------

    def candidate_pool(
        self,
        index_rule: IndexRule | None = None,
        eligibility: Sequence[str | Criterion] = (),
        include_outcomes: bool = False,
    ) -> CandidatePool:
        """Eligible registry patients at their index line, with covariates at index.

        Parameters
        ----------
        index_rule : IndexRule, optional
            Default ``IndexRule()``: first line after a platinum-pemetrexed line.
        eligibility : sequence of str or Criterion
            Criteria on the analysis-frame columns (`connectors.eligibility`), applied in
            order inside the database.
        include_outcomes : bool, default=False
            Also derive PFS/OS (reads `OUTCOME_TABLES`). The design stage leaves it False.

        Returns
        -------
        CandidatePool
        """
        rule = index_rule or IndexRule()
        criteria = parse_criteria(list(eligibility), self.frame_columns())
        unavailable = unavailable_features(self.mapping)
        for crit in criteria:
            for col in crit.columns:
                if col in unavailable:
                    raise CriterionError(
                        f"eligibility criterion {crit.text!r}: {col} cannot be derived: "
                        f"{unavailable[col]}")
        self.check_schema(DESIGN_TABLES + (OUTCOME_TABLES if include_outcomes else ()))
        extra = {name: cov.table for name, cov in self.mapping.covariates.items()}
        pool = design_select(self._tables, rule, extra).subquery("pool")
        status, count_exprs = _status_and_counts(pool, criteria)
        # one pass: the counts ride along as window aggregates over *all* candidates, the
        # WHERE (applied after the windows) returns only the eligible rows
        counted = sa.select(
            status, *(e.over().label(f"_count{j}") for j, e in enumerate(count_exprs))
        ).subquery("counted")
        passes = [counted.c[f"_status{i}"] == 1 for i in range(len(criteria))]
        stmt = (
            sa.select(
                *(counted.c[c.name] for c in pool.c),
                *(counted.c[f"_count{j}"] for j in range(len(count_exprs))),
            )
            .where(sa.and_(sa.true(), *passes))
            .order_by(counted.c[cn.PATIENT_ID], counted.c[cn.LINE_ID])
        )
        n_registry = sa.select(sa.func.count()).select_from(self._tables["patients"])
        with self._connect() as con:
            # counts and rows from one snapshot (SQLite and DuckDB: one transaction is one)
            if con.dialect.name not in ("sqlite", "duckdb"):
                con = con.execution_options(isolation_level="REPEATABLE READ")
            try:
                total = int(con.execute(n_registry).scalar_one())
            except SQLAlchemyError as exc:
                raise self._query_failed(exc) from exc
            count_names = [f"_count{j}" for j in range(len(count_exprs))]
            frame, first = self._fetch(con, stmt, carried=count_names,
                                       extra=self.mapping.covariates)
            if first is not None:
                counts = [int(v) for v in first]
            else:  # no eligible row to carry the counts: ask for them
                try:
                    row = con.execute(sa.select(*count_exprs).select_from(status)).one()
                except SQLAlchemyError as exc:
                    raise self._query_failed(exc) from exc
                counts = [int(v or 0) for v in row]
        attrition = _build_attrition(total, counts, rule, criteria)
        if include_outcomes:
            # keyed by line id (IN lists), not joined to the pool query: the database then
            # knows how many index lines it is dealing with and plans hash joins
            ends = self.outcomes(frame[[cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]])
            frame = pd.concat([frame, ends[list(cn.OUTCOME_COLUMNS)]], axis=1)
        if len(frame) != attrition.n_final:
            raise ConnectorError(  # would mean a bug in the SQL, never silently lose rows
                f"{self._where()}: pool has {len(frame)} rows, attrition says "
                f"{attrition.n_final}"
            )
        return CandidatePool(frame, attrition, rule, tuple(c.text for c in criteria), self.url,
                             self.recoding)

    def value_counts(self, column: str, index_rule: IndexRule | None = None) -> pd.Series:
        """How many candidate index lines have each value of ``column`` (aggregates only).

        Counted over every index line the rule selects, before any eligibility criterion;
        used to explain a criterion that leaves no patient. No identifier is read back.

        Returns
        -------
        pandas.Series
            Value -> count, largest first; missing values under a ``None`` key.
        """
        if column not in FRAME_COLUMN_KINDS:
            raise ConnectorError(f"{self._where()}: {column!r} is not an analysis-frame column")
        self.check_schema(DESIGN_TABLES)
        pool = design_select(self._tables, index_rule or IndexRule()).subquery("pool")
        col = pool.c[column]
        stmt = sa.select(col, sa.func.count().label("n")).group_by(col)
        try:
            with self._connect() as con:
                rows = con.execute(stmt).all()
        except SQLAlchemyError as exc:
            raise self._query_failed(exc) from exc
        counts = pd.Series({r[0]: int(r[1]) for r in rows}, dtype="int64", name=column)
        return counts.sort_values(ascending=False, kind="stable")

    # -- endpoints ------------------------------------------------------------------------

    def outcomes(self, keys: pd.DataFrame) -> pd.DataFrame:
        """PFS and OS of index lines (reads `OUTCOME_TABLES` and the index lines).

        Parameters
        ----------
        keys : pandas.DataFrame
            Columns patient_id, line_id, index_date (as in ``pool.frame``).

        Returns
        -------
        pandas.DataFrame
            patient_id, line_id, pfs_days, pfs_event, os_days, os_event; one row per key, in
            the order of ``keys``. Times in days from the index date.

        Raises
        ------
        ConnectorError
            A key whose line is not in the registry, or whose patient or index date differ.
        """
        needed = [cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]
        missing = [c for c in needed if c not in keys.columns]
        if missing:
            raise ConnectorError(f"outcomes: keys lack columns {missing}")
        self.check_schema(("patients", "treatment_lines", *OUTCOME_TABLES))
        if keys[cn.LINE_ID].isna().any():
            raise ConnectorError("outcomes: keys have missing line_id")
        line_ids = as_key(keys[cn.LINE_ID])
        key_type = int if isinstance(line_ids, pd.arrays.IntegerArray) else str
        unique_ids = sorted({key_type(v) for v in line_ids})
        rows: list = []
        names = [cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE, *RAW_OUTCOME_COLUMNS]
        with self._connect() as con:
            for stmt, params in self._line_statements(con, outcome_select, unique_ids):
                try:
                    res = con.execute(stmt, params)
                    names = list(res.keys())
                    rows.extend(res.fetchall())
                except SQLAlchemyError as exc:
                    raise self._query_failed(exc) from exc
        raw = pd.DataFrame.from_records(rows, columns=names)
        raw[cn.LINE_ID] = [key_type(v) for v in raw[cn.LINE_ID]]
        raw = raw.set_index(cn.LINE_ID)
        order = [key_type(v) for v in line_ids]
        unknown = sorted(set(order) - set(raw.index))
        if unknown:
            raise ConnectorError(f"outcomes: line_id {unknown[:5]} not in {self._where()}")
        raw = raw.loc[order]
        same_patient = raw[cn.PATIENT_ID].astype(str).to_numpy() == keys[cn.PATIENT_ID].astype(
            str).to_numpy()
        same_date = (pd.to_datetime(raw["index_date"]).to_numpy()
                     == pd.to_datetime(keys[cn.INDEX_DATE]).to_numpy())
        bad = ~(same_patient & same_date)
        if bad.any():
            i = int(bad.argmax())
            raise ConnectorError(
                f"outcomes: key row {i + 1} (line_id {order[i]}) does not match the registry's "
                "index line (patient or index date differ)"
            )
        ends = derive_endpoints(raw.reset_index(drop=True))
        out = pd.DataFrame({cn.PATIENT_ID: keys[cn.PATIENT_ID].astype(str).to_numpy(),
                            cn.LINE_ID: as_key(pd.Series(order, dtype=object))})
        return pd.concat([out, ends], axis=1).set_axis(keys.index)

    def responses(self, keys: pd.DataFrame, rule: ResponseRule | None = None) -> pd.DataFrame:
        """Objective response of index lines (reads ``tumour_assessments``; issue 15).

        ``keys`` as for `outcomes`. Returns patient_id, line_id and `RESPONSE_OUTPUT`
        (`connectors.response.derive_response`), one row per key in the order of ``keys``;
        ``attrs`` counts the assessments ignored for a missing date or code.
        """
        missing = [c for c in (cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE) if c not in keys]
        if missing:
            raise ConnectorError(f"responses: keys lack columns {missing}")
        self.check_schema(("treatment_lines", "tumour_assessments"))
        line_ids = pd.array(keys[cn.LINE_ID], dtype="Int64")
        if line_ids.isna().any():
            raise ConnectorError("responses: keys have missing line_id")
        rows = self._rows_of_lines(assessments_select, line_ids)
        raw = pd.DataFrame.from_records(rows, columns=list(ASSESSMENT_COLUMNS))
        order = [int(v) for v in line_ids]
        derived = derive_response(raw.astype({"key": "int64"}), order, rule)
        out = pd.DataFrame({cn.PATIENT_ID: keys[cn.PATIENT_ID].astype(str).to_numpy(),
                            cn.LINE_ID: pd.array(order, dtype="Int64")})
        out = pd.concat([out, derived.reset_index(drop=True)], axis=1).set_axis(keys.index)
        out.attrs.update(derived.attrs)
        return out

    def normalisation(self, keys: pd.DataFrame, rule: NormalisationRule) -> pd.DataFrame:
        """Biomarker normalisation of index lines (reads ``lab_results``; issue 15).

        ``keys`` as for `outcomes`. Returns patient_id, line_id and `NORMALISATION_OUTPUT`
        (`connectors.biomarker.derive_normalisation`), one row per key in the order of
        ``keys``; ``attrs`` counts the results ignored and the lines without any result by
        the landmark (``n_unmeasured``), and gives the results' ``unit``.
        """
        missing = [c for c in (cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE) if c not in keys]
        if missing:
            raise ConnectorError(f"normalisation: keys lack columns {missing}")
        self.check_schema(("treatment_lines", "lab_results"))
        line_ids = pd.array(keys[cn.LINE_ID], dtype="Int64")
        if line_ids.isna().any():
            raise ConnectorError("normalisation: keys have missing line_id")
        analyte = rule.analyte.strip().lower()
        rows = self._rows_of_lines(lambda t, idx: lab_select(t, idx, analyte), line_ids)
        raw = pd.DataFrame.from_records(rows, columns=list(LAB_COLUMNS))
        order = [int(v) for v in line_ids]
        try:
            derived = derive_normalisation(raw.astype({"key": "int64"}), order, rule)
        except ConnectorError as exc:
            raise ConnectorError(f"{self._where()}, table lab_results: {exc}") from None
        out = pd.DataFrame({cn.PATIENT_ID: keys[cn.PATIENT_ID].astype(str).to_numpy(),
                            cn.LINE_ID: pd.array(order, dtype="Int64")})
        out = pd.concat([out, derived.reset_index(drop=True)], axis=1).set_axis(keys.index)
        out.attrs.update(derived.attrs)
        return out

    def _rows_of_lines(self, select_for, line_ids) -> list:
        """Rows of ``select_for(tables, keys)`` for the index lines ``line_ids``.

        ``keys`` is a CTE of (patient_id, line_id, index_date) over the lines; the ids are
        bound in chunks the dialect accepts, each chunk fetched whole, then closed (as
        `outcomes`).
        """
        unique_ids = sorted({int(v) for v in line_ids})
        rows: list = []
        with self._connect() as con:
            for stmt, params in self._line_statements(con, select_for, unique_ids):
                try:
                    res = con.execute(stmt, params)
                    rows.extend(res.fetchall())
                except SQLAlchemyError as exc:
                    raise self._query_failed(exc) from exc
        return rows

    def _line_statements(self, con: sa.Connection, select_for, unique_ids: list
                         ) -> list[tuple[sa.Select, dict]]:
        """``(statement, parameters)`` pairs of ``select_for(tables, keys)`` covering the
        index lines ``unique_ids``: one statement with the ids bound as ONE parameter where
        the dialect allows (`connectors.readonly.in_one_parameter`: a single pass over the
        outcome tables for a 320,000-line pool), else one per IN-list chunk the dialect
        accepts. ``keys`` is a CTE of (patient_id, line_id, index_date) over the lines.
        """
        lines = self._tables["treatment_lines"]

        def keys(where: sa.ColumnElement) -> sa.CTE:
            return (
                sa.select(lines.c.patient_id.label("patient_id"),
                          lines.c.line_id.label("line_id"),
                          lines.c.start_date.label("index_date"))
                .where(where)
                .cte("keys")
            )

        size = _key_chunk(con)
        if len(unique_ids) > size:
            one = in_one_parameter(con.dialect.name, lines.c.line_id, unique_ids,
                                   name="line_ids")
            if one is not None:
                return [(select_for(self._tables, keys(one)), {})]
        stmt = select_for(self._tables, keys(lines.c.line_id.in_(
            sa.bindparam("line_ids", expanding=True))))
        return [(stmt, {"line_ids": unique_ids[start:start + size]})
                for start in range(0, len(unique_ids), size)]

    def progression_intervals(self, keys: pd.DataFrame) -> pd.DataFrame:
        """The PFS progression interval and assessment schedule of index lines (alignment).

        ``keys`` as for `outcomes`; returns patient_id, line_id and
        `connectors.columns.ALIGNMENT_COLUMNS` (`derivation.progression_interval_select`),
        one row per key in its order.
        """
        self.check_schema(("treatment_lines", *OUTCOME_TABLES))
        line_ids = pd.array(keys[cn.LINE_ID], dtype="Int64")
        if line_ids.isna().any():
            raise ConnectorError("progression_intervals: keys have missing line_id")
        rows = self._rows_of_lines(progression_interval_select, line_ids)
        raw = pd.DataFrame.from_records(rows, columns=[cn.LINE_ID, *cn.ALIGNMENT_COLUMNS])
        raw = raw.astype({cn.LINE_ID: "int64"}).set_index(cn.LINE_ID)
        order = [int(v) for v in line_ids]
        unknown = sorted(set(order) - set(raw.index))
        if unknown:
            raise ConnectorError(f"progression_intervals: line_id {unknown[:5]} not in "
                                 f"{self._where()}")
        raw = raw.loc[order].reset_index(drop=True)
        out = pd.DataFrame({
            cn.PATIENT_ID: keys[cn.PATIENT_ID].astype(str).to_numpy(),
            cn.LINE_ID: pd.array(order, dtype="Int64"),
            cn.PFS_LAST_PF_DAYS: pd.to_numeric(raw[cn.PFS_LAST_PF_DAYS]).astype(float),
            cn.PFS_DEATH: pd.to_numeric(raw[cn.PFS_DEATH]).astype(bool),
            cn.PFS_N_ASSESSMENTS: pd.to_numeric(raw[cn.PFS_N_ASSESSMENTS]).astype("int64"),
            cn.PFS_MEAN_GAP_DAYS: pd.to_numeric(raw[cn.PFS_MEAN_GAP_DAYS]).astype(float),
        })
        return out.set_axis(keys.index)

    # -- fetching -------------------------------------------------------------------------

    def _query_failed(self, exc: SQLAlchemyError) -> ConnectorError:
        first = str(exc).splitlines()[0] if str(exc) else ""
        return ConnectorError(
            f"{self._where()}: extraction query failed: {type(exc).__name__}: {first}"
        )

    def _fetch(
        self, con: sa.Connection, stmt: sa.Select, *, carried: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[pd.DataFrame, list | None]:
        """Stream the pool in chunks, typed chunk by chunk: memory follows the rows returned.

        ``carried`` columns (the attrition counts, identical on every row) are dropped from
        each chunk; their values on the first row are returned (None when no row).
        """
        parts: list[pd.DataFrame] = []
        first: list | None = None
        try:
            result = con.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(
                stmt
            )
            names = list(result.keys())
            try:
                for chunk in watched(con, result.partitions()):
                    raw = pd.DataFrame.from_records(chunk, columns=names)
                    if first is None and len(raw):
                        first = raw.loc[0, list(carried)].tolist()
                    parts.append(finish_frame(raw.drop(columns=list(carried)), extra))
            finally:  # also after a fault: no server-side cursor left open
                with contextlib.suppress(Exception):
                    result.close()
        except SQLAlchemyError as exc:
            raise self._query_failed(exc) from exc
        if not parts:
            empty = pd.DataFrame(columns=[n for n in names if n not in carried])
            return finish_frame(empty, extra), None
        return pd.concat(parts, ignore_index=True), first


_HASH_FLOAT = "%.10g"  # the pool hash's float text


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its float64 and datetime64 columns as the text ``to_csv`` writes for them
    with ``float_format="%.10g"`` and ``date_format="%Y-%m-%d"`` (missing: empty text)."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        values = col.to_numpy()
        if values.dtype == np.float64:
            # by bit pattern, so that -0.0 and 0.0 (printed "-0", "0") stay apart
            bits, inverse = np.unique(values.view(np.int64), return_inverse=True)
            text = np.array(["" if v != v else _HASH_FLOAT % v
                             for v in bits.view(np.float64).tolist()], dtype=object)
            out[name] = text[inverse.ravel()]
        elif values.dtype.kind == "M":
            days = values.astype("datetime64[D]")
            text = days.astype(str).astype(object)
            text[np.isnat(days)] = ""
            ok = ~np.isnat(days)
            years = days[ok].astype("datetime64[Y]").astype(np.int64) + 1970
            if ((years < 1000) | (years > 9999)).any():  # numpy's text differs: let pandas
                out[name] = col
                continue
            out[name] = text
        else:
            out[name] = col
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


def _key_chunk(con: sa.Connection) -> int:
    if con.dialect.name == "sqlite":
        raw = con.connection.driver_connection
        limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if hasattr(raw, "getlimit") \
            else 999
        return max(1, min(KEY_CHUNK, limit - 10))
    return KEY_CHUNK


def _status_and_counts(pool, criteria: list[Criterion]):
    """The pool with each criterion's status (1 true, 0 false, NULL unknown) and the counts.

    Returns the status subquery and the aggregate expressions of the attrition, in order:
    rows, patients, then per criterion (failing, unknown) among rows passing the previous ones.
    """
    status = []
    for i, crit in enumerate(criteria):
        expr = crit.to_sql(pool.c)
        status.append(sa.case((expr, 1), (sa.not_(expr), 0), else_=None).label(f"_status{i}"))
    first_line = sa.func.row_number().over(
        partition_by=pool.c[cn.PATIENT_ID], order_by=pool.c[cn.LINE_ID]
    )
    st = sa.select(
        pool, *status, sa.case((first_line == 1, 1), else_=0).label("_first_line")
    ).subquery("status")
    counts: list[sa.ColumnElement] = [sa.func.count(), sa.func.sum(st.c._first_line)]
    passed: list[sa.ColumnElement] = []
    for i in range(len(criteria)):
        s = st.c[f"_status{i}"]
        before = sa.and_(sa.true(), *passed)
        counts.append(sa.func.sum(sa.case((sa.and_(before, s == 0), 1), else_=0)))
        counts.append(sa.func.sum(sa.case((sa.and_(before, s.is_(None)), 1), else_=0)))
        passed.append(s == 1)
    return st, counts


def _build_attrition(
    total: int, counts: list[int], rule: IndexRule, criteria: list[Criterion]
) -> Attrition:
    n_rows, n_patients = counts[0], counts[1]
    builder = AttritionBuilder("registry patients", total)
    builder.add_population(
        f"with an index line after {rule.after_regimen}",
        n_patients,
        f"no line starting after a {rule.after_regimen} line",
    )
    if rule.selection == "all":
        builder.recount("candidate index lines (all kept)", n_rows,
                        "from here on, counts are patient-lines", unit="patient-lines")
    for i, crit in enumerate(criteria):
        builder.add_criterion(crit, counts[2 + 2 * i], counts[3 + 2 * i])
    return builder.build()
