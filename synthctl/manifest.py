"""``manifest.json``: the audit trail of a study's output folder.

It records what went in (spec hash, input file hashes, the registry URL without its password and
a hash of the extracted pool), how (package versions, seed, allow_redesign) and what came out of
each stage (start/end times, seconds, SHA-256 of every artifact). ``analyze`` compares the locked
design's hashes recorded here with the folder and the spec before it reads any outcome.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from synthctl.errors import DesignChangedError
from synthctl.outdir import DESIGN, MANIFEST, RESULTS, read_json, sha256_file, write_json

MANIFEST_VERSION = 1
_PACKAGES = ("synthctl", "numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "lifelines",
             "SQLAlchemy", "pydantic", "matplotlib", "pyarrow", "jinja2")


def mask_url(url: str) -> str:
    """The URL with every password replaced by ``***`` (`connectors.urls.mask_url`)."""
    from connectors.urls import mask_url as _mask

    return _mask(url)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that change numbers, plus Python's."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Manifest:
    """Mutable manifest being built by the stages; `save` writes ``manifest.json``."""

    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load_or_new(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if path.is_file():
            return cls(read_json(path))
        return cls({"manifest_version": MANIFEST_VERSION, "stages": {}, "warnings": []})

    def set_study(self, loaded, *, allow_redesign: bool) -> None:
        """Record spec identity, seed, packages and the redesign flag."""
        spec = loaded.spec
        self.data.update(
            study=spec.study.name,
            seed=spec.study.seed,
            spec={"path": str(loaded.path), "sha256": loaded.sha256,
                  "design_sha256": spec.design_hash()},
            packages=package_versions(),
        )
        self.data["allow_redesign"] = bool(allow_redesign or self.data.get("allow_redesign"))
        self.data.setdefault("started", _now())

    def record_input(self, name: str, entry: dict[str, Any]) -> None:
        self.data.setdefault("inputs", {})[name] = entry

    def record_file_input(self, name: str, path: Path) -> None:
        self.record_input(name, {"path": str(path), "sha256": sha256_file(path)})

    def start_stage(self, stage: str) -> float:
        self.drop_stages(stage)
        self.data["stages"][stage] = {"started": _now()}
        return time.perf_counter()

    def end_stage(self, stage: str, t0: float, artifacts: dict[str, str], **extra: Any) -> None:
        entry = self.data["stages"][stage]
        entry.update(finished=_now(), seconds=round(time.perf_counter() - t0, 3),
                     artifacts=dict(sorted(artifacts.items())), **extra)
        self.data["finished"] = entry["finished"]

    def drop_stages(self, *stages: str) -> None:
        """Forget later stages (a re-run of an earlier stage invalidates them)."""
        for s in stages:
            self.data["stages"].pop(s, None)
        self.data["warnings"] = [w for w in self.data.get("warnings", [])
                                 if w.get("stage") not in stages]

    def warn(self, stage: str, message: str, *, kind: str = "warning") -> None:
        self.data.setdefault("warnings", []).append(
            {"stage": stage, "kind": kind, "message": message}
        )

    def record_redesign(self, previous: dict[str, Any], new_design_sha256: str,
                        changes: list[str]) -> None:
        """Append a redesign to ``redesigns`` (never rewritten: the earlier hashes stay).

        Parameters
        ----------
        previous : dict
            The manifest data of the folder before the redesign.
        new_design_sha256 : str
            The hash of the spec's design part now used.
        changes : list of str
            What changed, as the design lock found it.
        """
        stages = previous.get("stages", {})
        design = stages.get("design", {})
        entry = {
            "time": _now(),
            "old_design_sha256": design.get("spec_design_sha256"),
            "new_design_sha256": new_design_sha256,
            "old_design_json_sha256": design.get("artifacts", {}).get(DESIGN),
            "old_results_sha256": stages.get("analyze", {}).get("artifacts", {}).get(RESULTS),
            "outcomes_analysed": "analyze" in stages,
            "changes": list(changes),
        }
        self.data.setdefault("redesigns", []).append(entry)
        seen = "after the outcomes were analysed" if entry["outcomes_analysed"] else \
            "after the design was locked"
        self.warn("redesign", f"design re-run by --allow-redesign {seen}: " + "; ".join(changes),
                  kind="redesign")

    def save(self, folder: Path) -> None:
        write_json(folder / MANIFEST, self.data)

    def balance_code(self) -> int:
        """1 if the design stage recorded a failed balance check, else 0."""
        design = self.data.get("stages", {}).get("design", {})
        return 0 if design.get("balance_passed", True) else 1

    def check_design_lock(self, folder: Path, spec_design_hash: str) -> list[str]:
        """What changed since the design stage locked the design (empty list: nothing).

        Raises
        ------
        DesignChangedError
            If no design stage was recorded in this folder.
        """
        design = self.data.get("stages", {}).get("design")
        if not design or "artifacts" not in design:
            raise DesignChangedError(
                f"{folder}: no locked design found (run `synthctl design` first)"
            )
        changes = []
        for name, digest in design["artifacts"].items():
            path = folder / name
            if not path.is_file():
                changes.append(f"{name} is missing")
            elif sha256_file(path) != digest:
                changes.append(f"{name} changed since the design stage (SHA-256 differs)")
        for _name, entry in sorted(self.data.get("inputs", {}).items()):
            if "sha256" not in entry:  # the registry: its pool hash is checked by extract
                continue
            path = Path(entry["path"])
            if not path.is_file() or sha256_file(path) != entry["sha256"]:
                changes.append(f"input file {path.name} changed since the extract stage")
        if design.get("spec_design_sha256") != spec_design_hash:
            changes.append("the spec's design part (seed, eligibility, covariates, design) "
                           "changed since the design stage")
        return changes
