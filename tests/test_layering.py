"""Arrows point inward: cli -> session -> driver -> kernel; adapters are edges.

Every module's imports are read with `ast` (so an import in a branch no test
runs still counts), and each package may import only the layers inside it:

    cli, testing   anything
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
    "nano_code.session": "session",
    "nano_code.adapters": "adapters",
    "nano_code.driver": "driver",
    "nano_code.kernel": "kernel",
    "nano_code.prompts": "prompts",
    "nano_code": "root",  # __init__ (the version) and __main__
}

MAY_IMPORT = {
    "cli": {"cli", "session", "adapters", "driver", "kernel", "prompts", "root"},
    "testing": {"testing", "session", "adapters", "driver", "kernel", "prompts", "root", "cli"},
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
                found.append(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.append(node.module)
                found += [f"{node.module}.{alias.name}" for alias in node.names]
    return [name for name in found if name == "nano_code" or name.startswith("nano_code.")]


MODULES = sorted(PACKAGE.rglob("*.py"))


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
