"""Issue 5: pages send the browser only what it draws (benchmarks/pages.py measures the time)."""
from __future__ import annotations

import json

import numpy as np

from core.engine import Lattice
from ui import charts
from ui.compute import gem_options


def test_gem_picker_lists_a_capped_searchable_subset_and_keeps_the_chosen():
    ids = [f"g{i}" for i in range(2000)]
    titles = {g: f"Title {i}" for i, g in enumerate(ids)}
    coherence = np.linspace(0, 1, 2000)  # g1999 is the most coherent
    options, matches = gem_options(ids, titles, coherence, ["g3"], cap=100)
    assert matches == 2000 and len(options) == 101
    assert options[0] == "g3" and options[1:4] == ["g1999", "g1998", "g1997"]
    options, matches = gem_options(ids, titles, coherence, ["g3"], "title 12", cap=100)
    assert options[0] == "g3" and {titles[g] for g in options[1:]} <= {t for t in titles.values() if "Title 12" in t}
    assert matches == 1 + 10 + 100  # Title 12, Title 120-129, Title 1200-1299
    small, n = gem_options(ids[:50], titles, coherence[:50], [], cap=100)
    assert small == ids[:50] and n == 50  # a small lattice lists every gem, in its order


def test_interference_heatmap_sends_names_once_per_row_not_per_cell():
    rng = np.random.default_rng(3)
    n = 200
    lat = Lattice(phase=rng.uniform(0, 6.3, n), coherence=rng.uniform(0, 1, n))
    m, order, block = charts.interference_view(lat.coherence, lat.phase, range(n))
    labels = ["same title"] * n  # duplicates still give distinct rows
    fig = charts.interference_heatmap(m, labels, np.degrees(np.mod(lat.phase[order], 2 * np.pi)), block=block)
    spec = json.loads(fig.to_json())
    heat = spec["data"][0]
    assert "text" not in heat and len(heat["x"]) == n and len(set(heat["x"])) == n
    assert heat["x"][0].startswith("same title (") and "%{y}<br>× %{x}" in heat["hovertemplate"]
    assert spec["layout"]["xaxis"]["type"] == "category" and spec["layout"]["yaxis"]["autorange"] == "reversed"
    assert len(fig.to_json()) < 20 * n * n  # a few bytes per cell (the float32 matrix), no per-cell strings


def test_network_sends_float32_coordinates_and_numbers_for_the_hover():
    from tests.ui.helpers import values
    rng = np.random.default_rng(4)
    n = 300
    phase, coh = rng.uniform(0, 6.3, n), rng.uniform(0, 1, n)
    ei, ej = np.arange(0, n - 1), np.arange(1, n)
    spec = json.loads(charts.entanglement_network(phase, coh, [f"gem {i}" for i in range(n)],
                                                  (ei, ej, np.full(n - 1, 0.6))).to_json())
    lines = next(t for t in spec["data"] if t.get("mode") == "lines" and t.get("name", "").startswith("weight"))
    nodes = next(t for t in spec["data"] if t.get("name") == "gems")
    assert lines["x"]["dtype"] == "f4" and nodes["x"]["dtype"] == "f4"
    assert nodes["text"][0] == "gem 0" and "%{customdata[1]:.3f}" in nodes["hovertemplate"]
    custom = values(nodes["customdata"]).reshape(len(nodes["text"]), 3)
    np.testing.assert_allclose(custom[:, 1], coh, rtol=1e-6)  # c of every node, for the hover
    np.testing.assert_allclose(custom[:, 0], np.degrees(np.mod(phase, 2 * np.pi)), rtol=1e-5)


def test_evolution_charts_get_at_most_1000_time_points_of_a_long_simulation():
    from tests.ui.helpers import app_as, chart_json, charts, texts, values
    at = app_as("viewer", "pages/2_Evolution.py")
    at.number_input(key="evo_horizon").set_value(2000.0)
    at.number_input(key="evo_dt").set_value(1.0).run()
    assert not at.exception, at.exception
    assert "2001 time points from t = 0 to 2000 hours" in texts(at.caption)
    specs = {chart_json(c)["layout"]["title"]["text"]: chart_json(c) for c in charts(at)}
    coherence = specs["Coherence over time"]
    median = next(t for t in coherence["data"] if t.get("name") == "median")
    x = values(median["x"])
    assert len(x) == 1000 and x[0] == 0 and x[-1] == 2000  # evenly thinned, ends kept
    followed = [t for t in coherence["data"] if t.get("name") not in (None, "median") and "all gems" not in t["name"]]
    assert len(followed) == 4 and all(len(values(t["x"])) == 1000 for t in followed)
    order = next(v for k, v in specs.items() if k.startswith("Order parameter"))
    assert len(values(order["data"][0]["x"])) == 1000


def test_interference_page_caps_the_heatmap_it_sends():
    from tests.ui.helpers import app_as, chart_json, values
    from tests.ui.helpers import charts as page_charts
    at = app_as("viewer", "pages/3_Interference.py")
    at.radio(key="int_mode").set_value("Choose gems").run()
    ids = at.multiselect(key="int_gems").options
    at.multiselect(key="int_gems").set_value(ids).run()  # all 168 demo gems: exact, below the cap
    assert not at.exception, at.exception
    heat = next(chart_json(c) for c in page_charts(at) if chart_json(c)["data"][0]["type"] == "heatmap")
    assert "168 gems" in heat["layout"]["title"]["text"] and "block" not in heat["layout"]["title"]["subtitle"]["text"]
    assert values(heat["data"][0]["z"]).size == 168 * 168
    assert charts.DRAWN_HEATMAP_SIDE < 168 * 3  # a 3x larger selection would be block-averaged
    m, order, block = charts.interference_view(np.ones(1200), np.linspace(0, 6, 1200), range(1200),
                                               max_side=charts.DRAWN_HEATMAP_SIDE)
    assert block == 3 and m.shape == (400, 400)
