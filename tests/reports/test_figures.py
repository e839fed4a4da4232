"""km_figure: curves, bands, dashed registry curve, weighted rounded numbers at risk, marks."""

from __future__ import annotations

from matplotlib.figure import Figure

from reports.compare import compare_arms
from reports.figures import km_figure, save_figure
from reports.km import km_estimate
from tests.reports._reference import PM_COLUMNS, eligible


def test_km_figure_content(tmp_path):
    d = eligible()
    comp = compare_arms(
        d,
        **PM_COLUMNS,
        weight_col="w_att",
        landmarks=[24],
        null_rate=0.35,
        time_unit="weeks",
    )
    reg = d[d["treated"] == 0]
    raw = km_estimate(reg["pfs_weeks"], reg["pfs_event"])
    fig = km_figure(comp, unadjusted_control=raw, risk_times=[0, 24, 48])
    assert isinstance(fig, Figure)
    ax, tab = fig.axes
    styles = {ln.get_label(): ln.get_linestyle() for ln in ax.get_lines()}
    assert styles["Registry, unadjusted"] == "--" and styles["Trial"] == "-"
    assert len(ax.collections) == 2  # two CI bands (trial, control), none for the registry
    # landmark and null rate marked
    xs = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    ys = [ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    assert 24 in xs and 0.35 in ys
    # numbers at risk (defect 16): patients per arm, and the control's weighted number with
    # its scale stated (ATT odds weights sum to about the trial size, not to the pool)
    texts = [t.get_text() for t in tab.texts]
    at24 = comp.control_curve.at([24])
    assert f"{at24['n_risk'].to_numpy()[0]:.1f}" in texts
    assert f"{at24['n_risk_rows'].to_numpy()[0]:.0f}" in texts and "60" in texts
    assert int(at24["n_risk_rows"].to_numpy()[0]) == int((d.loc[d["treated"] == 0,
                                                                "pfs_weeks"] >= 24).sum())
    labels = [t.get_text() for t in tab.get_yticklabels()]
    assert labels == ["Synthetic control, weighted", "Synthetic control, patients",
                      "Trial, patients"]
    assert "weights sum to" in tab.get_title(loc="left")
    assert save_figure(fig, tmp_path / "km.png").stat().st_size > 1000
