"""The form of nano-code's value types: frozen, validated attrs classes, built when first used.

`@value` is `attrs.frozen` without the generated `__eq__`, `__hash__` and
`__repr__` (every class inherits one shared implementation of each from
`Value`), and without slots, which lets attrs finish the class in place.

Creating an attrs class costs about half a millisecond (attrs collects the
fields, makes a tuple class for them and compiles `__init__`), and nano-code
declares 55 `@value` classes, most of which a run needs only later or never.
Built at import, as plain `attrs.frozen` does, they cost a fresh start about
30 ms before its first request. So `@value` only marks the class, and attrs
builds it the first time it is needed: on the first instance (the class's
`__init__` is a one-time trampoline), or the first look-up of anything the
class lacks until attrs has added it (`__attrs_attrs__`, which `attrs.fields`,
`attrs.has` and `attrs.evolve` read; `__match_args__`; ...), which the
metaclass catches. A run now builds 19 of them before its first request, and
builds the ones a reply needs while it waits for that reply (`build`). Once
built, a class is exactly what `attrs.frozen(cls, eq=False, repr=False,
slots=False)` makes (with the class's `kw_only`), and no trampoline is left
on any path. A mistake in a declaration shows at the first use instead of at
import, so a test builds them all. Each class carries its own mark of being
unbuilt: this module holds no state and takes no lock (see `_build`).

The shared methods compare and hash by the fields in order, as the generated
ones do (a value equals only a value of the very same class; fields declared
with `eq=False` do not count, and `repr=False` ones are not shown), and show a
value as `Name(field=..., ...)`, as attrs does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs

T = TypeVar("T")

_PENDING = "__value_pending__"
"""In the own `__dict__` of a class attrs has not built yet: its `kw_only`."""
_NAMES = "__value_names__"
"""In the own `__dict__` of a built class, once `Value` has needed them: its field names."""


def _is_trampoline(function: object) -> bool:
    return getattr(function, "value_trampoline", False) is True


def is_built(cls: type) -> bool:
    """Whether attrs has built `cls` (a `@value` class)."""
    return _PENDING not in vars(cls) and not _is_trampoline(vars(cls).get("__init__"))


def _build(cls: type) -> None:
    """Let attrs finish `cls`, once.

    The thread that removes the class's pending mark (one `delattr`, which only one
    thread can win) builds it. Another thread creating an instance meanwhile finds the
    mark gone and the trampoline still in place, and waits for the build by looping,
    without a lock (the kernel takes none): it happens only when two threads use a
    class for the first time at once, for the fraction of a millisecond attrs takes.
    attrs replaces the trampoline with its `__init__` itself (`init=True`), so the class
    never lacks one; if attrs raises (a mistake in the declaration), the mark is put
    back, and every use raises attrs' error again."""
    while True:
        state = vars(cls)
        if _PENDING in state:
            kw_only = state[_PENDING]
            try:
                delattr(cls, _PENDING)
            except AttributeError:
                continue  # another thread took it first
            try:
                # init=True: attrs would otherwise keep the class's own __init__, the trampoline
                attrs.frozen(cls, init=True, eq=False, repr=False, slots=False, kw_only=kw_only)
            except BaseException:
                setattr(cls, _PENDING, kw_only)
                raise
            return
        if not _is_trampoline(state.get("__init__")):
            return  # built


def build(*classes: type) -> None:
    """Have attrs build these `@value` classes now, ahead of their first use (a no-op for
    those already built): for a caller with time to spare, such as one waiting for a reply."""
    for cls in classes:
        _build(cls)


class _Builds(type):
    """Metaclass: looking up what an unbuilt class lacks builds it first. (attrs' own
    look-ups while it builds the class find only what is there: the mark is gone by then.)"""

    def __getattr__(cls, name: str) -> Any:
        if _PENDING in vars(cls):
            _build(cls)
            return type.__getattribute__(cls, name)
        raise AttributeError(f"type object {cls.__qualname__!r} has no attribute {name!r}")


def _names(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names of the class's fields that count for equality, and those shown, in order
    (looked up once per class; `attrs.field(eq=False)` and `repr=False` are honoured)."""
    names: tuple[tuple[str, ...], tuple[str, ...]] | None = vars(cls).get(_NAMES)
    if names is None:
        fields = attrs.fields(cls)
        names = (
            tuple(field.name for field in fields if field.eq),
            tuple(field.name for field in fields if field.repr),
        )
        setattr(cls, _NAMES, names)
    return names


def _values(instance: object) -> tuple[Any, ...]:
    return tuple([getattr(instance, name) for name in _names(instance.__class__)[0]])


class Value(metaclass=_Builds):
    """Equality, hashing and repr by fields, shared by every `@value` class."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    def __hash__(self) -> int:
        return hash((self.__class__, _values(self)))

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickling or copying (which skip `__init__`) builds the class first, so that the
        instance is frozen in a process that has not built it yet."""
        _build(self.__class__)
        self.__dict__.update(state)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _names(self.__class__)[1])
        return f"{self.__class__.__qualname__}({shown})"


@overload
def value(cls: type[T], /) -> type[T]: ...


@overload
def value(*, kw_only: bool = False) -> Callable[[type[T]], type[T]]: ...


def value(cls: type[T] | None = None, /, *, kw_only: bool = False) -> Any:
    """Mark a class as a frozen attrs class whose equality, hash and repr come from `Value`.

    `@value` or `@value(kw_only=True)`; attrs builds the class when it is
    first used (see the module's docstring)."""

    def mark(cls: type[T]) -> type[T]:
        if not issubclass(cls, Value):
            raise TypeError(f"{cls.__name__} must derive from Value to be a @value class")
        if "__init__" in vars(cls):
            raise TypeError(f"{cls.__name__}: a @value class gets its __init__ from attrs")

        def first_init(self: Any, *args: Any, **kwargs: Any) -> None:
            _build(cls)
            cls.__init__(self, *args, **kwargs)  # attrs' own, now

        first_init.value_trampoline = True  # type: ignore[attr-defined]
        cls.__init__ = first_init  # type: ignore[method-assign]
        setattr(cls, _PENDING, kw_only)
        return cls

    return mark if cls is None else mark(cls)
