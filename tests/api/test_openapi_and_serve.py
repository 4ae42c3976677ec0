"""The OpenAPI document is complete (every route, its error shape, the bearer scheme) and
``python -m core serve`` serves the API with the embedded defaults."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx2
import pytest

from tests.conftest import ROOT


def test_openapi_lists_every_route_with_the_error_shape(api):
    doc = api.client.get("/openapi.json").json()
    paths = doc["paths"]
    assert {"/v1/auth/token", "/v1/lattices", "/v1/lattices/{name}/gems", "/v1/lattices/{name}/reflect",
            "/v1/lattices/{name}/search", "/v1/lattices/{name}/evaluate", "/v1/snapshots/restore",
            "/v1/api-keys", "/v1/ready", "/.well-known/jwks.json"} <= set(paths)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
            if path.startswith("/v1/lattices"):
                assert "401" in op["responses"] and "403" in op["responses"], (method, path)
                assert op["responses"]["403"]["content"]["application/json"]["schema"]["$ref"].endswith(
                    "ErrorResponse")
    assert "text/event-stream" in paths["/v1/lattices/{name}/reflect"]["post"]["responses"]["200"]["content"]
    assert api.client.get("/docs").headers["content-type"].startswith("text/html")


@pytest.mark.slow
def test_serve_command_answers_on_its_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LATTICE_DATABASE_URL": f"sqlite:///{tmp_path / 'lattice.db'}", "LATTICE_DEMO": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "core", "serve", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, ready = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx2.get(f"http://127.0.0.1:{port}/v1/ready", timeout=2)
                break
            except httpx2.TransportError:
                time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, proc.stderr.read1().decode() if proc.poll() else ""
        token = httpx2.post(f"http://127.0.0.1:{port}/v1/auth/token", json={
            "grant_type": "password", "username": "viewer", "password": "demo"}).json()["access_token"]
        names = httpx2.get(f"http://127.0.0.1:{port}/v1/lattices",
                           headers={"Authorization": f"Bearer {token}"}).json()["items"]
        assert [n["name"] for n in names] == ["demo"]  # the demo lattice, created if missing
    finally:
        proc.terminate()
        proc.wait(15)
