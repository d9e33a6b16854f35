"""The house rules of the source tree, checked on the source itself.

- The client folder the plug-ins carry imports only the standard library and its neighbours.
- No two modules of Inlayer import each other, directly or through others, anywhere in a file
  (a circle hidden inside a function is still a circle); imports for type checking only are not
  run, so they do not count.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The folders that install under `inlayer.` (pyproject's package-dir), by their import name.
PACKAGES = {
    "inlayer.core": REPO / "core",
    "inlayer.server": REPO / "server",
    "inlayer.packaging": REPO / "inlayer_packaging",
}
CLIENT_FOLDER = REPO / "core" / "client"
# The one import from the client folder to outside it: `connect()` with INLAYER_TRANSPORT=inprocess,
# inside a try that turns its ImportError into a clear message.
CLIENT_OPTIONAL_IMPORTS = {"inlayer.core.inprocess"}


def module_files() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _is_type_checking_block(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(node):
        if _is_type_checking_block(child):
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        yield from _runtime_imports(child)


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The Inlayer modules `module` imports when it runs (by absolute name)."""
    is_package = path.name == "__init__.py"
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base_parts = package_parts[: len(package_parts) - node.level + 1] if node.level else []
            base = ".".join([*base_parts, *(node.module.split(".") if node.module else [])])
            # `from package import module` imports the module; `from module import name` the module.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {module: imported_modules(module, path, known) for module, path in files.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_import_graph_sees_real_imports():
    """The walker itself: it must find the edges every reader can see, or it proves nothing."""
    graph = import_graph()
    assert "inlayer.core.client.protocol" in graph["inlayer.core.engine"]
    assert "inlayer.core.client.wire" in graph["inlayer.server.app"]
    assert "inlayer.core.models" in graph["inlayer.core.settings"]  # a function-level import
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"],
        ["d"],
    ]


def test_no_import_circles():
    circles = [group for group in strongly_connected(import_graph()) if len(group) > 1]
    assert circles == []


def test_the_client_folder_imports_only_the_standard_library_and_itself():
    """The plug-ins carry core/client/ into Pythons without third-party packages."""
    stdlib = {"__future__", *sys.stdlib_module_names}
    for path in sorted(CLIENT_FOLDER.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, f"{path.name}: {node.module} lies outside the folder"
            elif isinstance(node, ast.ImportFrom):
                if node.module in CLIENT_OPTIONAL_IMPORTS:
                    continue
                assert node.module.split(".")[0] in stdlib, f"{path.name}: {node.module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] in stdlib, f"{path.name}: {alias.name}"


@pytest.mark.parametrize("folder", ["core", "server", "inlayer_packaging"])
def test_nothing_imports_the_old_top_level_names(folder):
    """Everything installs under `inlayer.`; a stray `import core` only works in a checkout."""
    for path in (REPO / folder).rglob("*.py"):
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""] * (node.level == 0)
            )
            for name in names:
                assert name.split(".")[0] not in {"core", "server", "inlayer_packaging"}, (
                    f"{path}: import {name}"
                )
