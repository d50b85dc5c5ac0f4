"""FindParams: what to optimize and how, with the original's names, defaults and presets.

Three layers of values, each overriding the one before: the original command line's
defaults (`CLI_DEFAULTS`), a preset (`PRESETS`), then the flags a user gave explicitly.
Values keep the types the original ended up with (e.g. `push_dir` stays the int 1
unless given, because argparse does not convert defaults), so the info.txt listing
reads like the original's.
"""
from __future__ import annotations

import ast
import collections
import copy
import dataclasses
import math
import re

from ..errors import DeepvisError
from .results import py2_str

START_AT = ("mean_plus_rand", "randu", "mean")
LR_POLICIES = ("constant", "progress", "progress01")
LR_KEYS = {"constant": ("lr",), "progress": ("max_lr", "desired_prog"),
           "progress01": ("max_lr", "early_prog", "late_prog_mult")}
PERCENTILES = ("small_val_percentile", "small_norm_percentile", "px_benefit_percentile",
               "px_abs_benefit_percentile")


@dataclasses.dataclass
class FindParams:
    """One unit's optimization; field defaults are the original class's (None -> 0 for Py3)."""

    rand_seed: int = 0
    start_at: str = "mean_plus_rand"
    push_layer: str = "prob"
    push_channel: int = 278
    push_spatial: tuple = (0, 0)
    push_dir: float = 1.0
    decay: float = 0.01
    blur_radius: float = 0
    blur_every: int = 0
    small_val_percentile: float = 0
    small_norm_percentile: float = 0
    px_benefit_percentile: float = 0
    px_abs_benefit_percentile: float = 0
    lr_policy: str = "constant"
    lr_params: dict = dataclasses.field(default_factory=lambda: {"lr": 10.0})
    max_iter: int = 300
    # Beyond the paper (transforms.py, precondition.py); at these defaults the loop is the
    # original's and the listings leave them out.
    jitter: int = 0
    scale_jitter: float = 0.0
    rotate: float = 0.0
    color_space: str = "rgb"
    parameterization: str = "pixel"

    def __post_init__(self):
        self.push_spatial = tuple(self.push_spatial)
        validate(self)

    @property
    def push_unit(self) -> tuple:
        return (self.push_channel,) + self.push_spatial

    def as_dict(self) -> dict:
        """Plain values, push_unit included (as the original's params.__dict__); the
        options beyond the paper only where they are on."""
        out = {key: value for key, value in dataclasses.asdict(self).items()
               if key not in EXTRAS or value != EXTRAS[key]}
        out["push_spatial"] = tuple(self.push_spatial)
        out["lr_params"] = dict(self.lr_params)
        out["push_unit"] = self.push_unit
        return out

    def __str__(self) -> str:
        items = sorted(self.as_dict().items())
        return "FindParams:\n" + "".join(f"{key:>30}: {py2_str(value)}\n" for key, value in items)


EXTRAS = dict(jitter=0, scale_jitter=0.0, rotate=0.0, color_space="rgb",
              parameterization="pixel")

# The original optimize_image.py's argparse defaults (push_layer is adapted per model by
# the command: fc8 where the model has it).
CLI_DEFAULTS = dict(start_at="mean_plus_rand", rand_seed=0, push_layer="fc8", push_channel=130,
                    push_spatial=(0, 0), push_dir=1, decay=0, blur_radius=0, blur_every=0,
                    small_val_percentile=0, small_norm_percentile=0, px_benefit_percentile=0,
                    px_abs_benefit_percentile=0, lr_policy="constant", lr_params={"lr": 1},
                    max_iter=500)

