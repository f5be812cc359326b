"""One line about a library's exception, for messages that wrap it: `<Type>: <first line>`."""

from __future__ import annotations

import re

# TensorFlow wraps an op's message as "{{function_node NAME}} <message> [Op:NAME] ...": the
# wrapping names TF's own graph functions, not what went wrong, so the line keeps the message.
_TF_WRAPPING = (re.compile(r"\{\{function_node [^}]*\}\}\s*"), re.compile(r"\s*\[Op:[^\]]*\].*$"))


def first_line(error: BaseException, limit: int = 200) -> str:
    """`<type name>: <the first non-empty line of its message>` (TF's op wrapping dropped), cut
    to `limit` characters."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    for wrapping in _TF_WRAPPING:
        text = wrapping.sub("", text)
    text = text if len(text) <= limit else text[:limit] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
