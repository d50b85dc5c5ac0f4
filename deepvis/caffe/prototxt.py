"""Protocol-buffer text format (.prototxt), typed by the caffe.proto schema table.

Produces the same message dicts as the wire reader (field name -> value, repeated
fields as lists, repeated floats as arrays, enums as names), and follows protobuf's
TextFormat::Parse as Caffe uses it: unknown fields and a singular field given twice
are errors, reported with file, line and column.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from deepvis.caffe import schema
from deepvis.errors import FormatError

_TOKEN = re.compile(r"""
    (?P<newline>\n)
  | (?P<space>[ \t\r\f\v]+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)(?![\w.]))
  | (?P<ident>-?[A-Za-z_]\w*)
  | (?P<punct>[{}:<>\[\],;])
""", re.VERBOSE)

_CLOSING = {"{": "}", "<": ">"}
MAX_DEPTH = 100  # protobuf's own TextFormat recursion limit
_SPECIAL_FLOATS = {"inf": float("inf"), "infinity": float("inf"), "nan": float("nan")}
_BOOLS = {"true": True, "t": True, "false": False, "f": False, "1": True, "0": False}
_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "a": b"\a", "b": b"\b", "f": b"\f",
            "v": b"\v", "\\": b"\\", "'": b"'", '"': b'"', "?": b"?"}
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{4})"
                     r"|U([0-9a-fA-F]{8})|(.))", re.DOTALL)


@dataclass(frozen=True)
class _Token:
    kind: str        # string | number | ident | punct | end
    text: str
    line: int
    col: int


def parse_text(text: str, message_name: str = "NetParameter",
               source: str = "<string>") -> dict:
    """Parses a whole text-format message of type ``message_name``."""
    parser = _Parser(_tokenize(text, source), source)
    return parser.message(schema.message(message_name), closing=None)


def _tokenize(text: str, source: str) -> list[_Token]:
    tokens, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            what = ("malformed number" if text[pos] in "-.0123456789"
                    else f"unexpected character {text[pos]!r}")
            raise FormatError(f"{source}:{line}:{pos - line_start + 1}: {what}")
        kind = match.lastgroup
        if kind == "newline":
            line, line_start = line + 1, match.end()
        elif kind not in ("space", "comment"):
            tokens.append(_Token(kind, match.group(), line, pos - line_start + 1))
        pos = match.end()
    tokens.append(_Token("end", "end of file", line, pos - line_start + 1))
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token], source: str):
        self.tokens, self.pos, self.source = tokens, 0, source
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------
    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token.kind == "punct" and token.text == text:
            self.pos += 1
            return True
        return False

    def error(self, token: _Token, what: str) -> FormatError:
        found = token.text if token.kind == "end" else repr(token.text)
        return FormatError(f"{self.source}:{token.line}:{token.col}: {what}, found {found}")

    def closes(self, closing: str | None) -> bool:
        """Consumes ``closing`` if next; at top level (None) whether the input ended."""
        return self.peek().kind == "end" if closing is None else self.accept(closing)

    def skip_separator(self) -> None:
        if not self.accept(";"):
            self.accept(",")

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise self.error(self.peek(), f"expected '{text}'")

    # -- messages ------------------------------------------------------------------------
    def nested(self, token: _Token) -> None:
        """Enter one more message level; refuses nesting deeper than protobuf allows."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(token, f"messages nested more than {MAX_DEPTH} deep")

    def message(self, message: schema.Message, closing: str | None) -> dict:
        self.nested(self.peek())
        try:
            return self._message_body(message, closing)
        finally:
            self.depth -= 1

    def _message_body(self, message: schema.Message, closing: str | None) -> dict:
        out: dict = {}
        repeated: dict[str, list] = {}
        while not self.closes(closing):
            token = self.take()
            if token.kind != "ident" or token.text.startswith("-"):
                raise self.error(token, f"expected a field name of {message.name}"
                                 + (f" or '{closing}'" if closing else ""))
            field = message.by_name.get(token.text)
            if field is None:
                raise self.error(token, f"{message.name} has no field '{token.text}'")
            values = self.field_values(field)
            if field.repeated:
                repeated.setdefault(field.name, []).extend(values)
            elif field.name in out or len(values) != 1:
                raise self.error(token, f"non-repeated field '{field.name}' given more than once")
            elif values[0] is not _OPAQUE:
                out[field.name] = values[0]
            self.skip_separator()
        for name, values in repeated.items():
            values = [v for v in values if v is not _OPAQUE]
            kind = message.by_name[name].kind
            out[name] = (np.asarray(values, schema.FLOAT_DTYPES[kind].newbyteorder("="))
                         if kind in schema.FLOAT_DTYPES else values)
        return out

    def field_values(self, field: schema.Field) -> list:
        """The value(s) after a field name: ``: v``, ``: [v, ...]``, ``{...}``, ``: {...}``."""
        colon = self.accept(":")
        if not colon and field.kind != "message":
            raise self.error(self.peek(), f"expected ':' after '{field.name}'")
        if self.accept("["):
            values = []
            if not self.accept("]"):
                values.append(self.value(field))
                while self.accept(","):
                    values.append(self.value(field))
                self.expect("]")
            return values
        return [self.value(field)]

    def value(self, field: schema.Field):
        if field.kind == "message":
            token = self.take()
            if token.kind != "punct" or token.text not in _CLOSING:
                raise self.error(token, f"expected '{{' to open '{field.name}'")
            described = schema.message(field.type)
            if described is None:
                self.skip_message(_CLOSING[token.text])
                return _OPAQUE
            return self.message(described, _CLOSING[token.text])
        return self.scalar(field)

    def skip_message(self, closing: str) -> None:
        """Consumes a message body of a type the schema leaves opaque."""
        self.nested(self.peek())
        try:
            self._skip_body(closing)
        finally:
            self.depth -= 1

    def _skip_body(self, closing: str) -> None:
        while not self.closes(closing):
            token = self.take()
            if token.kind != "ident":
                raise self.error(token, f"expected a field name or '{closing}'")
            colon = self.accept(":")
            opener = self.peek()
            if opener.kind == "punct" and opener.text in _CLOSING:
                self.take()
                self.skip_message(_CLOSING[opener.text])
            elif not colon:
                raise self.error(opener, f"expected ':' after '{token.text}'")
            elif self.accept("["):
                while not self.accept("]"):
                    self.take_any_value()
                    self.accept(",")
            else:
                self.take_any_value()
            self.skip_separator()

    def take_any_value(self) -> None:
        token = self.take()
        if token.kind == "punct" and token.text in _CLOSING:
            self.skip_message(_CLOSING[token.text])
        elif token.kind == "string":
            while self.peek().kind == "string":
                self.take()
        elif token.kind not in ("number", "ident"):
            raise self.error(token, "expected a value")

    # -- scalars -------------------------------------------------------------------------
    def scalar(self, field: schema.Field):
        token = self.take()
        kind = field.kind
        if kind in ("string", "bytes"):
            if token.kind != "string":
                raise self.error(token, f"expected a quoted string for '{field.name}'")
            raw = self.unquote(token)
            while self.peek().kind == "string":
                raw += self.unquote(self.take())
            if kind == "bytes":
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise self.error(token, f"'{field.name}' is not valid UTF-8") from None
        if kind == "int":
            value = _to_int(token)
            if value is None:
                raise self.error(token, f"expected an integer for '{field.name}'")
            return value
        if kind in schema.FLOAT_DTYPES:
            value = _to_float(token)
            if value is None:
                raise self.error(token, f"expected a number for '{field.name}'")
            if kind == "float":
                with np.errstate(over="ignore"):
                    value = float(np.float32(value))
            return value
        if kind == "bool":
            if token.kind in ("ident", "number") and token.text.lower() in _BOOLS:
                return _BOOLS[token.text.lower()]
            raise self.error(token, f"expected true or false for '{field.name}'")
        names = schema.ENUMS[field.type]
        if token.kind == "ident" and token.text in names.values():
            return token.text
        number = _to_int(token)
        if number in names:
            return names[number]
        raise self.error(token, f"expected one of {', '.join(names.values())} "
                                f"for '{field.name}'")

    def unquote(self, token: _Token) -> bytes:
        body = token.text[1:-1]
        out, pos = bytearray(), 0
        for match in _ESCAPE.finditer(body):
            out += body[pos:match.start()].encode("utf-8")
            octal, hexa, u4, u8, char = match.groups()
            if octal or hexa:
                out.append(int(octal, 8) & 0xFF if octal else int(hexa, 16))
            elif u4 or u8:
                out += chr(int(u4 or u8, 16)).encode("utf-8", "surrogatepass")
            elif char in _ESCAPES:
                out += _ESCAPES[char]
            else:
                raise self.error(token, f"unknown escape '\\{char}' in string")
            pos = match.end()
        out += body[pos:].encode("utf-8")
        return bytes(out)


class _Opaque:
    """A value of a message type the schema does not describe (skipped)."""


_OPAQUE = _Opaque()


def _to_int(token: _Token) -> int | None:
    if token.kind != "number":
        return None
    text = token.text
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text)
    if digits[:2].lower() == "0x":
        return sign * int(digits, 16)
    if not digits.isdigit():
        return None
    if len(digits) > 1 and digits.startswith("0"):
        if not set(digits) <= set("01234567"):
            return None  # protobuf reads a leading 0 as octal, so `09` is no number
        return sign * int(digits, 8)
    return sign * int(digits)


def _to_float(token: _Token) -> float | None:
    if token.kind == "ident":
        sign, word = (-1.0, token.text[1:]) if token.text.startswith("-") else (1.0, token.text)
        special = _SPECIAL_FLOATS.get(word.lower())
        return None if special is None else sign * special
    if token.kind != "number":
        return None
    as_int = _to_int(token)
    if as_int is not None:
        return float(as_int)
    return float(token.text.rstrip("fF"))
