"""One line about a library's exception, for messages that wrap it: `<Type>: <first line>`."""

from __future__ import annotations


def first_line(error: BaseException, limit: int = 200) -> str:
    """`<type name>: <the first non-empty line of its message>`, cut to `limit` characters."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    text = text if len(text) <= limit else text[:limit] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
