"""The layer rules of docs/architecture.md, checked by parsing every import in the project.

- no import cycles (between modules, and between core's component packages);
- core never imports ui, pages or streamlit;
- core.engine imports nothing from other core packages but core.errors;
- core.store does not import core.service;
- the CLI (core.cli), the UI (ui/, pages/, app.py) import core only through package faces;
- nothing imports the contract's faces core.quantum / core.lattice (they exist for the design contract);
- no file over 400 lines without a "Long file:" reason near its top.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCE_DIRS = ("core", "ui", "pages", "benchmarks", "scripts")
# top-level core modules that are faces in themselves (one concept, no package)
SHARED_MODULES = {"core.errors", "core.access", "core.paths", "core.retry"}
CONTRACT_FACES = {"core.quantum", "core.lattice"}
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _project_files() -> list[Path]:
    files = [ROOT / "app.py"]
    for d in SOURCE_DIRS:
        files += sorted(p for p in (ROOT / d).rglob("*.py") if "migrations" not in p.parts)
    return files


MODULES = {_module_name(p): p for p in _project_files()}


def _exported(path: Path) -> set[str]:
    """Names a package face lists in ``__all__`` (``from core.engine import sweep`` is the function)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


FACE_EXPORTS = {m: _exported(p) for m, p in MODULES.items() if p.name == "__init__.py"}


def _imports(path: Path) -> list[tuple[str, int]]:
    """Modules imported by ``path`` (absolute names; ``from pkg import sub`` resolves to pkg.sub)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                package = _module_name(path).split(".")
                package = package if path.name == "__init__.py" else package[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                is_module = sub in MODULES and a.name not in FACE_EXPORTS.get(base, ())
                found.append((sub if is_module else base, node.lineno))
    return found


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(ROOT)}:{line}"


def _violations(modules, rule) -> list[str]:
    return [f"{_where(m, line)} imports {target}"
            for m in modules for target, line in GRAPH[m] if rule(m, target)]


def _package(module: str) -> str:
    """core's component a module belongs to: core.store.gems -> core.store; core.errors -> core.errors."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "core" and len(parts) > 1 else parts[0]


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_the_whole_project():
    assert {"core.engine.lattice", "core.store", "core.cli", "ui.context", "app"} <= set(MODULES)
    assert sum(len(v) for v in GRAPH.values()) > 300


def test_no_import_cycles_between_modules():
    edges = {m: {t for t, _ in GRAPH[m] if t in MODULES and t != m} for m in MODULES}
    # a package's face importing its own submodules is how a face works, not a cycle
    for m in edges:
        edges[m] = {t for t in edges[m] if not (MODULES[m].name == "__init__.py" and t.startswith(m + "."))}
    assert _find_cycle(edges) is None, f"import cycle: {' -> '.join(_find_cycle(edges))}"


def test_no_import_cycles_between_core_packages():
    edges: dict[str, set[str]] = defaultdict(set)
    for m in MODULES:
        if m.startswith("core."):
            for t, _ in GRAPH[m]:
                if t.startswith("core.") and _package(t) != _package(m):
                    edges[_package(m)].add(_package(t))
    cycle = _find_cycle(edges)
    assert cycle is None, f"packages depend on each other in a circle: {' -> '.join(cycle)}"


def test_core_never_imports_the_front_ends():
    core = [m for m in MODULES if m == "core" or m.startswith("core.")]
    bad = _violations(core, lambda m, t: t.split(".")[0] in {"ui", "pages", "streamlit", "streamlit_authenticator",
                                                              "app"})
    assert not bad, "\n".join(bad)


def test_engine_depends_only_on_errors():
    engine = [m for m in MODULES if m.startswith("core.engine")]
    bad = _violations(engine, lambda m, t: t.startswith("core") and not (
        t.startswith("core.engine") or t == "core.errors"))
    assert not bad, "\n".join(bad)


def test_store_does_not_import_services():
    store = [m for m in MODULES if m.startswith("core.store")]
    assert not _violations(store, lambda m, t: t.startswith("core.service"))


def _through_a_face(target: str) -> bool:
    if not target.startswith("core"):
        return True
    return target == "core" or target in SHARED_MODULES or (
        target.count(".") == 1 and (ROOT / target.replace(".", "/") / "__init__.py").exists())


@pytest.mark.parametrize("front_end", ["ui", "pages", "app", "core.cli"])
def test_front_ends_import_only_faces(front_end):
    mods = [m for m in MODULES if m == front_end or m.startswith(front_end + ".")]
    assert mods
    bad = _violations(mods, lambda m, t: not _through_a_face(t) and not t.startswith("core.cli"))
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_contract_faces():
    bad = _violations(MODULES, lambda m, t: t in CONTRACT_FACES)
    assert not bad, "\n".join(bad)


def test_long_files_say_why():
    files = [p for p in MODULES.values()] + sorted((ROOT / "tests").rglob("*.py"))
    long = [f"{p.relative_to(ROOT)} ({n} lines)" for p in files
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
            and "Long file:" not in "\n".join(p.read_text(encoding="utf-8").splitlines()[:15])]
    assert not long, "files over 400 lines without a 'Long file:' reason at the top: " + ", ".join(long)


def test_the_faces_are_short():
    faces = [p for m, p in MODULES.items() if p.name == "__init__.py" and m.startswith("core")]
    assert len(faces) >= 9
    big = [str(p.relative_to(ROOT)) for p in faces if len(p.read_text(encoding="utf-8").splitlines()) > 60]
    assert not big, f"package faces should re-export, not implement: {big}"
