"""The 64 px aligned face the glasses models see: its landmark layout and the band glasses may cover.

The GeneGAN glasses model, the glasses classifier and the edges-to-faces model were trained on
crops aligned to the manifest's ``dcgan_faces64_symmetric`` layout, so photos are aligned to it too.
"""

from __future__ import annotations

import numpy as np

SIZE = 64  # side of the aligned crop, in pixels
LAYOUT = "dcgan_faces64_symmetric"  # manifest face layout of the crops


def template() -> np.ndarray:
    """The five landmarks (eyes, nose, mouth corners; fractions of the side) of the aligned crop."""
    from core.weights import face_layout

    return face_layout(LAYOUT)


def eye_band(size: int = SIZE, layout: np.ndarray | None = None) -> np.ndarray:
    """Boolean [size, size] mask of the band around the layout's eyes that glasses may cover."""
    layout = template() if layout is None else layout
    left, right = layout[0] * size, layout[1] * size
    d = right[0] - left[0]
    y0, y1 = int(np.floor(left[1] - 0.52 * d)), int(np.ceil(left[1] + 0.62 * d))
    x0, x1 = int(np.floor(left[0] - 0.92 * d)), int(np.ceil(right[0] + 0.92 * d))
    band = np.zeros((size, size), bool)
    band[max(0, y0):min(size, y1), max(0, x0):min(size, x1)] = True
    return band
