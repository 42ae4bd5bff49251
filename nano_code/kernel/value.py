"""The form of nano-code's value types: frozen, validated attrs classes, built when first used.

`@value` is `attrs.frozen` without the generated `__eq__`, `__hash__` and
`__repr__` (every class inherits one shared implementation of each from
`Value`), and without slots, which lets attrs finish the class in place.
Fields are declared with this module's `field` (or a plain default), which
takes attrs' `default`, `factory`, `validator`, `eq` and `repr`; validators
are callables `(instance, field, value)`, such as those in `kernel.checks`.

Creating an attrs class costs about half a millisecond (attrs collects the
fields, makes a tuple class for them and compiles `__init__`), and nano-code
declares 55 `@value` classes, most of which a run needs only later or never.
So `@value` only marks the class, and attrs builds it the first time it is
needed: on the first instance (the class's `__init__` is a one-time
trampoline), or the first look-up of anything the class lacks until attrs has
added it (`__attrs_attrs__`, which `attrs.fields`, `attrs.has` and
`attrs.evolve` read; `__match_args__`; ...), which the metaclass catches. Once
built, a class is exactly what `attrs.frozen(cls, eq=False, repr=False,
slots=False)` makes (with the class's `kw_only`), and no trampoline is left on
any path. A mistake in a declaration shows at the first use instead of at
import, so a test builds them all. Each class carries its own mark of being
unbuilt: this module takes no lock (see `_build`).

Importing attrs itself costs a fresh process about 30 ms, a fifth of the
time a bare urllib3 client needs to send its first request. A run does not
need attrs before its first request is out, and says so with
`postpone_attrs()` (cli/main.py); once the request is out, a thread imports
attrs and builds the classes a reply needs (session/factory.py), and its
`build(...)` ends the postponement. Until then, an instance of a class attrs
has not built is made without attrs, by `_make_early`, from the same
declarations: the same arguments, defaults, factories and validators, in
attrs' order, frozen the same way (only the exception differs: `FrozenError`
instead of attrs' `FrozenInstanceError`, both `AttributeError`s). Such an
instance is a plain object whose `__dict__` holds its fields, as an instance
of a dict-based attrs class does, so once attrs builds the class it is an
instance like any other. `evolve`, `fields_of` and the shared methods read
the declarations, so none of them needs attrs either, and the validators are
this project's own (`kernel.checks`). Whether construction is postponed is
the one piece of process-wide state here, on `Value`: it changes how an
instance is made, never what it holds, so no transition can tell.

The shared methods compare and hash by the fields in order, as the generated
ones do (a value equals only a value of the very same class; fields declared
with `eq=False` do not count, and `repr=False` ones are not shown), and show a
value as `Name(field=..., ...)`, as attrs does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

Validator = Callable[[Any, Any, Any], None]
"""`(instance, field, value) -> None`, raising if the value is not acceptable: what attrs
calls a validator. `field` has at least a `name`."""

_PENDING = "__value_pending__"
"""In the own `__dict__` of a class attrs has not built yet: its `kw_only`."""
_NAMES = "__value_names__"
"""In the own `__dict__` of a class, once `Value` has needed them: its field names."""
_FIELDS = "__value_fields__"
"""In the own `__dict__` of a class: its `Field`s, in order, read from its declarations
when it is marked (from attrs, once built, for a class only attrs can read)."""
_KW_ONLY = "__value_kw_only__"
"""In the own `__dict__` of every `@value` class: whether its fields are keyword-only."""
_MADE_EARLY = "__value_made_early__"
"""In the own `__dict__` of a class once an instance of it was made without attrs."""
_POSTPONED = "__value_postponed__"
"""On `Value`: whether instances of unbuilt classes are made without attrs (`postpone_attrs`)."""


class _Nothing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()
"""A field's default when it has none."""


