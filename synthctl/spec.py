"""The study spec: pydantic models of the YAML file that drives a synthctl study.

The models mirror ARCHITECTURE.md ("Study spec"): sources are either a registry + trial files
or one flat analysis file (``data:``). Every model forbids unknown keys and is frozen; closed
sets are ``Literal``s. Loading (YAML, ``${ENV_VAR}`` substitution, relative paths, error
messages with the YAML path and line) lives in `synthctl.specfile`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from connectors.codes import ANALYTE_CODES
from connectors.columns import OUTCOME_COLUMNS, TimeUnit
from connectors.timeouts import Timeouts
from connectors.yamlfile import short
from matching.impute import NUMERIC_METHODS
from matching.imputed_design import APPROACHES
from matching.methods import COMMON_OPTIONS, METHODS, cross_problems, rename_aliases
from reports.alignment_options import (
    DEFAULT_IMPUTATION_MODEL,
    GRID_WINDOW,
    IMPUTATION_MODELS,
)
from reports.km import CONF_TYPES

_TIMEOUT_DEFAULTS = Timeouts()


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Resolve a relative path against the spec file's folder and check that it exists."""
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if (info.context or {}).get("check_files", True) and not path.is_file():
        raise ValueError(f"{path} is a folder, not a file" if path.is_dir()
                         else f"file not found: {path}")
    return path


class Study(_Model):
    """Study identity and the seed every random step derives from."""

    name: Annotated[str, Field(min_length=1)]
    seed: Annotated[int, Field(ge=0)]
    description: str | None = None


class Trial(_Model):
    """The single-arm trial's CDISC ADaM files (CSV or SAS XPT, chosen by extension)."""

    adsl: Path
    adtte: Path
    paramcd: str = "PFS"
    variable_map: dict[str, str] | None = None
    adrs: Path | None = None  # ADaM ADRS, for the response endpoint (issue 15)
    data_cutoff: dt.date | None = Field(
        default=None, description="the trial's data cut-off (YYYY-MM-DD; default: ADSL DCUTDT): "
        "cut-off minus index date bounds the follow-up that landmarks and rmst_tau are checked "
        "against before the design is locked")
    adlb: Path | None = None  # ADaM ADLB, for the biomarker normalisation endpoint (issue 15)

    _paths = field_validator("adsl", "adtte")(_resolve_path)

    @field_validator("adrs", "adlb")
    @classmethod
    def _adrs_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve_path(value, info)


class IndexSpec(_Model):
    """How the registry's index (time-zero) treatment line is chosen."""

    after_regimen: str = "platinum_pemetrexed"
    selection: Literal["first", "all"] = "first"


class RegistryTimeouts(_Model):
    """Seconds to wait for the registry database (`connectors.timeouts.Timeouts`)."""

    connect_s: Annotated[float, Field(gt=0)] = _TIMEOUT_DEFAULTS.connect_s
    statement_s: Annotated[float, Field(gt=0)] = _TIMEOUT_DEFAULTS.statement_s


class Registry(_Model):
    """The registry: a database URL (``${ENV_VAR}`` allowed for the password) or an export folder.

    ``url``: ``sqlite:///file``, ``duckdb:///file``, ``postgresql+psycopg://...``,
    ``mysql+pymysql://...``, or a folder of one file per table, ``parquet:///folder`` /
    ``csv:///folder``; ``mapping``: the mapping file (``docs/mapping.md``).
    """

    url: Annotated[str, Field(min_length=1)]
    schema_: str | None = Field(default=None, alias="schema")
    mapping: Path | None = None
    index: IndexSpec = IndexSpec()
    timeouts: RegistryTimeouts = RegistryTimeouts()
    data_cutoff: dt.date | None = Field(
        default=None, description="the registry extract's data cut-off (YYYY-MM-DD): cut-off "
        "minus index date bounds the follow-up that landmarks and rmst_tau are checked against "
        "before the design is locked")

    def connector_timeouts(self) -> Timeouts:
        """The timeouts as the connectors take them."""
        return Timeouts(**self.timeouts.model_dump())

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("mapping")
    @classmethod
    def _mapping_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve_path(value, info)

    @field_validator("url")
    @classmethod
    def _file_relative(cls, value: str, info: ValidationInfo) -> str:
        # a relative SQLite/DuckDB file or export folder is relative to the spec, like every
        # other path in it
        base = (info.context or {}).get("base_dir")
        scheme, sep, rest = value.partition(":///")
        kind = _FILE_URLS.get(scheme)
        if not sep or kind is None:
            return value
        if base is not None and rest and not rest.startswith("/") and not rest.startswith(
                (":memory:", "file:")):
            path, qsep, query = rest.partition("?")
            value = f"{scheme}:///{(Path(base) / path).resolve()}{qsep}{query}"
        if (info.context or {}).get("check_files", True):
            path = value.partition(":///")[2].partition("?")[0]
            exists = Path(path).is_dir() if kind == "folder" else Path(path).is_file()
            if path and not path.startswith(":memory:") and not exists:
                what = ("export folder" if kind == "folder" else
                        f"{_FILE_NAMES[scheme]} registry file")
                raise ValueError(f"{what} not found: {path}")
        return value


