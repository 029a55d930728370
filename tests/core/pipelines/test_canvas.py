"""Extending the canvas: the new border is the hole, the photo stays bit for bit, bad sizes are refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from core.pipelines import canvas, inpaint
from tests.core.pipelines.test_inpaint import tiny_lama_id, tiny_migan_id  # noqa: F401 (fixtures)


def extend_canvas(image, method="auto", migan_id=None, **sides) -> inpaint.Result:
    return canvas.run(image, canvas.Settings(**sides, fill=inpaint.Settings(method=method, migan_id=migan_id)))


def photo() -> Image.Image:
    return Image.fromarray(data.chelsea()).resize((80, 60), Image.Resampling.BILINEAR)


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_offline_methods_fill_the_new_sides(method):
    result = extend_canvas(photo(), left=10, bottom=20, method=method)
    out = np.asarray(result.image)
    assert result.image.size == (90, 80) and result.method == method
    assert np.array_equal(out[:60, 10:], np.asarray(photo()))  # the photo, bit for bit
    assert result.mask.sum() == 90 * 80 - 80 * 60 and not result.mask[:60, 10:].any()
    # The fill continues the photo's border colours (it is not left black).
    assert abs(out[:60, :10].astype(float).mean() - out[:60, 10:14].astype(float).mean()) < 30


def test_migan_fills_the_new_area(tiny_migan_id):
    result = extend_canvas(photo(), top=16, right=16, method="migan", migan_id=tiny_migan_id)
    out = np.asarray(result.image)
    assert result.method == "migan" and result.image.size == (96, 76)
    assert np.array_equal(out[16:, :80], np.asarray(photo()))
    assert out[:16].std() > 0  # filled by the generator, not a constant


@pytest.mark.parametrize("sides, message", [
    ({}, "at least one side"),
    ({"left": -3}, "whole number of pixels"),
    ({"top": 2.5}, "whole number"),
    ({"right": 500}, "more than twice"),
])
def test_bad_extensions_are_refused(sides, message):
    with pytest.raises(ValueError, match=message):
        extend_canvas(photo(), method="telea", **sides)
