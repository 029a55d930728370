"""Inpainting procedure: mask conventions, padding, compositing, crop strategy, OpenCV methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from skimage import data

import core.models
from core.pipelines import inpaint as ip
from core.pipelines import inpaint_fill as fills
from core.pipelines import inpaint_masks as masks
from core.weights import WeightsUnavailableError

TINY = dict(ngf=8, n_downsampling=3, n_blocks=1)
TINY_MIGAN = dict(resolution=32, ch_base=128, ch_max=16)


def tiny_lama(seed=0):
    torch.manual_seed(seed)
    return core.models.build("lama", **TINY).eval()


@pytest.fixture
def tiny_lama_id(tmp_path, write_manifest, isolated_cache, monkeypatch):
    """A manifest with a tiny random LaMa provided through $GANHUB_WEIGHTS_DIR, and the real id missing."""
    folder = tmp_path / "weights"
    folder.mkdir()
    save_file(tiny_lama().state_dict(), str(folder / "lama.tiny.safetensors"))
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = {"arch": "lama", "title": "LaMa big-lama", "license": "Apache-2.0"}
    write_manifest({
        "lama.tiny": {**entry, "config": TINY, "sources": []},
        "lama.big_lama": {**entry, "config": {}, "sources": [
            {"kind": "hf", "repo_id": "org/big-lama", "filename": "best.ckpt", "revision": "a" * 40,
             "sha256": None, "format": {"type": "lightning_ckpt", "key": "state_dict"}}]},
    })
    return "lama.tiny"


def tiny_migan(seed=0):
    from tests.core.models.test_migan import randomised

    return randomised(core.models.build("migan", **TINY_MIGAN), seed)


@pytest.fixture
def tiny_migan_id(tiny_lama_id, tmp_path, write_manifest):
    """The tiny LaMa's manifest plus a tiny random MI-GAN (``migan.tiny``) in the same override folder."""
    import json
    import os

    save_file(tiny_migan().state_dict(), os.path.join(os.environ["GANHUB_WEIGHTS_DIR"], "migan.tiny.safetensors"))
    models = json.loads((tmp_path / "weights_manifest.json").read_text())["models"]
    models["migan.tiny"] = {"arch": "migan", "title": "MI-GAN 512", "license": "MIT", "config": TINY_MIGAN,
                            "sources": [], "apps": ["inpaint"], "roles": {"inpaint": "fill"}}  # the app's MI-GAN
    write_manifest(models)
    return "migan.tiny"


def inpaint(image, mask, model_id=None, migan_id=None, **settings) -> ip.Result:
    """``ip.run`` with the tiny models' ids (``model_id`` is LaMa's)."""
    return ip.run(image, mask, ip.Settings(lama_id=model_id, migan_id=migan_id, **settings))


def photo(size=(96, 64)) -> Image.Image:
    return Image.fromarray(data.chelsea()).resize(size, Image.Resampling.BILINEAR)


def square_mask(size, box) -> np.ndarray:
    hole = np.zeros((size[1], size[0]), dtype=bool)
    left, top, right, bottom = box
    hole[top:bottom, left:right] = True
    return hole


# --------------------------------------------------------------------------- masks


def test_uploaded_masks_white_is_hole():
    gray = np.array([[0, 127], [128, 255]], dtype=np.uint8)
    assert masks.to_mask(Image.fromarray(gray)).tolist() == [[False, False], [True, True]]
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = 255
    assert masks.to_mask(Image.fromarray(rgb)).tolist() == [[True, False], [False, False]]
    # RGBA: a white stroke on a transparent layer is a hole; transparent white is not.
    rgba = np.full((2, 2, 4), 255, dtype=np.uint8)
    rgba[..., 3] = [[255, 0], [0, 0]]
    assert masks.to_mask(Image.fromarray(rgba, "RGBA")).tolist() == [[True, False], [False, False]]
    assert masks.to_mask(np.array([[True, False]])).tolist() == [[True, False]]


def test_a_mask_of_another_size_is_resized_with_nearest():
    small = np.zeros((4, 6), dtype=np.uint8)
    small[1, 2] = 255
    hole = masks.to_mask(Image.fromarray(small), size=(12, 8))
    assert hole.shape == (8, 12)
    expected = np.zeros((8, 12), dtype=bool)
    expected[2:4, 4:6] = True  # each mask pixel became a 2x2 block, no grey edges
    assert np.array_equal(hole, expected)


