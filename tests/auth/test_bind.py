"""Item 15: demo mode (published passwords) listens on this machine only unless asked otherwise."""
from __future__ import annotations

import os
import shutil
import subprocess
import tomllib

import pytest

from core.auth import is_loopback
from tests.ui.helpers import ROOT


def test_streamlit_binds_loopback_by_default():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert is_loopback(config["server"]["address"])


@pytest.mark.parametrize("address, loop", [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True),
                                           ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                           ("", False), ("::", False), ("192.168.1.4", False)])
def test_is_loopback(address, loop):
    assert is_loopback(address) is loop


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("extra, env, host", [([], {}, "127.0.0.1"), (["HOST=0.0.0.0"], {}, "0.0.0.0"),
                                              ([], {"LATTICE_BIND": "0.0.0.0"}, "0.0.0.0")])
def test_make_run_binds_loopback_unless_asked(extra, env, host):
    env = {**{k: v for k, v in os.environ.items() if k not in ("HOST", "LATTICE_BIND")}, **env}
    out = subprocess.run(["make", "-n", "run", *extra], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    assert f"--server.address {host}" in out
    assert ("this machine only" in out) is (host == "127.0.0.1")