class Field:
    """One field of a `@value` class, as declared: what `field(...)` returns; a named copy of
    it is kept in the class when `@value` marks it (`fields_of`)."""

    __slots__ = ("alias", "default", "eq", "factory", "name", "repr", "validator")

    def __init__(
        self,
        default: Any = NOTHING,
        factory: Callable[[], Any] | None = None,
        validator: Validator | None = None,
        eq: bool = True,
        repr: bool = True,
    ) -> None:
        self.name = ""
        self.alias = ""
        self.default = default
        self.factory = factory
        self.validator = validator
        self.eq = eq
        self.repr = repr

    @property
    def mandatory(self) -> bool:
        return self.default is NOTHING and self.factory is None

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


@overload
def field(
    *,
    default: None = None,
    validator: Validator | list[Validator] | tuple[Validator, ...] | None = None,
    eq: bool = True,
    repr: bool = True,
) -> Any: ...


@overload
def field(
    *,
    default: T,
    validator: Validator | list[Validator] | tuple[Validator, ...] | None = None,
    eq: bool = True,
    repr: bool = True,
) -> T: ...


@overload
def field(
    *,
    factory: Callable[[], T],
    validator: Validator | list[Validator] | tuple[Validator, ...] | None = None,
    eq: bool = True,
    repr: bool = True,
) -> T: ...


@overload
def field(
    *,
    default: object = ...,
    factory: Callable[[], Any] | None = None,
    validator: Validator | list[Validator] | tuple[Validator, ...] | None = None,
    eq: bool = True,
    repr: bool = True,
) -> Any: ...


def field(
    *,
    default: Any = NOTHING,
    factory: Callable[[], Any] | None = None,
    validator: Validator | list[Validator] | tuple[Validator, ...] | None = None,
    eq: bool = True,
    repr: bool = True,
) -> Any:
    """Declare a field of a `@value` class, as `attrs.field` does (a list of validators runs
    them in order). Typed as attrs' is: the default or the factory's result must fit the
    field's annotation."""
    if default is not NOTHING and factory is not None:
        raise ValueError("a field takes a default or a factory, not both")
    if isinstance(validator, (list, tuple)):
        validator = _all_of(tuple(validator))
    return Field(default, factory, validator, eq, repr)


def _all_of(validators: tuple[Validator, ...]) -> Validator:
    def all_of(instance: Any, attribute: Any, value: Any) -> None:
        for check in validators:
            check(instance, attribute, value)

    return all_of


class FrozenError(AttributeError):
    """Setting or deleting a field of a value made before attrs built its class."""


def _is_class_var(annotation: object) -> bool:
    text = str(annotation).strip("'\"")
    return text.startswith(("typing.ClassVar", "t.ClassVar", "ClassVar", "typing_extensions.ClassVar"))


def _declared(cls: type, kw_only: bool) -> tuple[Field, ...] | None:
    """The class's fields from its own declarations, read once when it is marked, or None
    when only attrs can make its instances: a field declared with `attrs.field(...)`, a
    `@value` base class (whose fields attrs would add), or a mandatory field after one with
    a default (which attrs refuses, at the class's first use)."""
    if any(is_value_class(base) for base in cls.__mro__[1:]):
        return None
    found: list[Field] = []
    state = vars(cls)
    for name, annotation in state.get("__annotations__", {}).items():
        if _is_class_var(annotation):
            continue
        declared = state.get(name, NOTHING)
        if isinstance(declared, Field):
            spec = Field(declared.default, declared.factory, declared.validator, declared.eq, declared.repr)
        elif type(declared).__module__.startswith("attr"):
            return None
        else:
            spec = Field(default=declared)
        spec.name = name
        spec.alias = name.lstrip("_")
        found.append(spec)
    if not kw_only:  # positional arguments: attrs' rule on their order
        after_default = False
        for spec in found:
            if not spec.mandatory:
                after_default = True
            elif after_default:
                return None
    return tuple(found)


