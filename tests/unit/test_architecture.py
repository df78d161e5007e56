"""The shape of the package, checked: imports run strictly downward through the layers (lazy imports
inside functions included), the API and the web UI never import each other, nothing imports a name
a module does not export, and docs/architecture.md names every module."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

# Lowest first. A module may import from its own layer and the layers below, never above.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"omtx_hub", "errors", "domain", "backoff", "settings", "logs", "parallel", "chem",
                    "ligand_files", "client", "demo"}),
    ("parts", {"db", "storage", "ligands", "targets", "models", "predictors", "registry", "poses", "pose_checks",
               "interactions"}),
    ("queue", {"queue", "auth", "webhooks"}),
    ("assembly", {"analytics", "aggregate", "submission", "hub"}),
    ("services", {"worker", "worker_process", "services", "presenters", "access"}),
    ("interfaces", {"api", "web"}),
    ("application", {"app", "server"}),
    ("command line", {"cli"}),
]  # fmt: skip


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "omtx_hub").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    head = module.split(".")[1] if module != "omtx_hub" else "omtx_hub"
    for rank, (_, names) in enumerate(LAYERS):
        if head in names:
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/architecture.md")


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """(imported module, names) of every import of the package, module-level and inside functions."""
    out = []
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("omtx_hub")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if base.startswith("omtx_hub"):
                out.append((base, [a.name for a in node.names]))
    return out


def _targets(base: str, names: list[str]) -> list[str]:
    """The modules an import reaches: submodules named in it, else the module itself."""
    subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
    return subs or [base]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downward(module: str) -> None:
    mine = _layer(module)
    for base, names in _imports(module):
        for target in _targets(base, names):
            if target == module or target.startswith(module + "."):
                continue
            assert _layer(target) <= mine, (
                f"{module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
            )
            for a, b in (("api", "web"), ("web", "api")):
                inside = module == f"omtx_hub.{a}" or module.startswith(f"omtx_hub.{a}.")
                reaches = target == f"omtx_hub.{b}" or target.startswith(f"omtx_hub.{b}.")
                assert not (inside and reaches), f"{module} imports {target}: {a}/ and {b}/ never import each other"


def test_the_import_graph_has_no_cycle() -> None:
    graph = {
        m: {t for base, names in _imports(m) for t in _targets(base, names) if t in MODULES and t != m} for m in MODULES
    }
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " → ".join([*path[path.index(node) :], node]))
        if node in done:
            return
        for nxt in graph[node]:
            visit(nxt, [*path, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_curates_its_public_surface(module: str) -> None:
    exported = importlib.import_module(module).__all__
    assert sorted(set(exported)) == sorted(exported), f"{module}.__all__ has duplicates"
    for name in exported:
        assert hasattr(importlib.import_module(module), name), f"{module}.__all__ lists {name}, which is not there"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_imports_a_name_that_is_not_exported(module: str) -> None:
    for base, names in _imports(module):
        if base not in MODULES or base == module or module.startswith(base + "."):
            continue  # a package's own modules may share its private helpers
        public = set(importlib.import_module(base).__all__)
        for name in names:
            if f"{base}.{name}" not in MODULES:
                assert name in public, f"{module} imports {name} from {base}, which does not export it"


def test_docs_architecture_names_every_module() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    for module, path in MODULES.items():
        if module == "omtx_hub":
            continue
        rel = path.relative_to(SRC / "omtx_hub")
        shown = f"{rel.parent}/" if path.name == "__init__.py" else rel.name
        assert shown in text, f"docs/architecture.md does not name {rel}"
