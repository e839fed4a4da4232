"""synthctl: synthetic historical control arms from registries for single-arm trials.

The Python entry point is `Study` (``synthctl.Study.from_spec("study.yaml")``): the CLI's
stages (extract, design, analyze, report) as methods, with the same guarantees and outputs.
Names are loaded on first use, so ``import synthctl`` (and the CLI) stays light.
"""

__version__ = "0.1.0"

__all__ = [
    "BlindCohort",
    "DataError",
    "DesignChangedError",
    "LoadedSpec",
    "RegistryConnectionError",
    "RunResult",
    "SpecError",
    "Study",
    "StudyResults",
    "StudySpec",
    "SynthctlError",
    "load_spec",
    "run_study",
    "spec_from_mapping",
]

_WHERE = {
    "BlindCohort": "synthctl.study", "Study": "synthctl.study", "StudyResults": "synthctl.study",
    "DataError": "synthctl.errors", "DesignChangedError": "synthctl.errors",
    "RegistryConnectionError": "synthctl.errors", "SpecError": "synthctl.errors",
    "SynthctlError": "synthctl.errors", "RunResult": "synthctl.runner",
    "run_study": "synthctl.runner", "LoadedSpec": "synthctl.specfile",
    "load_spec": "synthctl.specfile", "spec_from_mapping": "synthctl.specfile",
    "StudySpec": "synthctl.spec",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'synthctl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
