"""Typed configs: dataclasses built from dicts or `key=value` strings, where unknown keys are errors."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

from aebench.errors import AebenchError

C = TypeVar("C")


def build_config(cls: type[C], values: Mapping[str, Any] | None = None, *, where: str = "config") -> C:
    """An instance of the dataclass `cls` from `values`; strings are parsed by the field's declared type."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise AebenchError(
            f"{where}: unknown key '{unknown[0]}' for {cls.__name__} (known: {', '.join(sorted(fields))})"
        )
    parsed = {key: coerce(value, hints[key], where=f"{where}: {key}") for key, value in values.items()}
    try:
        return cls(**parsed)
    except (TypeError, ValueError) as error:
        raise AebenchError(f"{where}: {error}") from error


def coerce(value: Any, hint: Any, *, where: str) -> Any:
    """`value` converted to the type `hint` (str, int, float, bool, tuples, lists, Optional, Literal)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() == "none")):
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, where=where)
            except AebenchError as error:
                errors.append(str(error))
        raise AebenchError(errors[0] if errors else f"{where}: cannot parse {value!r}")
    if origin is Literal:
        for choice in args:
            if value == choice or str(value) == str(choice):
                return choice
        raise AebenchError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}")
    if origin in (tuple, list):
        items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, Iterable):
            raise AebenchError(f"{where}: expected a sequence, got {value!r}")
        item_hint = args[0] if args else Any
        return origin(coerce(item, item_hint, where=where) for item in items)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise AebenchError(f"{where}: expected true or false, got {value!r}")
    if hint in (int, float, str):
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise AebenchError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, bool) and hint is not str:
            raise AebenchError(f"{where}: expected {hint.__name__}, got {value!r}")
        try:
            return hint(value.strip()) if isinstance(value, str) else hint(value)
        except (TypeError, ValueError):
            raise AebenchError(f"{where}: expected {hint.__name__}, got {value!r}") from None
    return value


def parse_assignments(items: Iterable[str], *, option: str) -> dict[str, dict[str, str]]:
    """`["vae.beta=2", "pie.eps2=0.1"]` → `{"vae": {"beta": "2"}, "pie": {"eps2": "0.1"}}`."""
    parsed: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, value = item.strip().partition("=")
        name, dot, key = target.rpartition(".")
        if not sep or not dot or not name or not key.isidentifier():
            raise AebenchError(f"{option}: malformed '{item}': expected name.key=value")
        parsed.setdefault(name, {})[key] = value
    return parsed


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return dataclasses.asdict(config)
