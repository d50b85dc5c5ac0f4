"""Draw the README's input picture: a yellow school bus, front three-quarter view.

Run: python doc/make_bus_image.py doc/bus.png
Drawn from shapes (no photo is copied), 400x400, so `deepvis render` examples work offline.
"""
from __future__ import annotations

import sys

import cv2
import numpy as np


def draw_bus(size: int = 400) -> np.ndarray:
    """RGB uint8: sky, asphalt, and a bus with windows, grille, lights and two wheels."""
    s = size / 400
    img = np.zeros((size, size, 3), np.uint8)
    sky = np.linspace(235, 150, int(250 * s))[:, None]
    img[:len(sky)] = np.stack([sky * 0.55, sky * 0.75, sky], axis=2).astype(np.uint8)
    img[len(sky):] = (92, 92, 96)
    cv2.line(img, (0, int(345 * s)), (size, int(330 * s)), (230, 220, 90), max(1, int(4 * s)))

    def p(*xy):
        return np.array([[int(x * s), int(y * s)] for x, y in zip(xy[::2], xy[1::2])], np.int32)

    yellow, dark = (250, 185, 20), (25, 25, 25)
    cv2.fillPoly(img, [p(20, 90, 250, 70, 390, 110, 390, 300, 250, 320, 20, 300)], yellow)
    cv2.fillPoly(img, [p(250, 70, 390, 110, 390, 300, 250, 320)], (235, 165, 15))   # front
    for x in range(35, 235, 40):                                                     # windows
        cv2.fillPoly(img, [p(x, 105 - x * 0.08, x + 30, 103 - x * 0.08,
                             x + 30, 170 - x * 0.05, x, 172 - x * 0.05)], (150, 190, 215))
    cv2.fillPoly(img, [p(265, 95, 380, 125, 380, 185, 265, 170)], (120, 165, 200))  # windshield
    for y in (200, 255):                                                             # stripes
        cv2.line(img, tuple(p(20, y)[0]), tuple(p(250, y + 10)[0]), dark, max(1, int(5 * s)))
    cv2.rectangle(img, tuple(p(285, 215)[0]), tuple(p(360, 265)[0]), (60, 60, 60), -1)  # grille
    for y in range(222, 262, 8):
        cv2.line(img, tuple(p(288, y)[0]), tuple(p(357, y)[0]), (170, 170, 170), 1)
    for x in (272, 372):                                                              # lights
        cv2.circle(img, tuple(p(x, 235)[0]), int(10 * s), (255, 250, 220), -1)
    cv2.putText(img, "SCHOOL BUS", tuple(p(278, 205)[0]), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * s,
                dark, max(1, int(2 * s)))
    for cx in (80, 300):                                                              # wheels
        cv2.circle(img, tuple(p(cx, 305)[0]), int(38 * s), dark, -1)
        cv2.circle(img, tuple(p(cx, 305)[0]), int(16 * s), (150, 150, 150), -1)
        cv2.circle(img, tuple(p(cx, 305)[0]), int(5 * s), (60, 60, 60), -1)
    return img


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python doc/make_bus_image.py OUT.png")
    cv2.imwrite(sys.argv[1], cv2.cvtColor(draw_bus(), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
