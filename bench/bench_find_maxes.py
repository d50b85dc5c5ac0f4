"""Images per second of find-maxes on CaffeNet against a bare onnxruntime loop, and with
1 and 2 local Dask workers.

Run: python bench/bench_find_maxes.py [--images 128] [--batch 32] [--rounds 5]

CaffeNet with seeded random weights (no download); photos made from scikit-image's
samples (or random pixels without it), 256x256 JPEGs in a temporary folder. Layers: the
original find_max_acts defaults (conv1-5, fc6, fc7, fc8, prob). Rows:

- bare ORT, pre-decoded: session.run on inputs decoded beforehand (network only);
- bare ORT, decoding inline: decode + preprocess a batch, then session.run;
- find-maxes: deepvis.maxes.scan, the loop the command runs (background decoding, the
  layer blobs fetched, top-N tables merged);
- Dask 1 / 2 workers: the same scan on a local cluster of worker processes started as
  `find-maxes --workers N` starts it, timed from submit to merged result, with the
  model already loaded on every worker.

The single-process rows run one after the other in each of `--rounds` rounds. Columns:
the best round's images/s; the median over rounds of the rate divided by the bare
pre-decoded rate of the same round (neighbours in time share the machine's load); and
CPU milliseconds per image (all threads of the processes doing the work), which other
load on a shared machine disturbs much less than wall time.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench.common import synthetic_caffenet  # noqa: E402
from deepvis.maxes.checkpoint import ScanState  # noqa: E402
from deepvis.maxes.images import decode, list_images, spans  # noqa: E402
from deepvis.maxes.maxima import MaximaRunner  # noqa: E402
from deepvis.maxes.scan import layer_channels, scan  # noqa: E402

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8", "prob"]


def make_photos(folder, count: int) -> None:
    try:
        import skimage.data as data
        names = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
                 "hubble_deep_field")
        sources = [getattr(data, n)() for n in names]
    except ImportError:
        rng = np.random.default_rng(0)
        sources = [rng.integers(0, 256, (300, 400, 3), np.uint8) for _ in range(6)]
    for i in range(count):
        image = sources[i % len(sources)]
        h, w = image.shape[:2]
        k = i // len(sources)
        image = image[(k * 7) % (h // 4):, (k * 11) % (w // 4):]       # shifted crops
        image = image[:, ::-1] if k % 2 else image
        image = cv2.resize(np.ascontiguousarray(image), (256, 256), interpolation=cv2.INTER_AREA)
        cv2.imwrite(os.path.join(folder, f"{i:05d}.jpg"), image[:, :, ::-1])


def timed(fn, count: int) -> tuple[float, float]:
    """(images/s, CPU ms/image) of fn(), which processes `count` images in this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return count / (time.perf_counter() - wall), (time.process_time() - cpu) * 1000 / count


def bare_loop(session, images, model, batch: int, predecoded=None) -> None:
    for k, (a, b) in enumerate(spans([(0, len(images))], batch)):
        if predecoded is not None:
            x = predecoded[k]
        else:
            x = np.stack([decode(images.file(i), model.preprocess)[0] for i in range(a, b)])
        session.run(["prob"], {"data": x})


def find_maxes_loop(model, runner, images, batch: int) -> None:
    state = ScanState.empty(layer_channels(model, LAYERS), 9)
    scan(model, images, LAYERS, state, [(0, len(images))], batch, runner=runner)


def cluster_rate(model_path, images, batch: int, workers: int) -> tuple[float, float]:
    from deepvis.maxes.distributed import ModelSpec, local_threads, open_client, scan_on_cluster

    spec = ModelSpec(str(model_path))
    with open_client(workers=workers) as client:         # as `find-maxes --workers N`
        threads = local_threads(workers)
        client.run(lambda: spec.runner(LAYERS, threads) and None)  # load on every worker first
        merged = []

        def arrived(part):
            if merged:
                merged[0].absorb(part)
            else:
                merged.append(part)

        def cpu_seconds():
            return sum(client.run(time.process_time).values()) + time.process_time()

        cpu, wall = cpu_seconds(), time.perf_counter()
        scan_on_cluster(client, spec, images, LAYERS, 9, batch, [(0, len(images))],
                        None, arrived, threads=threads)
        wall = time.perf_counter() - wall
        return len(images) / wall, (cpu_seconds() - cpu) * 1000 / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask rows")
    args = parser.parse_args()

    import onnx
    import onnxruntime as ort

    import deepvis

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("DEEPVIS_CACHE", os.path.join(tmp, "cache"))
        model_path = os.path.join(tmp, "caffenet.onnx")
        onnx.save(synthetic_caffenet(), model_path)
        photos = os.path.join(tmp, "photos")
        os.mkdir(photos)
        make_photos(photos, args.images)
        images = list_images(photos)
        model = deepvis.load_model(model_path, backend="ort")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        predecoded = [np.stack([decode(images.file(i), model.preprocess)[0] for i in range(a, b)])
                      for a, b in spans([(0, len(images))], args.batch)]
        runner = MaximaRunner(model, LAYERS)     # built once per run, as the command does
        find_maxes_loop(model, runner, images.subset(0, args.batch), args.batch)  # warm-up
        bare_loop(session, images.subset(0, args.batch), model, args.batch)

        loops = {
            "bare ORT, pre-decoded": lambda: bare_loop(session, images, model, args.batch,
                                                       predecoded),
            "bare ORT, decoding inline": lambda: bare_loop(session, images, model, args.batch),
            "find-maxes": lambda: find_maxes_loop(model, runner, images, args.batch)}
        rounds = [{name: timed(fn, len(images)) for name, fn in loops.items()}
                  for _ in range(args.rounds)]
        rows = {}
        for name in loops:
            ratios = [r[name][0] / r["bare ORT, pre-decoded"][0] for r in rounds]
            rows[name] = (max(r[name][0] for r in rounds), float(np.median(ratios)),
                          float(np.median([r[name][1] for r in rounds])))
        if not args.no_dask:
            for n in (1, 2):
                rate, cpu = cluster_rate(model_path, images, args.batch, n)
                rows[f"find-maxes, Dask {n} worker{'s' * (n > 1)}"] = (
                    rate, rate / rows["bare ORT, pre-decoded"][0], cpu)

        print(f"CaffeNet (synthetic weights), {len(images)} images 256x256 jpg, batch "
              f"{args.batch}, {os.cpu_count()} CPUs, layers {','.join(LAYERS)}; "
              f"{args.rounds} rounds (Dask: one run each, ratio to the best bare rate)")
        print(f"{'loop':<28} {'images/s':>9} {'x bare pre-decoded':>19} {'CPU ms/image':>13}")
        for name, (rate, ratio, cpu) in rows.items():
            print(f"{name:<28} {rate:>9.2f} {ratio:>19.2f} {cpu:>13.1f}")


if __name__ == "__main__":
    main()
