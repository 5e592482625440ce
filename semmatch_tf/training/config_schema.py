"""Typed config sections from plain YAML dicts: the checks behind :mod:`semmatch_tf.training.config`.

A section is a dataclass; :func:`build_section` builds one from a mapping, refusing unknown keys and
checking every value against its field's type hint (:func:`coerce`: ints where floats are
allowed, finite floats only, element types of lists and tuples, bounded ints); every problem is
a one-line :class:`ConfigError` naming the dotted key. YAML is read by :func:`load_yaml`, which
refuses a key given twice in one mapping.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing
from typing import Any

import yaml

#: Bounds of integer values (seeds: NumPy's 32-bit seeds; others: a 32-bit int).
MAX_INT = 2**31 - 1
MAX_SEED = 2**32 - 1


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range (the message names the key)."""


def check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def one_of(value: Any, key: str, choices: tuple) -> None:
    check(isinstance(value, str) and value in choices, key, f"must be one of {list(choices)}, got {short(value)}")


def short(value: Any) -> str:
    """A bounded repr: YAML aliases can make a small file a list of 10^9 strings, whose full repr
    would exhaust memory just to print the error."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 6, 6, 6, 6
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 60


def kind(value: Any) -> str:
    """How a wrong YAML value reads in a message: "a list [1, 2]", "a str 'hello'"."""
    shown = short(value)
    return f"{article(type(value).__name__)} {shown if len(shown) <= 60 else shown[:57] + '...'}"


def article(noun: str) -> str:
    return f"{'an' if noun[:1] in tuple('aeiou') else 'a'} {noun}"


def build_section(section_type: type, raw: dict, prefix: str):
    check(isinstance(raw, dict), prefix, f"must be a mapping, got {kind(raw)}")
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    unknown = sorted(map(str, set(raw) - set(fields)))
    check(not unknown, f"{prefix}.{unknown[0]}" if unknown else prefix,
           f"unknown key; known keys are {sorted(fields)}")
    hints = typing.get_type_hints(section_type)
    values = {key: coerce(value, hints[key], f"{prefix}.{key}") for key, value in raw.items()}
    return section_type(**values)


def type_options(hint: Any) -> tuple:
    """The alternatives of a type hint: ``int | None`` -> (int, NoneType); ``int`` -> (int,)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Check a YAML value against a field's type hint and return it in the field's type.

    Ints are accepted where floats are; every float must be finite (YAML's ``.inf`` and ``.nan``
    would otherwise pass ``> 0`` checks and train a NaN model); list and tuple elements are
    checked against their own hints (``tuple[float, float, float]``, ``list[int]``).
    """
    if dataclasses.is_dataclass(hint):
        return build_section(hint, value if value is not None else {}, key)
    options = type_options(hint)
    if value is None:
        check(type(None) in options, key, "must not be null")
        return None
    for option in options:
        origin = typing.get_origin(option) or option
        if origin is bool and isinstance(value, bool):
            return value
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            limit = MAX_SEED if key.endswith(".seed") else MAX_INT
            check(abs(value) <= limit, key, f"{short(value)} is out of range (at most {limit})")
            return value
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return finite(value, key)
        if origin is str and isinstance(value, str):
            return value
        if origin in (list, tuple) and isinstance(value, (list, tuple)):
            return origin(elements(value, option, key))
        if origin is dict and isinstance(value, dict):
            return value
    names = [getattr(o, "__name__", str(o)) for o in options]
    raise ConfigError(f"{key}: expected {' or '.join(names)}, got {kind(value)}")


def finite(value: int | float, key: str) -> float:
    """``value`` as a finite float; NaN, +-inf and ints too large for a float are refused."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    check(math.isfinite(number), key, f"must be a finite number, got {kind(value)}")
    return number


def elements(values: list | tuple, hint: Any, key: str) -> list:
    """Coerce each element of a sequence against ``list[T]``, ``tuple[T, ...]`` or ``tuple[T1, T2]``."""
    args = typing.get_args(hint)
    if not args:
        return list(values)
    if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
        args = (args[0],) * len(values)
    check(len(values) == len(args), key, f"expected {len(args)} values, got {len(values)}: {short(list(values))}")
    return [coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(values, args))]


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently: ``training: {epochs: 1, epochs: 50}`` would train 50 epochs)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *base" may be overridden by the keys beside it
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark)
        except TypeError:  # an unhashable key: the stock constructor reports it
            continue
        if first is not key_node.start_mark:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"duplicate key {short(key)} (first given on line {first.line + 1})", key_node.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys; nesting too deep to parse is a YAMLError too."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise yaml.YAMLError("nested too deeply to read") from None
    except ValueError:  # Python refuses to convert integers of more than 4300 digits
        raise yaml.YAMLError("a number too long to read (more than 4300 digits)") from None


def yaml_problem(error: yaml.YAMLError) -> str:
    """One line for a YAML error: what went wrong and where (PyYAML's own text spans lines)."""
    problem = getattr(error, "problem", None) or getattr(error, "context", None) or str(error)
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())
