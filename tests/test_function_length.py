"""No function in the studio is longer than 100 lines: a longer one is split into named parts."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

LIMIT = 100


def test_no_function_in_studio_is_longer_than_100_lines():
    long = []
    for path in sorted((ROOT / "studio").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > LIMIT:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "functions longer than 100 lines:\n" + "\n".join(long)
