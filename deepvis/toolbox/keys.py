"""Key names and the codes OpenCV reports for them (original-toolbox §4).

A code is matched against patterns of growing generality: the widest mask first, so a
Linux arrow (0xff51) is never mistaken for the letter its low byte spells ('Q').
"""
from __future__ import annotations

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# (name, code, mask). The window reads codes with cv2.waitKeyEx, which keeps the high bits.
KEY_PATTERNS: tuple[tuple[str, int, int], ...] = (
    *((ch, ord(ch), 0xff) for ch in _LETTERS),
    ("esc", 27, 0xff),
    ("enter", 13, 0xff),
    ("enter", 10, 0xff),
    # macOS (Cocoa function-key codes)
    ("up", 0xf700, 0xffff), ("down", 0xf701, 0xffff),
    ("left", 0xf702, 0xffff), ("right", 0xf703, 0xffff),
    ("pgup", 0xf72c, 0xffff), ("pgdn", 0xf72d, 0xffff),
    # X11 keysyms, reported by both the GTK and the Qt backends. The original left Linux
    # PgUp/PgDn undefined; deepvis binds them (Prior/Next).
    ("left", 0xff51, 0xffff), ("up", 0xff52, 0xffff),
    ("right", 0xff53, 0xffff), ("down", 0xff54, 0xffff),
    ("pgup", 0xff55, 0xffff), ("pgdn", 0xff56, 0xffff),
    # Modifiers: known only so that they can be ignored quietly.
    ("shift", 0xffe1, 0xffff), ("shift", 0xffe2, 0xffff),
    ("ctrl", 0xffe3, 0xffff), ("ctrl", 0xffe4, 0xffff),
    # Windows (virtual-key code << 16)
    ("pgup", 0x210000, 0xff0000), ("pgdn", 0x220000, 0xff0000),
    ("left", 0x250000, 0xff0000), ("up", 0x260000, 0xff0000),
    ("right", 0x270000, 0xff0000), ("down", 0x280000, 0xff0000),
)

NAMED_KEYS = ("esc", "enter", "up", "down", "left", "right", "pgup", "pgdn")
MODIFIERS = ("shift", "ctrl")


def _by_mask() -> list[tuple[int, dict[int, str]]]:
    table: dict[int, dict[int, str]] = {}
    for name, code, mask in KEY_PATTERNS:
        assert code & mask == code, f"{name}: code {code:#x} can never match mask {mask:#x}"
        table.setdefault(mask, {})[code] = name
    return sorted(table.items(), reverse=True)


_PATTERNS = _by_mask()


def key_name(code: int) -> str | None:
    """The name of a key code, or None for a code no pattern matches."""
    for mask, names in _PATTERNS:
        name = names.get(code & mask)
        if name is not None:
            return name
    return None


class KeyReader:
    """Names for the codes of one window, restoring capitals the Qt backend drops.

    OpenCV's Qt backend reports a shifted letter as the lower-case one, preceded by the
    Shift key's own code. A letter that follows Shift is therefore read as the capital; the
    GTK backend already reports the capital, which this leaves unchanged. With Qt, holding
    Shift down for several capitals gives only the first one: press Shift with each.
    """

    def __init__(self):
        self._shift = False

    def name(self, code: int) -> str | None:
        name = key_name(code)
        if name == "shift":
            self._shift = True
            return name
        if self._shift and name is not None and len(name) == 1 and name.isalpha():
            name = name.upper()
        self._shift = False
        return name


MAX_KEYS = 10_000  # each key redraws a frame: more is a typo, not a visualization


def parse_keys(text: str | None) -> list[str]:
    """A key sequence for `deepvis render --keys`: names separated by spaces or commas.

    A token is a named key (`left`, `esc`, `pgdn`, ...), a run of one-character keys
    (`ooo` is three `o`s), or either followed by `*N` to repeat it N times.
    """
    keys: list[str] = []
    for token in (text or "").replace(",", " ").split():
        token, _, count = token.partition("*")
        try:
            times = int(count) if count else 1
        except ValueError:
            raise ValueError(f"bad repeat count in key token {token}*{count}") from None
        if not 0 <= times <= MAX_KEYS:
            raise ValueError(f"repeat count {times} in key token {token}*{count} is out of "
                             f"range (0 to {MAX_KEYS})")
        if token in NAMED_KEYS:
            names = [token]
        else:
            names = list(token)
            unknown = [ch for ch in names if ch not in _LETTERS]
            if unknown:
                raise ValueError(f"unknown key {token!r}: use single letters or digits, or one "
                                 f"of {', '.join(NAMED_KEYS)}")
        if len(keys) + len(names) * times > MAX_KEYS:
            raise ValueError(f"the key sequence is longer than {MAX_KEYS} keys")
        keys.extend(names * times)
    return keys
