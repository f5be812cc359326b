"""Providers by name: how a config reaches code outside the engine without the engine importing it.

A config names a provider (`data.source`, `clip_source`) and gives it its own settings
(`data.source_settings`, `clip_source_settings`). The registry maps each name to a dotted path
"package.module:function", imported only when a config names it. A package that provides one
registers it itself (`register`, in its __init__), and a config naming it imports that package:
the engine knows no provider by name. A provider function declares
its settings and their defaults with `@provider(...)`: a setting it does not declare is an error
naming it, and the function receives every setting (defaults filled in) as a dict.

Call contracts (keyword arguments besides the settings):
- data source: fn(settings: dict, *, dataset_dir, frame_size, num_frames) -> None. Called on process 0
  before anything reads `dataset_dir`; it makes the folder hold its dataset (writing it if missing).
- CLIP source: fn(settings: dict, *, image_size, seed, log) -> path of a `save_clip` .msgpack file.
  Used only when `clip_checkpoint` is empty.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

DATA_SOURCES: dict[str, str] = {}  # name -> "package.module:function", filled by `register`
CLIP_SOURCES: dict[str, str] = {}
# Config field naming the provider -> its registry, and the field of its settings.
REGISTRIES: dict[str, dict[str, str]] = {"data.source": DATA_SOURCES, "clip_source": CLIP_SOURCES}
SETTINGS_FIELDS = {"data.source": "data.source_settings", "clip_source": "clip_source_settings"}


def register(field: str, name: str, target: str) -> None:
    """Registers provider `name` of config field `field` ('data.source' | 'clip_source') as
    `target`, "package.module:function" (imported when a config names it)."""
    registry = REGISTRIES[field]
    if registry.setdefault(name, target) != target:
        raise ValueError(f"{field} provider {name!r} registered twice: {registry[name]}, {target}")


def provider(**defaults: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a provider function and declares its settings with their defaults."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.setting_defaults = dict(defaults)
        return fn

    return mark


def check_name(field: str, name: str) -> None:
    """'' (no provider) or a registered name; else a ValueError naming the field and known names."""
    known = REGISTRIES[field]
    if name and name not in known:
        raise ValueError(
            f"config.{field}={name!r}: unknown provider; known: {sorted(known)} (a provider "
            "package registers its names when imported: import it in the config file)"
        )


def resolve(field: str, name: str) -> Callable[..., Any]:
    """The provider function registered as `name` for config field `field` (imported now)."""
    check_name(field, name)
    module_name, _, function_name = REGISTRIES[field][name].partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def settings_with_defaults(
    settings: Mapping[str, Any], defaults: Mapping[str, Any], field: str
) -> dict[str, Any]:
    """`defaults` updated by `settings`; a setting not in `defaults` is a ValueError naming it."""
    given = settings.to_dict() if hasattr(settings, "to_dict") else dict(settings)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"config.{field}: unknown setting(s) {unknown}; known: {sorted(defaults)}")
    return {**defaults, **given}


def check(field: str, name: str, settings: Mapping[str, Any]) -> None:
    """Validates a configured provider: its name, and (importing it) the names of its settings."""
    if name:
        fn = resolve(field, name)
        settings_with_defaults(settings, fn.setting_defaults, SETTINGS_FIELDS[field])


def call(field: str, name: str, settings: Mapping[str, Any], **context: Any) -> Any:
    """Runs provider `name` of config field `field` with its settings (defaults filled in)."""
    fn = resolve(field, name)
    return fn(
        settings_with_defaults(settings, fn.setting_defaults, SETTINGS_FIELDS[field]), **context
    )
