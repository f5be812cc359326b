"""No function in motion_clip_jax/ or data_prep/ is longer than 80 lines (decorators and docstring
included); `base_config`, a documented list of config fields, is the one exception."""

from __future__ import annotations

import ast

from .conftest import REPO_ROOT

LIMIT = 80
EXEMPT = {"motion_clip_jax/train/config.py:base_config"}


def long_functions() -> list[str]:
    found = []
    for top in ("motion_clip_jax", "data_prep"):
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                    name = f"{path.relative_to(REPO_ROOT)}:{node.name}"
                    if node.end_lineno - start + 1 > LIMIT and name not in EXEMPT:
                        found.append(f"{name} ({node.end_lineno - start + 1} lines)")
    return found


def test_no_function_is_longer_than_80_lines():
    assert long_functions() == []
