"""Text keeps the original toolbox's metrics on whatever OpenCV is installed.

Needs only NumPy, OpenCV and deepvis.toolbox.text, so CI can run it again in a small
environment with OpenCV 4 (see .ci/run). The numbers in REFERENCE were measured with
OpenCV 4.14's getTextSize; the webcam screenshot's top-5 lines are 24 px apart.
"""
import cv2
import numpy as np
import pytest

from deepvis.toolbox import text
from deepvis.toolbox.text import Style, Text, reference_height, render_scale, text_size, typeset

SMALL, SIMPLEX, PLAIN = (cv2.FONT_HERSHEY_COMPLEX_SMALL, cv2.FONT_HERSHEY_SIMPLEX,
                         cv2.FONT_HERSHEY_PLAIN)
# (face, scale, thickness) -> getTextSize height on OpenCV 4
REFERENCE = {(SMALL, 1.0, 1): 14, (SMALL, 1.0, 2): 14, (SMALL, 1.0, 3): 15, (SMALL, 0.85, 1): 12,
             (SMALL, 0.85, 2): 12, (SMALL, 0.5, 1): 8, (SMALL, 2.0, 3): 28,
             (SIMPLEX, 1.0, 1): 22, (SIMPLEX, 0.5, 2): 12, (SIMPLEX, 0.85, 1): 19,
             (PLAIN, 1.0, 1): 10, (PLAIN, 0.85, 3): 10, (PLAIN, 2.0, 1): 19}


@pytest.fixture(autouse=True)
def _fresh_calibration():
    render_scale.cache_clear()
    yield
    render_scale.cache_clear()


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_reference_heights_are_opencv4s(key):
    assert reference_height(*key) == REFERENCE[key]


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_installed_opencv_draws_the_reference_height(key):
    face, scale, thick = key
    drawn = cv2.getTextSize("Egyptian cat", face, render_scale(face, scale, thick), thick)[0][1]
    assert drawn == REFERENCE[key]
    style = Style(face=face, scale=scale, thick=thick)
    assert text_size("Egyptian cat", style)[1] == REFERENCE[key]
    if int(cv2.__version__.split(".")[0]) < 5:        # OpenCV 4: nothing is rescaled
        assert render_scale(face, scale, thick) == scale


def _ink_rows(image):
    return np.nonzero(image.any(axis=(1, 2)))[0]


def test_top5_lines_are_24_px_apart_as_in_the_webcam_screenshot():
    """The aux pane's five lines (class_loc (20, 10), line spacing 10, scale 1): each line's
    ink starts 24 rows below the one above, measured on the drawn pixels."""
    img = np.zeros((300, 300, 3), np.uint8)
    lines = [[Text("0.27 Hg", Style(colour=(255, 255, 255)))] for _ in range(5)]
    end = typeset(img, lines, 10, 20, line_spacing=10)
    assert end == 20 + 5 * 24
    rows = _ink_rows(img)
    starts = [rows[0]] + [r for prev, r in zip(rows, rows[1:]) if r > prev + 1]
    assert len(starts) == 5
    assert np.diff(starts).tolist() == [24] * 4
    assert 20 - 14 <= starts[0] <= 20               # the first line's ink ends at its baseline


def _opencv4_text_size(string, face, scale, thick):
    """A getTextSize with OpenCV 4's heights (widths do not matter here)."""
    return (int(10 * len(string) * scale), reference_height(face, scale, thick)), 3


def _opencv5_text_size(string, face, scale, thick):
    """A getTextSize with OpenCV 5's heights: 22 px at scale 1 for COMPLEX_SMALL, 27 else."""
    height = 22 if face == SMALL else 27
    return (int(10 * len(string) * scale), int(round(height * scale))), 3


@pytest.mark.parametrize("size", [_opencv4_text_size, _opencv5_text_size])
def test_calibration_on_either_metric(monkeypatch, size):
    """The calibration only reads getTextSize: with OpenCV 4's own heights it leaves every
    scale alone; with OpenCV 5's it finds the largest scale that gives the original's height."""
    monkeypatch.setattr(text.cv2, "getTextSize", size)
    for (face, scale, thick), want in REFERENCE.items():
        got = render_scale(face, scale, thick)
        assert size("Ag", face, got, thick)[0][1] == want
        if size is _opencv4_text_size:
            assert got == scale
        else:
            assert got < scale
            assert size("Ag", face, got * 1.05, thick)[0][1] > want
