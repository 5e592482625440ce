"""Config files: a run config read from YAML (a path or a recipe shipped in the package, with
dotted overrides such as ``training.epochs=2``) and written back; every problem is one line that
starts with the file name. The schema itself is :mod:`semmatch_tf.training.config`.
"""

from __future__ import annotations

import dataclasses
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from semmatch_tf.training.config import RunConfig
from semmatch_tf.training.config_schema import (ConfigError, article, check, kind, load_yaml, type_options,
                                                yaml_problem)


def load_config(path: str | Path, overrides: dict | None = None) -> RunConfig:
    """Read a YAML run config, with optional dotted overrides.

    Every problem, from an unreadable file to an out-of-range value, is a one-line
    :class:`ConfigError` that starts with the file name.

    Args:
        path: a YAML file, or a bare name with no such file (``"demo_bilstm"``) for a config
            shipped inside the package (``semmatch_tf/configs/NAME.yaml``), so installed users
            have one without a checkout.
        overrides: dotted keys that replace the file's values, such as ``{"training.epochs": 2}``
            or ``{"model.bert.lora_rank": 8}``.

    Returns:
        The validated :class:`~semmatch_tf.training.config.RunConfig`.

    Examples:
        >>> config = load_config("demo_bilstm", {"training.epochs": 2})
        >>> config.model.family, config.training.epochs
        ('bilstm', 2)
    """
    path = _packaged_or_path(path)
    try:
        raw = _read_yaml(path)
        check(raw is None or isinstance(raw, dict), "config",
               f"must be a mapping with the sections {[f.name for f in dataclasses.fields(RunConfig)]}, "
               f"got {kind(raw)}")
        raw = raw or {}
        for dotted, value in (overrides or {}).items():
            _override(raw, dotted, value)
        return RunConfig.from_dict(raw)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def packaged_configs() -> list[str]:
    """Names of the configs shipped inside the package (usable as ``load_config(name)``)."""
    return sorted(p.name.removesuffix(".yaml") for p in resources.files("semmatch_tf").joinpath("configs").iterdir()
                  if p.name.endswith(".yaml"))


def packaged_config_path(name: str) -> Path:
    """The file of the packaged config ``name`` (a ValueError lists the names when unknown)."""
    if name not in packaged_configs():
        raise ValueError(f"no packaged config {name!r}; packaged: {packaged_configs()}")
    return Path(str(resources.files("semmatch_tf").joinpath("configs", f"{name}.yaml")))


def config_summary(path: Path) -> str:
    """The first comment line of a config file: what the recipe is."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            break
    return ""


def _packaged_or_path(path: str | Path) -> Path:
    path = Path(path)
    if path.exists() or path.suffix or len(path.parts) != 1 or str(path) not in packaged_configs():
        return path
    return packaged_config_path(str(path))


def _read_yaml(path: Path) -> Any:
    """The parsed file; unreadable bytes, a directory or a YAML error is a ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found") from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a YAML config file") from None
    except PermissionError:
        raise ConfigError("permission denied") from None
    except OSError as error:  # a symlink loop, an I/O error: named, not a traceback
        raise ConfigError(f"cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (byte {data[error.start]:#04x} on line {line}); "
                          "save the file as UTF-8") from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {yaml_problem(error)}") from None


def _override(raw: dict, dotted: str, value: Any) -> None:
    """Set ``raw[a][b][c] = value`` for ``a.b.c``, creating sections on the way. Descends only
    into sections and mapping-valued keys (``data.subsample.train``): ``training.epochs.x`` names
    a key inside a number and is refused."""
    *parents, key = dotted.split(".")
    check(all(parents) and key, dotted, "empty name in a dotted key")
    node, schema = raw, RunConfig
    for depth, name in enumerate(parents):
        here = ".".join(parents[: depth + 1])
        hint = _descent_hint(schema, name, here, dotted)
        if node.get(name) is None:
            node[name] = {}
        check(isinstance(node[name], dict), here, f"is {kind(node[name])}, not a mapping; cannot set {dotted}")
        node, schema = node[name], hint if dataclasses.is_dataclass(hint) else None
    node[key] = value


def _descent_hint(schema: type | None, name: str, here: str, dotted: str) -> Any:
    """The hint of field ``name`` when one may set keys inside it (a section or a dict option).
    An unknown name gives ``dict``, so the unknown-key error (listing the known keys) comes later."""
    hints = typing.get_type_hints(schema) if schema is not None else {}
    hint = hints.get(name, dict)
    if dataclasses.is_dataclass(hint) or any((typing.get_origin(o) or o) is dict for o in type_options(hint)):
        return hint
    kinds = " or ".join(getattr(o, "__name__", str(o)) for o in type_options(hint))
    raise ConfigError(f"{here}: takes {article(kinds)} value, not keys; cannot set {dotted}")


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(_plain(config.to_dict()), sort_keys=False, allow_unicode=True),
                          encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
