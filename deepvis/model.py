"""`load_model`: a network ready to run, whatever form it came in.

A model is an ONNX graph plus the settings that say how images become inputs.
It runs on either executor; everything above this layer (CLI, optimizer,
toolbox) talks to `Model` only.
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np
import onnx

from . import conventions, sources
from .errors import DeepvisError
from .exec import resolve_backend
from .exec.parallel import worth_splitting
from .grad import GradCache
from .graph import meta
from .graph.batch import (annotate_shapes, any_batch, fixed_batch, input_dims, open_shapes,
                          with_image_size)
from .graph.load import graph_input, load_onnx, static_shapes, visible_blobs
from .labels import load_labels
from .preprocess import Preprocessing, preprocess
from .resources import cache_dir
from .settings import Settings, load_settings

SETTINGS_SUFFIXES = (".yaml", ".yml", ".py")


class Model:
    """A loaded network: blob names and shapes, preprocessing, forward on one executor."""

    def __init__(self, graph: onnx.ModelProto, settings: Settings, backend: str = "auto",
                 path: pathlib.Path | None = None, speed_over_memory: bool = False,
                 weights_key: str | None = None, owned: bool = False):
        """`owned`: the graph may be edited in place (fitting its input), not copied.
        `weights_key` stands for the weights in the gradient cache's key (see GradCache)."""
        exported_batch = fixed_batch(graph) if len(input_dims(graph)) == 4 else None
        graph, self.batch_limit, why = fit_input(graph, settings, owned, resolve_backend(backend))
        if self.batch_limit:
            print(f"deepvis: {path or 'the graph'} takes exactly {self.batch_limit} image(s) "
                  f"per run ({why}): running {self.batch_limit} at a time. Export with a dynamic "
                  "batch (dynamic_axes={'input': {0: 'N'}}) to avoid this.", file=sys.stderr)
        # a batch made symbolic is checked on the first run of several images (run_batched)
        self._batch_checked = exported_batch is None or self.batch_limit is not None
        self._exported_batch = exported_batch
        self.graph = graph
        self.settings = settings
        self.backend = backend = resolve_backend(backend)
        self.path = path
        self.metadata = meta.read(graph)
        self.input_name = graph_input(graph).name
        self.blob_names = visible_blobs(graph)
        self.preprocessing, notice = preprocessing_from(
            settings, self.metadata["preprocess"], graph_input_chw(graph), path,
            {p.key: p.value for p in graph.metadata_props})
        if notice:
            print(notice, file=sys.stderr)
        self.labels = load_labels(settings.get("caffevis_labels"))
        self._executor_options = ({"gpu": bool(settings.get("caffevis_mode_gpu")),
                                   "lean": not speed_over_memory,
                                   "source": path or "the model"} if backend == "ort" else {})
        # The forward and every gradient executor share one copy of the weights (a memory
        # map of the cache's weights.bin), so memory stays flat however many layers and
        # modes are in use.
        self._graphs = GradCache(graph, cache_dir() / "graphs", weights_key=weights_key)
        self._executor = self._graphs.forward_executor(self.blob_names[1:], backend,
                                                       **self._executor_options)
        self._grad_executors: dict = {}
        self.blob_shapes = self._shapes_at_batch_one()
        # A dedicated model's gradient steps run a batch in slices over the cores where
        # that pays (exec/parallel.py); set to False before the first step to run it whole.
        self.split_batches = (speed_over_memory and backend == "ort"
                              and worth_splitting(graph, self.blob_shapes))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.blob_shapes[self.input_name]

    def preprocess(self, image_bgr: np.ndarray) -> np.ndarray:
        """A photo as cv2.imread gives it -> (1, C, H, W) float32 network input."""
        return preprocess(image_bgr, self.preprocessing)

    def forward(self, x: np.ndarray, blobs=None) -> dict[str, np.ndarray]:
        """Run the network on a preprocessed batch (N, C, H, W); return the named blobs."""
        x = self._check_input(x)
        names = list(blobs) if blobs is not None else self.blob_names
        self._check_blobs(names)
        wanted = [b for b in names if b != self.input_name]
        result = self.run_batched(self._executor, {self.input_name: x}, wanted)
        if self.input_name in names:
            result[self.input_name] = x
        return {b: result[b] for b in names}

    def backward(self, x: np.ndarray, blob: str, seed: np.ndarray, mode: str = "grad") -> np.ndarray:
        """Derivative at the input of sum(seed * blob), in mode grad, deconv or guided.

        The seed has the blob's shape (batch included) and enters where the original toolbox
        put it: at the output of the layer of that name, below any in-place ReLU.
        """
        return self.forward_backward(x, blob, seed, mode)[0]

    def forward_backward(self, x: np.ndarray, blob: str, seed: np.ndarray, mode: str = "grad",
                         blobs=(), seed_times_activation: bool = False
                         ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One pass of forward + backward: the input derivative and the requested blobs.

        With `seed_times_activation`, the seed is multiplied by the blob's own values inside
        the graph: a channel mask then gives the toolbox's seed (a channel's activation map)
        without a forward pass to compute it first.
        """
        x = self._check_input(x)
        self._check_blobs([blob, *blobs])
        seed = np.asarray(seed, dtype=np.float32)
        expected = (len(x),) + tuple(self.blob_shapes[blob][1:])
        if seed.shape != expected:
            raise DeepvisError(f"seed for {blob!r} must have shape {expected}, got {seed.shape}")
        wanted = [b for b in blobs if b != self.input_name]
        executor = self._grad_executor(blob, mode, tuple(wanted), seed_times_activation)
        out = self.run_batched(executor, {self.input_name: x, "seed": np.ascontiguousarray(seed)},
                               ["grad", *wanted])
        values = {b: (x if b == self.input_name else out[b]) for b in blobs}
        return out["grad"], values

    def run_batched(self, executor, feeds: dict, outputs) -> dict[str, np.ndarray]:
        """executor.run for a batch of any size; every feed and output has the batch first.

        A graph whose batch is tied to its exported size runs in slices of that size (the last
        one padded with zero rows). A graph whose batch was made symbolic is trusted until the
        first batch of more than one image: should that fail, or come back with another
        batch, the model falls back to slices too, and says so once.
        """
        n = len(feeds[self.input_name])
        if self.batch_limit is None or n == self.batch_limit:
            if self._batch_checked or n == self._exported_batch:
                return executor.run(feeds, outputs)
            try:
                out = executor.run(feeds, outputs)
                if all(len(v) == n for v in out.values()):
                    self._batch_checked = True
                    return out
                why = "its outputs do not follow the batch"
            except Exception as exc:  # the runtime's own error type: nothing else to catch
                why = str(exc).splitlines()[0][-200:]
            self.batch_limit = self._exported_batch or 1
            print(f"deepvis: {self.path or 'the graph'} cannot run {n} images at once "
                  f"({why}): running {self.batch_limit} at a time", file=sys.stderr)
        step = self.batch_limit
        parts = []
        for start in range(0, n, step):
            chunk = {k: v[start:start + step] for k, v in feeds.items()}
            short = step - len(chunk[self.input_name])
            if short:
                chunk = {k: np.concatenate([v, np.zeros((short, *v.shape[1:]), v.dtype)])
                         for k, v in chunk.items()}
            out = executor.run(chunk, outputs)
            parts.append({k: v[:step - short] for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def export_grad(self, blob: str, mode: str, path, overwrite: bool = False) -> None:
        """Write the standalone gradient graph (weights included) for `blob` in `mode`."""
        from .fileio import refuse_overwrite
        from .grad import export_grad

        self._check_blobs([blob])
        refuse_overwrite(path, overwrite)
        export_grad(self.graph, blob, mode, path)

    def _grad_executor(self, blob: str, mode: str, extra: tuple, seed_times_activation=False):
        key = (blob, mode, extra, seed_times_activation)
        if key not in self._grad_executors:
            split = {"split": self.split_batches} if self.backend == "ort" else {}
            self._grad_executors[key] = self._graphs.executor(
                blob, mode, extra, self.backend, seed_times_activation,
                **self._executor_options, **split)
        return self._grad_executors[key]

    def _check_blobs(self, names) -> None:
        unknown = [b for b in names if b not in self.blob_names]
        if unknown:
            raise DeepvisError(f"no blob named {unknown[0]!r}; blobs are: "
                               f"{', '.join(self.blob_names)}")

    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        expected = self.blob_shapes[self.input_name][1:] if hasattr(self, "blob_shapes") else None
        if x.ndim != 4 or (expected and tuple(x.shape[1:]) != tuple(expected)):
            want = f"(N, {', '.join(map(str, expected))})" if expected else "(N, C, H, W)"
            raise DeepvisError(f"network input must have shape {want}, got {x.shape}")
        return np.ascontiguousarray(x)

    def _shapes_at_batch_one(self) -> dict[str, tuple[int, ...]]:
        """From shape inference where it knows every blob (no forward pass: VGG's would take
        a third of a second), else from a forward pass on zeros."""
        c, h, w = graph_input_chw(self.graph)
        static = static_shapes(self.graph, self.blob_names)
        if static is not None and static.get(self.input_name) == (1, c, h, w):
            return static
        zeros = np.zeros((1, c, h, w), np.float32)
        out = self.run_batched(self._executor, {self.input_name: zeros}, self.blob_names[1:])
        shapes = {self.input_name: (1, c, h, w)}
        shapes.update({name: tuple(v.shape) for name, v in out.items()})
        return shapes


def needs_shapes(graph: onnx.ModelProto) -> bool:
    """Whether shape inference leaves a blob's dims past the batch open (a Reshape or Resize
    to a computed shape): then a run measures them for the gradient rules (annotate_shapes)."""
    return bool(open_shapes(graph)[0])


def fit_input(graph: onnx.ModelProto, settings, owned: bool = False, backend: str = "auto"):
    """(graph, batch limit or None, why): the input's H and W fixed from deepvis_input_size
    where symbolic, and its batch made symbolic where the ops allow (graph.batch)."""
    dims = input_dims(graph)
    if len(dims) != 4:
        raise DeepvisError(f"the network input must be 4-D (N, C, H, W); this graph's input is "
                           f"{dims}")
    size = settings.get("deepvis_input_size")
    symbolic_hw = not all(isinstance(d, int) and d > 0 for d in dims[2:])
    if symbolic_hw and not size:
        raise DeepvisError(f"this graph's input is {dims}: its height and width are not fixed; "
                           "choose them with deepvis_input_size: [H, W] in a settings file, "
                           "or --input-size HxW")
    if not (symbolic_hw or size or fixed_batch(graph) or needs_shapes(graph)):
        return graph, None, None
    if not owned:
        copy = onnx.ModelProto()
        copy.CopyFrom(graph)
        graph = copy
    if size:
        with_image_size(graph, parse_size(size))
    batch = fixed_batch(graph)
    graph, why = any_batch(graph)
    annotate_shapes(graph, backend)
    return graph, (batch if why else None), why


def parse_size(size) -> tuple[int, int]:
    """[H, W], (H, W), 'HxW' or one int for a square -> (H, W)."""
    if isinstance(size, str):
        parts = size.lower().replace(",", "x").split("x")
    elif isinstance(size, (int, float)):
        parts = [size, size]
    else:
        parts = list(size)
    try:
        values = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        values = ()
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise DeepvisError(f"input size {size!r}: expected H and W, e.g. [224, 224] or 224x224")
    return values


def graph_input_chw(graph: onnx.ModelProto) -> tuple[int, int, int]:
    dims = graph_input(graph).type.tensor_type.shape.dim
    values = [d.dim_value for d in dims]
    if len(values) != 4 or not all(values[1:]):
        raise DeepvisError("the network input must be 4-D (N, C, H, W) with fixed C, H and W; "
                           f"this graph's input is {[d.dim_param or d.dim_value for d in dims]}")
    return tuple(values[1:])


def input_hw(graph: onnx.ModelProto) -> tuple[int, int]:
    return graph_input_chw(graph)[1:]


PREPROCESS_KEYS = frozenset({"caffe_net_channel_swap", "caffevis_data_mean",
                             "deepvis_input_scale"})


def preprocessing_from(settings: Settings, recorded: dict, chw, model_path,
                       props: dict | None = None) -> tuple[Preprocessing, str | None]:
    """(preprocessing, a notice when it was assumed rather than given).

    Each of swap, mean and scale comes from the first of: the settings, when they set it;
    the convention named by deepvis_preprocess; what the graph recorded (deepvis's own
    metadata, or the metadata props deepvis.conventions reads); the defaults. A graph with
    none of these gets the torchvision convention, and the notice says so.
    """
    explicit = settings.explicit if hasattr(settings, "explicit") else set(settings)
    channels, hw = int(chw[0]), tuple(chw[1:])
    base: dict = {}
    notice = None
    named = settings.get("deepvis_preprocess") if "deepvis_preprocess" in explicit else None
    if named:
        base = conventions.convention(named)
    else:
        base.update(conventions.from_metadata(props or {}))
        base.update({k: v for k, v in recorded.items() if k != "input_size"})
        if not base and not (explicit & PREPROCESS_KEYS):
            base = conventions.convention(conventions.DEFAULT)
            where = pathlib.Path(model_path).name if model_path else "this graph"
            notice = (f"deepvis: {where} says nothing of its preprocessing: assuming "
                      f"{conventions.DEFAULT} (RGB, ImageNet mean/std). Change it with "
                      "--preprocess caffe|tf|lite|torchvision or deepvis_preprocess in --settings")

    def pick(setting_key, meta_key, default):
        if setting_key in explicit:
            return settings[setting_key]
        if meta_key in base:
            return base[meta_key]
        return default

    swap = pick("caffe_net_channel_swap", "channel_swap", settings.get("caffe_net_channel_swap"))
    scale = pick("deepvis_input_scale", "scale", 1.0)
    stretch = pick("static_file_stretch_mode", "stretch", False)
    mean = settings["caffevis_data_mean"] if "caffevis_data_mean" in explicit else None
    if mean is None and base.get("mean_file") and model_path is not None:
        from .graph.check import confined_file
        mean = str(confined_file(pathlib.Path(model_path).parent, base["mean_file"],
                                 f"{model_path}: metadata mean_file"))
    if mean is None:
        mean = base.get("mean")
    if isinstance(mean, str):
        from .caffe.mean import load_mean
        mean = load_mean(mean, hw)
    color = settings.get("deepvis_input_channels") if "deepvis_input_channels" in explicit \
        else base.get("color")
    color = color or ("gray" if channels <= 2 else "rgb" if channels == 3 else "rgba")
    swap = conventions.swap_for_channels(list(swap) if swap is not None else None, channels)
    if swap is not None and sorted(swap) != list(range(channels)):
        raise DeepvisError(f"caffe_net_channel_swap {list(swap)} does not reorder the "
                           f"network's {channels} input channels")
    mean = conventions.for_channels(mean, channels, 0.0) if not hasattr(mean, "shape") else mean
    scale = conventions.for_channels(scale, channels, 1.0)
    for what, value in (("caffevis_data_mean", mean), ("deepvis_input_scale", scale)):
        size = np.shape(value)[0] if np.ndim(value) else channels
        if value is not None and size != channels:
            raise DeepvisError(f"{what} has {size} values; the network takes {channels} "
                               "input channels")
    shorter = settings.get("deepvis_resize_shorter")
    spec = Preprocessing(input_size=hw, channel_swap=tuple(swap) if swap else None,
                         mean=mean, scale=scale, stretch=bool(stretch), color=color,
                         channels=channels, resize_shorter=int(shorter) if shorter else None)
    return spec, notice


def load_model(model, backend: str = "auto", settings=None,
               speed_over_memory: bool = False, overrides: dict | None = None) -> Model:
    """Load a bundled model name, an .onnx file, or a settings file (YAML or settings_local.py).

    `settings` (a path) adds a settings file on top of a named model, and `overrides` (a
    dict, from command-line flags) sets keys over both. With
    `speed_over_memory`, each onnxruntime session packs its own copy of the weights and keeps
    its buffers between runs (see `grad.cache`): faster, and an image gets the same bits alone
    as inside a batch, for a loop that runs one graph many times (optimize); the toolbox,
    with a session per layer and mode, leaves it off.
    """
    text = str(model)
    if text.endswith(SETTINGS_SUFFIXES):
        merged = load_settings(text)
        if not merged.get("deepvis_model") and not merged.get("caffevis_deploy_prototxt"):
            raise DeepvisError(f"{text}: set deepvis_model (or caffevis_deploy_prototxt and "
                               "caffevis_network_weights) to say which network to load")
    else:
        merged = load_settings(settings, model=text)
    if overrides:   # command-line flags: set explicitly, over every file
        merged.update(overrides)
        merged.explicit = frozenset(getattr(merged, "explicit", ())) | frozenset(overrides)
    path = sources.resolve_onnx(merged)
    stat = pathlib.Path(path).stat()
    key = f"{pathlib.Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return Model(load_onnx(path), merged, backend=backend, path=path,
                 speed_over_memory=speed_over_memory, weights_key=key, owned=True)