#: URL schemes whose path is a local file or folder (resolved against the spec's folder).
_FILE_URLS = {"sqlite": "file", "duckdb": "file", "parquet": "folder", "csv": "folder"}
_FILE_NAMES = {"sqlite": "SQLite", "duckdb": "DuckDB"}


class FlatData(_Model):
    """One flat analysis file (CSV or Parquet) holding both arms, covariates and the outcome."""

    path: Path
    id: str = "patient_id"
    arm: str = "arm"
    trial_value: str | int | float | bool = "trial"
    time: str
    event: str
    time_unit: TimeUnit = "days"
    response: str | None = None  # 0/1 column of the binary endpoint (issue 15)
    normalised: str | None = None  # 0/1 column of the biomarker normalisation (issue 15)
    last_progression_free: str | None = None  # column, unit of `time` (endpoint alignment)

    _path = field_validator("path")(_resolve_path)


class ImputationModel(_Model):
    """Chained-equations imputation of missing covariates (`matching.imputed_design`).

    The model sees the covariates, the ``auxiliary`` variables and the arm, never an outcome.
    ``approach: across`` (PS averaged over imputations) is the weaker option; see
    `matching.imputed_design`.
    """

    numeric: Literal[NUMERIC_METHODS] = "pmm"  # type: ignore[valid-type]
    max_iter: Annotated[int, Field(ge=1)] = 10
    donors: Annotated[int, Field(ge=1)] = 5
    approach: Literal[APPROACHES] = "within"  # type: ignore[valid-type]
    auxiliary: list[str] = []

    @field_validator("auxiliary")
    @classmethod
    def _no_outcome(cls, value: list[str]) -> list[str]:
        bad = sorted(set(value) & set(OUTCOME_COLUMNS))
        if bad:
            raise ValueError(f"auxiliary variables {bad} are outcomes: the imputation model "
                             "never sees an outcome (the design is outcome-blind)")
        dup = sorted({c for c in value if value.count(c) > 1})
        if dup:
            raise ValueError(f"auxiliary variables listed twice: {dup}")
        return value


#: design-level keys that are not method options: multiple imputation (``missing: impute``)
IMPUTATION_KEYS = ("imputations", "imputation_model")


class DesignBase(_Model):
    """A spec's ``design:`` block; one subclass per method, built from `matching.methods`.

    The fields, their types, defaults and constraints, the estimands each method allows and
    the rules across options are read from the method table; an option that does not apply
    to the method is an unknown key (an error with its YAML line), never silently dropped.
    ``caliper_scale`` is accepted as the old name of ``distance`` (values logit -> logit_ps,
    ps -> ps).
    """

    method: str
    imputations: Annotated[int, Field(ge=2)] = 20  # m, with missing: impute
    imputation_model: ImputationModel = ImputationModel()

    @model_validator(mode="after")
    def _imputation_options_need_impute(self) -> DesignBase:
        given = set(IMPUTATION_KEYS) & self.model_fields_set
        if given and getattr(self, "missing", None) != "impute":
            raise ValueError(f"{sorted(given)} only apply with missing: impute "
                             f"(missing is {getattr(self, 'missing', None)!r})")
        return self

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("method", DEFAULT_METHOD) not in METHODS:
            return data
        from matching import MatchingError

        try:
            return rename_aliases(data.get("method", DEFAULT_METHOD), data)
        except MatchingError as exc:
            raise ValueError(str(exc)) from None

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> DesignBase:
        """A copy with ``update`` applied; a new ``method`` gives that method's model.

        Changing the method keeps the common options (estimand, ps_model, missing,
        balance_threshold) and takes the new method's options from ``update`` (defaults
        otherwise); the result is validated like a spec's ``design:`` block.
        """
        if update and update.get("method", self.method) != self.method:
            return parse_design({**self.common_options(), **update})
        if update:  # options left at their defaults stay unset (impute-only keys included)
            return parse_design({"method": self.method, **self.model_dump(exclude_defaults=True),
                                 **update})
        return super().model_copy(deep=deep)

    def __getattr__(self, name: str) -> Any:
        # an option's old name (caliper_scale) reads the option in the old vocabulary
        for opt in METHODS[self.__dict__["method"]].options if "method" in self.__dict__ else ():
            if name in opt.aliases and opt.name in self.__dict__:
                value = self.__dict__[opt.name]
                old = {new: old for old, new in (opt.aliases[name] or {}).items()}
                return old.get(value, value)
        return super().__getattr__(name)

    def method_options(self) -> dict[str, Any]:
        """The method's own options, as `matching.match_cohort` keywords."""
        return {o.name: getattr(self, o.name, o.default) for o in METHODS[self.method].options}

    def common_options(self) -> dict[str, Any]:
        """estimand, ps_model, missing, balance_threshold (every method has them)."""
        return {o.name: getattr(self, o.name, o.default) for o in COMMON_OPTIONS}

    @property
    def yields(self) -> str:
        """``"sets"``, ``"pairs_with_replacement"`` or ``"weights"`` (`matching.methods`)."""
        return METHODS[self.method].yields(self.method_options())


