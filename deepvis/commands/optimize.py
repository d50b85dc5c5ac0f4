"""`deepvis optimize`: the original optimize_image.py, with every flag, on any model.

Find an input image that excites a unit, by gradient ascent with the paper's
regularizers. Many units (--push-channel 0-95) run as batches. Flags keep the
original's names, meanings and defaults; values the original passed through eval are
read with ast.literal_eval. Values come from the original's defaults, then --preset,
then the flags given explicitly.

Which model: --deploy-proto with --net-weights (a Caffe model, imported once), else
--model, else the model the --settings file names, else the embedded
efficientnet-lite0. The push layer defaults to fc8 where the model has one (the
original's default), else to its first labelled layer (fc on EfficientNet-Lite).

The image is optimized in pixel units, mean subtracted, in the network's channel order
(exactly the original's variable for Caffe models); the model's input scale sits between
it and the network. So clipping keeps pixels in [0, 255], decay pulls towards the mean
image and blur widths are in pixels on every model. A --preset's learning-rate parameters
(lr; max_lr and desired_prog) are the paper's divided by the model's input scale, so the
rate each policy picks is too (x128 on EfficientNet-Lite, whose
input is (pixel - 127) / 128; exactly the paper's on Caffe models), because a network's
gradient with respect to pixels shrinks with that scale; explicit flags stay literal.
Beyond the paper, --preset robust adds random views each step (jitter, zoom, rotation)
and steps along natural colours and 1/f frequencies.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import DeepvisError
from ..optimize import params as P
from ..optimize.loop import optimize
from ..optimize.params import FindParams
from ..optimize.results import output_files, output_prefix, refuse_existing, save_results
from ..optimize.space import pixel_space
from .common import add_backend_args, setting_overrides

DEFAULT_MODEL = "efficientnet-lite0"
DEFAULT_TEMPLATE = "%(p.push_layer)s_%(p.push_channel)04d_%(p.rand_seed)d"


def register(sub) -> None:
    p = sub.add_parser("optimize", help="find images that excite units (regularized "
                                        "gradient ascent, the original optimize_image.py)",
                       description=__doc__.split("\n", 2)[2],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_network_args(p)
    add_find_args(p)
    out = p.add_argument_group("where to save results")
    out.add_argument("--output-prefix", default="optimize_results/opt",
                     help="output path and file name prefix (default: optimize_results/opt)")
    out.add_argument("--output-template", default=DEFAULT_TEMPLATE,
                     help="file name template, %%-formatted with p.<param> and r.<result> "
                          "(default: %%(p.push_layer)s_%%(p.push_channel)04d_%%(p.rand_seed)d, "
                          "giving optimize_results/opt_fc8_0130_0_best_X.jpg)")
    out.add_argument("--brave", action="store_true",
                     help="allow overwriting existing result files (default: refuse)")
    out.add_argument("--skipbig", action="store_true",
                     help="do not write the large *info_big.pkl files (full image arrays)")
    p.set_defaults(run=run)


def add_network_args(p) -> None:
    g = p.add_argument_group("which trained network to load")
    g.add_argument("--model", help="bundled model name, .onnx file or settings file (default: "
                                   "the model --settings names, else efficientnet-lite0)")
    g.add_argument("--settings", metavar="FILE",
                   help="settings file (YAML or an original settings_local.py)")
    add_backend_args(g, "ort (onnxruntime), numpy, or auto (default)")
    g.add_argument("--caffe-root", help="accepted for compatibility and ignored (no Caffe needed)")
    g.add_argument("--deploy-proto", help="Caffe deploy prototxt (with --net-weights)")
    g.add_argument("--net-weights", help="Caffe .caffemodel weights (with --deploy-proto)")
    g.add_argument("--mean", help="mean: a path (.npy or .binaryproto, centre-cropped to "
                                  "--data-size), a per-channel tuple in network order, or None "
                                  "for no mean (default: the model's own)")
    g.add_argument("--channel-swap-to-rgb",
                   help="permutation from network channel order to RGB for the saved images, "
                        "e.g. (2,1,0) for BGR networks (default: from the model's channel swap)")
    g.add_argument("--data-size", help="network input size (H, W), used to crop a mean image "
                                       "(default: the model's input size)")


def add_find_args(p, units: bool = True) -> None:
    """The FindParams flags. Their argparse defaults are None so a preset can tell which
    flags were given; the original's defaults are applied in `find_values`."""
    d = P.CLI_DEFAULTS
    p.add_argument("--preset", choices=tuple(P.PRESETS),
                   help="the paper's Table 1 settings (paper1..paper4, as the original's "
                        "running-optimize-image.md gives them) or the documented flamingo run; "
                        "explicit flags override its values")
    g = p.add_argument_group("where to start the optimization")
    g.add_argument("--start-at", choices=P.START_AT,
                   help=f"how to generate x0 (default: {d['start_at']})")
    g.add_argument("--rand-seed", type=int,
                   help=f"seed for the start image (default: {d['rand_seed']})")
    g = p.add_argument_group("which neuron to optimize")
    if units:
        g.add_argument("--push-layer", help="layer (blob) of the unit (default: fc8 where the "
                                            "model has it, else its first labelled layer)")
        g.add_argument("--push-channel",
                       help="channel (conv) or neuron (fc): an int, a range such as 0-95, or a "
                            f"list such as 1,130,285, run in batches of --batch-size "
                            f"(default: {d['push_channel']})")
    g.add_argument("--push-spatial", help="spatial location (y, x) for conv layers, or None "
                                          "for (0, 0) (default: None)")
    g.add_argument("--push-dir", type=float,
                   help="value the backward pass starts from; must be positive (default: 1)")
    g = p.add_argument_group("which regularization to apply")
    g.add_argument("--decay", type=float, help="L2 decay per step (default: 0)")
    g.add_argument("--blur-radius", type=float,
                   help="Gaussian blur sigma in pixels; 0 for none (default: 0)")
    g.add_argument("--blur-every", type=int,
                   help="blur every BLUR_EVERY steps, starting at step 0; 0 for never (default: 0)")
    g.add_argument("--small-val-percentile", type=float,
                   help="zero entries whose |value| is under this percentile (default: 0)")
    g.add_argument("--small-norm-percentile", type=float,
                   help="zero pixels whose norm is under this percentile, the paper's "
                        "theta_n_pct (default: 0)")
    g.add_argument("--px-benefit-percentile", type=float,
                   help="zero pixels whose contribution is under this percentile (default: 0)")
    g.add_argument("--px-abs-benefit-percentile", type=float,
                   help="zero pixels whose |contribution| is under this percentile, the paper's "
                        "theta_c_pct (default: 0)")
    g = p.add_argument_group("which learning rate schedule to use")
    g.add_argument("--lr-policy", choices=P.LR_POLICIES,
                   help=f"constant, progress or progress01 (default: {d['lr_policy']})")
    g.add_argument("--lr-params",
                   help="dict: constant needs lr; progress needs max_lr and desired_prog; "
                        "progress01 needs max_lr, early_prog and late_prog_mult "
                        "(default: {'lr': 1})")
    g.add_argument("--max-iter", type=int,
                   help=f"iterations of the optimization loop (default: {d['max_iter']})")
    g = p.add_argument_group("beyond the paper (off by default; the 'robust' preset turns "
                             "them on)")
    g.add_argument("--jitter", type=int,
                   help="shift the image the network sees by up to JITTER pixels each step, in "
                        "each direction (default: 0)")
    g.add_argument("--scale-jitter", type=float,
                   help="zoom the image the network sees by a random factor in "
                        "[1 - S, 1 + S] each step (default: 0)")
    g.add_argument("--rotate", type=float,
                   help="rotate the image the network sees by up to ROTATE degrees each "
                        "step (default: 0)")
    g.add_argument("--color-space", choices=("rgb", "decorrelated"),
                   help="step along ImageNet's decorrelated colour axes instead of RGB "
                        "(default: rgb)")
    g.add_argument("--parameterization", choices=("pixel", "fourier"),
                   help="optimize 1/f-scaled frequencies instead of pixels, which favours "
                        "smooth images (default: pixel)")
    g = p.add_argument_group("how to run")
    g.add_argument("--batch-size", type=int, default=32,
                   help="optimizations per forward/backward call (default: 32)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or per-unit lines")


