"""Sketch to photo: paper mode (seeded dropout variations) and eval mode, the model list, the variations' spread."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import core.models
from core.images import to_pil, to_tensor
from core.pipelines import sketch_to_photo as s2p
from core.pipelines.sketch import prepare_sketch
from core.weights import load_model
from tests.core.pipelines.test_translate import UNET, tiny_models  # noqa: F401 (fixture)


def sketch_to_photo(model_id, sketch, mode="paper", seed=0, variations=1) -> list[Image.Image]:
    return s2p.run(sketch, s2p.Settings(model_id, mode == "paper", variations, seed)).images


def test_sketch_paper_mode_variations_are_seeded_and_eval_mode_is_deterministic(tiny_models):
    sketch = Image.fromarray(np.where(np.random.default_rng(0).random((256, 256)) < 0.05, 0, 255).astype(np.uint8))
    a = sketch_to_photo("pix2pix.tiny", sketch, mode="paper", seed=3, variations=3)
    b = sketch_to_photo("pix2pix.tiny", sketch, mode="paper", seed=3, variations=3)
    assert [im.size for im in a] == [(64, 64)] * 3
    arrays = [np.asarray(im, dtype=np.int16) for im in a]
    assert all(np.array_equal(x, np.asarray(y)) for x, y in zip(arrays, b))
    assert np.abs(arrays[0] - arrays[1]).max() > 0  # dropout makes each seed differ
    e1 = sketch_to_photo("pix2pix.tiny", sketch, mode="eval", variations=3)
    e2 = sketch_to_photo("pix2pix.tiny", sketch, mode="eval")
    assert len(e1) == 1 and np.array_equal(np.asarray(e1[0]), np.asarray(e2[0]))
    assert np.abs(np.asarray(e1[0], dtype=np.int16) - arrays[0]).max() > 0
    # a ResNet generator (instance norm, no dropout) gives one deterministic image in either mode
    assert len(sketch_to_photo("cyclegan.tiny", sketch, mode="paper", variations=4)) == 1
    with pytest.raises(ValueError, match="variations"):
        sketch_to_photo("pix2pix.tiny", sketch, variations=20)

def test_cpu_channels_last_opt_in_changes_the_layout_not_the_result(tiny_models):
    plain, nhwc = load_model("pix2pix.tiny"), load_model("pix2pix.tiny_nhwc")
    weight = nhwc.model.model[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert plain.model.model[0].weight.is_contiguous()
    sketch = Image.new("RGB", (64, 64), "white")
    for mode in ("eval", "paper"):
        a = sketch_to_photo("pix2pix.tiny", sketch, mode=mode, seed=3)[0]
        b = sketch_to_photo("pix2pix.tiny_nhwc", sketch, mode=mode, seed=3)[0]
        assert np.abs(np.asarray(a, float) - np.asarray(b, float)).max() <= 1  # rounding of the 8-bit output

def test_variation_difference_is_the_mean_pairwise_difference_and_maps_the_range():
    from core.pipelines.sketch_to_photo import DIFFERENCE_GAIN, variation_difference

    base = np.zeros((4, 4, 3), np.uint8)
    second = base.copy()
    second[0, 0] = 40  # one pixel differs by 40 in every channel
    mean, spread = variation_difference([Image.fromarray(base), Image.fromarray(base), Image.fromarray(second)])
    # pairs: (0,1) 0, (0,2) and (1,2) 40/16 each
    assert mean == pytest.approx((0 + 2.5 + 2.5) / 3)
    spread = np.asarray(spread)
    assert spread[0, 0].tolist() == [40 * DIFFERENCE_GAIN] * 3 and spread[1:].max() == 0
    with pytest.raises(ValueError, match="at least two"):
        variation_difference([Image.fromarray(base)])


def test_settings_validate_with_the_apps_wording(tiny_models):
    with pytest.raises(ValueError, match=r"Unknown model 'pix2pix.nope'; choose one of cyclegan.tiny, pix2pix.tiny"):
        s2p.Settings("pix2pix.nope")
    with pytest.raises(ValueError, match="seed must be between 0 and 4294967295, got -3"):
        s2p.Settings("pix2pix.tiny", seed=-3)
    settings = s2p.Settings("pix2pix.tiny", 1, 3.0, "7")  # what gradio may send
    assert (settings.paper_mode, settings.variations, settings.seed) == (True, 3, 7)


def test_a_model_passed_in_is_used_and_the_details_say_what_ran(tiny_models):
    torch.manual_seed(9)
    other = core.models.build("pix2pix_unet", **UNET).eval()
    sketch = Image.new("RGB", (80, 80), "white")
    result = s2p.run(sketch, s2p.Settings("pix2pix.tiny", paper_mode=False), model=other)
    with torch.no_grad():
        expected = to_pil(other(to_tensor(prepare_sketch(sketch, 64))))
    assert [np.asarray(im).tolist() for im in result.images] == [np.asarray(expected).tolist()]
    assert {k: result.details[k] for k in ("model_id", "mode", "seed", "size", "deterministic")} == {
        "model_id": "pix2pix.tiny", "mode": "eval", "seed": 0, "size": 64, "deterministic": True}
    paper = s2p.run(sketch, s2p.Settings("pix2pix.tiny", variations=2), model=load_model("pix2pix.tiny"))
    assert paper.details["mean_difference"] == pytest.approx(s2p.variation_difference(paper.images)[0])


def test_the_sketch_apps_models_in_the_manifest_are_image_to_image_generators():
    from core.weights import get_entry, models_for_app

    for model_id in models_for_app(s2p.APP):
        entry = get_entry(model_id)
        assert entry.arch in ("pix2pix_unet", "cyclegan_resnet"), model_id  # a sketch in, a photo out
        assert entry.info["input"]["size"] > 0 and entry.info["input"]["range"] == [-1, 1], model_id
