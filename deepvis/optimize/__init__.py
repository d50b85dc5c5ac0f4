"""Regularized optimization: images that excite units (the original's optimize_image.py).

    from deepvis.optimize import FindParams, optimize, pixel_space, save_results
    space = pixel_space(model.preprocessing, model.input_shape[1:])
    results = optimize(model, [FindParams(push_layer="fc", push_channel=130, **PRESETS["paper3"])],
                       space)
"""
from .loop import optimize
from .params import PRESETS, FindParams
from .results import FindResults, save_results
from .space import PixelSpace, pixel_space

__all__ = ["FindParams", "FindResults", "PRESETS", "PixelSpace", "optimize", "pixel_space",
           "save_results"]
