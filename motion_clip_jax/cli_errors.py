"""User-facing errors of the command-line entry points: one `error: ...` line and exit status 1.

A bad input (a missing, empty or garbage file, a wrong flag value) raises ValueError (the project's
own error classes subclass it) or OSError with a message naming the path or field; the commands
print that message instead of a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from motion_clip_jax.core import json_file

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError)


def message(error: BaseException) -> str:
    """One line: the error's message (a KeyError's key unquoted, line breaks folded)."""
    if isinstance(error, KeyError) and error.args:
        text = f"unknown name {error.args[0]!r}"
    elif isinstance(error, UnicodeDecodeError):
        text = json_file.not_utf8(error)
    else:
        text = str(error)
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return text or type(error).__name__


def report(error: BaseException | str, hint: str = "") -> int:
    """Prints `error: <message>` (and `hint`, if any) on stderr; returns the exit status 1."""
    text = error if isinstance(error, str) else message(error)
    print(f"error: {text}{f' {hint}' if hint else ''}", file=sys.stderr)
    return 1


def run_main(main: Callable[..., int | None], *args: Any) -> int:
    """`main(*args)`, with a user error turned into `error: ...` and exit status 1."""
    try:
        return main(*args) or 0
    except USER_ERRORS as e:
        return report(e)
