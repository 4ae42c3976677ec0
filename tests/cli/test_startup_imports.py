"""Item 18: `python -m core --help` (and a usage error) load no heavy package; handlers import what they use."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ["numpy", "scipy", "pandas", "sqlalchemy", "alembic", "openai", "anthropic", "tiktoken", "plotly",
         "prometheus_client", "streamlit", "jwt", "cryptography", "yaml", "bcrypt"]
PROBE = """
import json, sys
from core.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(%r))), file=sys.__stderr__)
"""


@pytest.mark.parametrize("argv", [["--help"], ["reflect", "--help"], ["import", "--help"], ["bench", "--help"],
                                  ["nonsense"], ["users", "add-user", "--help"]])
def test_help_imports_nothing_heavy(argv):
    out = subprocess.run([sys.executable, "-c", PROBE % HEAVY, *argv], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert json.loads(out.stderr.strip().splitlines()[-1]) == []


def test_the_cli_demo_name_is_the_service_one():
    from core.cli import reflect
    from core.service import DEMO_NAME
    assert reflect.DEMO_NAME == DEMO_NAME


def test_startup_suite_is_selectable():
    from core.cli import build_parser
    args = build_parser().parse_args(["bench", "--suite", "startup", "--only", "help"])
    assert args.suite == "startup"
