"""Issue 11, items 12 and 19-22: what a researcher meets on the pages (AppTest)."""
from __future__ import annotations

import re

import pytest
from google.protobuf.json_format import MessageToDict

from core.access import SYSTEM
from tests.ui.helpers import app_as, chart_json, charts, texts

LATTICE = "pages/1_Lattice.py"
EVOLUTION = "pages/2_Evolution.py"
INTERFERENCE = "pages/3_Interference.py"
REFLECTION = "pages/4_Reflection.py"
PARAMETERS = "pages/5_Parameters.py"

REMOTE_IMAGE = re.compile(r"!\[[^\]]*\]\s*[(\[]|<\s*img\b|<\s*(picture|source|video|audio|iframe|svg)\b", re.I)
HOSTILE = ("Intro ![x](http://evil/track.png) and <img src=\"http://evil/t2.png\"> and "
           "![ref][r]\n\n[r]: http://evil/t3.png\n\n<IMG SRC=http://evil/t4.png>")


# widget values are plain text; a plotly "spec" is drawn as SVG text (plotly knows <b>, <br>, <a>..., never <img>)
PLAIN = {"options", "default", "value", "rawValues", "formattedValue", "setValue", "spec"}


def strings(at) -> list[str]:
    """Every string field of every element the page sent that the browser may render as
    Markdown (bodies, captions, labels, help...; not a widget's options or values)."""
    out: list[str] = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "DESCRIPTOR"):
            stack = [MessageToDict(proto)]
            while stack:
                v = stack.pop()
                if isinstance(v, dict):
                    stack.extend(x for k, x in v.items() if k not in PLAIN)
                elif isinstance(v, list):
                    stack.extend(v)
                elif isinstance(v, str):
                    out.append(v)
        for child in getattr(node, "children", {}).values():
            walk(child)
    walk(at._tree)
    return out


def remote_images(at) -> list[str]:
    return [s for s in strings(at) if REMOTE_IMAGE.search(s) and "evil" in s]


# --------------------------------------------------------------- item 12
@pytest.mark.parametrize("role", ["viewer", "researcher"])
def test_gem_markdown_loads_no_remote_image(db, role):
    gid = db.add_gem("demo", SYSTEM, HOSTILE, id="hostile", title="![t](http://evil/title.png) <img src=x>",
                     tags=["![t](http://evil/tag.png)"], source="<img src=http://evil/src.png>")
    at = app_as(role)
    at.session_state["lat_open_id"] = gid
    at.switch_page(LATTICE).run()
    assert not at.exception, at.exception
    assert "hostile" in " ".join(strings(at))  # the gem is open
    assert remote_images(at) == []


def test_reflection_answers_and_questions_load_no_remote_image(db):
    at = app_as("researcher")
    record = {"answer": f"See [wave-decoherence]. {HOSTILE}", "gems": [], "trace": [], "tokens": {},
              "provider": "offline", "latency_s": 0.1}
    at.session_state["refl_turns"] = {"demo": [{"question": HOSTILE, "record": record},
                                               {"question": "x", "record": dict(record, nothing_resonated=True)}]}
    at.switch_page(REFLECTION).run()
    assert not at.exception, at.exception
    assert remote_images(at) == []
    bodies = " ".join(strings(at))
    assert "lattice?gem=wave-decoherence" in bodies  # item 22: the citation opens the gem


# ------------------------------------------------------------ item 22
def open_url(at, url_path: str):
    """Open the page at ``url_path`` as a browser at ``/<url_path>`` does (st.Page hashes its url_path)."""
    from streamlit.util import calc_hash
    at._page_hash = calc_hash(url_path)
    return at.run()


@pytest.mark.parametrize("role", ["viewer", "researcher"])
def test_admin_url_says_admins_only_to_others(role):
    at = open_url(app_as(role), "admin")
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Admin"]
    assert "for admins only" in texts(at.error) and role in texts(at.error)
    assert not [b for b in at.button if (b.key or "").startswith("adm_")]  # none of the page's code ran


# ------------------------------------------------------------ item 19
def chart_named(at, prefix: str) -> dict:
    return next(chart_json(c) for c in charts(at) if chart_json(c)["layout"]["title"]["text"].startswith(prefix))


def test_evolution_phasors_carry_no_text_labels_and_psi_is_a_line():
    at = app_as("viewer", EVOLUTION)
    at.slider(key="evo_time").set_value(12.0).run()
    assert not at.exception, at.exception
    polar = chart_named(at, "Phasors at t = 12 hours")
    assert not [t for t in polar["data"] if "text" in t.get("mode", "")]  # no labels piled on the plot
    chosen = at.multiselect(key="evo_gems").value
    titles = {t.get("name") for t in polar["data"]}
    assert len(chosen) >= 1 and sum(1 for t in polar["data"] if t.get("name") not in
                                    ("gems", None) and not t["name"].startswith("R e")) == len(chosen)
    order = chart_named(at, "Order parameter")
    psi = next(t for t in order["data"] if t["name"].startswith("ψ"))
    assert psi["mode"] == "lines"
    assert order["layout"]["legend"]["y"] < 0  # below the plot, not over the title
    assert titles