def find_values(args, push_layer: str, preset: str | None, input_scale: float = 1.0) -> dict:
    """FindParams values: original defaults <- preset (in the model's units) <- explicit
    flags (literal)."""
    explicit = {key: getattr(args, key, None) for key in
                ("start_at", "rand_seed", "push_layer", "push_dir", "decay", "blur_radius",
                 "blur_every", "small_val_percentile", "small_norm_percentile",
                 "px_benefit_percentile", "px_abs_benefit_percentile", "lr_policy", "max_iter",
                 "jitter", "scale_jitter", "rotate", "color_space", "parameterization")}
    if args.push_spatial is not None:
        explicit["push_spatial"] = P.parse_push_spatial(args.push_spatial)
    if args.lr_params is not None:
        explicit["lr_params"] = P.parse_lr_params(args.lr_params)
    return P.resolve(explicit, preset, dict(P.CLI_DEFAULTS, push_layer=push_layer), input_scale)


def preset_notice(preset: str | None, values: dict, input_scale: float, explicit_lr: bool) -> None:
    """Say when a preset's learning rates were converted to the model's input units."""
    if preset is None or explicit_lr or input_scale == 1 or "lr_params" not in P.PRESETS[preset]:
        return
    print(f"deepvis: --preset {preset} on a network whose input is pixels x {input_scale:.4g}: "
          f"its learning-rate parameters are divided by that, lr_params {values['lr_params']} (pass "
          f"--lr-params to set them literally)", file=sys.stderr)


