"""``synthctl platform PLATFORM.yaml --out DIR``: several cohort studies in one run (issue 15).

The platform file lists cohorts, each a study spec plus optional overrides (deep-merged into
the spec's YAML, e.g. ``{analysis: {bootstrap: 0}}``)::

    platform: {name: IMMUNORARE5 (demo)}
    cohorts:
      - {name: mesothelioma, spec: meso.yaml}
      - {name: thymic, spec: thymic.yaml, overrides: {analysis: {bootstrap: 0}}}

Each cohort runs with `synthctl.runner.run_study` into ``DIR/<name>`` (its own design lock,
manifest and atomic write). A cohort that fails is recorded with its error and the others
still run. Then the platform's ``results.json`` (one row per cohort), ``forest.svg`` and
``report.html`` are written beside the cohort folders; the whole platform folder is swapped
in atomically. Exit code 0 when every cohort succeeded, 1 when one failed or missed a declared
check, 2 for a bad platform file.
"""

from __future__ import annotations

import copy
import html
import io
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from synthctl.atomic import atomic_output
from synthctl.commands._common import AsJson, Debug, OutOpt, Quiet, guard
from synthctl.errors import SpecError, SynthctlError
from synthctl.outdir import MANIFEST, sha256_file, write_json
from synthctl.stages._context import RESULTS

PLATFORM_SCHEMA_VERSION = 1
PLATFORM_REPORT = "report.html"
FOREST_FIGURE = "forest.svg"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlatformInfo(_Model):
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None


class Cohort(_Model):
    """One cohort: a study spec (relative to the platform file) and overrides."""

    name: str
    spec: Path
    overrides: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"cohort name {value!r} must be a folder name (letters, digits, "
                             "'_', '-', '.')")
        return value


class PlatformSpec(_Model):
    platform: PlatformInfo
    cohorts: Annotated[list[Cohort], Field(min_length=1)]

    @field_validator("cohorts")
    @classmethod
    def _unique(cls, value: list[Cohort]) -> list[Cohort]:
        names = [c.name for c in value]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"cohort names listed twice: {dup}")
        return value


def load_platform(path: str | Path) -> PlatformSpec:
    """Read and validate a platform file; cohort spec paths become absolute."""
    path = Path(path).resolve()
    if not path.is_file():
        raise SpecError(f"platform file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc})") from exc
    try:
        spec = PlatformSpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise SpecError("invalid platform file:\n" + "\n".join(lines)) from exc
    cohorts = [c.model_copy(update={"spec": (path.parent / c.spec).resolve()})
               for c in spec.cohorts]
    return spec.model_copy(update={"cohorts": cohorts})


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _run_cohort(cohort: Cohort, folder: Path) -> dict[str, Any]:
    """Run one cohort; never raises for a cohort's own error (it is returned)."""
    from synthctl.runner import run_study
    from synthctl.specfile import load_spec

    entry: dict[str, Any] = {"name": cohort.name, "spec": str(cohort.spec),
                             "folder": cohort.name, "overrides": cohort.overrides}
    tmp_spec: Path | None = None
    try:
        spec_path = cohort.spec
        if cohort.overrides:
            if not spec_path.is_file():
                raise SpecError(f"study spec not found: {spec_path}")
            base = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
            if not isinstance(base, dict):
                raise SpecError(f"{spec_path}: a study spec is a YAML mapping")
            merged = _merge(base, cohort.overrides)
            # beside the original so that its relative paths still resolve
            fd, name = tempfile.mkstemp(prefix=f".{spec_path.stem}.platform-", suffix=".yaml",
                                        dir=spec_path.parent)
            tmp_spec = Path(name)
            with open(fd, "w", encoding="utf-8") as fh:
                yaml.safe_dump(merged, fh, sort_keys=False)
            spec_path = tmp_spec
        loaded = load_spec(spec_path)
        result = run_study(loaded, folder / cohort.name)
        entry.update(status="ok" if result.exit_code == 0 else "check_failed",
                     exit_code=result.exit_code, error=None,
                     manifest_sha256=sha256_file(folder / cohort.name / MANIFEST),
                     **summarise(result.results or {},
                                  loaded.spec.analysis.primary_endpoint))
    except SynthctlError as exc:
        entry.update(status="failed", exit_code=exc.exit_code, error=str(exc))
    except Exception as exc:  # a bug in one cohort must not hide the others
        entry.update(status="failed", exit_code=70,
                     error=f"internal error (a bug in synthctl): {type(exc).__name__}: {exc}")
    finally:
        if tmp_spec is not None:
            tmp_spec.unlink(missing_ok=True)
    return entry


def summarise(results: dict[str, Any], primary_name: str) -> dict[str, Any]:
    """The platform row of one cohort's results.json: counts, primary endpoint, Simon."""
    counts = results.get("counts", {})
    endpoints = results.get("endpoints", {})
    row: dict[str, Any] = {
        "trial_n": counts.get("trial"), "control_pool": counts.get("control_pool"),
        "control_ess": counts.get("control_ess"), "primary_endpoint": primary_name,
    }
    ep = endpoints.get(primary_name) or {}
    if ep.get("landmarks"):
        lm = ep["landmarks"][0]
        row["primary"] = {
            "measure": f"{primary_name} rate at {lm['time']:g} {lm['unit']}",
            "trial": lm["trial"].get("estimate"), "control": lm["control"].get("estimate"),
            "difference": {k: lm["difference"].get(k) for k in ("estimate", "lower", "upper")},
            "ratio": {"measure": "hazard ratio",
                      **{k: (ep.get("hazard_ratio") or {}).get(k)
                         for k in ("estimate", "lower", "upper")}},
        }
    elif "proportion" in ep:
        p = ep["proportion"]
        row["primary"] = {
            "measure": f"{primary_name} proportion",
            "trial": p["trial"].get("estimate"), "control": p["control"].get("estimate"),
            "difference": {k: p["difference"].get(k) for k in ("estimate", "lower", "upper")},
            "ratio": {"measure": "risk ratio",
                      **{k: p["ratio"].get(k) for k in ("estimate", "lower", "upper")}},
        }
    # the primary endpoint's Simon analysis first, else the first endpoint that has one
    simon = next((e["simon"] for e in (ep, *endpoints.values())
                  if isinstance(e, dict) and isinstance(e.get("simon"), dict)), None)
    row["simon_decision"] = None if simon is None else simon.get("decision", simon.get("error"))
    return row


