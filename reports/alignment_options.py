"""Options of the harmonised PFS estimate and their defaults (no heavy imports: the spec reads
them when it validates ``analysis.endpoint_alignment``)."""

from __future__ import annotations

GRID_WINDOW = 0.1  # visit window of the grid, as a fraction of grid_every (6 weeks: +/- 4.2 d)

#: What a progression's time within its interval is drawn from, per arm (weighted), with the
#: words the method text uses. "grid_hazard" (default): a hazard constant within each grid
#: cell, fitted by interval-censored maximum likelihood (`reports.grid_hazard`), the stated
#: model for stretches the data do not identify (the registry's first scan after the first
#: grid visit). "turnbull": the arm's Turnbull NPMLE (mass on the support points inside the
#: interval, uniform within a Turnbull interval), which over-states early progression there
#: (benchmarks/README.md, "Endpoint alignment"); kept as a sensitivity analysis.
IMPUTATION_MODELS: dict[str, str] = {
    "grid_hazard": "each arm's weighted piecewise-exponential model (hazard constant within "
                   "each grid cell, interval-censored maximum likelihood)",
    "turnbull": "each arm's weighted Turnbull NPMLE",
}
DEFAULT_IMPUTATION_MODEL = "grid_hazard"
