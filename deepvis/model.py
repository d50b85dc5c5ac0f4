"""`load_model`: a network ready to run, whatever form it came in.

A model is an ONNX graph plus the settings that say how images become inputs.
It runs on either executor; everything above this layer (CLI, optimizer,
toolbox) talks to `Model` only.
"""
from __future__ import annotations

import pathlib

import numpy as np
import onnx

from . import sources
from .errors import DeepvisError
from .exec import resolve_backend
from .grad import GradCache
from .graph import meta
from .graph.load import graph_input, load_onnx, visible_blobs
from .labels import load_labels
from .preprocess import Preprocessing, preprocess
from .resources import cache_dir
from .settings import Settings, load_settings

SETTINGS_SUFFIXES = (".yaml", ".yml", ".py")


class Model:
    """A loaded network: blob names and shapes, preprocessing, forward on one executor."""

    def __init__(self, graph: onnx.ModelProto, settings: Settings, backend: str = "auto",
                 path: pathlib.Path | None = None, speed_over_memory: bool = False):
        self.graph = graph
        self.settings = settings
        self.backend = backend = resolve_backend(backend)
        self.path = path
        self.metadata = meta.read(graph)
        self.input_name = graph_input(graph).name
        self.blob_names = visible_blobs(graph)
        self.preprocessing = preprocessing_from(settings, self.metadata["preprocess"],
                                                input_hw(graph), path)
        self.labels = load_labels(settings.get("caffevis_labels"))
        self._executor_options = ({"gpu": bool(settings.get("caffevis_mode_gpu")),
                                   "lean": not speed_over_memory,
                                   "source": path or "the model"} if backend == "ort" else {})
        # The forward and every gradient executor share one copy of the weights (a memory
        # map of the cache's weights.bin), so memory stays flat however many layers and
        # modes are in use.
        self._graphs = GradCache(graph, cache_dir() / "graphs")
        self._executor = self._graphs.forward_executor(self.blob_names[1:], backend,
                                                       **self._executor_options)
        self._grad_executors: dict = {}
        self.blob_shapes = self._shapes_at_batch_one()

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
        result = self._executor.run({self.input_name: x}, wanted)
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
        out = executor.run({self.input_name: x, "seed": np.ascontiguousarray(seed)},
                           ["grad", *wanted])
        values = {b: (x if b == self.input_name else out[b]) for b in blobs}
        return out["grad"], values

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
            self._grad_executors[key] = self._graphs.executor(
                blob, mode, extra, self.backend, seed_times_activation, **self._executor_options)
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
        c, h, w = graph_input_chw(self.graph)
        zeros = np.zeros((1, c, h, w), np.float32)
        out = self._executor.run({self.input_name: zeros}, self.blob_names[1:])
        shapes = {self.input_name: (1, c, h, w)}
        shapes.update({name: tuple(v.shape) for name, v in out.items()})
        return shapes


def graph_input_chw(graph: onnx.ModelProto) -> tuple[int, int, int]:
    dims = graph_input(graph).type.tensor_type.shape.dim
    values = [d.dim_value for d in dims]
    if len(values) != 4 or not all(values[1:]):
        raise DeepvisError("the network input must be 4-D (N, C, H, W) with fixed C, H and W; "
                           f"this graph's input is {[d.dim_param or d.dim_value for d in dims]}")
    return tuple(values[1:])


def input_hw(graph: onnx.ModelProto) -> tuple[int, int]:
    return graph_input_chw(graph)[1:]


def preprocessing_from(settings: Settings, recorded: dict, hw, model_path) -> Preprocessing:
    """Explicit settings win over what the graph recorded, which wins over the defaults."""
    explicit = settings.explicit if hasattr(settings, "explicit") else set(settings)

    def pick(setting_key, meta_key, default):
        if setting_key in explicit:
            return settings[setting_key]
        if meta_key in recorded:
            return recorded[meta_key]
        return default

    swap = pick("caffe_net_channel_swap", "channel_swap", settings.get("caffe_net_channel_swap"))
    scale = pick("deepvis_input_scale", "scale", 1.0)
    stretch = pick("static_file_stretch_mode", "stretch", False)
    mean = settings["caffevis_data_mean"] if "caffevis_data_mean" in explicit else None
    if mean is None and recorded.get("mean_file") and model_path is not None:
        from .graph.check import confined_file
        mean = str(confined_file(pathlib.Path(model_path).parent, recorded["mean_file"],
                                 f"{model_path}: metadata mean_file"))
    if mean is None:
        mean = recorded.get("mean")
    if isinstance(mean, str):
        from .caffe.mean import load_mean
        mean = load_mean(mean, hw)
    return Preprocessing(input_size=tuple(hw), channel_swap=tuple(swap) if swap else None,
                         mean=mean, scale=scale, stretch=bool(stretch))


def load_model(model, backend: str = "auto", settings=None,
               speed_over_memory: bool = False) -> Model:
    """Load a bundled model name, an .onnx file, or a settings file (YAML or settings_local.py).

    `settings` (a path) adds a settings file on top of a named model. With
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
    path = sources.resolve_onnx(merged)
    return Model(load_onnx(path), merged, backend=backend, path=path,
                 speed_over_memory=speed_over_memory)