# The four command lines of the original's doc/running-optimize-image.md ("in the same order
# as Table 1"), each value typed as argparse would have typed it, and the flamingo run.
# paper4 follows that document, which blurs (0.5 every 4 steps); a transcription of Table 1
# as (decay, blur width, blur every, norm pct, contribution pct) = (0, 0, 0, 0, 90) differs
# there only.
PRESETS = {
    "paper1": dict(decay=0.0, blur_radius=0.5, blur_every=4, small_norm_percentile=50.0,
                   max_iter=500, lr_policy="progress",
                   lr_params={"max_lr": 100.0, "desired_prog": 2.0}),
    "paper2": dict(decay=0.3, blur_radius=0.0, blur_every=0, small_norm_percentile=20.0,
                   max_iter=750, lr_policy="constant", lr_params={"lr": 100.0}),
    "paper3": dict(decay=0.0001, blur_radius=1.0, blur_every=4, max_iter=1000,
                   lr_policy="constant", lr_params={"lr": 100.0}),
    "paper4": dict(decay=0.0, blur_radius=0.5, blur_every=4, px_abs_benefit_percentile=90.0,
                   max_iter=1000, lr_policy="progress",
                   lr_params={"max_lr": 100000000, "desired_prog": 2.0}),
}
PRESETS["flamingo"] = dict(PRESETS["paper3"], push_channel=130, rand_seed=0)
# Plain gradient ascent at paper3's step size: the baseline the paper's settings improve on.
PRESETS["none"] = dict(decay=0.0, blur_radius=0.0, blur_every=0, max_iter=1000,
                       lr_policy="constant", lr_params={"lr": 100.0})
# Beyond the paper: random views each step, steps along natural colours and 1/f frequencies
# (transforms.py, precondition.py), with paper3's small decay; README "Beyond the paper".
# A quarter of paper3's step: the preconditioned steps are longer, and at paper3's lr the
# objective peaks within 50 iterations and then oscillates.
PRESETS["robust"] = dict(decay=0.0001, blur_radius=0.0, blur_every=0, jitter=4,
                         scale_jitter=0.05, rotate=5.0, color_space="decorrelated",
                         parameterization="fourier", max_iter=200, lr_policy="constant",
                         lr_params={"lr": 25.0})


def preset_values(preset: str, input_scale: float = 1.0) -> dict:
    """A preset's values in the units of a network whose input is `pixels * input_scale`.

    The paper's learning rates were tuned on CaffeNet, whose input is the pixel itself
    (scale 1). A network normalizes its input to a range of about +-1 and sizes its first
    layer for that range, so its gradient with respect to its own input has about the same
    magnitude as CaffeNet's; with respect to pixels it is `input_scale` times that, and the
    pixel step `lr * grad` shrinks by `input_scale`. Every policy's learning rate is linear
    in each of its parameters (constant: lr; progress: min(max_lr, desired_prog / |g|^2);
    progress01 likewise), so dividing all of them by the scale divides the rate the policy
    picks at any gradient, and restores the paper's steps; a progress policy still reaches
    its cap at the gradient where the paper's did. At scale 1 every value is the paper's.
    """
    if preset not in PRESETS:
        raise DeepvisError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = copy.deepcopy(PRESETS[preset])
    if input_scale != 1 and "lr_params" in values:
        values["lr_params"] = {key: value / input_scale
                               for key, value in values["lr_params"].items()}
    return values


def resolve(explicit: dict, preset: str | None = None, defaults: dict | None = None,
            input_scale: float = 1.0) -> dict:
    """Defaults <- preset (in the model's units, see `preset_values`) <- explicitly given
    values (those that are not None), which stay literal."""
    values = dict(CLI_DEFAULTS if defaults is None else defaults)
    if preset is not None:
        values.update(preset_values(preset, input_scale))
    values.update({key: value for key, value in explicit.items() if value is not None})
    return copy.deepcopy(values)          # no lr_params dict shared between units