def test_editor_mask_is_the_alpha_of_the_layers():
    background = np.dstack([np.asarray(photo((40, 30))), np.full((30, 40), 255, np.uint8)])
    layer = np.full((30, 40, 4), 255, dtype=np.uint8)  # white RGB everywhere (arbitrary under alpha 0)
    layer[..., 3] = 0
    layer[5:10, 8:20] = (0, 0, 0, 255)  # a black stroke: a hole although it is dark
    second = np.zeros((30, 40, 4), dtype=np.uint8)
    second[20, 30, 3] = 40  # faint alpha still counts as painted
    image, hole = masks.mask_from_editor({"background": background, "layers": [layer, second], "composite": None})
    assert image.mode == "RGB" and image.size == (40, 30)
    assert np.array_equal(np.asarray(image), background[..., :3])
    expected = square_mask((40, 30), (8, 5, 20, 10))
    expected[20, 30] = True
    assert np.array_equal(hole, expected)
    with pytest.raises(ValueError, match="Upload a photo"):
        masks.mask_from_editor({"background": None, "layers": [], "composite": None})


def test_dilation_grows_the_hole_by_the_radius():
    hole = np.zeros((21, 21), dtype=bool)
    hole[10, 10] = True
    grown = masks.dilate(hole, 3)
    assert masks.mask_box(grown) == (7, 7, 14, 14)
    assert grown[10, 7] and grown[7, 10] and not grown[7, 7]  # a disk, not a square
    assert masks.dilate(hole, 0) is hole


# --------------------------------------------------------------------------- LaMa


def test_lama_input_convention_padding_and_composite():
    model = tiny_lama(1)
    image = np.asarray(photo((45, 30)))  # not multiples of 8
    hole = square_mask((45, 30), (10, 5, 30, 20))
    out = fills.run_lama(model, image, hole)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], image[~hole])  # bit for bit outside the hole
    # What the reference computes: cat(img*(1-m), m), symmetric pad to x8, predict, crop, composite.
    unit = image.astype(np.float32) / 255
    m = hole.astype(np.float32)[..., None]
    x = np.pad(np.concatenate([unit * (1 - m), m], axis=2), ((0, 2), (0, 3), (0, 0)), mode="symmetric")
    with torch.no_grad():
        prediction = model(torch.from_numpy(x).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()[:30, :45]
    expected = (np.clip(prediction, 0, 1) * 255).round().astype(np.uint8)
    assert np.array_equal(out[hole], expected[hole])
    assert not np.array_equal(out[hole], image[hole])


def test_inpaint_full_and_crop_strategies(tiny_lama_id):
    image = photo((200, 120))
    hole = square_mask(image.size, (120, 40, 140, 60))
    full = inpaint(image, hole, method="lama", strategy="full", model_id=tiny_lama_id)
    assert full.method == "lama" and full.box == (0, 0, 200, 120) and full.notice == ""
    crop = inpaint(image, hole, method="lama", strategy="crop", margin=16, model_id=tiny_lama_id)
    assert crop.box == (104, 24, 156, 76)
    for result in (full, crop):
        out = np.asarray(result.image)
        assert result.image.size == image.size
        assert np.array_equal(out[~hole], np.asarray(image)[~hole])
        assert not np.array_equal(out[hole], np.asarray(image)[hole])
    # The crop is inpainted on its own: the same as running the model on just that window.
    window = np.asarray(image)[24:76, 104:156]
    alone = fills.run_lama(tiny_lama(), window, hole[24:76, 104:156])
    assert np.array_equal(np.asarray(crop.image)[24:76, 104:156], alone)


def test_crop_strategy_downscales_large_windows_and_changes_only_the_hole(tiny_lama_id):
    image = photo((300, 200))
    hole = square_mask(image.size, (40, 30, 260, 170))
    hole[100, 5] = True  # a far-away stray pixel widens the window to almost the whole image
    result = inpaint(image, hole, method="lama", margin=8, working_size=96, model_id=tiny_lama_id)
    out, original = np.asarray(result.image), np.asarray(image)
    assert result.image.size == image.size and result.box == (0, 22, 268, 178)
    assert np.array_equal(out[~hole], original[~hole])
    changed = np.any(out != original, axis=2)
    assert changed.any() and not changed[~hole].any()


def test_auto_uses_lama_when_its_weights_are_here_and_telea_otherwise(tiny_lama_id):
    image, hole = photo(), square_mask((96, 64), (30, 20, 50, 40))
    assert inpaint(image, hole, model_id=tiny_lama_id).method == "lama"
    fallback = inpaint(image, hole, model_id="lama.big_lama")
    assert fallback.method == "telea"
    assert "LaMa big-lama (`lama.big_lama`) would be used" in fallback.notice
    assert "python -m core.weights fetch lama.big_lama" in fallback.notice
    assert np.array_equal(np.asarray(fallback.image), fills.run_opencv(np.asarray(image), hole, "telea"))
    with pytest.raises(WeightsUnavailableError, match="lama.big_lama"):  # chosen explicitly: no silent fallback
        inpaint(image, hole, method="lama", model_id="lama.big_lama")


def test_migan_input_convention_and_composite():
    model = tiny_migan(2)
    image = np.asarray(photo((40, 24)))  # not square: padded to 40x40, then resized to 32x32
    hole = square_mask((40, 24), (10, 5, 22, 15))
    out = fills.run_migan(model, image, hole)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], image[~hole])  # bit for bit outside the hole
    # What the reference feeds: mask channel first, 1 = known, cat(known - 0.5, image * known), image in [-1, 1].
    square = np.pad(image, ((0, 16), (0, 0), (0, 0)), mode="symmetric")
    small = np.asarray(Image.fromarray(square).resize((32, 32), Image.Resampling.BICUBIC)).astype(np.float32)
    square_hole = np.pad(hole, ((0, 16), (0, 0)), mode="symmetric")
    small_hole = torch.nn.functional.interpolate(torch.from_numpy(square_hole.astype(np.float32))[None, None],
                                                 size=(32, 32), mode="area")[0, 0].numpy() > 0
    known = (~small_hole).astype(np.float32)
    x = np.concatenate([known[None] - 0.5, (small.transpose(2, 0, 1) / 127.5 - 1) * known[None]])
    with torch.no_grad():
        y = model(torch.from_numpy(x)[None])[0].permute(1, 2, 0).numpy()
    fill = (np.clip(y * 0.5 + 0.5, 0, 1) * 255).round().astype(np.uint8)
    import cv2

    expected = cv2.resize(fill, (40, 40), interpolation=cv2.INTER_CUBIC)[:24, :40]
    assert np.array_equal(out[hole], expected[hole])
    assert not np.array_equal(out[hole], image[hole])


