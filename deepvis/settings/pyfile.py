"""Read the original toolbox's settings_local.py files without executing them.

Only what the original's templates and typical local files use is understood, and turned
into plain data:
- `name = value` where the value is a literal, or an expression of literals and names set
  earlier in the file: + - * / // % on numbers, unary minus, indexing, `float(...)` and
  `int(...)`. Names starting with `_` are helpers: usable later, not settings.
- `caffevis_layer_pretty_name_fn` and `caffevis_filter_layers` given as a lambda or a
  `def`: chains of `name.replace(a, b)` become a list of [a, b] replacements, and
  `'x' in name [or 'y' in name]` a list of substrings.
Anything else (calls, imports of other modules' values, loops) is refused with the line.
"""
from __future__ import annotations

import ast
import io
import math
import operator
import pathlib
import tokenize

from ..errors import FormatError

_LAMBDA_KEYS = {"caffevis_layer_pretty_name_fn": "caffevis_layer_pretty_names",
                "caffevis_filter_layers": "caffevis_filter_layers"}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_CASTS = {"float": float, "int": int}
MAX_SETTINGS_BYTES = 1 << 20     # settings files are a few KiB; refuse anything huge
MAX_DEPTH = 64                   # nesting of one value's expression
MAX_INT = 10 ** 15               # arithmetic on larger integers is not a setting (and is slow)


class _NotData(ValueError):
    pass


def read_py_settings(path: pathlib.Path) -> dict:
    source = decode_source(path)
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise FormatError(f"{path}:{exc.lineno}: not valid Python: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise FormatError(f"{path}: not a settings file deepvis can read "
                          f"({exc.__class__.__name__}: {str(exc)[:100]})") from None
    names: dict = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass)) or _is_docstring(stmt):
            continue
        if isinstance(stmt, ast.FunctionDef) and stmt.name in _LAMBDA_KEYS:
            names[_LAMBDA_KEYS[stmt.name]] = _function_as_data(stmt, path)
            continue
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):
            raise FormatError(f"{path}:{stmt.lineno}: only plain `name = value` settings are read")
        key = stmt.targets[0].id
        if key in _LAMBDA_KEYS and isinstance(stmt.value, ast.Lambda):
            arg = stmt.value.args.args[0].arg if stmt.value.args.args else None
            names[_LAMBDA_KEYS[key]] = _expression_as_data(stmt.value.body, arg, [], path,
                                                           stmt.lineno)
            continue
        try:
            names[key] = _value(stmt.value, names)
        except RecursionError:
            raise FormatError(f"{path}:{stmt.lineno}: the value of {key} is nested too "
                              "deeply") from None
        except _NotData as exc:
            raise FormatError(f"{path}:{stmt.lineno}: the value of {key} is not a literal "
                              f"(numbers, strings, tuples, lists, dicts, None) or simple "
                              f"arithmetic on them: {exc}") from None
    return {key: value for key, value in names.items() if not key.startswith("_")}


def decode_source(path: pathlib.Path) -> str:
    """The file's text in the encoding its PEP 263 coding line (or BOM) declares, else UTF-8,
    as Python itself would read it."""
    with open(path, "rb") as f:
        data = f.read(MAX_SETTINGS_BYTES + 1)
    if len(data) > MAX_SETTINGS_BYTES:
        raise FormatError(f"{path}: larger than {MAX_SETTINGS_BYTES // 1024} KiB; not a "
                          "settings file")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise FormatError(f"{path}: {exc.msg}; a file that is not UTF-8 needs a coding line "
                          "such as `# -*- coding: latin-1 -*-`") from None
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise FormatError(f"{path}: not valid {encoding} text ({exc}); fix the coding line "
                          "or the file") from None
    return text.removeprefix("\ufeff")


