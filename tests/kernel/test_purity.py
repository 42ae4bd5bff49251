"""The kernel imports nothing that does I/O or reads the clock or randomness.

Checked by reading the source with `ast`, so a forbidden import fails here even
if it sits in a branch no test executes. The allow-list is deliberately short:
adding to it should be a design decision, not a convenience.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KERNEL = Path(__file__).resolve().parents[2] / "nano_code" / "kernel"

ALLOWED = frozenset(
    {
        "__future__",
        "attrs",
        "json",
        "re",
        "enum",
        "typing",
        "types",
        "collections.abc",
        "functools",
        "dataclasses",
        "math",
        "itertools",
        "nano_code.kernel",
    }
)

FORBIDDEN_BUILTINS = frozenset(
    {"open", "input", "print", "exec", "eval", "compile", "__import__", "breakpoint"}
)


def allowed(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in ALLOWED)


def imports_of(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import stays inside the kernel package
                found.append((node.lineno, "nano_code.kernel." + (node.module or "")))
            else:
                found.append((node.lineno, node.module or ""))
    return found


def kernel_modules() -> list[Path]:
    modules = sorted(KERNEL.glob("*.py"))
    assert modules, f"no kernel modules found under {KERNEL}"
    return modules


@pytest.mark.parametrize("path", kernel_modules(), ids=lambda p: p.name)
def test_kernel_module_imports_only_pure_modules(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [
        f"{path.name}:{line}: imports {module!r}" for line, module in imports_of(tree) if not allowed(module)
    ]
    assert not bad, (
        "the kernel must stay pure (no I/O, clock or randomness); not on the allow-list:\n  "
        + "\n  ".join(bad)
    )


@pytest.mark.parametrize("path", kernel_modules(), ids=lambda p: p.name)
def test_kernel_module_calls_no_io_builtins(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [
        f"{path.name}:{node.lineno}: calls {node.func.id}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in FORBIDDEN_BUILTINS
    ]
    assert not bad, "the kernel must not do I/O or load code dynamically:\n  " + "\n  ".join(bad)


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "import time as clock",
        "from random import choice",
        "import urllib3.util",
        "from datetime import date",
        "import collections",
        "from pathlib import Path",
        "import logging",
    ],
)
def test_the_check_catches_forbidden_imports(source: str) -> None:
    assert not all(allowed(module) for _, module in imports_of(ast.parse(source)))


def test_the_check_accepts_the_kernel_idioms() -> None:
    source = "\n".join(
        [
            "from __future__ import annotations",
            "import attrs",
            "from collections.abc import Mapping",
            "from . import codec",
        ]
    )
    assert all(allowed(module) for _, module in imports_of(ast.parse(source)))