def validate(p: FindParams) -> None:
    """The original's checks (lr keys, int channel, 2-tuple spatial) plus the ones Py3 needs."""
    if p.lr_policy not in LR_POLICIES:
        raise DeepvisError(f"--lr-policy must be one of {', '.join(LR_POLICIES)}, "
                           f"got {p.lr_policy!r}")
    if not isinstance(p.lr_params, dict):
        raise DeepvisError(f"--lr-params must be a dict, got {p.lr_params!r}")
    missing = [k for k in LR_KEYS[p.lr_policy] if k not in p.lr_params]
    if missing:
        raise DeepvisError(f"--lr-params for lr policy {p.lr_policy!r} needs the keys "
                           f"{', '.join(map(repr, LR_KEYS[p.lr_policy]))}; missing "
                           f"{', '.join(map(repr, missing))} in {p.lr_params!r}")
    for key in LR_KEYS[p.lr_policy]:
        if not _is_number(p.lr_params[key]):
            raise DeepvisError(f"--lr-params: {key!r} must be a number, got "
                               f"{p.lr_params[key]!r}")
    if not _is_int(p.push_channel) or p.push_channel < 0:
        raise DeepvisError(f"--push-channel must be a non-negative int, got {p.push_channel!r}")
    if len(p.push_spatial) != 2 or not all(_is_int(v) and v >= 0 for v in p.push_spatial):
        raise DeepvisError("--push-spatial must be None or a tuple of two non-negative ints, "
                           f"got {p.push_spatial!r}")
    if not _is_number(p.push_dir) or not p.push_dir > 0:
        raise DeepvisError(f"--push-dir must be positive (the original's results tracker only "
                           f"supports maximizing), got {p.push_dir!r}")
    if p.start_at not in START_AT:
        raise DeepvisError(f"--start-at must be one of {', '.join(START_AT)}, got {p.start_at!r}")
    if not _is_int(p.max_iter) or p.max_iter < 1:
        raise DeepvisError(f"--max-iter must be a positive int, got {p.max_iter!r}")
    if not _is_int(p.blur_every) or p.blur_every < 0:
        raise DeepvisError(f"--blur-every must be a non-negative int, got {p.blur_every!r}")
    if not _is_number(p.blur_radius) or p.blur_radius < 0:
        raise DeepvisError(f"--blur-radius must be a non-negative number, got {p.blur_radius!r}")
    if not _is_number(p.decay):
        raise DeepvisError(f"--decay must be a number, got {p.decay!r}")
    validate_extras(p)
    for key in PERCENTILES:
        value = getattr(p, key)
        if not _is_number(value) or not 0 <= value <= 100:
            raise DeepvisError(f"--{key.replace('_', '-')} must be in [0, 100], got {value!r}")


def validate_extras(p: FindParams) -> None:
    from .precondition import COLOR_SPACES, PARAMETERIZATIONS

    if not _is_int(p.jitter) or p.jitter < 0:
        raise DeepvisError(f"--jitter must be a non-negative int (pixels), got {p.jitter!r}")
    if not _is_number(p.scale_jitter) or not 0 <= p.scale_jitter < 1:
        raise DeepvisError(f"--scale-jitter must be in [0, 1), got {p.scale_jitter!r}")
    if not _is_number(p.rotate) or not 0 <= p.rotate <= 180:
        raise DeepvisError(f"--rotate must be in [0, 180] degrees, got {p.rotate!r}")
    if p.color_space not in COLOR_SPACES:
        raise DeepvisError(f"--color-space must be one of {', '.join(COLOR_SPACES)}, "
                           f"got {p.color_space!r}")
    if p.parameterization not in PARAMETERIZATIONS:
        raise DeepvisError(f"--parameterization must be one of {', '.join(PARAMETERIZATIONS)}, "
                           f"got {p.parameterization!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A finite int or float: NaN or infinity in any flag would poison every pixel."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def parse_literal(text: str, flag: str):
    """A value the original passed through eval, read safely; errors name the flag."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise DeepvisError(f"{flag}: cannot read {text!r} as a Python literal (e.g. None, "
                           "(6, 6), {'lr': 100.0})") from None


def parse_push_spatial(text: str) -> tuple:
    value = parse_literal(text, "--push-spatial")
    if value is None:
        return (0, 0)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_int, value)):
        return tuple(value)
    raise DeepvisError(f"--push-spatial should be None or a tuple of 2 ints, got {text!r}")


def parse_lr_params(text: str) -> dict:
    value = parse_literal(text, "--lr-params")
    if not isinstance(value, dict):
        raise DeepvisError(f"--lr-params should be a Python dict such as {{'lr': 100.0}}, "
                           f"got {text!r}")
    return value


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_units(text: str, flag: str = "--push-channel") -> list[int]:
    """'130', '0-95', '1,130,285' or a mix ('0-9,130') -> unit indices in the given order."""
    units: list[int] = []
    for part in str(text).split(","):
        match = _RANGE.match(part)
        if not match:
            raise DeepvisError(f"{flag}: cannot read {part.strip()!r} in {text!r}; use an int, "
                               "a range such as 0-95, or a comma-separated list")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise DeepvisError(f"{flag}: range {part.strip()!r} runs backwards")
        units.extend(range(first, last + 1))
    duplicates = sorted(u for u, n in collections.Counter(units).items() if n > 1)
    if duplicates:
        raise DeepvisError(f"{flag}: unit {duplicates[0]} is listed twice")
    return units
