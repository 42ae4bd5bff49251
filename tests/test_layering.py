"""Arrows point inward: cli -> session -> driver -> kernel; adapters are edges.

Every module's imports are read with `ast` (so an import in a branch no test
runs still counts). No two modules import each other, directly or round a
longer circle, and each package may import only the layers inside it:

    cli, testing   anything
    evals, view    session and everything inside it (research: suites, tables; the HTML viewer)
    session        driver, adapters, kernel, prompts
    adapters       kernel, prompts, other adapters -- never session, driver or cli
    driver         kernel
    kernel         kernel (and the pure standard library: tests/kernel/test_purity.py)
    prompts        nothing of nano_code
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nano_code"

LAYER_OF = {
    "nano_code.cli": "cli",
    "nano_code.testing": "testing",
    "nano_code.evals": "evals",
    "nano_code.view": "view",
    "nano_code.session": "session",
    "nano_code.adapters": "adapters",
    "nano_code.driver": "driver",
    "nano_code.kernel": "kernel",
    "nano_code.prompts": "prompts",
    "nano_code": "root",  # __init__ (the version) and __main__
}

MAY_IMPORT = {
    "cli": {"cli", "evals", "view", "session", "adapters", "driver", "kernel", "prompts", "root"},
    "testing": {"testing", "evals", "view", "session", "adapters", "driver", "kernel", "prompts", "root", "cli"},
    "evals": {"evals", "session", "adapters", "driver", "kernel", "prompts", "root"},
    "view": {"view", "session", "adapters", "kernel", "prompts", "root"},
    "session": {"session", "adapters", "driver", "kernel", "prompts", "root"},
    "adapters": {"adapters", "kernel", "prompts", "root"},
    "driver": {"driver", "kernel"},
    "kernel": {"kernel"},
    "prompts": {"prompts"},
    "root": {"root", "cli"},
}


def layer(module: str) -> str | None:
    best = None
    for prefix, name in LAYER_OF.items():
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, name)
    return best[1] if best else None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(PACKAGE.rglob("*.py"))
MODULE_NAMES = {module_name(path) for path in MODULES}


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            elif node.module:
                source = node.module
            else:
                continue
            names = [f"{source}.{alias.name}" for alias in node.names]
            found += names
            if not all(
                name in MODULE_NAMES for name in names
            ):  # `from pkg import module` is no import of pkg
                found.append(source)
    return [name for name in found if name == "nano_code" or name.startswith("nano_code.")]


def import_graph(paths: list[Path]) -> dict[str, set[str]]:
    """Module -> the nano_code modules it imports (names that are not modules, such as
    `nano_code.cli.exits.say`, are dropped)."""
    names = {module_name(path): path for path in paths}
    return {name: {i for i in imports(path) if i in names and i != name} for name, path in names.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle of imports for each group of modules that import each other
    (Tarjan's strongly connected components), e.g. ['a', 'b', 'a']."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = {stack.pop()}
            while node not in group:
                group.add(stack.pop())
            if len(group) > 1:
                found.append(circle(graph, group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def circle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path of imports from the group's first module back to itself."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        node = frontier.pop(0)
        for target in sorted(graph[node] & group):
            if target == start:
                return paths[node] + [start]
            if target not in paths:
                paths[target] = paths[node] + [target]
                frontier.append(target)
    raise AssertionError(f"no circle in {sorted(group)}")


def test_no_two_modules_import_each_other() -> None:
    found = cycles(import_graph(MODULES))
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_checker_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e2"}, "e2": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["e", "e2", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def outward(module: str, imported: list[str]) -> list[str]:
    own = layer(module)
    assert own is not None, f"{module} is in no layer: add its package to LAYER_OF"
    return sorted(
        {
            f"{name} ({target})"
            for name in imported
            if (target := layer(name)) and target not in MAY_IMPORT[own]
        }
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_import_points_inward(path: Path) -> None:
    wrong = outward(module_name(path), imports(path))
    assert not wrong, f"{module_name(path)} imports outward: {', '.join(wrong)}"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The test above can fail: outward imports, relative ones included, are caught."""
    probe = PACKAGE / "adapters" / "tools.py"  # a real adapter, read as if it held these lines
    source = "from nano_code.driver import Driver\nfrom ..session import replay\nimport nano_code.cli.run\n"
    fake = tmp_path / "probe.py"
    fake.write_text(source, encoding="utf-8")
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.append(f"nano_code.{node.module}" if node.level == 2 else str(node.module))
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    wrong = outward(module_name(probe), found)
    assert wrong == ["nano_code.cli.run (cli)", "nano_code.driver (driver)", "nano_code.session (session)"]
