"""Selecting an object: prompt formats and their validation, GrabCut on a known shape, and
Segment Anything (a tiny random SamModel) loaded through the resolver from the local Hub."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.pipelines import select
from core.pipelines.select import iou
from core.pipelines.select_prompts import Prompts, add_click, parse_prompts, validate


def select_object(image, prompts, method="auto", model_id=None) -> select.Selection:
    return select.run(image, prompts, select.Settings(method, model_id))


def test_text_and_json_formats_say_the_same():
    text = parse_prompts("+120,80; 200.5,150\n-10,20 ; box 1,2,300,400")
    assert text == Prompts(include=((120, 80), (200.5, 150)), exclude=((10, 20),), box=(1, 2, 300, 400))
    as_json = parse_prompts(json.dumps({"include": [[120, 80], [200.5, 150]], "exclude": [[10, 20]],
                                        "box": [1, 2, 300, 400]}))
    sam_style = parse_prompts({"points": [[120, 80], [200.5, 150], [10, 20]], "labels": [1, 1, 0],
                               "box": [1, 2, 300, 400]})
    assert as_json == text == sam_style
    assert parse_prompts(text.to_text()) == text  # the text the UI shows reads back the same
    assert parse_prompts("") == Prompts() and parse_prompts(None) == Prompts()


@pytest.mark.parametrize("bad, message", [
    ("120;80", r"Cannot read '120' \(item 1\): write \+x,y"),
    ("+1,2; circle 3,4,5", "item 2"),
    ("box 1,2,3", "Cannot read"),
    ("box 1,2,3,4; box 5,6,7,8", "at most one box"),
    ('{"include": [[1, 2, 3]]}', "list of \\[x, y\\] pairs"),
    ('{"include": [[1, 2]],', "look like JSON"),
    ('{"points": [[1, 2]], "labels": [2]}', "labels"),
    ('{"centre": [1, 2]}', "Prompts as JSON"),
])
def test_unreadable_prompts_say_what_to_write(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_prompts(bad)


@pytest.mark.parametrize("prompts, message", [
    (Prompts(), "Nothing is selected"),
    (Prompts(exclude=((3, 4),)), "Exclude points alone"),
    (Prompts(include=((100, 4),)), r"\(100, 4\) is outside the 100x50 photo"),
    (Prompts(include=((5, -1),)), "outside"),
    (Prompts(box=(10, 10, 120, 40)), "must lie inside the 100x50 photo"),
    (Prompts(box=(-5, 10, 20, 40)), "inside"),
    (Prompts(box=(30, 10, 20, 40)), "left < right"),
    (Prompts(include=tuple((i % 100, 1) for i in range(65))), "At most 64 points"),
])
def test_empty_outside_or_degenerate_prompts_are_refused(prompts, message):
    with pytest.raises(ValueError, match=message):
        validate(prompts, (100, 50))


def test_clicks_build_the_prompt_text():
    text = add_click("", 10, 20, "include")
    text = add_click(text, 30, 40, "exclude")
    assert parse_prompts(text) == Prompts(include=((10, 20),), exclude=((30, 40),))
    text = add_click(text, 50, 60, "box")
    assert text.endswith("corner 50,60")  # the first corner waits for the second
    text = add_click(text, 5, 70, "box")
    assert parse_prompts(text) == Prompts(include=((10, 20),), exclude=((30, 40),), box=(5, 60, 51, 71))
    with pytest.raises(ValueError, match="click mode"):
        add_click(text, 1, 1, "lasso")


def disc_photo(size=(160, 120), centre=(100, 60), radius=25):
    """A red disc on a noisy blue-green background, and its exact mask."""
    rng = np.random.default_rng(0)
    width, height = size
    yy, xx = np.mgrid[:height, :width]
    disc = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2
    pixels = np.stack([30 + 20 * rng.random((height, width)), 120 + 40 * rng.random((height, width)),
                       140 + 40 * rng.random((height, width))], -1)
    pixels[disc] = [210, 40, 40] + 15 * rng.random((disc.sum(), 3))
    return Image.fromarray(pixels.astype(np.uint8)), disc


def test_grabcut_finds_the_object_from_a_box_or_a_click():
    image, disc = disc_photo()
    by_box = select_object(image, "box 65,25,135,95", method="grabcut")
    assert by_box.method == "grabcut" and iou(by_box.mask, disc) > 0.9
    by_click = select_object(image, "+100,60", method="grabcut")
    assert iou(by_click.mask, disc) > 0.9
    # Two objects: the click says which one.
    pixels = np.asarray(image).copy()
    second = np.roll(disc, -70, axis=1)
    pixels[second] = pixels[disc]
    chosen = select_object(Image.fromarray(pixels), "+30,60", method="grabcut").mask
    assert iou(chosen, second) > 0.9 and not (chosen & disc).any()


def test_auto_without_sam_weights_uses_grabcut_and_says_so(isolated_cache):
    image, disc = disc_photo()
    selection = select_object(image, "box 65,25,135,95")
    assert selection.method == "grabcut" and "GrabCut" in selection.notice and "sam.vit_base" in selection.notice
    with pytest.raises(ValueError, match="Unknown selector"):
        select_object(image, "+1,1", method="magic")


# --------------------------------------------------------------------------- Segment Anything


def tiny_sam_files(tmp_path):
    """config.json, preprocessor_config.json and model.safetensors of a 56 k-parameter random SAM."""
    from transformers import SamConfig, SamModel
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    config = SamConfig(
        vision_config=dict(hidden_size=32, output_channels=16, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=16, mlp_dim=64, global_attn_indexes=[1], window_size=2,
                           num_pos_feats=8),
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=16, mlp_dim=32, num_hidden_layers=2, num_attention_heads=2,
                                 iou_head_hidden_dim=16))
    torch.manual_seed(0)
    folder = tmp_path / "tiny_sam"
    SamModel(config).save_pretrained(folder)
    SamImageProcessorPil(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64}).save_pretrained(folder)
    names = ("config.json", "preprocessor_config.json", "model.safetensors")
    return {name: (folder / name).read_bytes() for name in names}, folder


def test_sam_from_a_pinned_snapshot_on_the_local_hub(local_hub, write_manifest, tmp_path):
    from transformers import SamModel, SamProcessor

    from core.cache import MODEL_CACHE

    files, folder = tiny_sam_files(tmp_path)
    commit = local_hub.add_files("facebook/sam-tiny", {**files, "pytorch_model.bin": b"never downloaded"})
    write_manifest({"sam.tiny": {"arch": "transformers", "title": "tiny SAM", "license": "Apache-2.0",
                                 "config": {"class": "SamModel"},
                                 "sources": [{"kind": "hf", "repo_id": "facebook/sam-tiny", "revision": commit,
                                              "allow_patterns": list(files)}]}})
    image, _ = disc_photo((80, 48), (40, 24), 10)
    prompts = "+40,24; -5,5; box 20,8,60,40"
    assert select_object(image, prompts, model_id="sam.tiny").method == "grabcut"  # auto never downloads
    MODEL_CACHE.clear()
    try:
        chosen = select_object(image, prompts, method="sam", model_id="sam.tiny")  # downloads the snapshot
        selection = select_object(image, prompts, model_id="sam.tiny")  # now auto finds it
    finally:
        MODEL_CACHE.clear()
    assert selection.method == "sam" and selection.notice == "" and np.array_equal(chosen.mask, selection.mask)
    assert not any("pytorch_model.bin" in path for _, path in local_hub.requests)
    # The same as calling transformers directly with SAM's own prompt nesting.
    model, processor = SamModel.from_pretrained(folder).eval(), SamProcessor.from_pretrained(folder)
    inputs = processor(images=image, input_points=[[[[40, 24], [5, 5]]]], input_labels=[[[1, 0]]],
                       input_boxes=[[[20, 8, 60, 40]]], return_tensors="pt")
    with torch.no_grad():
        out = model(pixel_values=inputs["pixel_values"], input_points=inputs["input_points"],
                    input_labels=inputs["input_labels"], input_boxes=inputs["input_boxes"])
    masks = processor.image_processor.post_process_masks(out.pred_masks, inputs["original_sizes"],
                                                         inputs["reshaped_input_sizes"])[0][0]
    expected = masks[int(out.iou_scores[0, 0].argmax())].numpy()
    assert selection.mask.shape == (48, 80) and np.array_equal(selection.mask, expected)


def test_grabcut_without_any_background_is_a_clear_error():
    with pytest.raises(ValueError, match="needs some background"):
        select_object(Image.new("RGB", (1, 1), (200, 120, 90)), "+0,0", method="grabcut")
