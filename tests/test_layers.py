"""The three layers (DESIGN.md): the runtime imports only itself and spaCy's stack, the package never
imports the harness, and the harness's modules import each other without cycles."""

import ast
import sys
from pathlib import Path
from typing import Dict, Set

from tests.fixtures import ROOT

PACKAGE = ROOT / "spacy_compact_ner"
RUNTIME_THIRD_PARTY = {"spacy", "thinc", "numpy", "srsly", "wasabi", "catalogue"}


def imports(path: Path, package: str) -> Set[str]:
    """Absolute names of every module an ``import`` anywhere in the file names (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
                names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
            else:
                names.add(node.module or "")
    return names


def runtime_modules():
    return sorted(p for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))


def test_the_runtime_imports_only_itself_spacys_stack_and_the_standard_library():
    assert {p.stem for p in runtime_modules()} >= {
        "component",
        "idcnn",
        "classifier",
        "decoding",
        "losses",
        "store",
        "reader",
    }
    for path in runtime_modules():
        for name in imports(path, "spacy_compact_ner"):
            top = name.split(".")[0]
            if top == "spacy_compact_ner":
                assert not name.startswith("spacy_compact_ner.tools"), (path.name, name)
            else:
                assert top in RUNTIME_THIRD_PARTY or top in sys.stdlib_module_names, (path.name, name)


def test_the_package_never_imports_the_harness_or_the_tests():
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        tops = {name.split(".")[0] for name in imports(path, module.rpartition(".")[0])}
        assert not tops & {"benchmarks", "tests"}, path


def test_the_harness_has_no_import_cycle():
    graph: Dict[str, Set[str]] = {}
    for path in (ROOT / "benchmarks").glob("*.py"):
        module = f"benchmarks.{path.stem}" if path.stem != "__init__" else "benchmarks"
        graph[module] = {n for n in imports(path, "benchmarks") if n in graph or n.startswith("benchmarks.")}
    graph = {m: {n for n in deps if n in graph and n != m and n != "benchmarks"} for m, deps in graph.items()}
    done: Set[str] = set()

    def visit(module: str, stack: tuple) -> None:
        assert module not in stack, " -> ".join(stack + (module,))
        if module in done:
            return
        for dep in graph[module]:
            visit(dep, stack + (module,))
        done.add(module)

    for module in graph:
        visit(module, ())
