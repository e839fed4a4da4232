"""The study spec: pydantic models of the YAML file that drives a synthctl study.

The models mirror ARCHITECTURE.md ("Study spec"): sources are either a registry + trial files
or one flat analysis file (``data:``). Every model forbids unknown keys and is frozen; closed
sets are ``Literal``s. Loading (YAML, ``${ENV_VAR}`` substitution, relative paths, error
messages with the YAML path and line) lives in `synthctl.specfile`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.columns import TimeUnit


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Resolve a relative path against the spec file's folder and check that it exists."""
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if (info.context or {}).get("check_files", True) and not path.is_file():
        raise ValueError(f"file not found: {path}")
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

    _paths = field_validator("adsl", "adtte")(_resolve_path)


class IndexSpec(_Model):
    """How the registry's index (time-zero) treatment line is chosen."""

    after_regimen: str = "platinum_pemetrexed"
    selection: Literal["first", "all"] = "first"


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

    _path = field_validator("path")(_resolve_path)


class Design(_Model):
    """The propensity-score design (MatchIt's vocabulary; see `matching.match_cohort`)."""

    method: Literal["nearest", "optimal", "weighting"] = "nearest"
    estimand: Literal["ATT", "ATE", "ATO", "ATM"] = "ATT"
    ps_model: Literal["logistic", "logistic_l2", "gbm"] = "logistic"
    ratio: Annotated[int, Field(ge=1)] = 1
    caliper: Annotated[float, Field(gt=0)] | None = 0.2
    caliper_scale: Literal["ps", "logit"] = "logit"
    replace: bool = False
    m_order: Literal["largest", "smallest", "random", "data"] = "largest"
    exact: list[str] | None = None
    weights: Literal["att_odds", "ate", "overlap", "matching", "entropy"] | None = None
    stabilized: bool = False
    trim: Annotated[float, Field(gt=0, lt=0.5)] | Literal["common_support"] | None = None
    truncate: Annotated[float, Field(gt=0.5, lt=1)] | None = None  # quantile cap, e.g. 0.99
    missing: Literal["error", "indicator", "complete_case"] = "error"
    balance_threshold: Annotated[float, Field(gt=0)] = 0.1


class Analysis(_Model):
    """The outcome analysis: endpoint, landmarks, null rate, RMST horizon, bootstrap size."""

    endpoint: Literal["PFS", "OS"] = "PFS"
    landmarks: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)] = [24.0]
    landmark_unit: TimeUnit = "weeks"
    null_rate: Annotated[float, Field(gt=0, lt=1)] | None = None
    rmst_tau: Annotated[float, Field(gt=0)] | None = None
    bootstrap: Annotated[int, Field(ge=0)] = 0
    conf_type: Literal["log", "log-log", "plain"] = "log"
    conf_level: Annotated[float, Field(gt=0, lt=1)] = 0.95


class StudySpec(_Model):
    """A whole study: sources, eligibility, covariates, design and analysis."""

    study: Study
    trial: Trial | None = None
    registry: Registry | None = None
    data: FlatData | None = None
    eligibility: list[Annotated[str, Field(min_length=1)]] = []
    covariates: Annotated[list[str], Field(min_length=1)]
    design: Design = Design()
    analysis: Analysis = Analysis()

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
            "design": self.design.model_dump(mode="json"),
        }

    def design_hash(self) -> str:
        """SHA-256 of the canonical JSON of `design_part`."""
        return _sha256_json(self.design_part())


def _sha256_json(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()
