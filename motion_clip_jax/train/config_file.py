"""Loading an experiment config from `--config=FILE[:ARG]` and `--config.a.b=value` overrides.

The one loader of config arguments (`main`, the paper driver's plans, tests). Every check is ours
and so is every message: the file exists, it imports, it defines `get_config`, `get_config(ARG)`
returns a ConfigDict; each override names a field the config has and a value of that field's type.
A bad input raises ValueError or FileNotFoundError naming the file, flag or value.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from collections.abc import Sequence
from typing import Any

import ml_collections

from motion_clip_jax.core.error_text import first_line

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVERRIDE_PREFIX = "--config."
_TRUE, _FALSE = ("true", "t", "1", "yes"), ("false", "f", "0", "no")


def config_path(config_arg: str) -> str:
    """The file of a --config argument, from the cwd or else the repository root."""
    path = config_arg.split(":")[0]
    return path if os.path.exists(path) else os.path.join(REPO_ROOT, path)


def load(config_arg: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """`get_config(ARG)` of `config_arg` ("FILE[:ARG]") with `overrides` ("--config.a.b=v")
    applied, locked (no field can be added later)."""
    config = _get_config(config_arg)
    for override in overrides:
        apply_override(config, override)
    config.lock()
    return config


def _get_config(config_arg: str) -> ml_collections.ConfigDict:
    given, sep, arg = config_arg.partition(":")
    path = config_path(config_arg)
    if not given:
        raise ValueError("--config: give a config file, --config=FILE[:ARG]")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--config: config file {given} not found")
    spec = importlib.util.spec_from_file_location(f"config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise ValueError(f"--config: {given} line {e.lineno}: {e.msg}") from e
    except Exception as e:  # the config file's own failure: named, not a traceback
        raise ValueError(f"--config: importing {given} failed: {first_line(e)}") from e
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise ValueError(f"--config: {given} defines no get_config()")
    try:
        config = get_config(arg) if sep else get_config()
    except (ValueError, KeyError) as e:  # a config refusing its argument, in its own words
        raise ValueError(f"--config={config_arg}: {first_line(e)}") from e
    except Exception as e:
        raise ValueError(f"--config={config_arg}: get_config() raised {first_line(e)}") from e
    if not isinstance(config, ml_collections.ConfigDict):
        kind = "None" if config is None else f"a {type(config).__name__}"
        raise ValueError(f"--config: get_config() of {given} returned {kind}, not a ConfigDict")
    return config


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """argv -> (its --config.a.b=v overrides, the other arguments). `--config.a.b v` (value in the
    next argument) is accepted and joined."""
    overrides, rest = [], []
    args = iter(argv)
    for arg in args:
        if arg.startswith(OVERRIDE_PREFIX):
            if "=" not in arg:
                value = next(args, None)
                if value is None:
                    raise ValueError(f"{arg}: give a value, {arg}=VALUE")
                arg = f"{arg}={value}"
            overrides.append(arg)
        else:
            rest.append(arg)
    return overrides, rest


def apply_override(config: ml_collections.ConfigDict, override: str) -> None:
    """Sets the field an override names (`--config.a.b=value`) to its value, parsed as the
    field's current type."""
    flag, sep, text = override.partition("=")
    if not flag.startswith(OVERRIDE_PREFIX) or not sep:
        raise ValueError(f"{override}: expected --config.FIELD=VALUE")
    *parents, leaf = flag[len(OVERRIDE_PREFIX) :].split(".")
    node = config
    for name in [*parents, leaf]:
        if not isinstance(node, ml_collections.ConfigDict):
            raise ValueError(f"{flag}: {name!r} is below a value, not a config section")
        if name not in node:
            raise ValueError(f"{flag}: the config has no field {name!r}")
        parent, node = node, node[name]
    if isinstance(node, ml_collections.ConfigDict):
        raise ValueError(f"{flag}: a config section, not a value; set its fields")
    parent[leaf] = parse_value(flag, node, text)


def parse_value(flag: str, current: Any, text: str) -> Any:
    """`text` as a value of `current`'s type (bool, int, float, str; a Python literal for
    tuples, lists and fields that are None)."""
    if isinstance(current, bool):
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{flag}={text}: expected true or false")
    if isinstance(current, int | float):
        kind = int if isinstance(current, int) else float
        try:
            return kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ValueError(f"{flag}={text}: expected {noun}, got {text!r}") from None
    if isinstance(current, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if current is None:
            return text  # a None field takes a plain string as well
        raise ValueError(f"{flag}={text}: not a Python literal") from None
    if isinstance(current, tuple | list):
        if not isinstance(value, tuple | list):
            raise ValueError(f"{flag}={text}: expected a sequence like (1, 2)")
        return type(current)(value)
    return value
