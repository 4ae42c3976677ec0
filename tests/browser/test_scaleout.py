"""Scale-out: two workbench processes (`streamlit run app.py` on two ports, one
PostgreSQL schema) behind nginx configured from deploy/nginx.conf.template (rendered by
scripts/render-nginx.py into a run folder in /tmp). In a real browser, a researcher on
node A (cookie lattice_node=a) advances the lattice; a researcher on node B (cookie
lattice_node=b) sees the new lattice clock in the sidebar. nginx's access log shows
that each node really served its own browser, and new clients are spread over both.
Screenshots: test-artifacts/screenshots/scaleout-*.png.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from core.service import ensure_demo
from core.store import Store
# browser, browser_available and shots are this folder's conftest fixtures (one
# Playwright instance per session: a second sync_playwright() in the same run fails)
from tests.browser.conftest import _free_port, start_app_server, stop_process
from tests.browser.test_journeys import login, sidebar_text
from tests.conftest import ROOT, skip_or_fail

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def cluster(pg_url, browser_available, tmp_path):  # noqa: F811
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        skip_or_fail("nginx is not installed (scripts/ensure-system-packages.sh installs it)", "LATTICE_REQUIRE_NGINX")
    with Store.open(pg_url) as s:  # the shared database, demo loaded once before the nodes start
        ensure_demo(s)
    procs: list[subprocess.Popen] = []
    ports = {"a": _free_port(), "b": _free_port()}
    run = Path(tempfile.mkdtemp(prefix="lattice-nginx-"))
    run.chmod(0o755)  # nginx workers run as an unprivileged user
    try:
        for node, port in ports.items():
            home = tmp_path / f"home-{node}"
            home.mkdir()
            shutil.copytree(ROOT / "data" / "demo", tmp_path / f"demo-{node}")
            env = {k: v for k, v in os.environ.items() if k not in ("LATTICE_COOKIE_KEY", "LATTICE_CREDENTIALS")}
            env.update(LATTICE_DEMO="1", LATTICE_SOURCE="store", LATTICE_DATABASE_URL=pg_url, HOME=str(home),
                       LATTICE_DEMO_DIR=str(tmp_path / f"demo-{node}"), PYTHONUNBUFFERED="1")
            procs.append(start_app_server(env, port, tmp_path / f"node-{node}.log"))
        listen = _free_port()
        conf = subprocess.run([sys.executable, "scripts/render-nginx.py", "--listen", f"127.0.0.1:{listen}",
                               "--node", f"a=127.0.0.1:{ports['a']}", "--node", f"b=127.0.0.1:{ports['b']}",
                               "--run-dir", str(run), "--foreground"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
        (run / "nginx.conf").write_text(conf)
        check = subprocess.run([nginx, "-t", "-c", str(run / "nginx.conf"), "-p", str(run)], capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stderr
        procs.append(subprocess.Popen([nginx, "-c", str(run / "nginx.conf"), "-p", str(run)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        base = f"http://127.0.0.1:{listen}"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/_stcore/health", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, (run / "error.log").read_text()
                time.sleep(0.2)
        yield {"base": base, "ports": ports, "run": run}
    finally:
        for p in reversed(procs):
            stop_process(p)
        shutil.rmtree(run, ignore_errors=True)


def _clock(page) -> float:
    m = re.search(r"Lattice clock\s*t = ([0-9.e+-]+) hours?", sidebar_text(page))
    assert m, sidebar_text(page)
    return float(m.group(1))


def test_write_on_node_a_is_read_on_node_b(cluster, browser, shots):  # noqa: F811
    base, ports, run = cluster["base"], cluster["ports"], cluster["run"]
    # new clients (no cookie) are spread over both nodes and pinned with the cookie
    assigned = []
    for _ in range(30):
        with urllib.request.urlopen(base + "/_stcore/health", timeout=5) as r:
            cookies = " ".join(r.headers.get_all("Set-Cookie") or [])
            assigned.append(re.search(r"lattice_node=(\w+)", cookies).group(1))
    assert set(assigned) == {"a", "b"}, assigned

    pages = {}
    for node in ("a", "b"):
        ctx = browser.new_context(viewport={"width": 1440, "height": 1800})
        ctx.add_cookies([{"name": "lattice_node", "value": node, "url": base}])
        pages[node] = ctx.new_page()
        pages[node].set_default_timeout(60_000)  # two nodes, nginx and PostgreSQL on 2 busy cores
    a, b = pages["a"], pages["b"]
    for node, pg in pages.items():
        login(pg, base, "researcher")  # once: a cold node no longer swallows the first click
    t0 = _clock(a)
    assert _clock(b) == t0
    a.get_by_role("button", name="Advance lattice").click()
    a.get_by_text(re.compile(r"Lattice clock advanced by 1 to t = \d")).wait_for()
    assert _clock(a) == t0 + 1
    shots(a, "scaleout-1-node-a-advanced")
    b.reload()  # node B reads the shared database: the new clock, never a stale one
    b.get_by_role("heading", name="Evolution").wait_for()
    b.wait_for_function("t => document.querySelector('[data-testid=\"stSidebar\"]').innerText"
                        ".includes('t = ' + t + ' hour')", arg=f"{t0 + 1:.4g}", timeout=60_000)
    assert _clock(b) == t0 + 1
    shots(b, "scaleout-2-node-b-reads-it")

    for pg in pages.values():
        pg.context.close()  # nginx logs a WebSocket when it closes
    deadline, streams = time.monotonic() + 15, []
    while time.monotonic() < deadline and len({n for n, _ in streams}) < 2:
        time.sleep(0.3)
        log = (run / "access.log").read_text()
        streams = re.findall(r'"GET /_stcore/stream[^"]*" \d+ node=(\w) upstream=127\.0\.0\.1:(\d+)', log)
    served = {(n, int(p)) for n, p in streams}
    assert ("a", ports["a"]) in served and ("b", ports["b"]) in served
    assert all(ports[n] == p for n, p in served)  # each browser stayed on its node (sticky)
    print(f"\nSCALE-OUT: 2 nodes behind nginx; no-cookie clients split {assigned.count('a')}/{assigned.count('b')} "
          f"(a/b of 30); websocket sessions per node: "
          f"{ {n: sum(1 for s in streams if s[0] == n) for n in 'ab'} }; clock {t0} -> {t0 + 1} written on a, read on b")
