"""Reading a JSON file a user or a run wrote, with errors that name the file and what is wrong."""

from __future__ import annotations

import json
import os
from typing import Any


def not_utf8(error: UnicodeDecodeError) -> str:
    return f"not a UTF-8 text file ({error.reason} at byte {error.start})"


def read_json(path: str | os.PathLike, what: str = "", expect: type = dict) -> Any:
    """The JSON document in `path`, which must be a `expect` (default: an object); errors name the
    file: missing, not JSON, not UTF-8, the wrong kind of document."""
    path = os.fspath(path)
    label = f"{what} {path}" if what else path
    if os.path.isdir(path):
        raise IsADirectoryError(f"{label} is a folder, not a JSON file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{label} not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except UnicodeDecodeError as e:
        raise ValueError(f"{label}: {not_utf8(e)}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{label}: not valid JSON ({e})") from None
    if not isinstance(data, expect):
        kind = {dict: "object", list: "list"}.get(expect, expect.__name__)
        raise ValueError(f"{label}: expected a JSON {kind}, got a {type(data).__name__}")
    return data
