"""The command line: help, benchmarks as JSON, one-line errors without tracebacks."""
import json
import subprocess
import sys

from tests.conftest import ROOT


def run_cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_help_lists_the_commands():
    out = run_cli("--help").stdout
    for command in ("demo", "simulate", "bench"):
        assert command in out


def test_bench_prints_json_figures():
    out = run_cli("bench", "--quick", "--only", "interference_matrix", "--only", "top_interference_k10", "--json").stdout
    results = {r["name"]: r for r in json.loads(out)}
    assert set(results) == {"interference_matrix", "top_interference_k10"}
    assert results["interference_matrix"]["speedup"] > 0
    assert 0.99 < results["top_interference_k10"]["best_value"] <= 1.0


def test_user_errors_are_one_line_and_exit_non_zero():
    proc = run_cli("simulate", "--t", "1", "--set", "lambda_=-3", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: lambda_") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("simulate", "--t", "1", "--set", "nonsense", check=False)
    assert proc.returncode == 2 and "name=value" in proc.stderr