def default_push_layer(model) -> str:
    """fc8 (the original's default) where it exists, else the model's first labelled layer
    that is not the probability layer (`fc` on EfficientNet-Lite), else its last blob."""
    if "fc8" in model.blob_names:
        return "fc8"
    prob = model.settings.get("caffevis_prob_layer")
    for layer in model.settings.get("caffevis_label_layers") or ():
        if layer in model.blob_names and layer != prob:
            return layer
    return model.blob_names[-1]


def open_network(args):
    from ..model import load_model
    from ..settings import load_settings

    if args.caffe_root:
        print("deepvis: --caffe-root is ignored (deepvis needs no Caffe)", file=sys.stderr)
    if bool(args.deploy_proto) != bool(args.net_weights):
        raise DeepvisError("--deploy-proto and --net-weights go together; give both or neither")

    def load(model, settings=args.settings):
        # one gradient graph runs for many iterations, and units alone must match batched ones
        return load_model(model, backend=args.backend, settings=settings, speed_over_memory=True,
                          overrides=setting_overrides(args))

    if args.deploy_proto:
        from ..sources import cached_caffe_import
        return load(str(cached_caffe_import(args.deploy_proto, args.net_weights)))
    if args.model:
        return load(args.model)
    if args.settings:
        named = load_settings(args.settings)
        if named.get("deepvis_model") or named.get("caffevis_deploy_prototxt"):
            return load(args.settings, settings=None)
    return load(DEFAULT_MODEL)


def space_for(model, args):
    """The pixel space, with --mean / --data-size / --channel-swap-to-rgb applied."""
    from ..caffe.mean import load_mean

    chw = model.input_shape[1:]
    size = model.input_shape[2:]
    if args.data_size is not None:
        size = P.parse_literal(args.data_size, "--data-size")
        if not (isinstance(size, tuple) and len(size) == 2):
            raise DeepvisError(f"--data-size should be a tuple (H, W), got {args.data_size!r}")
    mean = "model"
    if args.mean is not None:
        try:
            mean = P.parse_literal(args.mean, "--mean")
        except DeepvisError:
            mean = args.mean            # the original took a bare path
        if isinstance(mean, str):
            if not os.path.isfile(mean):
                raise DeepvisError(f"--mean: no file {mean}")
            mean = load_mean(mean, size)
        elif mean is not None and not isinstance(mean, (tuple, list, int, float)):
            raise DeepvisError(f"--mean should be a path, a per-channel tuple or None, got "
                               f"{args.mean!r}")
        elif isinstance(mean, (int, float)):
            mean = [mean] * chw[0]
    to_rgb = None
    if args.channel_swap_to_rgb is not None:
        to_rgb = P.parse_literal(args.channel_swap_to_rgb, "--channel-swap-to-rgb")
        if not isinstance(to_rgb, (tuple, list)):
            raise DeepvisError(f"--channel-swap-to-rgb should be a tuple such as (2,1,0), got "
                               f"{args.channel_swap_to_rgb!r}")
    return pixel_space(model.preprocessing, chw, mean=mean, to_rgb=to_rgb)


