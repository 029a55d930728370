"""The inpainting app's endpoint functions without gradio: outputs, notices, the editor hand-over."""

from __future__ import annotations

import numpy as np
import pytest

from core.pipelines import inpaint_api as api
from core.pipelines import inpaint_masks as ip
from tests.core.pipelines.test_inpaint import photo, square_mask, tiny_lama_id, tiny_migan_id  # noqa: F401
from tests.core.pipelines.test_select import disc_photo


def test_editor_with_mask_unites_with_what_the_editor_holds_for_the_same_photo():
    image, disc = disc_photo()
    painted = np.zeros_like(disc)
    painted[2:6, 2:6] = True
    editor = ip.editor_value(image, painted)
    _, hole = ip.mask_from_editor(api.editor_with_mask(image, disc, editor))
    assert np.array_equal(hole, disc | painted)
    other, _ = disc_photo((80, 60), (40, 30), 10)  # another photo in the editor: replaced, not united
    _, hole = ip.mask_from_editor(api.editor_with_mask(image, disc, ip.editor_value(other, np.ones((60, 80), bool))))
    assert np.array_equal(hole, disc)
    with pytest.raises(ValueError, match="Upload a photo"):
        api.editor_with_mask(None, disc)


def test_outputs_carry_the_mask_png_and_the_notices(isolated_cache):
    image, disc = disc_photo()
    notices = []
    result, (before, after), mask_png, notes = api.inpaint_outputs(image, disc, notify=notices.append,
                                                                   method="auto", dilation=2.0)
    assert mask_png.size == image.size and np.array_equal(np.asarray(mask_png) > 127, ip.dilate(disc, 2))
    assert notices and notices[0] in notes and "OpenCV Telea" in notes  # no learned weights in the test cache
    assert "Hugging Face Hub (about 28 MB or about 410 MB)" in notes  # the manifest's source sizes
    preview, selected, notes = api.select_outputs(image, "box 65,25,135,95", "grabcut", 0)
    assert selected.size == image.size and "Selected" in notes and "OpenCV GrabCut" in notes
    extended, new_area, notes = api.extend_outputs(image, 0, 4, 0, 0, "ns")
    assert extended.size == (160, 124) and (np.asarray(new_area) > 127).sum() == 160 * 4
    assert "160x124 photo" in notes


def test_compare_runs_each_method_once_on_the_same_mask(tiny_migan_id):
    image, hole = photo(), square_mask((96, 64), (30, 20, 50, 40))
    gallery, pair, used, notes = api.compare_outputs(image, hole, ["telea", "migan", "telea", "ns"])
    assert [caption.split(":")[0] for _, caption in gallery] == ["OpenCV Telea", "MI-GAN 512", "OpenCV Navier-Stokes"]
    for preview, _ in gallery:
        assert np.array_equal(np.asarray(preview)[~hole], np.asarray(image)[~hole])
    assert pair == (gallery[0][0], gallery[1][0]) and np.array_equal(np.asarray(used) > 127, hole)
    with pytest.raises(ValueError, match="at least one method"):
        api.compare_outputs(image, hole, [])
    with pytest.raises(ValueError, match="Unknown method 'magic'"):
        api.compare_outputs(image, hole, ["telea", "magic"])
