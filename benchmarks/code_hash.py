"""Which of this package's source files a loaded pipeline runs, for the speed caches' code key.

spaCy imports the package through its entry points (the component factory, architectures, loss,
reader, callbacks). The modules those name, and every package module they import (any ``import``
statement anywhere in a module, so imports inside functions count too, plus each parent package's
``__init__``), are the code a timed pipeline can run. The command line, the benchmark, the variants
runner and the other tools are not: editing them leaves cached speed measurements valid.
"""

from __future__ import annotations

import ast
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Iterable, List, Optional

PACKAGE = "spacy_compact_ner"
DISTRIBUTION = "spacy-compact-ner"
# catalogue's entry-point groups (spacy_factories, spacy_architectures, thinc_losses, ...), not the
# console script
REGISTRY_GROUPS = ("spacy_", "thinc_")


def entry_point_modules(dist: str = DISTRIBUTION) -> List[str]:
    """The package modules the distribution's registry entry points name (empty when not installed)."""
    try:
        entry_points = distribution(dist).entry_points
    except PackageNotFoundError:
        return []
    modules = {ep.value.split(":")[0].strip() for ep in entry_points if ep.group.startswith(REGISTRY_GROUPS)}
    return sorted(m for m in modules if m == PACKAGE or m.startswith(PACKAGE + "."))


def module_file(module: str, package_dir: Path) -> Optional[Path]:
    """The source file of ``spacy_compact_ner.x.y`` under ``package_dir`` (None if there is none)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = Path(package_dir).joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imported(module: str, path: Path) -> List[str]:
    """Package modules named by the import statements of one module (candidates; may not exist)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found += [target] + [f"{target}.{alias.name}" for alias in node.names]
    return found


def imported_files(roots: Iterable[str], package_dir: Path) -> List[Path]:
    """Source files of ``roots`` and of every package module they import, directly or not."""
    seen, files, todo = set(), [], list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = module_file(module, package_dir)
        if path is None:
            continue
        files.append(path)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += [m for m in _imported(module, path) if m.split(".")[0] == PACKAGE]
    return sorted(files)
