"""A draft mapping for a new registry: introspect, match to the schema, list codes, write YAML.

`draft_mapping` reads (read-only) the registry's tables or views, their columns and types,
matches them to `connectors.schema.LOGICAL_SCHEMA` by name (with a few French/English
synonyms) and type, and for coded schema columns lists the distinct values of the matched
source column with their row counts. It writes a commented version-2 mapping with ``TODO``
lines for what it could not decide; ``synthctl validate --mapping`` on it says what is left
(missing tables, unmapped codes with their counts).

Never printed: values of key, date or free-text columns, values of columns with more than
`MAX_CODES` distinct values, and codes seen in fewer than `MIN_CODE_ROWS` rows (counted
together as "rare").
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from connectors.introspect import columns, relations
from connectors.mapping import BOOLEAN_CODES, MAPPING_VERSION
from connectors.schema import COLUMN_CODES, LOGICAL_SCHEMA, OPTIONAL_TABLES, ColumnSpec, kind_of

MAX_CODES = 30  # distinct values listed for a low-cardinality column
MIN_CODE_ROWS = 5  # a code seen in fewer rows is not shown (counted as rare)
MAX_CODE_LENGTH = 40  # longer values are free text: never listed
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d")
SYNONYMS: dict[str, tuple[str, ...]] = {
    "centres": ("centers", "centre", "center", "etablissements", "sites", "hopitaux"),
    "patients": ("patient", "pat", "individus"),
    "diagnoses": ("diagnosis", "diagnostics", "diagnostic", "dx"),
    "surgeries": ("surgery", "chirurgies", "chirurgie", "interventions"),
    "treatment_lines": ("lines", "lignes", "lignes_traitement", "traitements", "treatments"),
    "tumour_assessments": ("assessments", "evaluations", "tumor_assessments", "imagerie"),
    "follow_up": ("followup", "suivi", "follow_ups", "vital_status"),
    "patient_id": ("id_patient", "pid", "patient", "num_patient"),
    "centre_id": ("code_centre", "center_id", "site_id", "id_centre", "centre"),
    "centre_name": ("nom_centre", "center_name", "nom"),
    "sex": ("sexe", "gender", "genre"),
    "birth_date": ("date_naissance", "dob", "naissance", "date_of_birth"),
    "diagnosis_id": ("id_diagnostic", "dx_id"),
    "diagnosis_date": ("date_diagnostic", "date_diagnosis", "dx_date"),
    "disease": ("maladie", "pathologie"),
    "histology": ("histologie", "histo", "sous_type"),
    "pci": ("score_pci", "peritoneal_cancer_index"),
    "ki67_percent": ("ki67", "ki_67", "ki67_fraction"),
    "bap1_status": ("bap1",),
    "surgery_id": ("id_chirurgie",),
    "surgery_date": ("date_chirurgie", "date_intervention"),
    "crs": ("cytoreduction", "chirurgie_cytoreduction"),
    "hipec": ("chip",),
    "cc_score": ("score_cc", "cc"),
    "line_id": ("id_ligne",),
    "line_number": ("num_ligne", "numero_ligne", "line"),
    "regimen": ("protocole", "schema_therapeutique", "protocol"),
    "drug_classes": ("classes", "classes_medicament"),
    "start_date": ("date_debut", "debut"),
    "end_date": ("date_fin", "fin"),
    "end_reason": ("motif_fin", "motif_arret"),
    "ecog_at_start": ("ecog", "ps", "performance_status"),
    "assessment_id": ("id_evaluation",),
    "assessment_date": ("date_evaluation",),
    "criteria": ("criteres",),
    "overall_response": ("reponse", "response", "reponse_globale"),
    "clinical_progression": ("progression_clinique",),
    "last_contact_date": ("date_derniere_nouvelle", "date_dernieres_nouvelles", "last_news"),
    "vital_status": ("statut_vital", "etat_vital"),
    "death_date": ("date_deces", "deces"),
}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "_", name.lower()).strip("_")


def _name_score(logical: str, physical: str) -> float:
    p = _norm(physical)
    if p == logical:
        return 1.0
    if p in SYNONYMS.get(logical, ()):
        return 0.95
    return difflib.SequenceMatcher(None, logical, p).ratio() * 0.8


@dataclass
class ColumnDraft:
    """What map-init decided for one schema column."""

    logical: str
    physical: str | None
    entry: dict = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)
    todo: str | None = None


@dataclass
class TableDraft:
    logical: str
    physical: str | None
    columns: list[ColumnDraft] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


def draft_mapping(engine: sa.Engine, schema: str | None = None) -> list[TableDraft]:
    """Introspect the registry and match it to the schema (read-only queries only)."""
    with engine.connect() as con:
        found = sorted(relations(con, schema))
        cols = {name: columns(con, name, schema) for name in found}
        drafts: list[TableDraft] = []
        used: set[str] = set()
        for logical, specs in LOGICAL_SCHEMA.items():
            physical = _best_table(logical, specs, cols, used)
            if physical is None and logical in OPTIONAL_TABLES:
                continue  # a registry may lack it (lab_results): nothing to draft
            draft = TableDraft(logical, physical)
            if physical is None:
                draft.comments.append(f"TODO: no table or view found for {logical}; found: "
                                      f"{', '.join(found) or 'none'}")
            else:
                used.add(physical)
                table = sa.table(physical, *(sa.column(c) for c, _ in cols[physical]),
                                 schema=schema)
                taken: set[str] = set()
                for spec in specs:
                    draft.columns.append(_column(con, logical, spec, table, cols[physical],
                                                 taken))
            drafts.append(draft)
    return drafts


def _best_table(logical, specs, cols, used) -> str | None:
    best, best_score = None, 0.0
    names = {s.name for s in specs}
    for physical, pcols in cols.items():
        if physical in used:
            continue
        hits = sum(max((_name_score(n, c) for c, _ in pcols), default=0) >= 0.9 for n in names)
        score = _name_score(logical, physical) + 2 * hits / len(names)
        if score > best_score:
            best, best_score = physical, score
    return best if best_score >= 1.0 else None


def _column(con, logical: str, spec: ColumnSpec, table, pcols, taken: set[str]) -> ColumnDraft:
    scored = sorted(((_name_score(spec.name, c), c, t) for c, t in pcols if c not in taken),
                    reverse=True)
    if not scored or scored[0][0] < 0.6:
        return ColumnDraft(spec.name, None, {"absent": True},
                           todo=f"no column found for {spec.name}: give its column, or keep "
                                "it absent")
    _, physical, type_text = scored[0]
    taken.add(physical)
    draft = ColumnDraft(spec.name, physical, {"column": physical})
    kind = kind_of(spec.type_)
    col = table.c[physical]
    is_key = spec.primary_key or spec.foreign_key is not None
    source_kind = _source_kind(type_text)
    if is_key:
        if kind == "integer" and source_kind != "integer":
            draft.entry["type"] = "integer" if _all_digits(con, col) else "text"
        return draft
    if kind == "date" and source_kind == "text":
        fmt = _date_format(con, col)
        draft.entry["type"] = "date"
        if fmt is None:
            draft.todo = "text dates in an unrecognised format: give 'format'"
        elif fmt != "%Y-%m-%d":
            draft.entry["format"] = fmt
    elif kind == "integer" and source_kind == "number":
        draft.entry["type"] = "integer"
    elif kind == "number" and source_kind == "number" and spec.name == "ki67_percent":
        top = con.execute(sa.select(sa.func.max(col))).scalar()
        if top is not None and float(top) <= 1:
            draft.entry["scale"] = 100
            draft.comments.append("values <= 1: a fraction, read as percent with scale: 100")
    codes = COLUMN_CODES.get((logical, spec.name))
    if kind == "integer" and source_kind in ("integer", "number"):
        codes = None  # numeric codes (ECOG, CC score): a cast, no code list
    if codes is not None or kind == "boolean":
        _codes(con, col, draft, codes, kind)
    elif (logical, spec.name) in LISTED:
        _codes(con, col, draft, None, kind, list_only=True)
    return draft


#: Uncoded columns whose values are worth listing (regimens: for the immunotherapy rule).
LISTED = {("treatment_lines", "regimen")}


def _source_kind(type_text: str) -> str:
    t = type_text.upper()
    if any(k in t for k in ("INT", "SERIAL")):
        return "integer"
    if any(k in t for k in ("REAL", "FLOAT", "DOUBLE", "NUMERIC", "DECIMAL")):
        return "number"
    if "DATE" in t or "TIME" in t:
        return "date"
    if "BOOL" in t:
        return "boolean"
    return "text"


def _all_digits(con, col) -> bool:
    from connectors.recode import INTEGER_PATTERN, as_text

    bad = sa.and_(col.is_not(None), sa.not_(as_text(col).regexp_match(INTEGER_PATTERN)))
    return con.execute(sa.select(sa.func.count()).where(bad).select_from(col.table)
                       ).scalar_one() == 0


def _date_format(con, col) -> str | None:
    from connectors.recode import as_text

    sample = [str(v).strip() for (v,) in con.execute(
        sa.select(as_text(col)).where(col.is_not(None)).distinct().limit(500))]
    for fmt in DATE_FORMATS:
        try:
            for v in sample:
                dt.datetime.strptime(v, fmt)
        except ValueError:
            continue
        return fmt
    return None


def _codes(con, col, draft: ColumnDraft, codes: tuple | None, kind: str, *,
           list_only: bool = False) -> None:
    from connectors.recode import as_text

    text = sa.func.trim(as_text(col)).label("v")
    n_distinct = con.execute(sa.select(sa.func.count(sa.distinct(text))).select_from(col.table)
                             ).scalar_one()
    if n_distinct > MAX_CODES:
        draft.comments.append(f"{n_distinct} distinct values: not a code list (not shown)")
        return
    rows = con.execute(sa.select(text, sa.func.count()).where(col.is_not(None)).group_by(text)
                       .order_by(sa.func.count().desc())).fetchall()
    if any(len(str(v)) > MAX_CODE_LENGTH for v, _ in rows):
        draft.comments.append("long values: free text (not shown)")
        return
    shown = [(str(v), int(n)) for v, n in rows if n >= MIN_CODE_ROWS]
    rare = sum(int(n) for v, n in rows if n < MIN_CODE_ROWS)
    listing = ", ".join(f"{v} ({n:,})" for v, n in shown)
    draft.comments.append(f"values (rows): {listing or '-'}"
                          + (f"; {rare:,} rows with rare values (< {MIN_CODE_ROWS} rows each, "
                             "not shown)" if rare else ""))
    if list_only:
        return
    targets = codes if codes is not None else (True, False)
    auto = {str(c).lower(): c for c in targets}
    if kind == "boolean":
        auto.update(dict(BOOLEAN_CODES))
    values: dict = {}
    unknown = []
    for v, _ in shown:
        key = v.strip().lower()
        if key in auto:
            values[v] = auto[key]
        else:
            unknown.append(v)
    if kind == "boolean" and not unknown:
        draft.entry["type"] = "boolean"
        return
    if unknown or any(str(v) != str(t) for v, t in values.items()):
        draft.entry["values"] = values
    if unknown:
        allowed = ", ".join(map(str, targets))
        draft.todo = (f"map {', '.join(repr(u) for u in unknown)} in 'values' (schema codes: "
                      f"{allowed}); until then validate reports them as unmapped")


def render(drafts: list[TableDraft], registry: str) -> str:
    """The draft as commented YAML (version 2)."""
    out = [f"# Draft mapping for {registry}, written by `synthctl map-init`.",
           "# Check every line; resolve the TODOs; then run",
           "#   synthctl validate --registry URL --mapping THIS_FILE",
           "# Format: docs/mapping.md.",
           f"version: {MAPPING_VERSION}", "unmapped: error", "tables:"]
    for t in drafts:
        out.append(f"  {t.logical}:")
        out += [f"    # {c}" for c in t.comments]
        out.append(f"    table: {_scalar(t.physical or 'TODO_' + t.logical)}")
        if not t.columns:
            continue
        out.append("    columns:")
        for c in t.columns:
            out += [f"      # {x}" for x in c.comments]
            if c.todo:
                out.append(f"      # TODO: {c.todo}")
            out.append(f"      {c.logical}: {_flow(c.entry)}")
            if c.logical == "drug_classes" and c.entry.get("absent"):
                out += ["      # TODO: no drug classes: say which regimens are immunotherapy, e.g.",
                        "      # immunotherapy: {rule: \"regimen in ['nivolumab', "
                        "'pembrolizumab']\"}"]
    return "\n".join(out) + "\n"


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    s = str(v)
    return s if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", s) and s.lower() not in {
        "yes", "no", "on", "off", "true", "false", "null", "y", "n"} else repr(s).replace(
        "\\\\", "\\")


def _flow(entry: dict) -> str:
    if set(entry) == {"column"}:
        return _scalar(entry["column"])
    parts = []
    for k, v in entry.items():
        if isinstance(v, dict):
            inner = ", ".join(f"{_scalar(a)}: {_scalar(b)}" for a, b in v.items())
            parts.append(f"{k}: {{{inner}}}")
        else:
            parts.append(f"{k}: {_scalar(v)}")
    return "{" + ", ".join(parts) + "}"
