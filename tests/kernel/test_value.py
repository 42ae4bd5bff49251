"""`@value`: frozen, validated attrs classes that attrs builds on first use.

Every class here is declared inside its test, so it starts unbuilt whatever
ran before.
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nano_code
from nano_code.kernel.value import Value, is_built, value


def positive(instance: object, attribute: attrs.Attribute[int], number: int) -> None:
    if number <= 0:
        raise ValueError(f"{attribute.name} must be positive")


def make_point() -> type:
    @value
    class Point(Value):
        x: int = attrs.field(validator=[attrs.validators.instance_of(int), positive])
        y: int = 1
        label: str = attrs.field(default="", eq=False)
        secret: str = attrs.field(default="", repr=False)

    return Point


def test_a_class_is_not_built_until_it_is_used() -> None:
    point = make_point()
    assert not is_built(point)
    assert "__attrs_attrs__" not in vars(point)
    point(x=2)
    assert is_built(point)
    assert "__attrs_attrs__" in vars(point)
    assert "__init__" in vars(point)  # attrs' own, the trampoline is gone
    assert point.__init__.__qualname__ != "value.<locals>.mark.<locals>.first_init"


@pytest.mark.parametrize(
    "introspect",
    [
        lambda cls: attrs.has(cls),
        lambda cls: [field.name for field in attrs.fields(cls)] == ["x", "y", "label", "secret"],
        lambda cls: cls.__match_args__ == ("x", "y", "label", "secret"),
    ],
    ids=["has", "fields", "match_args"],
)
def test_introspection_of_an_unbuilt_class_builds_it(introspect: object) -> None:
    point = make_point()
    assert callable(introspect)
    assert introspect(point)
    assert is_built(point)


def test_pattern_matching_on_an_unbuilt_class() -> None:
    point = make_point()
    unrelated = make_point()
    instance = point(x=3, y=4)
    match instance:
        case unrelated(x, y):  # type: ignore[misc]
            pytest.fail(f"matched another class {x} {y}")
        case point(x, y):  # type: ignore[misc]
            assert (x, y) == (3, 4)
        case _:
            pytest.fail("did not match")


def test_built_instances_are_frozen_and_validated() -> None:
    point = make_point()
    with pytest.raises(TypeError):
        point(x="3")
    with pytest.raises(ValueError, match="x must be positive"):
        point(x=0)
    instance = point(x=1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        instance.x = 5
    with pytest.raises(TypeError):
        point(x=1, z=2)
    assert attrs.evolve(instance, y=7).y == 7
    with pytest.raises(ValueError):
        attrs.evolve(instance, x=-1)


def test_equality_hash_and_repr_honour_field_options() -> None:
    point = make_point()
    a = point(x=1, label="a", secret="hunter2")
    b = point(x=1, label="b", secret="hunter2")
    assert a == b and hash(a) == hash(b)  # label has eq=False
    assert point(x=1) != point(x=2)
    assert a != make_point()(x=1, label="a", secret="hunter2")  # same fields, another class
    shown = repr(a)
    assert shown.endswith("Point(x=1, y=1, label='a')")
    assert "hunter2" not in shown


def test_a_missing_attribute_is_still_missing() -> None:
    point = make_point()
    with pytest.raises(AttributeError, match="no_such_thing"):
        point.no_such_thing  # noqa: B018
    assert is_built(point)  # looked for: built, then not found
    with pytest.raises(AttributeError, match="no_such_thing"):
        point.no_such_thing  # noqa: B018


def test_keyword_only() -> None:
    @value(kw_only=True)
    class Pair(Value):
        left: int
        right: int = 0

    with pytest.raises(TypeError):
        Pair(1)
    assert Pair(left=1).right == 0


def test_misuse_is_refused_at_declaration() -> None:
    with pytest.raises(TypeError, match="must derive from Value"):

        @value
        class Plain:  # type: ignore[type-var]
            x: int

    with pytest.raises(TypeError, match="gets its __init__ from attrs"):

        @value
        class Own(Value):
            x: int

            def __init__(self) -> None:
                pass


def test_a_class_attrs_refuses_raises_attrs_error_at_every_use() -> None:
    @value
    class Bad(Value):
        x: int = 0
        y: int  # a field without a default after one with

    for _ in range(2):
        with pytest.raises(ValueError, match="No mandatory attributes allowed after"):
            Bad(1, 2)
    assert not is_built(Bad)


def test_an_instance_unpickled_in_a_fresh_process_is_frozen() -> None:
    """Unpickling skips __init__: the class is built on the way in, so the copy is frozen
    in a process that had not built it (a spawned worker, say)."""
    from nano_code.adapters.config import Settings

    data = pickle.dumps(Settings(model="m", warnings=("w",)))
    script = (
        "import pickle, sys, attrs\n"
        "settings = pickle.loads(sys.stdin.buffer.read())\n"
        "try:\n"
        "    settings.model = 'changed'\n"
        "except attrs.exceptions.FrozenInstanceError:\n"
        "    print('frozen', settings.model, settings.warnings)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, check=True)
    assert done.stdout.decode().split() == ["frozen", "m", "('w',)"]


def test_instances_pickle() -> None:
    instance = POINT(x=5, y=6)
    assert pickle.loads(pickle.dumps(instance)) == instance


@value
class _Pickled(Value):
    x: int
    y: int = 0


POINT = _Pickled


def test_importing_the_cli_builds_only_what_it_instantiates() -> None:
    """The point of the lazy build: a fresh process importing everything a run imports
    before its first request leaves the classes it has not used unbuilt."""
    script = (
        "import nano_code.cli.run\n"
        "from nano_code.kernel import value\n"
        "from nano_code.kernel.events import ModelReply\n"
        "from nano_code.adapters.journal import TurnEndEntry\n"
        "unbuilt = [c for c in value.Value.__subclasses__() if not value.is_built(c)]\n"
        "print(len(unbuilt), not value.is_built(ModelReply), not value.is_built(TurnEndEntry))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    unbuilt, reply, entry = done.stdout.split()
    assert (reply, entry) == ("True", "True")
    assert int(unbuilt) >= 40


def test_threads_racing_for_the_first_instance_all_get_a_built_class() -> None:
    """Regression: the trampoline was removed before attrs put its own __init__ in place, and
    a thread arriving in between got object.__init__ ("takes no arguments")."""
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        _race_for_first_instances()
    finally:
        sys.setswitchinterval(switching)


def _race_for_first_instances() -> None:
    for _ in range(100):
        point = make_point()
        start = threading.Barrier(4)
        made: list[object] = []

        def make(point: type = point, start: threading.Barrier = start, made: list[object] = made) -> None:
            start.wait()
            made.append(point(x=1))

        threads = [threading.Thread(target=make) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert made == [point(x=1)] * 4
        assert [field.name for field in attrs.fields(point)] == ["x", "y", "label", "secret"]


def every_value_class() -> list[type]:
    package = Path(nano_code.__file__).parent
    for path in sorted(package.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        importlib.import_module(module.removesuffix(".__init__"))
    found: list[type] = []
    pending = [Value]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.__module__.startswith("nano_code."):
                found.append(sub)
    return found


def test_every_value_class_in_nano_code_builds() -> None:
    """A mistake in a declaration would show only when the class is first used: build them all."""
    classes = every_value_class()
    assert len(classes) > 50
    for cls in classes:
        assert attrs.has(cls) and "__attrs_attrs__" in vars(cls), cls
        assert is_built(cls)


@given(st.builds(make_point(), x=st.integers(min_value=1), y=st.integers()))
def test_hypothesis_builds_an_unbuilt_class(instance: Value) -> None:
    assert attrs.evolve(instance) == instance
