"""The Prometheus endpoint exposes coherence, latency, cache hit ratio and error rates."""
import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.access import Actor, Role
from core.knowledge import ResonanceCache
from core.knowledge import HashingEmbedder
from core.errors import LatticeError
from core.engine import Lattice
from core.monitoring import WorkbenchCollector, metrics_port, start_exporter
from core.reflection import ReflectionEngine, ReflectionServices
from core.router import build_router
from core.monitoring import LatencySeries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_scrape_reflects_live_metrics():
    texts = ["Kuramoto coupling synchronizes oscillators.", "Forgetting follows an exponential curve.",
             "SQLite's write-ahead log lets readers continue during writes."]
    emb = HashingEmbedder()
    lattice = Lattice(coherence=[0.9, 0.6, 0.3], phase=[0.0, 0.5, 3.0])
    cache, latency = ResonanceCache(maxsize=10), LatencySeries()
    router = build_router(order="openai,offline", env={})  # no key: openai skipped, offline answers
    engine = ReflectionEngine(lattice, texts, emb.embed(texts), emb,
                              ReflectionServices(router=router, cache=cache, latency=latency))
    user = Actor("ada", Role.RESEARCHER)
    for q in ["How do oscillators synchronize?", "What is forgetting?", "Why use a write-ahead log?"]:
        engine.reflect(q, user, "s1").result()
    engine.rank("oscillators")
    engine.rank("oscillators")  # same lattice version: a hit

    port = free_port()
    start_exporter(port, WorkbenchCollector(lambda: {"demo": lattice.summary()}, cache, router, latency))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert samples[("lattice_mean_coherence", (("lattice", "demo"),))] == pytest.approx(lattice.coherence.mean())
    assert samples[("lattice_order_parameter", (("lattice", "demo"),))] == pytest.approx(abs(lattice.order_parameter()))
    stats = cache.stats()
    assert stats.hits >= 1
    assert samples[("resonance_cache_hits_total", ())] == stats.hits
    assert samples[("resonance_cache_hit_ratio", ())] == pytest.approx(stats.hit_ratio)
    assert samples[("llm_provider_calls_total", (("provider", "offline"),))] == 3
    assert samples[("llm_provider_error_rate", (("provider", "offline"),))] == 0.0
    assert samples[("reflection_latency_seconds_count", ())] == 3
    assert samples[("reflection_latency_quantile_seconds", (("quantile", "0.95"),))] >= 0


def test_exporter_is_off_by_default_and_validates_the_port():
    assert metrics_port({}) is None
    assert metrics_port({"LATTICE_METRICS_PORT": "9108"}) == 9108
    for bad in ("abc", "0", "70000", "-1"):
        with pytest.raises(LatticeError, match="LATTICE_METRICS_PORT"):
            metrics_port({"LATTICE_METRICS_PORT": bad})


def test_the_app_serves_metrics_when_configured(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    port = free_port()
    monkeypatch.setenv("LATTICE_METRICS_PORT", str(port))
    monkeypatch.setenv("LATTICE_DATABASE_URL", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.setenv("LATTICE_DEMO", "1")

    def open_services():
        from ui.services import get_workbench
        get_workbench()

    AppTest.from_function(open_services).run(timeout=60)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {s.name: s for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert samples["lattice_gems"].labels == {"lattice": "demo"} and samples["lattice_gems"].value == 168
