"""The RENAPE-like registry schema as SQLAlchemy Core metadata.

One row per fact. Tables and columns are declared once under their *logical* names
(`LOGICAL_SCHEMA`); `build_metadata` turns them into `Table` objects whose physical names
come from an optional mapping (a registry with other table/column names), while code always
refers to the logical names: ``tables["patients"].c.birth_date`` (SQLAlchemy's column ``key``).

Codes and units are documented in ``docs/data_dictionary.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connectors.codes import (  # noqa: F401  (re-exported: schema.X_CODES is public)
    ANALYTE_CODES,
    BAP1_CODES,
    CC_SCORES,
    CRITERIA_CODES,
    DISEASE_CODES,
    DRUG_CLASS_CODES,
    ECOG_CODES,
    END_REASON_CODES,
    HISTOLOGY_CODES,
    RESPONSE_CODES,
    SEX_CODES,
    VITAL_STATUS_CODES,
)


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """A logical column: name, SQLAlchemy type, nullability and key role."""

    name: str
    type_: sa.types.TypeEngine
    nullable: bool = True
    primary_key: bool = False
    foreign_key: str | None = None  # "table.column", logical names
    description: str = ""


def _c(name, type_, description="", *, nullable=True, pk=False, fk=None) -> ColumnSpec:
    return ColumnSpec(name, type_, nullable and not pk, pk, fk, description)


LOGICAL_SCHEMA: dict[str, tuple[ColumnSpec, ...]] = {
    "centres": (
        _c("centre_id", sa.String(16), "centre code", pk=True),
        _c("centre_name", sa.String(120), "centre name"),
        _c("region", sa.String(60), "region"),
    ),
    "patients": (
        _c("patient_id", sa.String(32), "pseudonymous patient id", pk=True),
        _c("centre_id", sa.String(16), "treating centre", nullable=False, fk="centres.centre_id"),
        _c("sex", sa.String(1), "F / M"),
        _c("birth_date", sa.Date, "date of birth"),
    ),
    "diagnoses": (
        _c("diagnosis_id", sa.Integer, "diagnosis record id", pk=True),
        _c("patient_id", sa.String(32), "", nullable=False, fk="patients.patient_id"),
        _c("diagnosis_date", sa.Date, "date of histological diagnosis"),
        _c("disease", sa.String(60), "disease code (DISEASE_CODES)"),
        _c("histology", sa.String(20), "histology subtype (HISTOLOGY_CODES)"),
        _c("pci", sa.Integer, "Peritoneal Cancer Index, 0-39"),
        _c("ki67_percent", sa.Float, "Ki-67 labelling index, percent 0-100"),
        _c("bap1_status", sa.String(10), "BAP1 immunohistochemistry: lost / retained"),
    ),
    "surgeries": (
        _c("surgery_id", sa.Integer, "surgery record id", pk=True),
        _c("patient_id", sa.String(32), "", nullable=False, fk="patients.patient_id"),
        _c("surgery_date", sa.Date, "date of surgery"),
        _c("crs", sa.Boolean, "cytoreductive surgery performed"),
        _c("hipec", sa.Boolean, "hyperthermic intraperitoneal chemotherapy given"),
        _c("cc_score", sa.Integer, "completeness of cytoreduction, 0-3 (CC-0..CC-3)"),
    ),
    "treatment_lines": (
        _c("line_id", sa.Integer, "treatment line record id", pk=True),
        _c("patient_id", sa.String(32), "", nullable=False, fk="patients.patient_id"),
        _c("line_number", sa.Integer, "line of systemic therapy, 1, 2, ..."),
        _c("regimen", sa.String(60), "regimen code, e.g. platinum_pemetrexed"),
        _c("drug_classes", sa.String(200), "';'-separated DRUG_CLASS_CODES"),
        _c("start_date", sa.Date, "first administration"),
        _c("end_date", sa.Date, "last administration (null: ongoing)"),
        _c("end_reason", sa.String(20), "END_REASON_CODES"),
        _c("ecog_at_start", sa.Integer, "ECOG performance status at line start, 0-5"),
    ),
    "tumour_assessments": (
        _c("assessment_id", sa.Integer, "assessment record id", pk=True),
        _c("patient_id", sa.String(32), "", nullable=False, fk="patients.patient_id"),
        _c("assessment_date", sa.Date, "date of imaging / clinical assessment"),
        _c("criteria", sa.String(10), "RECIST1.1 / mRECIST"),
        _c("overall_response", sa.String(2), "CR / PR / SD / PD / NE"),
        _c("clinical_progression", sa.Boolean, "clinical progression without imaging PD"),
    ),
    "follow_up": (
        _c("patient_id", sa.String(32), "", pk=True, fk="patients.patient_id"),
        _c("last_contact_date", sa.Date, "date last known alive (or death date)"),
        _c("vital_status", sa.String(5), "alive / dead"),
        _c("death_date", sa.Date, "date of death (null when alive)"),
    ),
    "lab_results": (
        _c("lab_id", sa.Integer, "laboratory result record id", pk=True),
        _c("patient_id", sa.String(32), "", nullable=False, fk="patients.patient_id"),
        _c("lab_date", sa.Date, "date of the sample"),
        _c("analyte", sa.String(20), "analyte code (ANALYTE_CODES), e.g. hcg"),
        _c("value", sa.Float, "result, in ``unit``"),
        _c("unit", sa.String(20), "unit of value and uln, e.g. IU/L"),
        _c("uln", sa.Float, "upper limit of normal of the laboratory, in ``unit``"),
    ),
}

TABLE_NAMES: tuple[str, ...] = tuple(LOGICAL_SCHEMA)
#: Tables a registry may lack: only the endpoint that reads them needs them (``lab_results``:
#: biomarker normalisation). A registry without them passes the schema check and validation.
OPTIONAL_TABLES: tuple[str, ...] = ("lab_results",)
#: Tables every registry has (the design and the PFS/OS endpoints read them).
REQUIRED_TABLES: tuple[str, ...] = tuple(t for t in TABLE_NAMES if t not in OPTIONAL_TABLES)

#: Coded columns and their schema codes (a mapping's ``values`` must map onto these).
COLUMN_CODES: dict[tuple[str, str], tuple] = {
    ("patients", "sex"): SEX_CODES,
    ("diagnoses", "disease"): DISEASE_CODES,
    ("diagnoses", "histology"): HISTOLOGY_CODES,
    ("diagnoses", "bap1_status"): BAP1_CODES,
    ("surgeries", "cc_score"): CC_SCORES,
    ("treatment_lines", "end_reason"): END_REASON_CODES,
    ("treatment_lines", "ecog_at_start"): ECOG_CODES,
    ("tumour_assessments", "criteria"): CRITERIA_CODES,
    ("tumour_assessments", "overall_response"): RESPONSE_CODES,
    ("lab_results", "analyte"): ANALYTE_CODES,
    ("follow_up", "vital_status"): VITAL_STATUS_CODES,
}

#: Flags the derivations read that a registry may lack as columns: a mapping declares them as
#: rules (``{rule: "regimen in [...]"}``); without a rule they are derived as described.
DERIVED_FLAGS: dict[str, dict[str, str]] = {
    "treatment_lines": {
        "immunotherapy": "the line contains an immune checkpoint inhibitor (default: "
                         "'immune_checkpoint_inhibitor' among drug_classes)",
    },
}

#: Kinds of SQLAlchemy types, as the eligibility parser and the mapping's ``type`` name them.
KIND_OF_TYPE: dict[type, str] = {
    sa.Integer: "integer", sa.Float: "number", sa.String: "text", sa.Date: "date",
    sa.Boolean: "boolean",
}


def kind_of(type_: sa.types.TypeEngine) -> str:
    """``integer`` / ``number`` / ``text`` / ``date`` / ``boolean`` of a column type."""
    for cls, kind in KIND_OF_TYPE.items():
        if isinstance(type_, cls) or (isinstance(type_, type) and issubclass(type_, cls)):
            return kind
    raise TypeError(f"no kind for {type_!r}")


@dataclass(frozen=True, slots=True)
class ColumnRecode:
    """How one logical column (or declared covariate) is read from the registry.

    Built by `connectors.mapping`; compiled to SQL by `connectors.recode`.

    Attributes
    ----------
    column : str or None
        Physical column (None when ``absent`` or ``rule``).
    absent : bool
        The registry does not have it: read as NULL.
    rule : str or None
        A boolean rule over the table's logical columns (eligibility syntax).
    type : str or None
        Cast to ``integer`` / ``number`` / ``text`` / ``date`` / ``boolean`` in SQL.
    format : str or None
        ``strftime`` format of a text date (``%d/%m/%Y``); None: ISO or a native date.
    values : tuple of (source code, schema code), or None
        Source codes normalised (trimmed, lower case, as text); None: not a code list (an
        empty tuple: a code list still to be filled, every code is unmapped).
    scale : float or None
        Multiplier applied after the cast (units).
    unmapped : {"error", "missing"}
        A source code not in ``values`` (or a value that does not cast): stop, or NULL.
    where : str
        ``<mapping file>:<line>``, for messages.
    """

    column: str | None = None
    absent: bool = False
    rule: str | None = None
    type: str | None = None
    format: str | None = None
    values: tuple[tuple[str, Any], ...] | None = None
    scale: float | None = None
    unmapped: str = "error"
    where: str = "mapping"


@dataclass(frozen=True, slots=True)
class TableMapping:
    """Physical name of one logical table and of its columns (logical -> physical).

    ``table`` may be schema-qualified (``registry.patients_v``; a table or a view).
    ``recode`` holds the columns with more than a new name (codes, casts, units, absent,
    rules) and ``extra`` the disease-specific covariates read from this table.
    """

    table: str
    columns: Mapping[str, str]
    recode: Mapping[str, ColumnRecode] = field(default_factory=dict)
    extra: Mapping[str, tuple[ColumnRecode, sa.types.TypeEngine]] = field(default_factory=dict)

    def physical(self) -> tuple[str | None, str]:
        """(schema or None, table name) of ``table``."""
        schema, dot, name = self.table.rpartition(".")
        return (schema or None) if dot else None, name


def build_metadata(
    mapping: Mapping[str, TableMapping] | None = None,
    *,
    schema: str | None = None,
    with_constraints: bool = True,
) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    """Build the registry metadata, physical names from ``mapping``, logical column keys.

    Parameters
    ----------
    mapping : mapping of logical table name to `TableMapping`, optional
        Tables or columns absent from the mapping keep their logical names.
    schema : str, optional
        Database schema (PostgreSQL schema, MariaDB database) holding the tables.
    with_constraints : bool, default=True
        Declare primary and foreign keys (to create a registry); reading needs neither.

    Returns
    -------
    (MetaData, dict of logical table name -> Table)
        Columns are addressed by logical name: ``tables["patients"].c.birth_date``.
    """
    mapping = mapping or {}
    metadata = sa.MetaData(schema=schema)
    tables: dict[str, sa.Table] = {}
    for logical_table, columns in LOGICAL_SCHEMA.items():
        table_map = mapping.get(logical_table)
        table_schema, physical_table = table_map.physical() if table_map else (None, logical_table)
        col_map = table_map.columns if table_map else {}
        recode = table_map.recode if table_map else {}
        sa_columns = []
        for spec in columns:
            rc = recode.get(spec.name)
            if rc is not None and rc.column is None:  # absent, or a rule: no physical column
                continue
            args: list = []
            if with_constraints and spec.foreign_key:
                fk_table, fk_column = spec.foreign_key.split(".")
                fk_map = mapping.get(fk_table)
                fk_physical_table = fk_map.table if fk_map else fk_table
                prefix = f"{schema}." if schema else ""
                # SQLAlchemy resolves "table.column" against column *keys*: the logical name
                args.append(sa.ForeignKey(f"{prefix}{fk_physical_table}.{fk_column}"))
            sa_columns.append(
                sa.Column(
                    col_map.get(spec.name, spec.name),
                    spec.type_,
                    *args,
                    key=spec.name,
                    primary_key=spec.primary_key and with_constraints,
                    nullable=spec.nullable or not with_constraints,
                )
            )
        for key, (rc, type_) in (table_map.extra if table_map else {}).items():
            if all(c.name != rc.column for c in sa_columns):  # else read from that column
                sa_columns.append(sa.Column(rc.column, type_, key=key))
        tables[logical_table] = sa.Table(physical_table, metadata, *sa_columns,
                                         schema=table_schema or schema)
    return metadata, tables
