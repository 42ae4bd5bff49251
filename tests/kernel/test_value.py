"""`@value`: frozen, validated attrs classes that attrs builds on first use, and
whose instances can be made without attrs until a run's first request is out.

Every class here is declared inside its test, so it starts unbuilt whatever
ran before.
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nano_code
from nano_code.kernel import checks
from nano_code.kernel import value as value_module
from nano_code.kernel.value import NOTHING, FrozenError, Value, evolve, field, fields_of, is_built, value


def positive(instance: object, attribute: attrs.Attribute[int], number: int) -> None:
    if number <= 0:
        raise ValueError(f"{attribute.name} must be positive")


def make_point() -> type:
    @value
    class Point(Value):
        x: int = field(validator=[checks.instance_of(int), positive])
        y: int = 1
        label: str = field(default="", eq=False)
        secret: str = field(default="", repr=False)

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
        assert [(spec.name, spec.eq, spec.repr) for spec in fields_of(point)] == [
            ("x", True, True),
            ("y", True, True),
            ("label", False, True),
            ("secret", True, False),
        ]


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


# --------------------------------------------------------------------------------------------------
# instances made before attrs is imported (postpone_attrs)
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def postponed() -> Iterator[None]:
    value_module.postpone_attrs()
    try:
        yield
    finally:
        value_module.build()  # ends the postponement


def make_sample(kw_only: bool = False) -> type:
    """A class using every kind of declaration `field` takes."""

    class Sample(Value):
        count: int = field(validator=[checks.instance_of(int), checks.ge(0)])
        name: str = field(default="x", validator=checks.instance_of(str))
        tags: tuple[str, ...] = field(
            factory=tuple, validator=checks.deep_iterable(checks.instance_of(str), checks.instance_of(tuple))
        )
        note: str | None = field(default=None, validator=checks.optional(checks.instance_of(str)), eq=False)
        hidden: int = field(default=0, repr=False)
        plain: int = 7

        def __attrs_post_init__(self) -> None:
            object.__setattr__(self, "seen", (self.count, self.name))

    return value(kw_only=True)(Sample) if kw_only else value(Sample)


def outcome(cls: type, args: list[object], kwargs: dict[str, object]) -> tuple[object, ...]:
    """What making an instance gives: its fields (and what `__attrs_post_init__` added), or
    the kind of error (and, for a validator's, its text: the same validator raises it)."""
    try:
        instance = cls(*args, **kwargs)
    except ValueError as error:
        return ("ValueError", str(error))
    except TypeError as error:
        from_validator = len(error.args) > 1  # the checks' TypeErrors carry the field and value
        return ("TypeError", error.args[0] if from_validator else "")
    return ("made", dict(vars(instance)))


ANY_VALUE = st.one_of(
    st.integers(-2, 3),
    st.text(max_size=2),
    st.none(),
    st.tuples(st.text(max_size=1)),
    st.tuples(st.integers(0, 1)),
    st.booleans(),
)


@given(
    kw_only=st.booleans(),
    args=st.lists(ANY_VALUE, max_size=7),
    kwargs=st.dictionaries(
        st.sampled_from(["count", "name", "tags", "note", "hidden", "plain", "bogus"]), ANY_VALUE
    ),
)
def test_an_instance_made_without_attrs_is_the_one_attrs_makes(
    kw_only: bool, args: list[object], kwargs: dict[str, object]
) -> None:
    """The same arguments give the same fields, or the same kind of error, whether attrs' own
    `__init__` made the instance or `_make_early` did (arguments bound alike, defaults and
    factories filled in alike, the validators run alike, `__attrs_post_init__` called)."""
    built = make_sample(kw_only)
    value_module.build(built)
    expected = outcome(built, args, dict(kwargs))
    early = make_sample(kw_only)
    value_module.postpone_attrs()
    try:
        got = outcome(early, args, dict(kwargs))
        assert not is_built(early)
    finally:
        value_module.build()
    assert got == expected


@pytest.mark.usefixtures("postponed")
def test_an_early_instance_is_frozen_and_becomes_an_attrs_instance() -> None:
    sample = make_sample()
    early = sample(count=2, tags=("a",))
    assert not is_built(sample)
    with pytest.raises(FrozenError):
        early.count = 3
    with pytest.raises(AttributeError):  # FrozenError is one
        del early.name
    assert evolve(early, count=5).count == 5 and not is_built(sample)
    assert early == sample(count=2, tags=("a",), note="eq=False: not compared")
    assert repr(early).endswith("Sample(count=2, name='x', tags=('a',), note=None, plain=7)")
    value_module.build(sample)
    assert attrs.asdict(early)["count"] == 2 and attrs.fields(type(early)).tags.name == "tags"
    assert early == sample(count=2, tags=("a",))  # an attrs-made one
    assert attrs.evolve(early, name="y").name == "y"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        early.count = 3


@pytest.mark.usefixtures("postponed")
def test_a_class_declared_with_attrs_fields_is_built_even_when_postponed() -> None:
    """`attrs.field(...)` only attrs can read: such a class is built at its first use."""

    @value
    class Declared(Value):
        x: int = attrs.field(validator=attrs.validators.instance_of(int))

    assert Declared(x=1).x == 1
    assert is_built(Declared)
    assert [spec.name for spec in fields_of(Declared)] == ["x"]


@pytest.mark.usefixtures("postponed")
def test_a_misordered_class_is_refused_without_attrs_too() -> None:
    @value
    class Bad(Value):
        x: int = 0
        y: int

    with pytest.raises(ValueError, match="No mandatory attributes allowed after"):
        Bad(1, 2)


def test_the_declarations_are_what_attrs_built() -> None:
    """For every class in nano-code: the fields `fields_of` reads from the declarations (what
    `_make_early`, `evolve` and the shared methods use) are attrs' own, with the same
    defaults, factories, validators and options."""
    for cls in every_value_class():
        built = attrs.fields(cls)
        declared = fields_of(cls)
        assert [(s.name, s.alias, s.eq, s.repr) for s in declared] == [
            (a.name, a.alias, a.eq, a.repr) for a in built
        ], cls
        for spec, attribute in zip(declared, built, strict=True):
            assert attribute.validator is spec.validator, (cls, spec)
            if spec.factory is not None:
                assert isinstance(attribute.default, attrs.Factory)
                assert attribute.default.factory is spec.factory, (cls, spec)
            elif spec.default is NOTHING:
                assert attribute.default is attrs.NOTHING, (cls, spec)
            else:
                assert attribute.default is spec.default, (cls, spec)


def test_every_class_can_be_made_without_attrs() -> None:
    """In a fresh process that postpones attrs, every class in nano-code is declared with
    `field` or plain defaults (none would need attrs for its first instance), and importing
    all a run imports before its first request leaves attrs unimported."""
    script = (
        "import sys\n"
        "from nano_code.kernel import value\n"
        "value.postpone_attrs()\n"
        "import nano_code.cli.run, nano_code.cli.main\n"
        "print('attrs' in sys.modules)\n"
        "pending = [value.Value]\n"
        "needs_attrs = []\n"
        "while pending:\n"
        "    for cls in pending.pop().__subclasses__():\n"
        "        pending.append(cls)\n"
        "        if not value.is_built(cls) and value._FIELDS not in vars(cls):\n"
        "            needs_attrs.append(cls.__qualname__)\n"
        "print(needs_attrs)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["False", "[]"]


def test_build_without_classes_only_ends_the_postponement() -> None:
    script = (
        "import sys\n"
        "from nano_code.kernel import value\n"
        "value.postpone_attrs()\n"
        "value.build()\n"
        "print('attrs' in sys.modules, value.Value.__value_postponed__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_field_refuses_a_default_and_a_factory() -> None:
    with pytest.raises(ValueError, match="not both"):
        field(default=1, factory=list)


def slow_build(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """attrs.frozen made to wait, mid-build, until the test lets it go on."""
    started, go_on = threading.Event(), threading.Event()
    frozen = attrs.frozen

    def waiting_frozen(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert go_on.wait(10)
        return frozen(*args, **kwargs)

    monkeypatch.setattr(attrs, "frozen", waiting_frozen)
    return started, go_on


@pytest.mark.usefixtures("postponed")
@pytest.mark.parametrize("kw_only", [False, True], ids=["positional", "kw_only"])
def test_an_instance_made_while_another_thread_builds_the_class(
    monkeypatch: pytest.MonkeyPatch, kw_only: bool
) -> None:
    """Regressions (review): the fields were read from the class while attrs was taking the
    declarations out of it (every field then looked mandatory, with no validator, and eq=False
    and repr=False were lost for good), and keyword-only was read from the mark a build
    removes. The declarations are read once, when the class is marked."""
    sample = make_sample(kw_only)
    started, go_on = slow_build(monkeypatch)
    builder = threading.Thread(target=value_module.build, args=(sample,))
    builder.start()
    try:
        assert started.wait(10)
        assert "__value_pending__" not in vars(sample)  # mid-build
        made = sample(count=1, tags=("t",))
        assert vars(made) == {
            "count": 1,
            "name": "x",
            "tags": ("t",),
            "note": None,
            "hidden": 0,
            "plain": 7,
            "seen": (1, "x"),
        }
        with pytest.raises(ValueError):
            sample(count=-1)  # the validators still run
        if kw_only:
            with pytest.raises(TypeError):
                sample(1)
    finally:
        go_on.set()
        builder.join()
    assert is_built(sample)
    assert [(spec.name, spec.eq, spec.repr) for spec in fields_of(sample)] == [
        ("count", True, True),
        ("name", True, True),
        ("tags", True, True),
        ("note", False, True),
        ("hidden", True, False),
        ("plain", True, True),
    ]
    assert made == sample(count=1, tags=("t",), note="not compared")
    assert "hidden" not in repr(made)


def test_a_subclass_of_a_value_class_is_made_by_attrs() -> None:
    """attrs adds a base class's fields: only attrs makes such an instance, even postponed."""

    @value
    class Base(Value):
        a: int = 0

    @value
    class Derived(Base):
        b: int = 1

    value_module.postpone_attrs()
    try:
        assert vars(Derived(a=5, b=2)) == {"a": 5, "b": 2}
        assert is_built(Derived)
    finally:
        value_module.build()


@pytest.mark.usefixtures("postponed")
def test_a_field_object_shared_by_two_names_serves_both() -> None:
    shared = field(default=0)

    class Twice(Value):
        x: int = shared
        y: int = shared

    twice = value(Twice)
    assert vars(twice(x=1, y=2)) == {"x": 1, "y": 2}


@pytest.mark.usefixtures("postponed")
def test_binding_errors_come_before_factories_run() -> None:
    calls: list[int] = []

    def counted() -> tuple[str, ...]:
        calls.append(1)
        return ()

    @value
    class Counted(Value):
        x: int
        tags: tuple[str, ...] = field(factory=counted)

    with pytest.raises(TypeError):
        Counted(bogus=1)
    assert calls == []


def test_a_refused_build_puts_the_class_back_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    sample = make_sample()
    before = dict(vars(sample))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("refused")

    monkeypatch.setattr(attrs, "frozen", refuse)
    with pytest.raises(RuntimeError):
        value_module.build(sample)
    assert dict(vars(sample)) == before
    monkeypatch.undo()
    assert sample(count=1).count == 1 and is_built(sample)
