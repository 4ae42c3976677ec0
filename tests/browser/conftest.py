"""Real-browser fixtures: a `streamlit run app.py` server and Debian's chromium.

The server runs in demo mode on a free port with its own copy of the demo data and
a temporary database (the demo lattice loaded into it first, as `make run` does) and HOME, so nothing of the developer's machine (or of
other test runs) is touched. Browser: Playwright for Python driving /usr/bin/chromium
through ``executable_path`` (never ``playwright install``).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM, ROOT, skip_or_fail

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
STARTUP_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not become healthy in {STARTUP_TIMEOUT} s:\n{log.read_text()[-3000:]}")


def stop_process(proc: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session`` and all its children (SIGKILL if it hangs)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_app_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """``streamlit run app.py`` on 127.0.0.1:``port``, output to ``log``; returns once it is healthy
    (stopped again if it never gets there, so a failed start leaves no server behind)."""
    streamlit = Path(sys.executable).with_name("streamlit")
    cmd = [str(streamlit), "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc, log)
    except BaseException:
        stop_process(proc)
        raise
    return proc


def demo_app_env(tmp: Path) -> dict[str, str]:
    """Environment of a demo-mode server with its own copy of the demo data, SQLite database
    and HOME under ``tmp``; the demo lattice is put in the database first, as `make run` does."""
    shutil.copytree(ROOT / "data" / "demo", tmp / "demo")
    (tmp / "home").mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("LATTICE_COOKIE_KEY", "LATTICE_CREDENTIALS", "LATTICE_SOURCE")}
    env.update(LATTICE_DEMO="1", LATTICE_DEMO_DIR=str(tmp / "demo"), HOME=str(tmp / "home"),
               LATTICE_DATABASE_URL=f"sqlite:///{tmp / 'lattice.db'}", PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "-m", "core", "demo", "--if-missing"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    return env


@pytest.fixture(scope="session")
def browser_available():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("playwright (Python) is not installed: pip install -r requirements-dev.txt",
                     "LATTICE_REQUIRE_BROWSER")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)",
                     "LATTICE_REQUIRE_BROWSER")


@pytest.fixture(scope="session")
def app_server(browser_available, tmp_path_factory):
    """Base URL of a demo-mode workbench server, stopped at the end of the session."""
    tmp = tmp_path_factory.mktemp("browser-app")
    port = _free_port()
    proc = start_app_server(demo_app_env(tmp), port, tmp / "streamlit.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def browser(browser_available):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) and page, tall enough for full-page shots."""
    context = browser.new_context(viewport={"width": 1440, "height": 1800})
    pg = context.new_page()
    # 60 s: with the drills, PostgreSQL clusters and schemathesis in one run, a page's rerun on this
    # 2-core machine has been seen to take over 30 s under load (the same journey takes 24 s alone)
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


@pytest.fixture
def shots(artifacts_dir):
    """``shots(page, name)`` saves test-artifacts/screenshots/<name>.png."""
    folder = artifacts_dir / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(pg, name: str) -> Path:
        path = folder / f"{name}.png"
        pg.wait_for_timeout(600)  # let plotly finish its transitions
        pg.screenshot(path=str(path), full_page=True)
        return path

    return take
