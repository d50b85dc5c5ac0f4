"""What each setting may hold: its type, range and shape, read from `settings/defaults.yaml`.

The defaults file documents every key on its own line, and the comment on that line starts
with the rule, then ` -- ` and the meaning:

    global_font_size: 1.0   # number in (0, 10] -- multiplies the font sizes you did not set

So the file people read is the schema the loader enforces. Rules:

    null | bool | str | path | regex | font | panes | model | any
    int [in RANGE] | number [in RANGE]      RANGE: [a, b], (a, b], [a, b), (a, b); a/b may be inf
    one of a, b, c
    list of [N] RULE                        exactly N items when N is given
    mapping of str to RULE
    RULE or RULE ...                        any one of them

Numbers are finite; YAML's `1e9` (a string to YAML 1.1) counts as the number it spells.
Lists may also be tuples (settings_local.py); an int is a number; a whole float is an int.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

MAX_ITEMS = 10_000          # longest list or mapping a setting may hold
MAX_TEXT = 4_096            # longest string
REGEX_TIMEOUT_S = 1.0       # per match of static_files_regexp (generous: a loaded machine)
_LINE = re.compile(r"^(?P<key>[A-Za-z_]\w*):(?P<value>[^#]*?)\s+#\s*(?P<comment>.*)$")
_RANGE = re.compile(r"^(?P<lo>[\[(])\s*(?P<a>-?(?:inf|[\d.e+-]+))\s*,\s*"
                    r"(?P<b>-?(?:inf|[\d.e+-]+))\s*(?P<hi>[\])])$")
FONT_FACES = ("FONT_HERSHEY_SIMPLEX", "FONT_HERSHEY_PLAIN", "FONT_HERSHEY_DUPLEX",
              "FONT_HERSHEY_COMPLEX", "FONT_HERSHEY_TRIPLEX", "FONT_HERSHEY_COMPLEX_SMALL",
              "FONT_HERSHEY_SCRIPT_SIMPLEX", "FONT_HERSHEY_SCRIPT_COMPLEX")


class Bad(ValueError):
    """A value that breaks its rule; the message says how."""


Check = Callable[[object], object]      # returns the value (normalized) or raises Bad


@dataclass(frozen=True)
class Rule:
    key: str
    text: str
    check: Check


def rules_from_defaults(text: str) -> dict[str, Rule]:
    """Every top-level key of the defaults file with the rule in its comment."""
    rules = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        rule_text = match["comment"].split(" -- ")[0].strip()
        rules[match["key"]] = Rule(match["key"], rule_text, compile_rule(rule_text))
    return rules


def compile_rule(text: str) -> Check:
    alternatives = [part.strip() for part in text.split(" or ")]
    checks = [_atom(part) for part in alternatives]
    if len(checks) == 1:
        return checks[0]

    def any_of(value):
        problems = []
        for check in checks:
            try:
                return check(value)
            except Bad as exc:
                problems.append(str(exc))
        specific = [p for p in problems if not p.startswith("not ")]
        raise Bad(specific[0] if len(specific) == 1 else f"not {text}")
    return any_of


def _atom(text: str) -> Check:
    simple = {"null": _null, "bool": _bool, "str": _str, "path": _path, "regex": check_regex,
              "font": _font, "panes": _panes, "model": _model, "any": lambda value: value}
    if text in simple:
        return simple[text]
    word, _, rest = text.partition(" ")
    if word in ("int", "number"):
        return _numeric(word, rest)
    if text.startswith("one of "):
        return _choice([w.strip() for w in text[len("one of "):].split(",")])
    if text.startswith("list of "):
        rest = text[len("list of "):]
        count, _, item = rest.partition(" ")
        if count.isdigit():
            return _list(compile_rule(item), int(count))
        return _list(compile_rule(rest), None)
    if text.startswith("mapping of str to "):
        return _mapping(compile_rule(text[len("mapping of str to "):]))
    raise ValueError(f"settings schema: cannot read the rule {text!r}")


def _null(value):
    if value is not None:
        raise Bad("not null")
    return value


def _bool(value):
    if not isinstance(value, bool):
        raise Bad("not true or false")
    return value


def _str(value):
    if not isinstance(value, str):
        raise Bad("not a string")
    if len(value) > MAX_TEXT:
        raise Bad(f"longer than {MAX_TEXT} characters")
    return value


def _path(value):
    _str(value)
    if not value or "\0" in value:
        raise Bad("not a file path")
    return value


def _font(value):
    if isinstance(value, str) and value in FONT_FACES:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and (value % 16) < 8 and 0 <= value < 24:
        return value
    raise Bad(f"not an OpenCV Hershey font ({', '.join(FONT_FACES)})")


def _numeric(kind: str, range_text: str) -> Check:
    lo, hi, lo_open, hi_open = -math.inf, math.inf, False, False
    if range_text:
        match = _RANGE.match(range_text.removeprefix("in ").strip())
        if not range_text.startswith("in ") or not match:
            raise ValueError(f"settings schema: cannot read the range {range_text!r}")
        lo, hi = float(match["a"]), float(match["b"])
        lo_open, hi_open = match["lo"] == "(", match["hi"] == ")"

    def check(value):
        if isinstance(value, str) and kind == "number":
            try:
                value = float(value)         # YAML 1.1 reads 1e9 as a string
            except ValueError:
                raise Bad("not a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Bad(f"not {'an integer' if kind == 'int' else 'a number'}")
        if isinstance(value, float) and not math.isfinite(value):
            raise Bad("not a finite number")
        if kind == "int" and isinstance(value, float):
            if not value.is_integer():
                raise Bad("not an integer")
            value = int(value)
        below = value <= lo if lo_open else value < lo
        above = value >= hi if hi_open else value > hi
        if below or above:
            raise Bad(f"outside {range_text.removeprefix('in ')}")
        return value
    return check


def _choice(words: list[str]) -> Check:
    def check(value):
        if value not in words:
            raise Bad(f"not one of {', '.join(words)}")
        return value
    return check


def _list(item: Check, count: int | None) -> Check:
    def check(value):
        if not isinstance(value, (list, tuple)):
            raise Bad("not a list")
        if count is not None and len(value) != count:
            raise Bad(f"has {len(value)} items, not {count}")
        if len(value) > MAX_ITEMS:
            raise Bad(f"has more than {MAX_ITEMS} items")
        out = []
        for i, element in enumerate(value):
            try:
                out.append(item(element))
            except Bad as exc:
                raise Bad(_nested(f"item {i}", element, exc)) from None
        return type(value)(out)
    return check


def _mapping(item: Check) -> Check:
    def check(value):
        if not isinstance(value, dict):
            raise Bad("not a mapping")
        if len(value) > MAX_ITEMS:
            raise Bad(f"has more than {MAX_ITEMS} entries")
        out = {}
        for key, element in value.items():
            if not isinstance(key, str):
                raise Bad(f"key {_show(key)} is not a string")
            try:
                out[key] = item(element)
            except Bad as exc:
                raise Bad(_nested(f"entry {key!r}", element, exc)) from None
        return out
    return check


_PANE_AT, _PANE_SIZE = _numeric("int", "in [0, 100000]"), _numeric("int", "in [1, 100000]")


def _PANE(value):
    box = _list(lambda v: v, 4)(value)
    out = []
    for i, (check, what) in enumerate(((_PANE_AT, "row"), (_PANE_AT, "col"),
                                       (_PANE_SIZE, "height"), (_PANE_SIZE, "width"))):
        try:
            out.append(check(box[i]))
        except Bad as exc:
            raise Bad(f"{what} = {_show(box[i])} is {exc}") from None
    return type(box)(out)
_PANE_PAIR = _list(lambda value: value, 2)


def _panes(value):
    """window_panes: {name: [row, col, height, width]} or the original's ((name, (r, c, h, w)), ...)."""
    if isinstance(value, dict):
        return _mapping(_PANE)(value)
    if not isinstance(value, (list, tuple)):
        raise Bad("not a mapping of pane names to [row, col, height, width]")
    out = []
    for pair in _list(lambda v: v, None)(value):
        try:
            name, box = _PANE_PAIR(pair)
            out.append(type(pair)((_str(name), _PANE(box))))
        except Bad as exc:
            raise Bad(_nested("pane", pair, exc) + "; each pane is (name, (row, col, height, "
                      "width))") from None
    return type(value)(out)


