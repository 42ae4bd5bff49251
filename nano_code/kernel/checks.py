"""Validators for `@value` fields: the few of `attrs.validators` nano-code uses, without attrs.

Each returns a callable `(instance, field, value)` that raises as attrs' namesake does
(`TypeError` for a wrong type, `ValueError` for a wrong value, with the field's name in
the message) and works the same whether attrs or `value._make_early` calls it: the field
it is given needs only a `name`. Keeping them here lets a value be made, validated, before
attrs is imported (see `kernel.value`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sized
from typing import Any

from nano_code.kernel.lazy_re import lazy
from nano_code.kernel.value import Validator


def instance_of(kind: type | tuple[type, ...]) -> Validator:
    def check(_instance: Any, field: Any, value: Any) -> None:
        if not isinstance(value, kind):
            raise TypeError(
                f"'{field.name}' must be {kind!r} (got {value!r} that is a {value.__class__!r}).",
                field,
                kind,
                value,
            )

    return check


def optional(validator: Validator | list[Validator] | tuple[Validator, ...]) -> Validator:
    """None, or a value `validator` (a list: all of them) accepts."""
    inner = and_(*validator) if isinstance(validator, (list, tuple)) else validator

    def check(instance: Any, field: Any, value: Any) -> None:
        if value is not None:
            inner(instance, field, value)

    return check


def and_(*validators: Validator) -> Validator:
    def check(instance: Any, field: Any, value: Any) -> None:
        for validator in validators:
            validator(instance, field, value)

    return check


def _compare(symbol: str, holds: Callable[[Any, Any], bool], bound: Any) -> Validator:
    def check(_instance: Any, field: Any, value: Any) -> None:
        if not holds(value, bound):
            raise ValueError(f"'{field.name}' must be {symbol} {bound}: {value}")

    return check


def ge(bound: Any) -> Validator:
    return _compare(">=", lambda value, limit: value >= limit, bound)


def gt(bound: Any) -> Validator:
    return _compare(">", lambda value, limit: value > limit, bound)


def le(bound: Any) -> Validator:
    return _compare("<=", lambda value, limit: value <= limit, bound)


def min_len(length: int) -> Validator:
    def check(_instance: Any, field: Any, value: Sized) -> None:
        if len(value) < length:
            raise ValueError(f"Length of '{field.name}' must be >= {length}: {len(value)}")

    return check


def matches_re(pattern: str) -> Validator:
    """The whole value matches `pattern` (compiled when first used)."""
    compiled = lazy(pattern)

    def check(_instance: Any, field: Any, value: str) -> None:
        if not compiled.fullmatch(value):
            raise ValueError(
                f"'{field.name}' must match regex {pattern!r} ({value!r} doesn't)", field, pattern, value
            )

    return check


def in_(options: Collection[Any]) -> Validator:
    def check(_instance: Any, field: Any, value: Any) -> None:
        try:
            found = value in options
        except TypeError:  # unhashable, against a set
            found = False
        if not found:
            raise ValueError(f"'{field.name}' must be in {options!r} (got {value!r})", field, options, value)

    return check


def deep_iterable(member: Validator, iterable: Validator | None = None) -> Validator:
    """The container passes `iterable`, then each of its members passes `member`."""

    def check(instance: Any, field: Any, value: Any) -> None:
        if iterable is not None:
            iterable(instance, field, value)
        for item in value:
            member(instance, field, item)

    return check