def fields_of(cls: type) -> tuple[Field, ...]:
    """The fields of a `@value` class in order, as declared (attrs' own field list for a
    class only attrs can read, built for the purpose), without building the class."""
    found: tuple[Field, ...] | None = vars(cls).get(_FIELDS)
    if found is None:
        import attrs

        _build(cls)
        found = tuple(_from_attrs(attrs, attribute) for attribute in attrs.fields(cls))
        setattr(cls, _FIELDS, found)
    return found


def _from_attrs(attrs: Any, attribute: Any) -> Field:
    default = attribute.default
    is_factory = isinstance(default, attrs.Factory)
    spec = Field(
        NOTHING if is_factory or default is attrs.NOTHING else default,
        default.factory if is_factory else None,
        attribute.validator,
        attribute.eq,
        attribute.repr,
    )
    spec.name, spec.alias = attribute.name, attribute.alias
    return spec


def is_value_class(cls: object) -> bool:
    """Whether `cls` is a `@value` class (built by attrs or not)."""
    return isinstance(cls, _Builds) and cls is not Value


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
        state = vars(cls)  # a live view: read each thing once
        kw_only = state.get(_PENDING)
        if kw_only is not None:
            import attrs

            declared: tuple[Field, ...] = state.get(_FIELDS) or ()
            try:
                delattr(cls, _PENDING)
            except AttributeError:
                continue  # another thread took it first
            as_written = {spec.name: state.get(spec.name, NOTHING) for spec in declared}
            try:
                for spec in declared:
                    setattr(cls, spec.name, _attrs_field(attrs, spec))
                # init=True: attrs would otherwise keep the class's own __init__, the trampoline
                attrs.frozen(cls, init=True, eq=False, repr=False, slots=False, kw_only=kw_only)
            except BaseException:
                for name, written in as_written.items():
                    if written is not NOTHING:
                        setattr(cls, name, written)
                    elif name in vars(cls):
                        delattr(cls, name)
                setattr(cls, _PENDING, kw_only)
                raise
            return
        if not _is_trampoline(state.get("__init__")):
            return  # built


def _attrs_field(attrs: Any, spec: Field) -> Any:
    return attrs.field(
        default=attrs.NOTHING if spec.default is NOTHING else spec.default,
        factory=spec.factory,
        validator=spec.validator,
        eq=spec.eq,
        repr=spec.repr,
    )


def build(*classes: type) -> None:
    """Have attrs build these `@value` classes now, ahead of their first use (a no-op for
    those already built): for a caller with time to spare, such as one waiting for a reply.
    Then ends `postpone_attrs()`: from now on, a class is built by attrs when first used.
    (Meanwhile another thread's instances of classes not built yet are made without attrs:
    a thread building ahead never makes another wait for attrs' import.) A class attrs
    refuses does not stop the others, nor the end of the postponement: its error is raised
    once they are done."""
    refused: Exception | None = None
    try:
        for cls in classes:
            try:
                _build(cls)
            except Exception as error:
                refused = refused or error
    finally:
        setattr(Value, _POSTPONED, False)
    if refused is not None:
        raise refused


def attrs_postponed() -> bool:
    """Whether instances of unbuilt classes are being made without attrs (`postpone_attrs`)."""
    return bool(Value.__value_postponed__)


def used_unbuilt() -> tuple[type, ...]:
    """The `@value` classes not built yet that have instances made without attrs: for
    building ahead of their next use."""
    found: list[type] = []
    pending = [Value]
    while pending:
        for cls in pending.pop().__subclasses__():
            pending.append(cls)
            if _MADE_EARLY in vars(cls) and not is_built(cls):
                found.append(cls)
    return tuple(found)


def postpone_attrs() -> None:
    """Make instances of classes attrs has not built yet without importing attrs, until the
    next `build(...)`: for a process that wants its first request out before paying for
    attrs' import (see the module's docstring)."""
    setattr(Value, _POSTPONED, True)


