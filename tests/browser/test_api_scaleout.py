"""Scale-out with API nodes: two API nodes (`python -m core serve` on two ports) and two app
nodes (`streamlit run app.py`) on one PostgreSQL schema and one Redis key prefix, behind nginx
configured from deploy/nginx.conf.template (scripts/render-nginx.py --node ... --api-node ...).

- a gem written through API node A, with a token from A, is found by a search on API node B
  (B verifies A's token: the signing keys are in the shared database) and in a real browser
  on the app (the Lattice page finds and opens it; screenshots
  test-artifacts/screenshots/api-scaleout-*.png);
- the request rate limit holds across both API nodes: requests alternating between the
  nodes are refused (429 with Retry-After) after the shared limit, not after twice it;
- nginx routes /v1/ and /.well-known/ round robin to both API nodes and the rest to the app
  nodes, as its access log shows.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx2
import pytest

from core.auth import DEMO_PASSWORD
from core.service import ensure_demo
from core.store import Store
# browser, browser_available and shots are this folder's conftest fixtures
from tests.browser.conftest import _free_port, start_app_server, stop_process
from tests.browser.test_journeys import login
from tests.conftest import ROOT, skip_or_fail

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

REQUEST_LIMIT = 24  # per identity per minute, for the whole deployment (LATTICE_API_RATE_LIMIT)
STARTUP_S = 60


def _nginx() -> str:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        skip_or_fail("nginx is not installed (scripts/ensure-system-packages.sh installs it)", "LATTICE_REQUIRE_NGINX")
    return nginx


def start_api_node(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """``python -m core serve --port <port>``, output to ``log``; returns once /v1/health answers."""
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "core", "serve", "--port", str(port), "--log-level", "warning"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API node exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200:
                    return proc
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API node did not answer in {STARTUP_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
    except BaseException:
        stop_process(proc)
        raise


def start_nginx(nginx: str, run: Path, nodes: dict[str, int], api_nodes: dict[str, int]) -> subprocess.Popen:
    """nginx on a free port in front of ``nodes`` (app) and ``api_nodes`` (name -> port); its base
    URL is in ``proc.base`` once the proxy answers."""
    listen = _free_port()
    args = [sys.executable, "scripts/render-nginx.py", "--listen", f"127.0.0.1:{listen}", "--run-dir", str(run),
            "--foreground"]
    for flag, group in (("--node", nodes), ("--api-node", api_nodes)):
        for name, port in group.items():
            args += [flag, f"{name}=127.0.0.1:{port}"]
    conf = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    (run / "nginx.conf").write_text(conf)
    check = subprocess.run([nginx, "-t", "-c", str(run / "nginx.conf"), "-p", str(run)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([nginx, "-c", str(run / "nginx.conf"), "-p", str(run)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    proc.base = f"http://127.0.0.1:{listen}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx2.get(proc.base + "/v1/health", timeout=2)
            return proc
        except httpx2.TransportError:
            if time.monotonic() > deadline:
                stop_process(proc)
                raise RuntimeError((run / "error.log").read_text() if (run / "error.log").exists() else "no nginx")
            time.sleep(0.2)


@pytest.fixture
def cluster(pg_url, redis_url, browser_available, tmp_path):  # noqa: F811
    nginx = _nginx()
    redis, prefix = redis_url
    with Store.open(pg_url) as s:  # the shared database, demo loaded once before the nodes start
        ensure_demo(s)
    run = Path(tempfile.mkdtemp(prefix="lattice-nginx-api-"))
    run.chmod(0o755)  # nginx workers run as an unprivileged user
    procs: list[subprocess.Popen] = []
    base_env = {k: v for k, v in os.environ.items() if k not in ("LATTICE_COOKIE_KEY", "LATTICE_CREDENTIALS")}
    base_env.update(LATTICE_DEMO="1", LATTICE_DATABASE_URL=pg_url, LATTICE_REDIS_URL=redis,
                    LATTICE_REDIS_PREFIX=prefix, LATTICE_API_RATE_LIMIT=f"{REQUEST_LIMIT}/minute",
                    PYTHONUNBUFFERED="1")
    try:
        api = {"a": _free_port(), "b": _free_port()}
        for node, port in api.items():
            (tmp_path / f"api-home-{node}").mkdir()
            procs.append(start_api_node({**base_env, "HOME": str(tmp_path / f"api-home-{node}")}, port,
                                        tmp_path / f"api-{node}.log"))
        app = {"a": _free_port(), "b": _free_port()}
        for node, port in app.items():
            (tmp_path / f"home-{node}").mkdir()
            shutil.copytree(ROOT / "data" / "demo", tmp_path / f"demo-{node}")
            procs.append(start_app_server({**base_env, "LATTICE_SOURCE": "store",
                                           "HOME": str(tmp_path / f"home-{node}"),
                                           "LATTICE_DEMO_DIR": str(tmp_path / f"demo-{node}")},
                                          port, tmp_path / f"node-{node}.log"))
        proxy = start_nginx(nginx, run, app, api)
        procs.append(proxy)
        yield {"base": proxy.base, "api": {n: f"http://127.0.0.1:{p}" for n, p in api.items()},
               "api_ports": api, "app_ports": app, "run": run}
    finally:
        for p in reversed(procs):
            stop_process(p)
        shutil.rmtree(run, ignore_errors=True)


def _bearer(base: str, username: str) -> dict[str, str]:
    r = httpx2.post(base + "/v1/auth/token", json={"grant_type": "password", "username": username,
                                                   "password": DEMO_PASSWORD}, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _served(run: Path, path_prefix: str) -> Counter:
    """Upstream ports that answered requests whose path starts with ``path_prefix`` (access log)."""
    log = (run / "access.log").read_text()
    return Counter(int(p) for p in re.findall(rf'"\w+ {re.escape(path_prefix)}[^"]*" \d+ node=\S+ '
                                              rf'upstream=127\.0\.0\.1:(\d+)', log))


def test_gem_written_on_api_a_is_found_on_api_b_and_in_the_app(cluster, browser, shots):  # noqa: F811
    base, api, run = cluster["base"], cluster["api"], cluster["run"]
    word = f"zircon{uuid.uuid4().hex[:8]}"  # a word no demo gem has: the searches find exactly this gem
    me = _bearer(api["a"], "researcher")  # the token comes from node A...
    r = httpx2.post(api["a"] + "/v1/lattices/demo/gems", headers=me, timeout=30,
                    json={"content": f"The {word} crystal keeps its lattice memory through API node A.",
                          "title": f"{word} from node A", "tags": ["scaleout"]})
    assert r.status_code == 201, r.text
    gem_id = r.json()["ids"][0]

    # ...and node B accepts it (signing keys in the shared database) and ranks the new gem first
    r = httpx2.post(api["b"] + "/v1/lattices/demo/search", headers=me, json={"question": f"{word} crystal", "k": 3},
                    timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["gems"][0]["gem_id"] == gem_id, r.json()["gems"]
    r = httpx2.get(api["b"] + f"/v1/lattices/demo/gems/{gem_id}", headers=me, timeout=30)
    assert r.status_code == 200 and word in r.json()["content"]

    # through nginx: /v1/ and /.well-known/ round robin over both API nodes, the rest to the app nodes
    with httpx2.Client(base_url=base, timeout=30) as proxy:
        for _ in range(6):  # one after another: nginx's round robin alternates the two nodes
            hits = proxy.get("/v1/lattices/demo/gems", params={"text": word}, headers=me)
            assert hits.status_code == 200 and [g["id"] for g in hits.json()["items"]] == [gem_id]
        for _ in range(2):
            assert proxy.get("/.well-known/jwks.json").json()["keys"]
        health = proxy.get("/_stcore/health")
        assert health.status_code == 200 and "lattice_node=" in health.headers.get("set-cookie", "")
    api_ports, app_ports = set(cluster["api_ports"].values()), set(cluster["app_ports"].values())
    v1, well_known = _served(run, "/v1/lattices/demo/gems"), _served(run, "/.well-known/")
    assert set(v1) == api_ports and v1[min(api_ports)] == v1[max(api_ports)] == 3, v1  # round robin: 3 + 3
    assert set(well_known) == api_ports, well_known
    assert set(_served(run, "/_stcore/")) <= app_ports

    # the app (another process again) shows the gem on the Lattice page
    ctx = browser.new_context(viewport={"width": 1440, "height": 1800})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    try:
        login(page, base, "researcher")
        page.get_by_role("link", name="Lattice").click()
        page.get_by_role("heading", name="Lattice", exact=True).wait_for()
        box = page.get_by_role("textbox", name="Search title and content")
        box.fill(word)
        box.press("Enter")
        page.get_by_text("1 gem(s) match").wait_for()
        # the table is drawn on a canvas; its accessible copy of the cells holds the title
        page.get_by_text(f"{word} from node A").first.wait_for(state="attached")
        shots(page, "api-scaleout-1-lattice-page-finds-the-gem")
        page.goto(f"{base}/lattice?gem={gem_id}")
        page.get_by_role("heading", name="Lattice", exact=True).wait_for()
        card = page.get_by_text(f"`{gem_id}`").or_(page.get_by_text(re.compile(rf"^{re.escape(gem_id)} · tags")))
        card.first.wait_for()
        assert word in page.content()
        shots(page, "api-scaleout-2-gem-opened-in-the-app")
    finally:
        ctx.close()
    print(f"\nAPI SCALE-OUT: gem {gem_id} written on API node A, found on B and in the app; nginx /v1/ requests "
          f"per API node {dict(v1)}")


def test_rate_limit_holds_across_both_api_nodes(cluster):
    api = cluster["api"]
    viewer = _bearer(api["a"], "viewer")  # an identity nothing else in this test uses
    nodes = [api["a"], api["b"]]
    outcomes: list[tuple[str, int]] = []
    with httpx2.Client(timeout=30) as client:
        for i in range(REQUEST_LIMIT + 10):
            node = nodes[i % 2]  # alternating: each node alone would allow REQUEST_LIMIT
            r = client.get(node + "/v1/lattices", headers=viewer)
            assert r.status_code in (200, 429), r.text
            if r.status_code == 429:
                assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
            outcomes.append((node, r.status_code))
    statuses = [s for _, s in outcomes]
    assert statuses == [200] * REQUEST_LIMIT + [429] * 10, statuses  # the shared limit, not twice it
    assert {n for n, s in outcomes if s == 200} == set(nodes) == {n for n, s in outcomes if s == 429}
    print(f"\nRATE LIMIT across 2 API nodes: {REQUEST_LIMIT}/minute shared; {statuses.count(200)} granted "
          f"({REQUEST_LIMIT // 2} per node), then {statuses.count(429)} refused on both")