def test_playback_is_tied_to_wall_time_and_ends_at_the_horizon():
    import time
    at = app_as("viewer", EVOLUTION)
    assert at.select_slider(key="evo_speed").value == "30 s"
    at.session_state["evo_playing"] = True
    at.session_state["evo_play_from"] = (time.monotonic() - 15.0, 0.0)  # half way through a 30 s play
    at.run()
    assert not at.exception, at.exception
    assert 10.0 <= at.session_state["evo_time"] <= 14.0
    at.session_state["evo_play_from"] = (time.monotonic() - 31.0, 0.0)  # past the end of the play
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["evo_time"] == 24.0 and at.session_state["evo_playing"] is False
    assert any(t["layout"]["title"]["text"].startswith("Phasors at t = 24 hours")
               for t in map(chart_json, charts(at)))
    assert at.slider(key="evo_time").value == 24.0


def test_playback_frames_follow_the_clock():
    from hypothesis import given
    from hypothesis import strategies as st_

    import numpy as np
    import pandas as pd

    from ui.playback import Playback

    times = np.round(np.arange(0, 24.0001, 0.1), 10)
    pb = Playback(pd.DataFrame({"time": times}), times, [], [], np.zeros((len(times), 0)), np.zeros((len(times), 0)),
                  [], pd.DataFrame(), pd.DataFrame())

    @given(st_.floats(0, 100), st_.floats(1, 120))
    def check(elapsed, duration):
        k = pb.frame_at_wall(0.0, elapsed, duration)
        expected = min(24.0, 24.0 * elapsed / duration)
        assert abs(times[k] - expected) <= 0.1 + 1e-9
        if elapsed >= duration:
            assert k == len(times) - 1
    check()


def test_per_gem_trajectories_can_be_downloaded():
    at = app_as("viewer", EVOLUTION)
    buttons = {b.proto.id: b for b in at.get("download_button")}
    labels = [b.proto.label for b in buttons.values()]
    assert any(lab.startswith("Per-gem trajectories") for lab in labels), labels


def test_a_sweep_is_saved_as_a_run_and_compared(db):
    at = app_as("researcher", PARAMETERS)
    at.number_input(key="sw_lambda__n").set_value(3)
    at.button(key="sw_run").click().run()
    assert not at.exception, at.exception
    shown = next(d.value for d in at.dataframe if "Decay scale λ (1/hour)" in d.value.columns)
    assert "lambda_" not in shown.columns  # labels in the lattice's time unit, not field names
    assert list(shown.columns[:2]) == ["Decay scale λ (1/hour)", "half-life (E = 1)"]
    at.button(key="sw_save").click().run()
    assert not at.exception, at.exception
    at.number_input(key="sw_lambda__n").set_value(4)
    at.button(key="sw_run").click().run()
    at.button(key="sw_save").click().run()
    runs = db.list_runs("demo")
    assert len(runs) == 2 and all(n.startswith("Sweep of Decay scale λ") for n in runs["name"])
    at.multiselect(key="sw_compare").set_value(at.multiselect(key="sw_compare").options[:2]).run()
    assert not at.exception, at.exception
    assert any(chart_json(c)["layout"]["title"]["text"].startswith("Saved sweeps compared (2)") for c in charts(at))
    assert "sw" not in " ".join(at.multiselect(key="par_compare").options) if at.get("multiselect") and any(
        m.key == "par_compare" for m in at.multiselect) else True  # sweeps are not offered as preview runs
    viewer = app_as("viewer", PARAMETERS)
    viewer.button(key="sw_run").click().run()
    assert viewer.button(key="sw_save").disabled and "viewer" in viewer.button(key="sw_save").help


# ------------------------------------------------------------ item 20
def test_interference_heatmap_rows_are_named_by_the_chosen_gems():
    at = app_as("viewer", INTERFERENCE)
    at.radio(key="int_mode").set_value("Choose gems").run()
    assert not at.exception, at.exception
    chosen = at.multiselect(key="int_gems").value
    heat = chart_named(at, "Interference I_ij")
    ticks = heat["layout"]["yaxis"]["ticktext"]
    assert len(ticks) == len(chosen) and not [t for t in ticks if t.endswith("°")]  # names, not phases
    opts = {o for o in at.multiselect(key="int_gems").options}
    assert opts  # the picker lists the gems
    assert all(any(t.rstrip("…") in name for name in heat["data"][0]["y"]) for t in ticks)
    assert "°" in heat["data"][0]["y"][0]  # the phase is still in the hover


def test_interference_network_draws_only_the_strongest_links_after_a_look_ahead():
    at = app_as("viewer", INTERFERENCE)
    at.number_input(key="int_ahead").set_value(48.0).run()
    assert not at.exception, at.exception
    net = chart_named(at, "Entanglement network")
    import numpy as np

    from tests.ui.helpers import values
    nodes = next(t for t in net["data"] if t.get("name") == "gems")
    r = np.hypot(values(nodes["x"]), values(nodes["y"]))
    assert r.max() - r.min() > 0.5  # spread over the rings, not piled up near the centre after the decay
    at.select_slider(key="int_links").set_value(25).run()
    title = chart_named(at, "Entanglement network")["layout"]["title"]["text"]
    assert "25 links (the 25 strongest of" in title