DEFAULT_METHOD = "nearest"


def _option_field(method: str, opt, earlier: tuple[str, ...]) -> tuple[Any, Any]:
    """(annotation, FieldInfo) of one option; its validator checks the option's constraint
    and the method's rules across options keyed by this option (given the earlier fields)."""

    def check(value: Any, info: ValidationInfo) -> Any:
        problem = opt.problem(value)
        if problem is not None:
            raise ValueError(problem)
        if all(n in info.data for n in earlier):  # an earlier error would mislead the rules
            values = {**{k: info.data[k] for k in earlier}, opt.name: value}
            for key, msg in cross_problems(method, values):
                if key == opt.name:
                    raise ValueError(msg)
        return value

    return (Annotated[opt.annotation, AfterValidator(check)],
            Field(default=opt.default, description=opt.doc, validate_default=True))


def _design_model(method: str) -> type[DesignBase]:
    fields: dict[str, Any] = {"method": (Literal[method], method)}
    earlier: tuple[str, ...] = ()
    for opt in (*COMMON_OPTIONS, *METHODS[method].options):
        fields[opt.name] = _option_field(method, opt, earlier)
        earlier = (*earlier, opt.name)
    name = f"{method.title().replace('_', '')}Design"
    doc = (f"The spec's design: block with method: {method} (fields from "
           f"matching.methods.METHODS[{method!r}]).")
    return create_model(name, __base__=DesignBase, __doc__=doc, **fields)


class _UnknownMethod(_Model):
    """Only reached when ``method`` is not in the table: reports it on the method's line."""

    model_config = ConfigDict(extra="allow", frozen=True)
    method: Literal[tuple(METHODS)]  # type: ignore[valid-type]


def _design_tag(value: Any) -> str:
    method = (value.get("method", DEFAULT_METHOD) if isinstance(value, dict)
              else getattr(value, "method", None))
    return method if method in METHODS else "?"


#: One pydantic model per method of `matching.methods.METHODS`.
DESIGN_MODELS: dict[str, type[DesignBase]] = {m: _design_model(m) for m in METHODS}
#: The ``design:`` block: a union keyed on ``method``.
Design = Annotated[
    Union[(*(Annotated[model, Tag(m)] for m, model in DESIGN_MODELS.items()),
           Annotated[_UnknownMethod, Tag("?")])],
    Discriminator(_design_tag),
]
_DESIGN_ADAPTER: TypeAdapter = TypeAdapter(Design)


def parse_design(data: dict[str, Any]) -> DesignBase:
    """Validate a ``design:`` mapping (pydantic ``ValidationError`` when invalid)."""
    return _DESIGN_ADAPTER.validate_python(data)


def unknown_key_message(loc: tuple) -> str:
    """The message for an unknown key at pydantic location ``loc`` (before `yaml_loc`).

    Under ``design:`` it says which methods the option belongs to, if any.
    """
    key = loc[-1]
    if len(loc) == 3 and loc[0] == "design" and loc[1] in METHODS:
        users = [m for m, e in METHODS.items() if any(o.name == key for o in e.options)]
        if users:
            return (f"option {short(key)} does not apply to method {loc[1]} (it applies to "
                    f"{' and '.join(users)}); remove it")
        known = [o.name for o in (*COMMON_OPTIONS, *METHODS[loc[1]].options)]
        return f"unknown key {short(key)}; method {loc[1]} takes: method, {', '.join(known)}"
    return f"unknown key {short(key)}"


