"""Simulation study: does a design recover the known truth of the data-generating process?

``run_simulation(spec, replicates=...)`` draws new registries and trial arms from
``sample_data.simulator``, runs every design of the spec on each and returns the
per-replicate estimates and the performance table (bias, empirical and model SE, RMSE,
coverage, each with its Monte Carlo SE). ``write_outputs`` writes the CSV, markdown,
figure and HTML page.
"""

from synthctl.simulation.metrics import PerformanceMeasures, performance_measures
from synthctl.simulation.outputs import write_outputs
from synthctl.simulation.spec import SimulationSpec, default_spec_path, load_simulation_spec
from synthctl.simulation.study import SimulationResult, run_simulation, summarise_runs

__all__ = [
    "PerformanceMeasures",
    "SimulationResult",
    "SimulationSpec",
    "default_spec_path",
    "load_simulation_spec",
    "performance_measures",
    "run_simulation",
    "summarise_runs",
    "write_outputs",
]
