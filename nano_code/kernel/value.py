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
import, so a test builds them all. The registry of unbuilt classes is the
kernel's one piece of global state besides memos; it makes no difference to
any value or transition, only to when attrs does its work.

The shared methods compare and hash by the fields in order, as the generated
ones do (a value equals only a value of the very same class; fields declared
with `eq=False` do not count, and `repr=False` ones are not shown), and show a
value as `Name(field=..., ...)`, as attrs does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs

T = TypeVar("T")

_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}
_UNBUILT: dict[type, bool] = {}
"""Classes marked `@value` that attrs has not built yet, with their `kw_only`."""
_BUILDING: set[type] = set()
_BUILD_LOCK = threading.RLock()


def _build(cls: type) -> None:
    """Let attrs finish `cls`, once. Another thread creating an instance meanwhile goes
    through the trampoline and waits here for the lock; attrs' own look-ups on the class
    while it builds find only what is there (the metaclass lets them through).

    attrs replaces the trampoline with its `__init__` in one assignment at the end, so
    the class never lacks an `__init__`; if attrs raises (a mistake in the declaration),
    the class stays unbuilt and every use raises attrs' error again."""
    if cls not in _UNBUILT:
        return
    with _BUILD_LOCK:
        if cls not in _UNBUILT or cls in _BUILDING:
            return
        _BUILDING.add(cls)
        try:
            # init=True: attrs would otherwise keep the class's own __init__, the trampoline
            attrs.frozen(cls, init=True, eq=False, repr=False, slots=False, kw_only=_UNBUILT[cls])
        finally:
            _BUILDING.discard(cls)
        del _UNBUILT[cls]


def build(*classes: type) -> None:
    """Have attrs build these `@value` classes now, ahead of their first use (a no-op for
    those already built): for a caller with time to spare, such as one waiting for a reply."""
    for cls in classes:
        _build(cls)


class _Builds(type):
    """Metaclass: looking up what an unbuilt class lacks builds it first."""

    def __getattr__(cls, name: str) -> Any:
        if cls in _UNBUILT:
            _build(cls)
            return type.__getattribute__(cls, name)
        raise AttributeError(f"type object {cls.__qualname__!r} has no attribute {name!r}")


def _names(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names of the class's fields that count for equality, and those shown, in order
    (looked up once per class; `attrs.field(eq=False)` and `repr=False` are honoured)."""
    names = _NAMES.get(cls)
    if names is None:
        fields = attrs.fields(cls)
        names = _NAMES[cls] = (
            tuple(field.name for field in fields if field.eq),
            tuple(field.name for field in fields if field.repr),
        )
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

        cls.__init__ = first_init  # type: ignore[method-assign]
        _UNBUILT[cls] = kw_only
        return cls

    return mark if cls is None else mark(cls)
