"""Typed configs: dataclasses built from dicts or `key=value` strings, where unknown keys are errors.

Numbers are checked when a config is built from user values: floats must be finite, and every int or float field
must lie in its declared `Range` (`latent_dim: PositiveInt = 8`), or be ≥ 0 when it declares none: sizes, rates,
weights and probabilities of this model family are never negative. A field that may be negative says so with
`Annotated[float, Range()]`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from aebench.errors import AebenchError

C = TypeVar("C")


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric field: low ≤ value (low < value if `open_low`) and value ≤ high."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False

    def check(self, value: float, where: str) -> None:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            raise AebenchError(f"{where}: must be {'>' if self.open_low else '≥'} {self.low:g}, got {value!r}")
        if self.high is not None and value > self.high:
            raise AebenchError(f"{where}: must be ≤ {self.high:g}, got {value!r}")


NON_NEGATIVE = Range(0)
PositiveInt = Annotated[int, Range(1)]
PositiveFloat = Annotated[float, Range(0, open_low=True)]
Fraction = Annotated[float, Range(0, 1)]


def build_config(cls: type[C], values: Mapping[str, Any] | None = None, *, where: str = "config") -> C:
    """An instance of the dataclass `cls` from `values`; strings are parsed by the field's declared type."""
    if values is not None and not isinstance(values, Mapping):
        raise AebenchError(f"{where}: expected an object of {cls.__name__} fields, got {type(values).__name__}")
    values = dict(values or {})
    hints = typing.get_type_hints(cls, include_extras=True)
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


def _numeric(hint: Any) -> bool:
    return hint in (int, float)


def coerce(value: Any, hint: Any, *, where: str) -> Any:
    """`value` converted to the type `hint` (str, int, float, bool, tuples, lists, Optional, Literal, Annotated
    with a `Range`); numbers are checked against their range (≥ 0 by default) and floats must be finite."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin is Annotated:
        ranges = [extra for extra in hint.__metadata__ if isinstance(extra, Range)]
        base = args[0]
        converted = coerce(value, base, where=where) if not _numeric(base) else _number(value, base, where)
        for allowed in ranges if _numeric(base) else ():
            allowed.check(converted, where)
        return converted
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
    if _numeric(hint):
        number = _number(value, hint, where)
        NON_NEGATIVE.check(number, where)
        return number
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise AebenchError(f"{where}: expected a string, got {value!r}")
        return str(value).strip() if isinstance(value, str) else str(value)
    return value


def _number(value: Any, hint: type, where: str) -> int | float:
    """An int or a finite float from a number or its text."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise AebenchError(f"{where}: expected {hint.__name__}, got {value!r}")
    if hint is int and isinstance(value, float) and not value.is_integer():
        raise AebenchError(f"{where}: expected an integer, got {value!r}")
    try:
        number = hint(value.strip()) if isinstance(value, str) else hint(value)
    except (TypeError, ValueError, OverflowError):
        raise AebenchError(f"{where}: expected {hint.__name__}, got {value!r}") from None
    if hint is float and not math.isfinite(number):
        raise AebenchError(f"{where}: expected a finite number, got {value!r}")
    return number


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
