"""Two independent implementations agree: SQL extraction vs the simulator's pandas frames.

`sample_data.simulator.simulate_analysis_frames` derives the control and trial analysis
frames in pandas, from the same simulated histories, by the rules of docs/sample_data.md;
the connector derives them in SQL from the written registry and from the ADaM files. They
must be equal to the last bit (same integer day counts, same divisions).
"""

import pandas as pd
import pytest

from connectors import columns as cn
from connectors.registry import IndexRule, RegistryConnector
from connectors.trial import load_trial_arm
from sample_data.simulator import SimulationConfig, simulate_analysis_frames, simulate_scenario
from sample_data.writer import write_registry_sqlite

CONFIG = SimulationConfig(seed=7, n_registry=800, truth_pool=1000, truth_draws=1000)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    scenario = simulate_scenario(CONFIG)
    control, trial, _ = simulate_analysis_frames(CONFIG)
    folder = tmp_path_factory.mktemp("sim")
    write_registry_sqlite(scenario.registry_tables, folder / "registry.sqlite")
    scenario.trial_adsl.to_csv(folder / "adsl.csv", index=False)
    scenario.trial_adtte.to_csv(folder / "adtte.csv", index=False)
    return folder, control, trial


def test_registry_extraction_equals_the_simulators_control_frame(simulated):
    folder, control, _ = simulated
    with RegistryConnector(f"sqlite:///{folder / 'registry.sqlite'}") as conn:
        pool = conn.candidate_pool(IndexRule(), include_outcomes=True)
    want = control.sort_values([cn.PATIENT_ID, cn.LINE_ID]).reset_index(drop=True)
    assert len(want) > 300
    pd.testing.assert_frame_equal(pool.frame.reset_index(drop=True), want, check_exact=True)
    assert pool.attrition.n_start == CONFIG.n_registry


def test_trial_loader_equals_the_simulators_trial_frame(simulated):
    folder, _, trial = simulated
    got = load_trial_arm(folder / "adsl.csv", folder / "adtte.csv")
    cols = [c for c in trial.columns if c != cn.DISEASE]  # ADaM has no disease variable
    assert list(got.columns) == cols
    pd.testing.assert_frame_equal(got, trial[cols].reset_index(drop=True), check_exact=True)