def _model(value):
    """deepvis_model: null, a name or .onnx path, or {caffe: {deploy, weights, mean}}."""
    if value is None:
        return value
    if isinstance(value, str):
        return _path(value)
    if isinstance(value, dict) and set(value) == {"caffe"}:
        caffe = _mapping(compile_rule("path or null or list of number"))(value["caffe"])
        missing = {"deploy", "weights"} - set(caffe)
        extra = set(caffe) - {"deploy", "weights", "mean"}
        if missing or extra:
            raise Bad("{caffe: ...} takes deploy, weights and optionally mean")
        return {"caffe": caffe}
    raise Bad("not a model name, an .onnx path or {caffe: {deploy, weights, mean}}")


def check_regex(value):
    """A filter for file names: compiles, and matches in bounded time (see safe_match)."""
    import regex

    _str(value)
    if len(value) > 500:
        raise Bad("longer than 500 characters")
    try:
        compiled = regex.compile(value)
    except (regex.error, ValueError, RecursionError, OverflowError) as exc:
        raise Bad(f"not a regular expression: {exc}") from None
    for probe in _probes(value):
        try:
            compiled.match(probe, timeout=REGEX_TIMEOUT_S)
        except TimeoutError:
            raise Bad("too slow to match (catastrophic backtracking on a "
                      f"{len(probe)}-character name)") from None
    return value


def _probes(pattern: str) -> list[str]:
    """Names built from the pattern's own characters: where backtracking blows up."""
    letters = sorted({c for c in pattern if c.isalnum()})[:8] or ["a"]
    probes = [c * 48 + "!" for c in letters]
    probes.append("".join(letters) * (48 // len(letters) + 1) + "!")
    return probes


def safe_match(pattern: str, name: str, ignore_case: bool = False):
    """re.match for settings regexes, but a pathological pattern fails instead of hanging."""
    import regex

    from ..errors import DeepvisError
    try:
        return regex.match(pattern, name, regex.IGNORECASE if ignore_case else 0,
                           timeout=REGEX_TIMEOUT_S)
    except TimeoutError:
        raise DeepvisError(f"static_files_regexp {pattern!r} took over {REGEX_TIMEOUT_S} s to "
                           f"match {name!r}; simplify it") from None
    except regex.error as exc:
        raise DeepvisError(f"static_files_regexp {pattern!r} is not a regular expression: "
                           f"{exc}") from None


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _nested(where: str, value, exc: Bad) -> str:
    """'item 1 = 2 is outside [0, 1]', or 'entry 'input', item 2 = -3 is ...' when deeper."""
    text = str(exc)
    if text.startswith(("item ", "entry ")):
        return f"{where}, {text}"
    return f"{where} = {_show(value)} is {text}"