def yaml_loc(loc: tuple) -> tuple:
    """A pydantic error location as a YAML path: the union's method tag is dropped."""
    if len(loc) >= 2 and loc[0] == "design" and (loc[1] in DESIGN_MODELS or loc[1] == "?"):
        return (loc[0], *loc[2:])
    return loc


class ResponseSettings(_Model):
    """The objective-response endpoint (``connectors.response.ResponseRule``; issue 15)."""

    confirmed: bool = True
    by: Annotated[float, Field(gt=0)] | None = None
    unit: TimeUnit = "weeks"
    paramcd: Literal["OVR", "BOR"] = "OVR"  # trial ADRS parameter
    null_rate: Annotated[float, Field(gt=0, lt=1)] | None = None  # default: simon.p0


class NormalisationSettings(_Model):
    """Biomarker normalisation by a landmark (`connectors.biomarker.NormalisationRule`; issue
    15): ``analyte`` below the ULN on ``n_consecutive`` consecutive results by ``by`` ``unit``
    after index; ``paramcd``: the trial ADLB parameter (default: the analyte in capitals)."""

    analyte: Literal[ANALYTE_CODES]  # type: ignore[valid-type]
    n_consecutive: Annotated[int, Field(ge=1)] = 2
    by: Annotated[float, Field(gt=0)] = 24.0
    unit: TimeUnit = "weeks"
    paramcd: Annotated[str, Field(min_length=1, max_length=8)] | None = None
    null_rate: Annotated[float, Field(gt=0, lt=1)] | None = None  # default: simon.p0

    @property
    def adlb_paramcd(self) -> str:
        """The ADLB PARAMCD of the analyte."""
        return self.paramcd or self.analyte.upper()


class SimonSpec(_Model):
    """Simon two-stage design of the trial (``reports.simon``; issue 15)."""

    p0: Annotated[float, Field(gt=0, lt=1)]
    p1: Annotated[float, Field(gt=0, lt=1)]
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    power: Annotated[float, Field(gt=0.5, lt=1)] = 0.8
    design: Literal["optimal", "minimax"] = "optimal"
    # "primary": the primary endpoint (analysis.primary: the binary outcome; PFS: event-free,
    # OS: alive at the first landmark, censored-before-landmark patients listed); "ORR"
    endpoint: Literal["primary", "ORR"] = "primary"

    @model_validator(mode="after")
    def _ordered(self) -> SimonSpec:
        if not self.p0 < self.p1:
            raise ValueError(f"simon needs p0 < p1, got p0={self.p0}, p1={self.p1}")
        return self
class EndpointAlignment(_Model):
    """PFS read on a common assessment schedule (`reports.alignment`).

    ``grid_every`` / ``grid_unit``: the common visit grid (default: the trial's 6 weeks);
    ``imputations``: imputed data sets of the harmonised estimate; ``primary``: the harmonised
    numbers become the primary ones; ``trial_schedule_every`` (``grid_unit``): the protocol's
    assessment interval, used for the trial arm's progression interval when there is no ADRS;
    ``grid_window``: the grid's visit window as a fraction of ``grid_every`` (a progression
    found at visit k after a progression-free visit k - 1, each within it, is read at visit k);
    ``imputation_model``: what a progression's time within its interval is drawn from
    (`reports.alignment_options.IMPUTATION_MODELS`; "turnbull" as a sensitivity analysis).
    """

    grid_every: Annotated[float, Field(gt=0)] = 6.0
    grid_unit: TimeUnit = "weeks"
    imputations: Annotated[int, Field(ge=2)] = 20
    primary: bool = False
    trial_schedule_every: Annotated[float, Field(gt=0)] | None = None
    grid_window: Annotated[float, Field(ge=0, lt=0.5)] = GRID_WINDOW
    imputation_model: Literal[tuple(IMPUTATION_MODELS)] = (  # type: ignore[valid-type]
        DEFAULT_IMPUTATION_MODEL)


#: binary endpoints that may be primary (``analysis.primary``): one per outcome source of
#: `synthctl.stages._binary.BINARY_SOURCES`
BINARY_ENDPOINTS = ("ORR", "NORMALISATION")


