"""The one Jinja environment of the HTML pages (study report, simulation, quality dashboard).

Strict: a name missing from the data a template is handed is an error, not an empty cell.
Autoescaped; templates live in ``reports/templates``.
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@cache
def environment() -> Environment:
    """The shared environment (filters are registered by the pages that use them)."""
    return Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
