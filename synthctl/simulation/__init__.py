"""Simulation study: does a design recover the known truth of the data-generating process?

``run_simulation(spec, replicates=...)`` draws new registries and trial arms from
``sample_data.simulator``, runs every design of the spec on each and returns the
per-replicate estimates and the performance table (bias, empirical and model SE, RMSE,
coverage, each with its Monte Carlo SE). ``write_outputs`` writes the CSV, markdown,
figure and HTML page.
"""