class Analysis(_Model):
    """The outcome analysis: endpoint, landmarks, null rate, RMST horizon, bootstrap size.

    ``endpoint`` is the time-to-event endpoint (PFS or OS). ``primary`` names the primary
    endpoint when it is a binary one (``ORR``, or ``NORMALISATION`` for the biomarker
    normalisation of ``normalisation``: the time-to-event endpoint is then secondary);
    None (default) keeps ``endpoint`` primary.
    """

    endpoint: Literal["PFS", "OS"] = "PFS"
    primary: Literal[BINARY_ENDPOINTS] | None = None  # type: ignore[valid-type]
    landmarks: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)] = [24.0]
    landmark_unit: TimeUnit = "weeks"
    null_rate: Annotated[float, Field(gt=0, lt=1)] | None = None
    rmst_tau: Annotated[float, Field(gt=0)] | None = None
    bootstrap: Annotated[int, Field(ge=0)] = 0
    conf_type: Literal[CONF_TYPES] = "log"  # type: ignore[valid-type]  # survfit's conf.type
    conf_level: Annotated[float, Field(gt=0, lt=1)] = 0.95
    response: ResponseSettings | None = None
    normalisation: NormalisationSettings | None = None
    simon: SimonSpec | None = None
    endpoint_alignment: EndpointAlignment | None = None
    # design.missing: impute only: the imputation with the outcome as a predictor, run in
    # analyze after the design lock and reported as a sensitivity analysis (never primary)
    imputation_with_outcome: bool = False

    @property
    def primary_endpoint(self) -> str:
        """The primary endpoint's name (results.json ``endpoints`` key)."""
        return self.primary or self.endpoint

    @model_validator(mode="after")
    def _alignment_is_pfs(self) -> Analysis:
        if self.endpoint_alignment is not None and self.endpoint != "PFS":
            raise ValueError("endpoint_alignment applies to the PFS endpoint only")
        return self


