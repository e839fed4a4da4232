"""Figures return matplotlib Figures and draw what they claim."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from matching import balance_table, love_plot, ps_overlap_plot


def test_love_plot_has_one_tick_per_covariate(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.random(60)})
    t = np.arange(60) < 20
    fig = love_plot(balance_table(X, t, distance=rng.random(60)))
    assert isinstance(fig, Figure)
    labels = [tk.get_text() for tk in fig.axes[0].get_yticklabels()]
    assert sorted(labels) == ["a", "b"]  # the distance row is not plotted
    fig.savefig(tmp_path / "love.png")
    assert (tmp_path / "love.png").stat().st_size > 0


def test_overlap_plot_mirrors_the_arms():
    rng = np.random.default_rng(1)
    ps = rng.random(100)
    t = np.arange(100) < 30
    fig = ps_overlap_plot(ps, t, weights=np.ones(100))
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert min(heights) < 0 < max(heights)  # registry drawn below the axis
