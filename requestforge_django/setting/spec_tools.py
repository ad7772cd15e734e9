"""The tools the spec dataclasses are built with: which field is which setting key, defaults, freezing, masked reprs.

Kept apart from :mod:`.specs` so that module holds the shape of the setting and nothing
else; every public name here is importable from :mod:`.specs` too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, fields
from types import MappingProxyType
from typing import Any

from ..http.masking import mask_all, mask_url

__all__ = ["NOT_A_KEY", "default_of", "freeze", "setting_key", "setting_keys", "thaw"]


#: ``field(metadata=NOT_A_KEY)``: a field that is not a key of the setting (a client's name is its key in CLIENTS).
NOT_A_KEY: Mapping[str, Any] = MappingProxyType({"setting_key": None})


def setting_key(item: Field[Any]) -> str | None:
    """The setting key a spec field reads (its name in capitals), or ``None`` for a field marked :data:`NOT_A_KEY`."""
    key: str | None = item.metadata.get("setting_key", item.name.upper())
    return key


def setting_keys(spec: type) -> tuple[str, ...]:
    """The setting keys of a spec class, in field order: the key list of its section."""
    return tuple(key for item in fields(spec) if (key := setting_key(item)) is not None)


def default_of(spec: type, name: str) -> Any:
    """The default of field ``name`` of a spec class (a factory's value for mutable ones); ``KeyError`` if it has none."""
    for item in fields(spec):
        if item.name != name:
            continue
        if item.default is not MISSING:
            return item.default
        if item.default_factory is not MISSING:
            return item.default_factory()
        break
    raise KeyError(f"{spec.__name__}.{name} has no default")


def empty() -> Mapping[str, Any]:
    return MappingProxyType({})


def freeze(value: Any) -> Any:
    """Deep read-only copy: dicts become ``MappingProxyType``, lists and tuples become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists, e.g. for a JSON body or ``requests``."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def masked_repr(spec: Any, maskers: Mapping[str, Callable[[Any], Any]]) -> str:
    """The dataclass ``repr`` of ``spec``, with the values of ``maskers``' fields passed through their masker."""
    parts = []
    for item in fields(spec):
        if not item.repr:
            continue
        value = getattr(spec, item.name)
        if item.name in maskers and value is not None:
            value = maskers[item.name](value)
        parts.append(f"{item.name}={value!r}")
    return f"{type(spec).__name__}({', '.join(parts)})"


def mask_url_values(urls: Mapping[str, str]) -> dict[str, str]:
    return {scheme: mask_url(url, all_params=True) for scheme, url in urls.items()}


def mask_every_value(value: Any) -> Any:
    """Keys and shape kept, every leaf masked: a step's fields cannot be told secret or not by name."""
    return mask_all(thaw(value))


def mask_step_data(data: Any) -> Any:
    """A step's DATA: a form dict (every value masked) or an encoded form string (masked whole)."""
    return "****" if isinstance(data, (str, bytes)) else mask_all(thaw(data))
