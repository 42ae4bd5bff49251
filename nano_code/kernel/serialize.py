"""Kernel values to and from plain JSON data, losslessly (`--json`, journals, resuming).

Attrs instances become objects tagged with their class name under "type"; `from_json`
rebuilds them from the field annotations, so `from_json(to_json(x)) == x`.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

import attrs

from nano_code.kernel import actions, events, state
from nano_code.kernel import types as kernel_types

TAG = "type"


@cache
def _registry() -> dict[str, type]:
    classes: dict[str, type] = {}
    for module in (kernel_types, events, actions, state):
        for value in vars(module).values():
            if attrs.has(value) and value.__module__ == module.__name__:
                classes[value.__name__] = value
    return classes


def to_json(value: Any) -> Any:
    """A kernel value as JSON-ready data (dicts, lists, str, numbers, None)."""
    if attrs.has(type(value)):
        fields = {field.name: to_json(getattr(value, field.name)) for field in attrs.fields(type(value))}
        return {TAG: type(value).__name__, **fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(to_json(item) for item in value)
    if isinstance(value, (tuple, list)):
        return [to_json(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    return value


_hints = cache(typing.get_type_hints)
"""A class's field types, resolved once."""


def _structure(data: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return data
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if data is None and type(None) in options:
            return None
        # Only a union of kernel classes holds tagged values (tool arguments may have "type").
        if isinstance(data, Mapping) and _registry().get(str(data.get(TAG))) in options:
            return from_json(data)
        for option in options:
            if option is type(None):
                continue
            try:
                return _structure(data, option)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"{data!r} matches none of {hint}")
    if origin in (tuple, frozenset):
        item_hint = typing.get_args(hint)[0]
        return origin(_structure(item, item_hint) for item in data)
    if origin in (Mapping, dict) or hint in (Mapping, dict):
        if not isinstance(data, Mapping):
            raise TypeError(f"expected an object, got {data!r}")
        return dict(data)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(data)
    if attrs.has(hint):
        return from_json(data)
    if hint is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise TypeError(f"expected a number, got {data!r}")
        return float(data)
    if isinstance(hint, type):
        if not isinstance(data, hint) or (hint is int and isinstance(data, bool)):
            raise TypeError(f"expected {hint.__name__}, got {data!r}")
        return data
    return data


def from_json(data: Any) -> Any:
    """Rebuild a kernel value from `to_json` output. Raises ValueError on bad data."""
    if not isinstance(data, Mapping) or data.get(TAG) not in _registry():
        raise ValueError(f"not a tagged kernel value: {str(data)[:100]}")
    cls = _registry()[data[TAG]]
    hints = _hints(cls)
    kwargs = {f.name: _structure(data[f.name], hints[f.name]) for f in attrs.fields(cls) if f.name in data}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"bad {cls.__name__}: {error}") from error
