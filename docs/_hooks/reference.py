"""mkdocs hook: the generated parts of the reference pages (never hand-copied tables).

- ``<!-- generated: spec -->`` in reference/spec.md: every key of the study spec with its
  type, default and constraints, read from the pydantic models (`synthctl.spec`); the
  ``design:`` keys per method from the models built from `matching.methods.METHODS`.
- ``<!-- generated: results.json -->`` in reference/results-json.md: the key tree of a real
  ``results.json``, made at build time by running the demo study through `synthctl.Study`
  (with a few bootstrap replicates, so the ``bootstrap`` block is there too).

`spec_reference()` and `results_reference()` are importable (tests/test_docs.py uses them).
"""

from __future__ import annotations

import functools
import json
import types
import typing
from pathlib import Path
from typing import Any

SPEC_MARK = "<!-- generated: spec -->"
RESULTS_MARK = "<!-- generated: results.json -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if SPEC_MARK in markdown:
        markdown = markdown.replace(SPEC_MARK, spec_reference())
    if RESULTS_MARK in markdown:
        markdown = markdown.replace(RESULTS_MARK, results_reference())
    return markdown


# -- the study spec ---------------------------------------------------------------------------

def _type_text(tp: Any) -> str:
    """A readable type: ``"nearest" | "optimal"``, ``list of float``, ``path or null``."""
    from pydantic import BaseModel

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _type_text(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a!r}`" if not isinstance(a, str) else f'`"{a}"`' for a in args)
    if origin in (typing.Union, types.UnionType) and any(
            getattr(a, "__name__", "").endswith("Design") for a in map(_strip, args)):
        return "mapping keyed on `method` ([per method](#design-per-method))"
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin in (list, tuple):
        return f"list of {_type_text(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping {_type_text(args[0])} to {_type_text(args[1])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"mapping ([`{_section_name(tp)}`](#{_anchor(tp)}))"
    if isinstance(tp, type) and issubclass(tp, Path):
        return "path (relative to the spec file)"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def _strip(tp: Any) -> Any:
    return typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp


def _constraints(field: Any) -> str:
    out = []
    for m in field.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="),
                          ("min_length", "length >="), ("max_length", "length <=")):
            if getattr(m, attr, None) is not None:
                out.append(f"{sym} {getattr(m, attr)}")
    return ", ".join(out)


def _default(field: Any) -> str:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    if field.is_required():
        return "**required**"
    value = field.default
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        return "(its defaults)"
    return "null" if value is None else f"`{json.dumps(value, default=str)}`"


def _section_name(model: type) -> str:
    return model.__name__


def _anchor(model: type) -> str:
    return model.__name__.lower()


def _model_table(model: type, heading: str) -> list[str]:
    doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    lines = [f"### {heading} {{#{_anchor(model)}}}", "", doc, "",
             "| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        desc = (field.description or "").replace("\n", " ").replace("|", "\\|")
        lines.append(f"| `{key}` | {_type_text(field.annotation)} | {_default(field)} | "
                     f"{_constraints(field)} | {desc} |")
    return [*lines, ""]


def spec_reference() -> str:
    """Markdown tables of every spec section, from the pydantic models."""
    from pydantic import BaseModel

    from synthctl.spec import DESIGN_MODELS, StudySpec

    sections: list[tuple[str, type]] = [("Top level", StudySpec)]
    seen = {StudySpec}

    def walk(model: type) -> None:
        for field in model.model_fields.values():
            for tp in _models_in(field.annotation):
                if tp not in seen and issubclass(tp, BaseModel):
                    seen.add(tp)
                    sections.append((tp.__name__, tp))
                    walk(tp)

    walk(StudySpec)
    out: list[str] = []
    for heading, model in sections:
        if model.__name__.endswith("Design") or model.__name__ == "_UnknownMethod":
            continue
        out += _model_table(model, f"`{heading}`" if heading != "Top level" else heading)
    out += ["## `design:` per method {#design-per-method}", "",
            "`design:` is a union keyed on `method`: each method takes the common options and "
            "its own (an option of another method is an error). Built from "
            "`matching.methods.METHODS`; see [the design methods](../methods/index.md).", ""]
    for method, model in DESIGN_MODELS.items():
        out += _model_table(model, f"`method: {method}`")
    return "\n".join(out)


def _models_in(tp: Any) -> list[type]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is None:
        return [tp] if isinstance(tp, type) else []
    return [m for a in args for m in _models_in(a)]


# -- results.json ----------------------------------------------------------------------------

@functools.cache
def demo_results() -> dict:
    """results.json of the demo study (10 bootstrap replicates: the shape, not the numbers)."""
    from sample_data.paths import DEMO_SPEC
    from synthctl import Study

    with Study.from_spec(DEMO_SPEC).with_analysis(bootstrap=10) as study:
        return study.analyze().to_dict()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "list", dict: "object"}[type(value)]


def _tree(value: Any, path: str, rows: list[tuple[str, str, str]]) -> None:
    example = "" if isinstance(value, dict | list) else json.dumps(value)
    rows.append((path, _kind(value), example if len(example) < 60 else example[:57] + "..."))
    if isinstance(value, dict):
        for key in value:
            _tree(value[key], f"{path}.{key}" if path else key, rows)
    elif isinstance(value, list) and value:
        _tree(value[0], f"{path}[]", rows)


def result_paths(results: dict) -> list[str]:
    """Every key path of ``results`` (lists as ``[]``, their first item)."""
    rows: list[tuple[str, str, str]] = []
    _tree(results, "", rows)
    return [r[0] for r in rows if r[0]]


def results_reference() -> str:
    """The key tree of the demo's results.json: path, JSON type, the demo's value."""
    rows: list[tuple[str, str, str]] = []
    _tree(demo_results(), "", rows)
    lines = ["| key | type | demo value |", "|---|---|---|"]
    lines += [f"| `{p}` | {k} | {('`' + e.replace('|', '/') + '`') if e else ''} |"
              for p, k, e in rows if p]
    return "\n".join(lines)
