"""The Caffe models `deepvis fetch` can download: where each file lives and how to check it.

Pure data. URLs are listed canonical first, then mirrors; each mirror is only trusted
through the published size and digests (BVLC readmes give sha1, the OpenVINO model
zoo gives sha256 and sizes, GitHub-hosted files have git blob ids).
"""
from __future__ import annotations

from dataclasses import dataclass

from .verify import Expected

BVLC = "http://dl.caffe.berkeleyvision.org"
YOS = "http://c.yosinski.com"
BVLC_STATUS = ("dl.caffe.berkeleyvision.org has had repeated outages since 2016 (BVLC/caffe "
               "issues #4817, #5159, #6430, #6864)")


@dataclass(frozen=True)
class RemoteFile:
    name: str                        # file name in the model's cache folder
    urls: tuple[str, ...]            # canonical first, then mirrors
    expected: Expected
    unpack_sentinel: str | None = None   # tarballs: path under unit_jpg_vis/ once unpacked


@dataclass(frozen=True)
class ModelEntry:
    name: str
    title: str
    source: str                      # who published the weights
    status: str                      # how reliable the hosts are
    deploy: str                      # deploy prototxt, relative to the bundled models/ folder
    weights: RemoteFile
    mean: RemoteFile | None = None   # mean image file; None when the mean is per channel
    mean_values: tuple[float, ...] | None = None   # per-channel mean, network (BGR) order
    unit_jpgs: tuple[RemoteFile, ...] = ()         # tarballs unpacked into unit_jpg_vis/
    warning: str | None = None       # printed before anything is downloaded

    @property
    def files(self) -> tuple[RemoteFile, ...]:
        return (self.weights, *((self.mean,) if self.mean else ()), *self.unit_jpgs)


CAFFE_MEAN = RemoteFile(
    "ilsvrc_2012_mean.npy",
    ("https://raw.githubusercontent.com/BVLC/caffe/master/python/caffe/imagenet/"
     "ilsvrc_2012_mean.npy",
     "https://github.com/BVLC/caffe/raw/master/python/caffe/imagenet/ilsvrc_2012_mean.npy"),
    Expected(size=1_572_944, sha1="8284f7ac12f5b0f6d5069c1fac00d8e0ba647b2f"))


def _unit_jpgs(kind: str, sentinel: str) -> RemoteFile:
    name = f"caffenet-yos_{kind}.tar.gz"
    return RemoteFile(name, (f"{YOS}/{name}",), Expected(), unpack_sentinel=sentinel)


MODELS: dict[str, ModelEntry] = {m.name: m for m in (
    ModelEntry(
        name="caffenet",
        title="BVLC reference CaffeNet (AlexNet variant, ImageNet 2012), 227x227 input",
        source="BVLC (Caffe model zoo, models/bvlc_reference_caffenet); mean image from the "
               "Caffe repository",
        status=BVLC_STATUS + "; no other copy of these weights is known. Same architecture "
                             "and layer names as caffenet-yos.",
        deploy="caffenet-yos/deploy.prototxt",
        weights=RemoteFile(
            "bvlc_reference_caffenet.caffemodel",
            (f"{BVLC}/bvlc_reference_caffenet.caffemodel",),
            Expected(size=243_862_418,
                     sha256="472d4a06035497b180636d8a82667129960371375bd10fcb6df5c6c7631f25e0",
                     sha1="4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46")),
        mean=CAFFE_MEAN),
    ModelEntry(
        name="caffenet-yos",
        title="the original toolbox's own CaffeNet weights, mean and per-unit images",
        source="Jason Yosinski (deep-visualization-toolbox models/caffenet-yos/fetch.sh)",
        status="c.yosinski.com has been down for years (404s in 2015, DNS failure since 2017) "
               "and no mirror is known; no checksums were ever published, so deepvis records "
               "the sha256 of whatever it downloads",
        deploy="caffenet-yos/deploy.prototxt",
        weights=RemoteFile("caffenet-yos-weights", (f"{YOS}/caffenet-yos-weights",), Expected()),
        mean=RemoteFile("ilsvrc_2012_mean.npy", (f"{YOS}/ilsvrc_2012_mean.npy",), Expected()),
        unit_jpgs=(
            _unit_jpgs("regularized_opt", "regularized_opt/conv1/conv1_0000_montage.jpg"),
            _unit_jpgs("max_im", "max_im/conv1/conv1_0000.jpg"),
            _unit_jpgs("max_deconv", "max_deconv/conv1/conv1_0000.jpg")),
        warning="caffenet-yos is hosted only at c.yosinski.com, which has been down for years; "
                "this will most likely fail. `deepvis fetch caffenet` gets the BVLC reference "
                "CaffeNet instead: the same architecture, with published checksums."),
    ModelEntry(
        name="bvlc-googlenet",
        title="BVLC GoogLeNet (Inception v1, ImageNet 2012), 224x224 input",
        source="BVLC (Caffe model zoo, models/bvlc_googlenet)",
        status=BVLC_STATUS + "; NVIDIA's old copy for jetson-inference is tried next and "
                             "accepted only if its checksums match.",
        deploy="bvlc-googlenet/deploy.prototxt",
        weights=RemoteFile(
            "bvlc_googlenet.caffemodel",
            (f"{BVLC}/bvlc_googlenet.caffemodel",
             # NVIDIA's copy for jetson-inference (2016); trusted only if the digests match
             "https://nvidia.box.com/shared/static/at8b1105ww1c5h7p30j5ko8qfnxrs0eg.caffemodel"),
            Expected(size=53_533_754,
                     sha256="6f7101e3a2183738a7125a0c5021ba82a1feb4228c5ca0924d991b6daf6f6fad",
                     sha1="405fc5acd08a3bb12de8ee5e23a96bec22f08204")),
        mean_values=(104.0, 117.0, 123.0)),
    ModelEntry(
        name="squeezenet",
        title="SqueezeNet v1.0 (ImageNet 2012), 227x227 input",
        source="DeepScale/SqueezeNet on GitHub (Iandola et al. 2016)",
        status="a plain file in a GitHub repository (reliable); OpenVINO's model storage "
               "keeps a copy",
        deploy="squeezenet/deploy.prototxt",
        weights=RemoteFile(
            "squeezenet_v1.0.caffemodel",
            ("https://raw.githubusercontent.com/DeepScale/SqueezeNet/master/SqueezeNet_v1.0/"
             "squeezenet_v1.0.caffemodel",
             "https://raw.githubusercontent.com/forresti/SqueezeNet/"
             "a47b6f13d30985279789d08053d37013d67d131b/SqueezeNet_v1.0/squeezenet_v1.0.caffemodel",
             "https://storage.openvinotoolkit.org/repositories/open_model_zoo/public/2022.1/"
             "squeezenet1.0/squeezenet_v1.0.caffemodel"),
            Expected(size=5_001_403,
                     sha256="9ff8035aada1f9ffa880b35252680d971434b141ec9fbacbe88309f0f9a675ce",
                     git_blob="a381d848b43d7048c3b362238ece2386c21d6ff0")),
        mean_values=(104.0, 117.0, 123.0)),
)}
