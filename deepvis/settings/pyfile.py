"""Read the original toolbox's settings_local.py files without executing them.

Only literal assignments are taken (`ast.literal_eval`), plus the two kinds of
lambda the original templates use, turned into data: name-shortening chains of
`name.replace(a, b)` and substring filters `'_split_' in name`.
"""
from __future__ import annotations

import ast
import pathlib

from ..errors import FormatError

_LAMBDA_KEYS = {"caffevis_layer_pretty_name_fn": "caffevis_layer_pretty_names",
                "caffevis_filter_layers": "caffevis_filter_layers"}


def read_py_settings(path: pathlib.Path) -> dict:
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise FormatError(f"{path}:{exc.lineno}: not valid Python: {exc.msg}") from exc
    values = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass)) or _is_docstring(stmt):
            continue
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):
            raise FormatError(f"{path}:{stmt.lineno}: only plain `name = value` settings are read")
        key = stmt.targets[0].id
        if key in _LAMBDA_KEYS and isinstance(stmt.value, ast.Lambda):
            values[_LAMBDA_KEYS[key]] = _lambda_as_data(stmt.value, path)
            continue
        try:
            values[key] = ast.literal_eval(stmt.value)
        except ValueError as exc:
            raise FormatError(f"{path}:{stmt.lineno}: the value of {key} is not a literal "
                              f"(numbers, strings, tuples, lists, dicts, None)") from exc
    return values


def _is_docstring(stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _lambda_as_data(node: ast.Lambda, path: pathlib.Path):
    """`lambda n: n.replace('a','b').replace(...)` -> [[a, b], ...];
    `lambda n: 'x' in n [or 'y' in n]` -> ['x', 'y']."""
    arg = node.args.args[0].arg if node.args.args else None
    body = node.body
    replacements = []
    while (isinstance(body, ast.Call) and isinstance(body.func, ast.Attribute)
           and body.func.attr == "replace" and len(body.args) == 2):
        replacements.append([ast.literal_eval(a) for a in body.args])
        body = body.func.value
    if replacements and isinstance(body, ast.Name) and body.id == arg:
        return replacements[::-1]
    parts = body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.Or) else [body]
    substrings = []
    for part in parts:
        if (isinstance(part, ast.Compare) and len(part.ops) == 1 and isinstance(part.ops[0], ast.In)
                and isinstance(part.comparators[0], ast.Name) and part.comparators[0].id == arg):
            substrings.append(ast.literal_eval(part.left))
        else:
            raise FormatError(f"{path}:{node.lineno}: this lambda is not one deepvis can read as "
                              f"data; use a list of [old, new] replacements or substrings")
    return substrings
