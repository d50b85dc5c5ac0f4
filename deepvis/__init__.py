"""deepvis: the Deep Visualization Toolbox on ONNX graphs, without Caffe.

    import deepvis
    model = deepvis.load_model("efficientnet-lite0")          # or an .onnx / settings file
    blobs = model.forward(model.preprocess(cv2.imread("cat.jpg")))
"""
__version__ = "0.1.0"


def load_model(model, backend: str = "auto", settings=None, speed_over_memory: bool = False):
    """See deepvis.model.load_model (imported lazily so `import deepvis` stays light)."""
    from .model import load_model as _load_model

    return _load_model(model, backend=backend, settings=settings,
                       speed_over_memory=speed_over_memory)


__all__ = ["load_model", "__version__"]