def _make_early(
    instance: Any, cls: type, specs: tuple[Field, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """What attrs' `__init__` for `cls` does, without attrs: bind the arguments (positional in
    field order unless the class is keyword-only), fill in defaults and factories, set the
    fields, run the validators in field order once all are set, then `__attrs_post_init__`."""
    name = f"{cls.__qualname__}.__init__()"
    kw_only = vars(cls)[_KW_ONLY]
    if args and (kw_only or len(args) > len(specs)):
        allowed = 0 if kw_only else len(specs)
        raise TypeError(f"{name} takes {allowed + 1} positional arguments but {len(args) + 1} were given")
    given: dict[str, Any] = {}
    for spec, argument in zip(specs, args, strict=False):
        if spec.alias in kwargs:
            raise TypeError(f"{name} got multiple values for argument {spec.alias!r}")
        given[spec.alias] = argument
    aliases = {spec.alias for spec in specs}
    for alias, argument in kwargs.items():
        if alias not in aliases:
            raise TypeError(f"{name} got an unexpected keyword argument {alias!r}")
        given[alias] = argument
    missing = [spec.alias for spec in specs if spec.mandatory and spec.alias not in given]
    if missing:
        raise TypeError(f"{name} missing {len(missing)} required argument(s): {', '.join(missing)}")
    values = [
        given[spec.alias]
        if spec.alias in given
        else spec.factory()
        if spec.factory is not None
        else spec.default
        for spec in specs
    ]
    if _MADE_EARLY not in vars(cls):
        setattr(cls, _MADE_EARLY, True)
    for spec, value_given in zip(specs, values, strict=True):
        object.__setattr__(instance, spec.name, value_given)
    for spec, value_given in zip(specs, values, strict=True):
        if spec.validator is not None:
            spec.validator(instance, spec, value_given)
    try:  # not getattr(): the metaclass would build the class to look for it
        post_init = type.__getattribute__(cls, "__attrs_post_init__")
    except AttributeError:
        return
    post_init(instance)


def evolve(inst: T, **changes: Any) -> T:
    """A copy of the value `inst` with `changes`, validated: what `attrs.evolve` does, for built
    and unbuilt classes alike."""
    cls = inst.__class__
    for spec in fields_of(cls):
        if spec.alias not in changes:
            changes[spec.alias] = getattr(inst, spec.name)
    return cls(**changes)


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
    (looked up once per class; `field(eq=False)` and `repr=False` are honoured)."""
    names: tuple[tuple[str, ...], tuple[str, ...]] | None = vars(cls).get(_NAMES)
    if names is None:
        specs = fields_of(cls)
        names = (
            tuple(spec.name for spec in specs if spec.eq),
            tuple(spec.name for spec in specs if spec.repr),
        )
        setattr(cls, _NAMES, names)
    return names


def _values(instance: object) -> tuple[Any, ...]:
    return tuple([getattr(instance, name) for name in _names(instance.__class__)[0]])


class Value(metaclass=_Builds):
    """Equality, hashing and repr by fields, shared by every `@value` class; frozen until
    attrs makes the class frozen its own way."""

    __slots__ = ()
    __value_postponed__ = False

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    def __hash__(self) -> int:
        return hash((self.__class__, _values(self)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenError(f"{self.__class__.__qualname__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenError(f"{self.__class__.__qualname__} is frozen: cannot delete {name!r}")

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
            if Value.__value_postponed__:
                # read when the class was marked, so a build in another thread cannot change them
                specs = vars(cls).get(_FIELDS)
                if specs is not None:
                    _make_early(self, cls, specs, args, kwargs)
                    return
            _build(cls)
            cls.__init__(self, *args, **kwargs)  # attrs' own, now

        first_init.value_trampoline = True  # type: ignore[attr-defined]
        cls.__init__ = first_init  # type: ignore[method-assign]
        setattr(cls, _KW_ONLY, kw_only)
        declared = _declared(cls, kw_only)
        if declared is not None:
            setattr(cls, _FIELDS, declared)
        setattr(cls, _PENDING, kw_only)
        return cls

    return mark if cls is None else mark(cls)
