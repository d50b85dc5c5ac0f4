"""Window panes from the settings (original-toolbox §2.1)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import DeepvisError


@dataclass(frozen=True)
class Pane:
    name: str
    i: int          # top row
    j: int          # left column
    height: int
    width: int

    def view(self, buffer):
        """This pane's region of the window buffer (drawing outside it is clipped)."""
        return buffer[self.i:self.i + self.height, self.j:self.j + self.width]

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width


def panes_from_settings(settings) -> dict[str, Pane]:
    """`window_panes` (a mapping, or the original's sequence of (name, (i, j, h, w)) pairs)
    scaled by `global_scale`, each number truncated to int."""
    spec = settings["window_panes"]
    pairs = list(spec.items()) if isinstance(spec, dict) else [tuple(p) for p in spec]
    if not pairs:
        raise DeepvisError("window_panes is empty")
    scale = float(settings.get("global_scale", 1.0))
    panes: dict[str, Pane] = {}
    for name, dims in pairs:
        if name in panes:
            raise DeepvisError(f"window_panes names pane {name!r} twice")
        if len(dims) != 4:
            raise DeepvisError(f"window_panes[{name!r}] must be (row, col, height, width), "
                               f"got {dims!r}")
        i, j, h, w = (int(v * scale) for v in dims)
        panes[name] = Pane(name, i, j, h, w)
    if "input" not in panes:
        raise DeepvisError("window_panes needs an 'input' pane")
    return panes


def window_shape(panes: dict[str, Pane]) -> tuple[int, int]:
    """(rows, cols) of the buffer: the furthest pane edges."""
    return (max(p.i + p.height for p in panes.values()),
            max(p.j + p.width for p in panes.values()))


def help_pane(settings, shape: tuple[int, int]) -> Pane:
    """help_pane_loc: (i, j, height, width) as fractions of the window."""
    fractions = settings["help_pane_loc"]
    if len(fractions) != 4 or not all(0 <= f <= 1 for f in fractions):
        raise DeepvisError(f"help_pane_loc must be four fractions in [0, 1], got {fractions!r}")
    rows, cols = shape
    i, j, h, w = (int(f * n) for f, n in zip(fractions, (rows, cols, rows, cols)))
    return Pane("help", i, j, h, w)
