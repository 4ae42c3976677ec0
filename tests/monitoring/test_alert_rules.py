"""The alert rules in deploy/prometheus run for real under promtool (Debian's prometheus
package; scripts/ensure-system-packages.sh installs it): `promtool check rules` and the
unit tests of `promtool test rules`. Without promtool these skip, and fail in CI
(``LATTICE_REQUIRE_PROMTOOL=1`` in .ci/run)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from core.engine import Lattice, LatticeParams
from core.monitoring import WorkbenchCollector
from core.monitoring.prometheus import fading_summary
from tests.conftest import ROOT, skip_or_fail

RULES_DIR = ROOT / "deploy" / "prometheus"
RULES, RULE_TESTS = RULES_DIR / "alerts.yml", RULES_DIR / "alerts_test.yml"


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        skip_or_fail("promtool not found: install Debian's prometheus package (scripts/ensure-system-packages.sh "
                     "does, as root)", "LATTICE_REQUIRE_PROMTOOL")
    return found


def run(promtool: str, *args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_rule_file_is_valid(promtool):
    done = run(promtool, "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    rules = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_the_rules_unit_tests_pass(promtool):
    done = run(promtool, "test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_unit_tested_firing():
    rules = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    fired = {case["alertname"] for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for case in t["alert_rule_test"] if case.get("exp_alerts")}
    assert fired == rules


def test_a_wrong_expectation_fails_under_promtool(promtool, tmp_path):
    """The unit tests can fail: the same tests expecting the demo lattice to stay quiet."""
    shutil.copy(RULES, tmp_path / "alerts.yml")
    tests = yaml.safe_load(RULE_TESTS.read_text())
    case = next(c for t in tests["tests"] for c in t["alert_rule_test"] if c["alertname"] == "LatticeFullyFaded"
                and c["exp_alerts"])
    case["exp_alerts"] = []
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(tests))
    done = run(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert done.returncode != 0 and "LatticeFullyFaded" in done.stdout + done.stderr


def test_the_rules_use_only_metrics_the_workbench_exports():
    """A renamed gauge must not leave an alert watching nothing."""
    lattice = Lattice(coherence=[0.05, 0.5, 0.9], params=LatticeParams())
    summary = {**lattice.summary(), **fading_summary(lattice)}
    snapshots = {"demo": {"last_success": 1.0, "last_bytes": 10.0, "failures_total": 0.0, "last_attempt_failed": 0.0,
                          "corrupt": 0.0, "kept": 1.0, "interval_s": 60.0}}
    replication = lambda: [{"standby": "standby1", "measured_on": "primary", "lag_bytes": 0.0,  # noqa: E731
                            "lag_seconds": 0.0, "synchronous": 1.0}]
    collector = WorkbenchCollector(lambda: {"demo": summary}, snapshots=lambda: snapshots, replication=replication)
    exported = {fam.name for fam in collector.collect()}
    exprs = " ".join(r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"])
    used = set(re.findall(r"\blattice_[a-z_]+\b", exprs))
    assert used and used <= exported, used - exported