def test_auto_prefers_migan_when_its_weights_are_here(tiny_migan_id):
    image, hole = photo(), square_mask((96, 64), (30, 20, 50, 40))
    result = inpaint(image, hole, model_id="lama.tiny", migan_id=tiny_migan_id)
    assert result.method == "migan" and result.notice == ""
    out = np.asarray(result.image)
    assert np.array_equal(out[~hole], np.asarray(image)[~hole])
    assert not np.array_equal(out[hole], np.asarray(image)[hole])
    box = result.box
    window = np.asarray(image)[box[1]:box[3], box[0]:box[2]]
    alone = fills.run_migan(tiny_migan(), window, hole[box[1]:box[3], box[0]:box[2]])
    assert np.array_equal(out[box[1]:box[3], box[0]:box[2]], alone)
    # LaMa and the OpenCV methods stay on the menu.
    assert inpaint(image, hole, method="lama", model_id="lama.tiny", migan_id=tiny_migan_id).method == "lama"
    assert inpaint(image, hole, method="ns", migan_id=tiny_migan_id).method == "ns"


def test_whole_image_lama_has_a_size_limit(tiny_lama_id, monkeypatch):
    monkeypatch.setattr(ip, "FULL_MAX_PIXELS", 5000)
    with pytest.raises(ValueError, match="use the crop strategy"):
        inpaint(photo(), square_mask((96, 64), (3, 3, 9, 9)), method="lama", strategy="full",
                   model_id=tiny_lama_id)