def unit_params(args, values: dict) -> list[FindParams]:
    units = (P.parse_units(args.push_channel) if args.push_channel is not None
             else [values["push_channel"]])
    return [FindParams(**dict(values, push_channel=u)) for u in units]


def planned_prefixes(args, params: list[FindParams]) -> list[str | None]:
    """Each unit's prefix where the template allows it before the run (None: it uses r.*)."""
    prefixes = []
    for p in params:
        try:
            prefixes.append(output_prefix(args.output_prefix, args.output_template, p.as_dict()))
        except KeyError:
            prefixes.append(None)
    known = [x for x in prefixes if x is not None]
    if len(set(known)) != len(known):
        raise DeepvisError("--output-template gives several units the same file names; include "
                           "%(p.push_channel)04d in it")
    for prefix in known:
        refuse_existing(output_files(prefix, args.skipbig), args.brave)
    return prefixes


def chunks(items: list, size: int):
    if size < 1:
        raise DeepvisError(f"--batch-size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start:start + size]


def summary_line(prefix: str, p: FindParams, r, labels) -> str:
    label = f" ({labels[p.push_channel]})" if labels and p.push_channel < len(labels) else ""
    best = f"best_obj {r.best_obj:.6g} at iteration {r.best_ii}" if r.best_obj is not None \
        else "no iteration recorded"
    return f"{prefix}: unit {p.push_unit}{label}: {r.meta_result}; {best}"


def run_record(args, space) -> dict:
    """What info.json keeps besides the effective params: how they were arrived at."""
    record = {"preset": args.preset, "input_scale": space.input_scale}
    if args.preset and "lr_params" in P.PRESETS[args.preset]:
        record["preset_lr_params"] = P.PRESETS[args.preset]["lr_params"]
        record["lr_params_literal"] = args.lr_params is not None
    return record


def run(args) -> int:
    """The output prefix is locked for the run: a second optimize writing the same files
    stops at once; the folder must be writable before anything is computed."""
    import pathlib

    from ..fileio import check_folder
    from ..locks import exclusive_output

    base = pathlib.Path(args.output_prefix)
    check_folder(base.parent, for_file=f"--output-prefix {args.output_prefix}")
    with exclusive_output(base, "writing optimization results to"):
        return _run(args)


def _run(args) -> int:
    model = open_network(args)
    space = space_for(model, args)
    values = find_values(args, default_push_layer(model), args.preset, space.input_scale)
    if not args.quiet:
        preset_notice(args.preset, values, space.input_scale, args.lr_params is not None)
    params = unit_params(args, values)
    prefixes = planned_prefixes(args, params)
    labelled = params[0].push_layer in (model.settings.get("caffevis_label_layers") or ())
    for batch in chunks(list(zip(params, prefixes)), args.batch_size):
        results = optimize(model, [p for p, _ in batch], space, progress=not args.quiet)
        for (p, prefix), r in zip(batch, results):
            prefix = prefix or output_prefix(args.output_prefix, args.output_template,
                                             p.as_dict(), r.__dict__)
            save_results(prefix, p, r, space, brave=args.brave, skipbig=args.skipbig,
                         run=run_record(args, space))
            if not args.quiet:
                print(summary_line(prefix, p, r, model.labels if labelled else None))
    return 0
