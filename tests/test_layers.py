"""The package layering of docs/ARCHITECTURE.md holds in the code: every import (at module
level or inside a function) goes to the importer's own layer or below, and neither the
packages nor the modules import each other in a circle.

The layer order is read from the numbered list in docs/ARCHITECTURE.md's "Where things live",
so the document and the code cannot drift apart silently. Imports under ``if TYPE_CHECKING:``
are type hints that never run, and are left out.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Command-line programs and their helpers (support/: what tests and benchmarks share): they sit
# above every layer and no library module imports them.
TOP_LEVEL_PROGRAMS = ("benchmarks", "datasets", "scripts", "support", "tests")
SKIP_DIRS = {".venv", ".git", "node_modules", "__pycache__", "build"}  # build: what `pip install .` leaves


def read_layers(doc: Path, root: Path) -> list[set[str]]:
    """Packages per numbered item of the "Where things live" list, top layer first."""
    text = doc.read_text()
    section = text[text.index("## Where things live"):]
    section = section.split("\n## ", 1)[0]
    items = re.split(r"^\d+\. ", section, flags=re.MULTILINE)[1:]
    layers = []
    for item in items:
        item = item.split("\n\n", 1)[0]   # the paragraph after the list is no layer
        names = re.findall(r"`([A-Za-z_]+)/`", item)
        layers.append({n for n in names if (root / n / "__init__.py").is_file()})
    return layers


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if not SKIP_DIRS & set(p.relative_to(root).parts))


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(path: Path, root: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports, each resolved to the longest known module name."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
                base = ".".join([*anchor, base] if base else anchor)
            # "from pkg import sub" imports the submodule pkg.sub when there is one.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        for target in targets:
            parts = target.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts and ".".join(parts) != me:
                found.add(".".join(parts))
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    files = python_files(root)
    known = {module_name(p, root) for p in files}
    return {module_name(p, root): imported_modules(p, root, known) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}   # 1 = on the current path, 2 = finished
    for start in sorted(graph):
        if start in state:
            continue
        path, iters = [start], [iter(sorted(graph.get(start, ())))]
        state[start] = 1
        while path:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(sorted(graph.get(nxt, ()))))
    return None


def layering_problems(root: Path, doc: Path) -> list[str]:
    """Every import that goes upward, and the first cycle between packages and between modules."""
    layers = read_layers(doc, root)
    rank = {pkg: i for i, layer in enumerate(layers) for pkg in layer}
    graph = import_graph(root)
    problems = []
    packages: dict[str, set[str]] = {}
    for module, targets in sorted(graph.items()):
        src = module.split(".")[0]
        for target in sorted(targets):
            dst = target.split(".")[0]
            if dst == src:
                continue
            if src in rank and dst not in rank:
                problems.append(f"{module} imports {target}: a program or test, not a library layer")
            elif src in rank and rank[dst] < rank[src]:
                problems.append(f"{module} imports {target}: upward (layer {rank[src] + 1} -> {rank[dst] + 1})")
            if src in rank and dst in rank:
                packages.setdefault(src, set()).add(dst)
    for pkg in {m.split(".")[0] for m in graph} - set(rank) - set(TOP_LEVEL_PROGRAMS):
        if (root / pkg / "__init__.py").is_file():
            problems.append(f"package {pkg}/ is in no layer of {doc.name}: add it to the list")
    for kind, g in (("packages", packages), ("modules", graph)):
        cycle = find_cycle(g)
        if cycle:
            problems.append(f"import cycle between {kind}: {' -> '.join(cycle)}")
    return problems


def test_layers_read_from_the_architecture_document():
    layers = read_layers(ROOT / "docs" / "ARCHITECTURE.md", ROOT)
    assert layers == [set(), {"training"}, {"options"}, {"inference"}, {"models", "data"}, {"engine", "reporting"}, {"util"}]


def test_no_upward_imports_and_no_cycles():
    assert layering_problems(ROOT, ROOT / "docs" / "ARCHITECTURE.md") == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


DOC = """# x
## Where things live
1. Drivers: `run.py`.
2. `high/`: things.
3. `low/`: more.
## Next
"""


@pytest.mark.parametrize("files, expected", [
    # A function-level import that climbs a layer.
    ({"low/a.py": "def f():\n    from high.b import g\n"}, "low.a imports high.b: upward (layer 3 -> 2)"),
    # A library module importing a program.
    ({"low/a.py": "import run\n"}, "low.a imports run: a program or test, not a library layer"),
    # A cycle inside one package, through a relative import.
    ({"low/a.py": "from .b import x\n", "low/b.py": "from low import a\n"},
     "import cycle between modules: low.a -> low.b -> low.a"),
])
def test_checker_finds_what_it_should(tmp_path: Path, files: dict[str, str], expected: str):
    _write(tmp_path, {"doc.md": DOC, "run.py": "import high\n", "high/__init__.py": "", "high/b.py": "",
                      "low/__init__.py": "", **files})
    assert expected in layering_problems(tmp_path, tmp_path / "doc.md")


def test_checker_ignores_type_checking_imports_and_lists_unplaced_packages(tmp_path: Path):
    _write(tmp_path, {"doc.md": DOC, "high/__init__.py": "", "high/b.py": "import low.a\n",
                      "low/__init__.py": "",
                      "low/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from high.b import T\n",
                      "stray/__init__.py": "import low\n"})
    assert layering_problems(tmp_path, tmp_path / "doc.md") == [
        "package stray/ is in no layer of doc.md: add it to the list"]


def printing_modules(root: Path, doc: Path) -> list[str]:
    """Library modules (every layer below the drivers) that call the bare ``print``: a command
    line belongs to a driver or a script, and library code logs."""
    library = set().union(*read_layers(doc, root))
    found = []
    for path in python_files(root):
        if path.relative_to(root).parts[0] not in library:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                found.append(f"{module_name(path, root)}:{node.lineno}")
    return found


def test_library_layers_do_not_print():
    assert printing_modules(ROOT, ROOT / "docs" / "ARCHITECTURE.md") == []


def test_the_print_check_finds_a_print(tmp_path: Path):
    _write(tmp_path, {"doc.md": DOC, "run.py": "print('driver')\n", "high/__init__.py": "",
                      "low/__init__.py": "", "low/a.py": "def main():\n    print('x')\n"})
    assert printing_modules(tmp_path, tmp_path / "doc.md") == ["low.a:2"]