# --------------------------------------------------------------------------- OpenCV, edge cases


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_opencv_restores_scribbles_on_a_real_photo(method):
    image = Image.fromarray(data.astronaut())  # 512x512
    original = np.asarray(image).astype(np.int16)
    hole = np.zeros((512, 512), dtype=bool)
    hole[300:304, 60:450] = True  # a 4-px line across face, suit and background
    hole[100:400, 250:253] = True
    result = inpaint(image, hole, method=method)
    out = np.asarray(result.image).astype(np.int16)
    assert result.method == method and result.box == (0, 0, 512, 512)  # margin 128, clipped
    assert np.array_equal(out[~hole], original[~hole])
    error = np.abs(out[hole] - original[hole]).mean()
    grey = np.abs(128 - original[hole]).mean()
    assert error < 15 and error < grey / 4, (error, grey)


def test_empty_mask_returns_the_input_with_a_notice():
    image = photo()
    result = inpaint(image, np.zeros((64, 96), dtype=bool), method="lama")  # no model needed
    assert result.method == "none" and "mask is empty" in result.notice
    assert result.image.tobytes() == image.tobytes()


def test_full_mask_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="covers the whole image"):
        inpaint(photo(), np.ones((64, 96), dtype=bool), method="telea")
    almost = np.ones((64, 96), dtype=bool)
    almost[30, 40] = False
    with pytest.raises(ValueError, match="lower the mask dilation"):
        inpaint(photo(), almost, method="telea", dilation=2)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="Unknown method"):
        inpaint(photo(), np.zeros((64, 96), bool), method="magic")
    with pytest.raises(ValueError, match="Unknown strategy"):
        inpaint(photo(), np.zeros((64, 96), bool), strategy="tiles")
    with pytest.raises(ValueError, match="No mask"):
        inpaint(photo(), None)


# --------------------------------------------------------------------------- masks as files, comparison


def test_paint_upload_and_selection_combine_as_a_union_then_dilation():
    painted = square_mask((40, 30), (2, 2, 6, 6))
    uploaded = Image.fromarray(square_mask((80, 60), (40, 40, 50, 50)).astype(np.uint8) * 255)  # 2x: scaled
    selected = square_mask((40, 30), (30, 5, 31, 6))
    union = masks.combine_masks((40, 30), painted, None, uploaded, selected)
    assert np.array_equal(union, painted | square_mask((40, 30), (20, 20, 25, 25)) | selected)
    grown = masks.combine_masks((40, 30), painted, uploaded, selected, dilation=2)
    assert np.array_equal(grown, masks.dilate(union, 2))
    assert not masks.combine_masks((40, 30)).any()


def test_a_mask_with_other_proportions_is_refused():
    with pytest.raises(ValueError, match="The mask is 30x10 but the photo is 40x30"):
        masks.to_mask(np.zeros((10, 30), dtype=bool), (40, 30))
    assert masks.to_mask(np.zeros((15, 21), dtype=bool), (40, 30)).shape == (30, 40)  # one pixel of rounding is fine


def test_the_mask_file_and_the_editor_round_trip():
    image = photo((40, 30))
    hole = square_mask((40, 30), (5, 6, 20, 12))
    hole[25, 35] = True
    png = masks.mask_image(hole)
    assert png.mode == "L" and png.size == (40, 30)
    assert np.array_equal(masks.to_mask(png), hole)  # downloaded, then uploaded again: the same mask
    again_image, again_hole = masks.mask_from_editor(masks.editor_value(image, hole))
    assert np.array_equal(again_hole, hole) and np.array_equal(np.asarray(again_image), np.asarray(image))


def test_a_model_passed_in_is_used_and_the_details_hold_every_setting():
    image, hole = photo(), square_mask((96, 64), (30, 20, 50, 40))
    model = tiny_lama(3)
    result = ip.run(image, hole, ip.Settings(method="lama", dilation=2.0, margin=16), model=model)
    window = result.box
    alone = fills.run_lama(model, np.asarray(image)[window[1]:window[3], window[0]:window[2]],
                           result.mask[window[1]:window[3], window[0]:window[2]])
    assert np.array_equal(np.asarray(result.image)[window[1]:window[3], window[0]:window[2]], alone)
    assert {k: result.details[k] for k in ("method", "method_used", "dilation", "strategy", "margin", "working_size")} \
        == {"method": "lama", "method_used": "lama", "dilation": 2, "strategy": "crop", "margin": 16,
            "working_size": 768}
    assert result.details["filled_pixels"] == int(result.mask.sum()) and result.details["seconds"] >= 0