def run_platform(platform: str | Path, out: str | Path) -> tuple[int, dict[str, Any]]:
    """Run every cohort of a platform file into ``out``; return (exit code, results)."""
    spec = load_platform(platform)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with atomic_output(out, command="platform") as work:
        rows = [_run_cohort(c, work) for c in spec.cohorts]
        results = {"schema_version": PLATFORM_SCHEMA_VERSION, "platform": spec.platform.name,
                   "description": spec.platform.description, "cohorts": rows}
        artifacts = {RESULTS: write_json(work / RESULTS, results)}
        (work / FOREST_FIGURE).write_text(_forest_svg(rows), encoding="utf-8")
        artifacts[FOREST_FIGURE] = sha256_file(work / FOREST_FIGURE)
        (work / PLATFORM_REPORT).write_text(_report_html(spec, rows, work), encoding="utf-8")
        artifacts[PLATFORM_REPORT] = sha256_file(work / PLATFORM_REPORT)
        write_json(work / MANIFEST, {
            "kind": "platform", "platform_file": str(Path(platform).resolve()),
            "platform_sha256": sha256_file(Path(platform).resolve()), "started": started,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "cohorts": {r["name"]: {"status": r["status"],
                                    "manifest_sha256": r.get("manifest_sha256")} for r in rows},
            "artifacts": artifacts,
        })
    code = 0 if all(r["status"] == "ok" for r in rows) else 1
    return code, results


def _forest_svg(rows: list[dict[str, Any]]) -> str:
    from reports.forest import forest_figure

    shown = [r for r in rows if r.get("primary")]
    if not shown:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>\n'
    labels = [f"{r['name']}: {r['primary']['measure']}" for r in shown]
    diff = [r["primary"]["difference"] for r in shown]
    fig = forest_figure(labels, [d["estimate"] for d in diff], [d["lower"] for d in diff],
                        [d["upper"] for d in diff], null=0.0,
                        xlabel="trial minus synthetic control (95% CI)")
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.1f}%" if pct else f"{x:.3g}"


def _report_html(spec: PlatformSpec, rows: list[dict[str, Any]], work: Path) -> str:
    e = html.escape
    head = ("<tr><th>cohort</th><th>status</th><th>trial n</th><th>pool</th><th>ESS</th>"
            "<th>primary</th><th>trial</th><th>control</th><th>difference (95% CI)</th>"
            "<th>HR or ratio (95% CI)</th><th>Simon</th></tr>")
    body = []
    for r in rows:
        p = r.get("primary") or {}
        d, q = p.get("difference") or {}, p.get("ratio") or {}
        cells = [
            f'<a href="{e(r["folder"])}/report.html">{e(r["name"])}</a>'
            if r["status"] != "failed" else e(r["name"]),
            e(r["status"]) + (f"<br><small>{e(r['error'])}</small>" if r.get("error") else ""),
            _fmt(r.get("trial_n")), _fmt(r.get("control_pool")), _fmt(r.get("control_ess")),
            e(p.get("measure", "")), _fmt(p.get("trial"), True), _fmt(p.get("control"), True),
            f"{_fmt(d.get('estimate'), True)} ({_fmt(d.get('lower'), True)}, "
            f"{_fmt(d.get('upper'), True)})" if d else "",
            f"{e(q.get('measure', ''))} {_fmt(q.get('estimate'))} ({_fmt(q.get('lower'))}, "
            f"{_fmt(q.get('upper'))})" if q else "",
            e(r.get("simon_decision") or ""),
        ]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    svg = (work / FOREST_FIGURE).read_text(encoding="utf-8")
    svg = svg[svg.find("<svg"):]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{e(spec.platform.name)}</title><style>body{{font-family:sans-serif;"
        "margin:2em}}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;vertical-align:top}</style></head><body>"
        f"<h1>{e(spec.platform.name)}</h1><p>{e(spec.platform.description or '')}</p>"
        f"<table>{head}{''.join(body)}</table><h2>Primary endpoint, trial minus control</h2>"
        f"{svg}</body></html>\n"
    )


PlatformArg = Annotated[Path | None, typer.Argument(
    help="Platform file (YAML); without it, the shipped demo platform.", show_default=False)]


def platform(out: OutOpt, spec: PlatformArg = None, quiet: Quiet = False,
             as_json: AsJson = False, debug: Debug = False) -> None:
    """Run several cohort studies (a platform trial) and write a platform report."""
    import json

    if spec is None:
        from sample_data.paths import DEMO_PLATFORM

        spec = Path(DEMO_PLATFORM)

    code, results = guard(debug, lambda: run_platform(spec, out))
    if as_json:
        typer.echo(json.dumps(results, indent=2, sort_keys=True, default=str))
    elif not quiet:
        for r in results["cohorts"]:
            typer.echo(f"{r['name']}: {r['status']}" + (f" ({r['error']})" if r["error"] else ""))
        typer.echo(f"platform report: {Path(out) / PLATFORM_REPORT}")
    raise typer.Exit(code)
