"""synthctl: synthetic historical control arms from registries for single-arm trials."""

__version__ = "0.1.0"
