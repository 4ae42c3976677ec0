"""Plotly figure builders for the workbench: pure functions, no streamlit.

Every builder takes plain arrays/DataFrames and returns a ``go.Figure`` with labelled axes
(time in the lattice time unit, phase in degrees, coherence/uncertainty/R on [0, 1]) and the
shared ``"lattice"`` template (:mod:`ui.charts.theme`), so charts look the same on every page
and can be unit-tested without a browser. Heatmaps are float32 and at most
``MAX_HEATMAP_SIDE`` x ``MAX_HEATMAP_SIDE`` cells; larger selections are block-averaged.
"""
from ui.charts.dynamics import coherence_over_time, order_parameter_over_time, phasor_polar, uncertainty_over_time
from ui.charts.experiments import compare_runs_chart, compare_sweeps_chart, decay_fit_chart, preview_chart, sweep_chart
from ui.charts.interference import (DRAWN_HEATMAP_SIDE, MAX_HEATMAP_SIDE, entanglement_network, interference_heatmap,
                                    interference_view)
from ui.charts.metrics import (HISTORY_AXES, cache_hit_ratio_chart, lattice_history_chart, latency_histogram,
                               provider_error_chart)
from ui.charts.theme import time_label

__all__ = ["coherence_over_time", "order_parameter_over_time", "phasor_polar", "uncertainty_over_time",
           "compare_runs_chart", "compare_sweeps_chart", "decay_fit_chart", "preview_chart", "sweep_chart", "DRAWN_HEATMAP_SIDE",
           "MAX_HEATMAP_SIDE", "entanglement_network", "interference_heatmap", "interference_view", "HISTORY_AXES",
           "cache_hit_ratio_chart", "lattice_history_chart", "latency_histogram", "provider_error_chart",
           "time_label"]
