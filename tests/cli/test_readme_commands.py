"""Item 17: the README's commands work as written (in the virtualenv it tells users to activate)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent


def test_the_quick_start_says_every_command_needs_the_virtualenv():
    quick_start = README[README.index("## Quick start"):README.index("\n## ", README.index("## Quick start") + 3)]
    assert "source .venv/bin/activate" in quick_start and ".venv/bin/python -m core --help" in quick_start
    assert "ModuleNotFoundError" in quick_start  # what happens outside it, so the reader recognises it
    first_block = min(m.start(1) for m in re.finditer(r"```[a-z]*\n(?:(?!```).)*?(python -m core|streamlit run)",
                                                      README, re.S))
    assert README.index("source .venv/bin/activate") < first_block


def test_make_targets_use_the_virtualenv():
    if shutil.which("make") is None:
        return
    out = subprocess.run(["make", "-n", "run", "test", "bench"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        for tool in ("python ", "streamlit ", "pytest"):
            if re.search(rf"(^|\s){tool}", line) and "ensure-" not in line:
                assert ".venv/bin/" in line, line


def test_documented_entry_points_work_from_any_directory(tmp_path):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # as after `activate`
    for argv in (["python", "-m", "core", "--help"], ["lattice", "--help"],
                 [str(BIN / "python"), "-m", "core", "--help"]):
        out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (argv, out.stderr)
        assert "usage: python -m core" in out.stdout


def test_every_readme_subcommand_exists():
    help_text = subprocess.run([sys.executable, "-m", "core", "--help"], capture_output=True, text=True,
                               cwd=ROOT).stdout
    for command in set(re.findall(r"python -m core ([a-z]+)", README)):
        assert re.search(rf"\b{command}\b", help_text), command
