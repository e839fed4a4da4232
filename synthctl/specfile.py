"""Load a study spec from YAML: ``${ENV_VAR}`` substitution, relative paths, and error messages
that name the YAML path and line.

PyYAML's composed node tree keeps each value's position (``node.start_mark``); pydantic's
error ``loc`` tuples are walked down that tree to find the line of the offending key or item.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from connectors import columns as cn
from connectors.yamlfile import YamlFileError, dotted_path, load_yaml, locate, short
from synthctl.errors import SpecError
from synthctl.spec import StudySpec, unknown_key_message, yaml_loc

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class LoadedSpec:
    """A validated spec with where it came from.

    Attributes
    ----------
    spec : StudySpec
        The validated, frozen spec (paths absolute, ``${ENV}`` substituted).
    path : Path
        The YAML file.
    sha256 : str
        SHA-256 of the file's bytes (before substitution: secrets never enter it).
    secrets : tuple of str
        Values substituted from the environment, to scrub from any message or file.
    """

    spec: StudySpec
    path: Path
    sha256: str
    secrets: tuple[str, ...] = ()

    def scrub(self, text: str) -> str:
        """Replace every substituted environment value in ``text`` by ``***``."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def load_spec(path: str | Path, *, check_files: bool = True) -> LoadedSpec:
    """Read, substitute, validate and cross-check a study spec.

    Parameters
    ----------
    path : str or Path
        The YAML file. Relative paths inside it are relative to its folder.
    check_files : bool, default=True
        Check that the files it names exist (and read the flat file's header).

    Raises
    ------
    SpecError
        With the file, the YAML path (``design.method``) and the line of every problem.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise SpecError(f"study spec not found: {path}")
    try:
        doc = load_yaml(path, what="study spec")
    except YamlFileError as exc:
        raise SpecError(str(exc)) from exc
    root, data = doc.root, doc.data
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a study spec is a YAML mapping (study:, covariates:, ...)")
    secrets: list[str] = []
    data = _substitute(data, (), root, path, secrets)
    context = {"base_dir": path.parent, "check_files": check_files}
    try:
        spec = StudySpec.model_validate(data, context=context)
    except ValidationError as exc:
        raise SpecError(_format_errors(path, root, exc.errors())) from exc
    problems = _cross_check(spec, check_files)
    if problems:
        lines = [_locate(path, root, loc, msg) for loc, msg in problems]
        raise SpecError(f"invalid study spec {path}:\n" + "\n".join(lines))
    return LoadedSpec(spec, path, doc.sha256, tuple(secrets))


def spec_from_mapping(data: Any, *, base_dir: str | Path = ".", check_files: bool = True,
                      source: str = "<python>") -> LoadedSpec:
    """Validate and cross-check a spec given as Python data (a dict or a `StudySpec`).

    The same models and cross-checks as `load_spec` (no ``${ENV}`` substitution: Python code
    passes its values directly). ``path`` is ``base_dir / source`` and ``sha256`` the SHA-256
    of the spec's canonical JSON (the manifest records both).

    Raises
    ------
    SpecError
        Every problem, with its spec path (``design.method``).
    """
    base = Path(base_dir).expanduser().resolve()
    if isinstance(data, StudySpec):
        data = data.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a study spec is a mapping (study:, covariates:, ...)")
    where = base / source
    try:
        spec = StudySpec.model_validate(data, context={"base_dir": base,
                                                      "check_files": check_files})
    except ValidationError as exc:
        problems = [(yaml_loc(tuple(e["loc"])),
                     unknown_key_message(tuple(e["loc"])) if e["type"] == "extra_forbidden"
                     else "required key missing" if e["type"] == "missing" else e["msg"])
                    for e in exc.errors()]
    else:
        problems = _cross_check(spec, check_files)
    if problems:
        lines = [f"  {dotted_path(loc) or '(top level)'}: {msg}" for loc, msg in problems]
        raise SpecError(f"invalid study spec {source}:\n" + "\n".join(lines))
    canon = spec.model_dump_json(by_alias=True).encode()
    return LoadedSpec(spec, where, hashlib.sha256(canon).hexdigest(), ())


def known_columns(spec: StudySpec, *, check_files: bool = True) -> list[str]:
    """Columns that covariates and eligibility criteria may name for this spec's source.

    A registry's: the built-in covariates plus the covariates its mapping declares.
    """
    if spec.data is None:
        mapping = _registry_mapping(spec, check_files)
        return [*cn.COVARIATE_COLUMNS, *(mapping.covariates if mapping is not None else ())]
    if not check_files:
        return []
    from connectors.flatfile import read_header

    d = spec.data
    outcomes = {d.id, d.arm, d.time, d.event, d.response}  # the response is an outcome too
    return [c for c in read_header(d.path) if c not in outcomes]


def _registry_mapping(spec: StudySpec, check_files: bool):
    """The registry's mapping (None without one, or when files are not checked)."""
    reg = spec.registry
    if reg is None or reg.mapping is None or not check_files:
        return None
    from connectors.errors import MappingError
    from connectors.mapping import load_mapping

    try:
        return load_mapping(reg.mapping)
    except MappingError as exc:
        raise SpecError(str(exc)) from exc