class StudySpec(_Model):
    """A whole study: sources, eligibility, covariates, design and analysis."""

    study: Study
    trial: Trial | None = None
    registry: Registry | None = None
    data: FlatData | None = None
    eligibility: list[Annotated[str, Field(min_length=1)]] = []
    covariates: Annotated[list[str], Field(min_length=1)]
    design: Design = DESIGN_MODELS[DEFAULT_METHOD]()
    analysis: Analysis = Analysis()
    labels: dict[str, Annotated[str, Field(min_length=1, max_length=80)]] = Field(
        default={}, description="covariate -> readable label for the methods text, balance "
        "table and love plot (default: connectors.columns.COVARIATE_LABELS, else the name)")

    @model_validator(mode="after")
    def _one_source(self) -> StudySpec:
        has_pair = self.trial is not None or self.registry is not None
        if self.data is not None and has_pair:
            raise ValueError("give either 'data' (one flat file) or 'trial' + 'registry', not both")
        if self.data is None and (self.trial is None or self.registry is None):
            missing = "trial" if self.trial is None else "registry"
            raise ValueError(
                f"missing '{missing}': a study needs 'trial' + 'registry' or one flat 'data' file"
            )
        if self.analysis.response is not None and self.data is None and (
            self.trial is None or self.trial.adrs is None
        ):
            raise ValueError("analysis.response needs the trial's ADRS file (trial.adrs)")
        if self.analysis.response is not None and self.data is not None and (
            self.data.response is None
        ):
            raise ValueError("analysis.response with a flat file needs data.response "
                             "(the 0/1 response column)")
        simon = self.analysis.simon
        if simon is not None and simon.endpoint == "ORR" and self.analysis.response is None and (
            self.data is None or self.data.response is None
        ):
            raise ValueError("analysis.simon.endpoint ORR needs the response endpoint "
                             "(analysis.response, or data.response for a flat file)")
        if self.analysis.primary == "ORR" and self.analysis.response is None and (
            self.data is None or self.data.response is None
        ):
            raise ValueError("analysis.primary ORR needs the response endpoint "
                             "(analysis.response with trial.adrs, or data.response for a "
                             "flat file)")
        self._normalisation_source()
        return self

    def _normalisation_source(self) -> None:
        """The normalisation endpoint's sources: ADLB with a registry, a column of a flat file."""
        a = self.analysis
        if a.normalisation is not None and self.data is None and (
                self.trial is None or self.trial.adlb is None):
            raise ValueError("analysis.normalisation needs the trial's ADLB file (trial.adlb)")
        if a.normalisation is not None and self.data is not None and self.data.normalised is None:
            raise ValueError("analysis.normalisation with a flat file needs data.normalised "
                             "(the 0/1 normalisation column)")
        if a.primary == "NORMALISATION" and a.normalisation is None and (
                self.data is None or self.data.normalised is None):
            raise ValueError("analysis.primary NORMALISATION needs analysis.normalisation "
                             "(with trial.adlb), or data.normalised for a flat file")

    @property
    def binary_endpoints(self) -> tuple[str, ...]:
        """The binary endpoints the spec asks for (`BINARY_ENDPOINTS` order): ORR with
        ``analysis.response`` or a flat file's ``data.response``; NORMALISATION with
        ``analysis.normalisation`` or ``data.normalised``."""
        a, d = self.analysis, self.data
        asked = {"ORR": a.response is not None or (d is not None and d.response is not None),
                 "NORMALISATION": a.normalisation is not None or (
                     d is not None and d.normalised is not None)}
        return tuple(name for name in BINARY_ENDPOINTS if asked[name])

    @model_validator(mode="after")
    def _alignment_not_imputed(self) -> StudySpec:
        # the imputed analysis pools each imputation's endpoints by Rubin's rules; the
        # alignment block runs on one locked design: refused now, not silently left out later
        if self.analysis.endpoint_alignment is not None and self.design.missing == "impute":
            raise ValueError("analysis.endpoint_alignment is not available with "
                             "design.missing: impute (the alignment runs on one locked "
                             "design); use missing: complete_case or indicator, or drop it")
        if self.analysis.primary is not None and self.design.missing == "impute":
            raise ValueError(f"analysis.primary {self.analysis.primary} is not available with "
                             "design.missing: impute (the imputed analysis pools the "
                             "time-to-event endpoint only); use missing: complete_case or "
                             "indicator")
        if self.binary_endpoints and self.design.missing == "impute":  # never left out silently
            raise ValueError(f"the binary endpoint(s) {', '.join(self.binary_endpoints)} are not "
                             "available with design.missing: impute (the imputed analysis "
                             "pools the time-to-event endpoint only); use missing: "
                             "complete_case or indicator")
        return self

    @model_validator(mode="after")
    def _outcome_imputation_needs_impute(self) -> StudySpec:
        if self.analysis.imputation_with_outcome and self.design.missing != "impute":
            raise ValueError("analysis.imputation_with_outcome applies with design.missing: "
                             "impute only (it re-imputes the covariates with the outcome)")
        return self

    @model_validator(mode="after")
    def _auxiliary_not_outcome_or_covariate(self) -> StudySpec:
        aux = set(self.design.imputation_model.auxiliary)
        outcomes = set() if self.data is None else {self.data.time, self.data.event}
        reserved = set() if self.data is None else {self.data.id, self.data.arm}
        for names, what in ((outcomes, "outcome columns of the data file: the imputation model "
                             "never sees an outcome"), (set(self.covariates), "covariates "
                             "already (they are imputation predictors anyway)"),
                            (reserved, "the id / arm columns")):
            bad = sorted(aux & names)
            if bad:
                raise ValueError(f"design.imputation_model.auxiliary {bad} are {what}")
        return self

    @model_validator(mode="after")
    def _labels_name_covariates(self) -> StudySpec:
        bad = [k for k in self.labels if k not in self.covariates]
        if bad:
            raise ValueError(f"labels {bad} are not covariates of the spec (covariates: "
                             f"{', '.join(self.covariates)})")
        return self

    @field_validator("covariates")
    @classmethod
    def _unique_covariates(cls, value: list[str]) -> list[str]:
        dup = sorted({c for c in value if value.count(c) > 1})
        if dup:
            raise ValueError(f"covariates listed twice: {dup}")
        return value

    @property
    def source_kind(self) -> Literal["registry", "flat"]:
        """``"registry"`` (registry + trial files) or ``"flat"`` (one analysis file)."""
        return "flat" if self.data is not None else "registry"

    def design_part(self) -> dict[str, Any]:
        """The parts of the spec that define the design (locked before outcomes are read)."""
        return {
            "seed": self.study.seed,
            "eligibility": list(self.eligibility),
            "covariates": list(self.covariates),
            "design": self.design.model_dump(
                mode="json",  # imputation options only count when used (older hashes hold)
                exclude=None if self.design.missing == "impute" else set(IMPUTATION_KEYS)),
        }

    def design_hash(self) -> str:
        """SHA-256 of the canonical JSON of `design_part`."""
        return _sha256_json(self.design_part())


def _sha256_json(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()
