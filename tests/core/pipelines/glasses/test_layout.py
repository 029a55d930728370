"""The aligned 64 px face of the glasses models: the layout they were trained on and its eye band."""

from __future__ import annotations

import numpy as np

from core.pipelines.glasses.layout import SIZE, eye_band, template


def test_the_layout_is_the_one_the_shipped_models_were_trained_on():
    # The median of 497 YuNet detections on DCGAN faces, made symmetric: GeneGAN, the classifier and
    # the edges -> faces model only work on photos aligned to exactly these points.
    expected = [[0.349, 0.466], [0.651, 0.466], [0.500, 0.652], [0.377, 0.793], [0.623, 0.793]]
    assert SIZE == 64 and np.array_equal(template(), np.array(expected))


def test_eye_band_covers_the_eyes_with_the_measured_margins():
    band = eye_band()
    rows, cols = np.flatnonzero(band.any(1)), np.flatnonzero(band.any(0))
    # eyes at x 22.3 and 41.7, y 29.8 (d = 19.3 px): 0.52 d above, 0.62 d below, 0.92 d beside
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (19, 41, 4, 59)
    assert band[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()  # one rectangle
    assert 3.5 < eye_band(128).sum() / band.sum() < 4.5  # the same band at twice the size
