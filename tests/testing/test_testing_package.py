"""`nano_code.testing` says what is public, loads it lazily, and its docstrings point at real files."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nano_code.testing

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = PROJECT_ROOT / "nano_code" / "testing"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def test_every_public_name_resolves() -> None:
    assert len(nano_code.testing.__all__) == len(set(nano_code.testing.__all__))
    for name in nano_code.testing.__all__:
        assert getattr(nano_code.testing, name) is not None, name
    assert set(nano_code.testing.__all__) <= set(dir(nano_code.testing))
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        nano_code.testing.nothing_here  # noqa: B018


@pytest.mark.parametrize("name", MODULES)
def test_each_module_has_a_docstring_and_says_what_it_exports(name: str) -> None:
    module = importlib.import_module(f"nano_code.testing.{name}")
    assert module.__doc__ and len(module.__doc__.strip()) > 40, f"{name} has no real docstring"
    if name == "pytest_plugin":
        return  # pytest finds the plugin's fixtures by name; nothing in it is imported
    exported = getattr(module, "__all__", None)
    assert exported, f"nano_code.testing.{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"nano_code.testing.{name}.__all__ names what it does not define: {missing}"


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout))


def test_names_load_lazily() -> None:
    strategies = loaded_after("import nano_code.testing.strategies")
    assert "nano_code.session.replay" not in strategies and "vcr" not in strategies
    kernel_only = loaded_after("from nano_code.testing import requests_for, conversation_problems")
    heavy = {"hypothesis", "urllib3", "vcr", "nano_code.adapters", "nano_code.session", "http.server"}
    assert not heavy & kernel_only, heavy & kernel_only


_FILE_REFERENCE = re.compile(
    r"(?<![\w./-])((?:\.\./)?[\w.-]+(?:/[\w.-]+)+\.(?:md|yaml|yml|json|py|txt|toml))"
)


def file_references(text: str) -> list[str]:
    """Repository paths a text names (a/b.ext); a path starting with ../ is outside, said so."""
    return [match for match in _FILE_REFERENCE.findall(text) if not match.startswith("../")]


def test_the_reference_finder_finds_paths() -> None:
    text = "see cassettes/bugfix.yaml, shared/real-traffic/QUIRKS.md and ../shared/x.md; s.yaml; a.b"
    assert file_references(text) == ["cassettes/bugfix.yaml", "shared/real-traffic/QUIRKS.md"]


_KNOWN_DANGLING: dict[str, str] = {}


@pytest.mark.parametrize("name", MODULES)
def test_module_docstrings_name_only_files_in_the_repository(
    name: str, request: pytest.FixtureRequest
) -> None:
    if name in _KNOWN_DANGLING:
        request.applymarker(pytest.mark.xfail(reason=_KNOWN_DANGLING[name], strict=True))
    module = importlib.import_module(f"nano_code.testing.{name}")
    dangling = [ref for ref in file_references(module.__doc__ or "") if not (PROJECT_ROOT / ref).exists()]
    assert not dangling, (
        f"nano_code/testing/{name}.py's docstring names files not in the repository: {dangling}"
    )