def _is_docstring(stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _value(node, names: dict, depth: int = 0):
    """Evaluate a literal-like expression; earlier settings are visible by name."""
    if depth > MAX_DEPTH:
        raise _NotData(f"nested more than {MAX_DEPTH} levels deep")
    value = _value_of(node, names, depth + 1)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise _NotData(f"a number larger than {MAX_INT:.0e}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _NotData("a number that overflows")
    return value


def _value_of(node, names: dict, depth: int):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_value(e, names, depth) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict) and None not in node.keys:
        try:
            return {_value(k, names, depth): _value(v, names, depth)
                    for k, v in zip(node.keys, node.values)}
        except TypeError as exc:
            raise _NotData(f"bad key: {exc}") from None
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        raise _NotData(f"{node.id!r} is not set earlier in the file")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _number(_value(node.operand, names, depth))
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _number(_value(node.left, names, depth))
        right = _number(_value(node.right, names, depth))
        try:
            return _BINOPS[type(node.op)](left, right)
        except ZeroDivisionError:
            raise _NotData("division by zero") from None
        except OverflowError:
            raise _NotData("a number that overflows") from None
    if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
        container, index = _value(node.value, names, depth), _value(node.slice, names, depth)
        try:
            return container[index]
        except (KeyError, IndexError, TypeError) as exc:
            raise _NotData(f"bad index: {exc}") from None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _CASTS and len(node.args) == 1 and not node.keywords):
        try:
            return _CASTS[node.func.id](_number(_value(node.args[0], names, depth)))
        except (OverflowError, ValueError) as exc:
            raise _NotData(str(exc)) from None
    raise _NotData(f"cannot read {ast.unparse(node)!r} as data")


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _NotData(f"arithmetic is only read on numbers, not {value!r}")
    return value


def _function_as_data(node: ast.FunctionDef, path: pathlib.Path):
    """`def f(name):` made of `name = <replace chain>` lines and a final `return`."""
    arg = node.args.args[0].arg if node.args.args else None
    replacements = []
    body = [s for s in node.body if not _is_docstring(s)]
    for stmt in body[:-1]:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == arg):
            raise FormatError(f"{path}:{stmt.lineno}: in {node.name}, only `{arg} = "
                              f"{arg}.replace(...)` lines are read")
        replacements += _replace_chain(stmt.value, arg, path, stmt.lineno)
    last = body[-1] if body else None
    if not isinstance(last, ast.Return) or last.value is None:
        raise FormatError(f"{path}:{node.lineno}: {node.name} must end with a return")
    return _expression_as_data(last.value, arg, replacements, path, last.lineno)


def _replace_chain(expr, arg, path, lineno) -> list:
    """`arg.replace(a, b).replace(c, d)` -> [[a, b], [c, d]]; `arg` alone -> []."""
    replacements = []
    while (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
           and expr.func.attr == "replace" and len(expr.args) == 2):
        try:
            replacements.append([ast.literal_eval(a) for a in expr.args])
        except (ValueError, TypeError, SyntaxError, RecursionError):
            raise FormatError(f"{path}:{lineno}: replace() takes two literal strings") from None
        expr = expr.func.value
    if not (isinstance(expr, ast.Name) and expr.id == arg):
        raise FormatError(f"{path}:{lineno}: only chains of {arg}.replace(old, new) are read")
    return replacements[::-1]


def _expression_as_data(expr, arg, replacements: list, path, lineno):
    """A returned expression: a replace chain (appended to `replacements`) or a test of
    substrings `'x' in name or 'y' in name`."""
    parts = expr.values if isinstance(expr, ast.BoolOp) and isinstance(expr.op, ast.Or) else [expr]
    if all(_is_substring_test(p, arg) for p in parts):
        if replacements:
            raise FormatError(f"{path}:{lineno}: mixes renaming and filtering")
        return [ast.literal_eval(p.left) for p in parts]
    try:
        return replacements + _replace_chain(expr, arg, path, lineno)
    except FormatError:
        raise FormatError(f"{path}:{lineno}: this function is not one deepvis can read as data; "
                          "use a list of [old, new] replacements or substrings") from None


def _is_substring_test(part, arg) -> bool:
    return (isinstance(part, ast.Compare) and len(part.ops) == 1
            and isinstance(part.ops[0], ast.In) and isinstance(part.comparators[0], ast.Name)
            and part.comparators[0].id == arg and isinstance(part.left, ast.Constant))