def test_pair_tables_give_gem_names_room():
    import json
    at = app_as("viewer", INTERFERENCE)
    tables = [d for d in at.dataframe if "gem A" in d.value.columns]
    assert len(tables) == 2
    for d in tables:
        config = json.loads(d.proto.columns)
        assert config["gem A"]["width"] >= 250 and config["gem B"]["width"] >= 250  # was "medium" (200 px)


# ------------------------------------------------------------ item 21
def test_open_gem_shows_its_linked_gems_and_its_own_trajectory(db):
    from core.engine import Lattice  # noqa: F401
    loaded = db.load("demo")
    lat = getattr(loaded, "lattice", loaded)
    ei, ej, w = lat.edge_arrays()
    ids = list(lat.ids)
    gem, partner = ids[int(ei[int(w.argmax())])], ids[int(ej[int(w.argmax())])]
    at = app_as("viewer")
    at.session_state["lat_open_id"] = gem
    at.switch_page(LATTICE).run()
    assert not at.exception, at.exception
    links = [b for b in at.button if (b.key or "").startswith("lat_link_")]
    assert links and any(b.key.endswith(f"_{partner}") for b in links) and "w = " in links[0].label
    # two of its own half-lives (E ln2 / λ) when that is longer than 48 hours
    from core.engine import humanize_duration
    life = lat.params.half_life(float(lat.energy[ids.index(gem)]))
    horizon = humanize_duration(max(48.0, 2 * life), lat.params.time_unit)
    assert any(chart_json(c)["layout"]["title"]["text"] == f"This gem over the next {horizon}" for c in charts(at))
    next(b for b in links if b.key.endswith(f"_{partner}")).click().run()  # a link opens the partner
    assert not at.exception, at.exception
    assert at.session_state["lat_open_id"] == partner


def test_a_citation_link_opens_the_gem_on_the_lattice_page(db):
    at = app_as("viewer")
    at.query_params["gem"] = "wave-decoherence"
    at.switch_page(LATTICE).run()
    assert not at.exception, at.exception
    assert at.session_state["lat_open_id"] == "wave-decoherence"
    assert any("wave-decoherence" in str(c.value) for c in at.caption)


def test_gem_table_columns_are_wide_enough():
    import json
    at = app_as("viewer", LATTICE)
    config = json.loads(at.dataframe[0].proto.columns)
    assert config["coherence"]["width"] >= 120 and config["title"]["width"] >= 250  # were 0/default: "0" shown
    order = list(json.loads(at.dataframe[0].proto.column_order) if isinstance(at.dataframe[0].proto.column_order, str)
                 else at.dataframe[0].proto.column_order)
    assert order.index("coherence") < order.index("tags")  # the figures come before the long text


# ------------------------------------------------------------ item 16 (the UI side)
def test_a_stopped_sweep_keeps_nothing_and_says_so():
    at = app_as("researcher", PARAMETERS)
    at.session_state["sw_stop_requested"] = True  # as if Stop was clicked while the sweep ran
    at.button(key="sw_run").click().run()  # start() clears an old request: the sweep runs to its end
    assert not at.exception, at.exception
    assert "sw_result" in at.session_state
    del at.session_state["sw_result"]
    at.session_state["sw_running"] = True  # a run that started the sweep and was interrupted by a click
    at.run()
    assert not at.exception and "stopped before it finished" in texts(at.info)
    assert "sw_result" not in at.session_state


def test_should_stop_ends_the_sweep_with_the_engines_cancel():
    from core.engine import Lattice, LatticeParams
    from core.errors import LatticeError
    from ui import experiments as X
    lat = Lattice(phase=[0.0, 1.0, 2.0], coherence=[1.0, 0.5, 0.2])
    calls = []
    with pytest.raises(LatticeError, match="stopped on request"):
        X.run_sweep(lat, LatticeParams(), {"lambda_": (0.1, 1.0, 5)}, 1.0,
                    should_stop=lambda: calls.append(1) or len(calls) > 2)
    assert len(calls) == 3


def test_safe_markdown_leaves_no_image_or_tag_for_any_text():
    from hypothesis import given
    from hypothesis import strategies as st_

    from ui.text import safe_markdown
    pieces = st_.sampled_from(["![", "](", "http://evil/x.png", ")", "<img src=", "<IMG", "< img", ">", "[r]: ",
                               "\n", "text ", "\\", "!", "[", "]", "<", "/", "svg", "`"])

    @given(st_.lists(pieces, max_size=30).map("".join))
    def check(text):
        out = safe_markdown(text)
        assert "![" not in out.replace("\\![", "")  # every image opener escaped
        assert not re.search(r"<[A-Za-z/!?]", out)  # no tag starts
    check()


def test_plural_units():
    from ui.text import plural
    assert plural(1, "hour") == "1 hour" and plural(1.0, "minute") == "1 minute"
    assert plural(2.5, "hour") == "2.5 hours" and plural(0, "day") == "0 days"