def _cross_check(spec: StudySpec, check_files: bool) -> list[tuple[tuple, str]]:
    """Checks that need more than one field: covariates and criteria against known columns."""
    problems: list[tuple[tuple, str]] = []
    if spec.data is not None and check_files:
        from connectors.errors import ConnectorError
        from connectors.flatfile import read_header

        try:
            header = read_header(spec.data.path)
        except ConnectorError as exc:
            return [(("data", "path"), str(exc))]
        for key in ("id", "arm", "time", "event", "response"):
            col = getattr(spec.data, key)
            if col is not None and col not in header:
                from connectors.hostile import lookalike_hint

                problems.append(
                    (("data", key), f"column {col!r} not in {spec.data.path.name} "
                                    f"(columns: {', '.join(header)}){lookalike_hint(col, header)}")
                )
    known = known_columns(spec, check_files=check_files)
    if known:
        for i, cov in enumerate(spec.covariates):
            if cov not in known:
                from connectors.hostile import lookalike_hint

                problems.append(
                    (("covariates", i), f"unknown covariate {short(cov)}; known: {', '.join(known)}"
                                        f"{lookalike_hint(cov, known)}")
                )
        for i, col in enumerate(getattr(spec.design, "exact", None) or []):
            if col not in known:
                problems.append((("design", "exact", i), f"unknown column {short(col)}"))
        # a registry's criteria may also read centre_id/disease: the parser's own default
        problems += _check_criteria(spec.eligibility, known if spec.data is not None else
                                    _registry_kinds(spec, check_files))
        problems += _absent_sources(spec, check_files)
    return problems


def _registry_kinds(spec: StudySpec, check_files: bool) -> dict[str, str] | None:
    mapping = _registry_mapping(spec, check_files)
    if mapping is None or not mapping.covariates:
        return None
    from connectors.mapping import criterion_kinds

    return criterion_kinds(mapping)


def _absent_sources(spec: StudySpec, check_files: bool) -> list[tuple[tuple, str]]:
    """Covariates and criteria that need a column the mapping declares absent."""
    mapping = _registry_mapping(spec, check_files)
    if mapping is None:
        return []
    from connectors.derivation import unavailable_features
    from connectors.eligibility import parse_criterion
    from connectors.errors import CriterionError

    unavailable = unavailable_features(mapping)
    problems: list[tuple[tuple, str]] = []
    for i, cov in enumerate(spec.covariates):
        if cov in unavailable:
            problems.append((("covariates", i), f"covariate {cov} cannot be derived: "
                                                f"{unavailable[cov]}"))
    for i, text in enumerate(spec.eligibility):
        try:
            columns = parse_criterion(text, _registry_kinds(spec, check_files)).columns
        except CriterionError:
            continue  # reported by _check_criteria
        for col in columns:
            if col in unavailable:
                problems.append((("eligibility", i), f"criterion {short(text)} reads {col}, "
                                                     f"which cannot be derived: "
                                                     f"{unavailable[col]}"))
    return problems


def _check_criteria(criteria: Sequence[str], known: list[str] | None) -> list[tuple[tuple, str]]:
    from connectors.eligibility import parse_criterion
    from connectors.errors import CriterionError

    problems = []
    for i, text in enumerate(criteria):
        try:
            parse_criterion(text, known)
        except CriterionError as exc:
            problems.append((("eligibility", i), str(exc)))
    return problems


def _substitute(obj: Any, loc: tuple, root: yaml.Node | None, path: Path, secrets: list[str]):
    if isinstance(obj, dict):
        return {k: _substitute(v, (*loc, k), root, path, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, (*loc, i), root, path, secrets) for i, v in enumerate(obj)]
    if isinstance(obj, str) and "${" in obj:
        def repl(m: re.Match) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise SpecError(
                    _locate(path, root, loc, f"environment variable {name} is not set")
                )
            value = os.environ[name]
            secrets.append(value)
            return value

        return _ENV.sub(repl, obj)
    return obj


def _format_errors(path: Path, root: yaml.Node | None, errors: list[dict]) -> str:
    lines = []
    for err in errors:
        loc = yaml_loc(tuple(err["loc"]))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = unknown_key_message(tuple(err["loc"]))
        elif err["type"] == "missing":
            msg = "required key missing"
        lines.append(_locate(path, root, loc, msg, missing=err["type"] == "missing"))
    return f"invalid study spec {path}:\n" + "\n".join(lines)


def _locate(path: Path, root: yaml.Node | None, loc: tuple, msg: str, *,
            missing: bool = False) -> str:
    """``<file>:<line>: <yaml.path>: <msg>`` for a pydantic-style loc."""
    return locate(path, root, loc, msg, missing=missing)
