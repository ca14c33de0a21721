"""Validated config dataclasses: one field helper and one validator for every config in the project.

A field carries its help text, allowed choices and bounds (``option``); ``validate`` checks types,
finiteness (NaN and infinity are rejected by name), choices and bounds, and raises ``ConfigError``
naming the field and the value. The CLIs build ``--help`` and ``key=value`` parsing from the same
metadata, and the app builds its Train form from it.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import MISSING, Field, field, fields
from typing import Any

from rats_app.errors import ConfigError


def option(default: Any, help: str, choices: tuple | None = None, low: float | None = None,
           high: float | None = None, low_open: bool = False, high_open: bool = False, advanced: bool = True) -> Any:
    """A dataclass field with its metadata. ``advanced=False`` marks the essentials a form shows first."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "advanced": advanced}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def default_of(f: Field) -> Any:
    return f.default if f.default is not MISSING else f.default_factory()


def _check_number(name: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name}: {value!r} is not a finite number")


def validate(obj: Any) -> None:
    """Check every field of a config dataclass against its metadata (coercing int to float)."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        expected = type(default_of(f))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            setattr(obj, f.name, value)
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise ConfigError(f"{f.name}: expected {expected.__name__}, got {value!r}")
        _check_number(f.name, value)
        if isinstance(value, list):
            for item in value:
                _check_number(f.name, item)
        meta = f.metadata
        if meta.get("choices") and value not in meta["choices"]:
            raise ConfigError(f"{f.name}: {value!r} is not one of {list(meta['choices'])}")
        low, high = meta.get("low"), meta.get("high")
        if low is not None and (value < low or (meta.get("low_open") and value == low)):
            raise ConfigError(f"{f.name}: {value!r} must be {'>' if meta.get('low_open') else '>='} {low}")
        if high is not None and (value > high or (meta.get("high_open") and value == high)):
            raise ConfigError(f"{f.name}: {value!r} must be {'<' if meta.get('high_open') else '<='} {high}")


def check_keys(cls: type, data: dict[str, Any]) -> None:
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")


def from_mapping(cls: type, data: dict[str, Any]) -> Any:
    """Construct ``cls`` from a mapping; unknown keys and bad values are named."""
    check_keys(cls, data)
    try:
        return cls(**data)
    except TypeError as exc:  # e.g. a value of a type the dataclass cannot even hold
        raise ConfigError(str(exc)) from None


def parse_assignment(cls: type, assignment: str) -> dict[str, Any]:
    """``key=value`` from a command line, the value parsed as YAML (so lists and numbers work).

    A string field keeps the raw text (``prompts=123`` is the file ``123``)."""
    import yaml

    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like key=value")
    key, raw = assignment.split("=", 1)
    key = key.strip().replace("-", "_")
    by_name = {f.name: f for f in fields(cls)}
    if key not in by_name:
        raise ConfigError(f"unknown config key(s): {key}")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if isinstance(default_of(by_name[key]), str) and not isinstance(value, str):
        value = raw
    return {key: value}


def help_lines(cls: type) -> str:
    """One line per field: name, default and help (an argparse epilog)."""
    return "\n".join(f"  {f.name} (default {default_of(f)!r}): {f.metadata['help']}"
                     for f in fields(cls) if "help" in f.metadata)


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)
