"""core.pipelines.text_to_image_params: A1111 parameters text read back, in linear time and capped."""

from __future__ import annotations

import time

import pytest
from PIL import Image

from core.pipelines.text_to_image_params import infotext, parse_infotext, read_parameters


def test_parse_infotext_reads_a1111_text():
    text = ('masterpiece, a castle\nNegative prompt: lowres, bad hands\n'
            'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: abc, '
            'Model: "sd, v1.5", Version: v1.9.0')
    assert parse_infotext(text) == {
        "prompt": "masterpiece, a castle", "negative_prompt": "lowres, bad hands", "steps": 20,
        "guidance_scale": 7.0, "seed": 1234, "sampler": "Euler a", "model": "sd, v1.5", "width": 512, "height": 768}
    assert parse_infotext("just a prompt") == {"prompt": "just a prompt", "negative_prompt": ""}


def test_infotext_round_trips_quoted_values():
    used = {"prompt": "a cat, \"tabby\"\nline two", "negative_prompt": "dark: very", "steps": 3,
            "sampler": "PNDMScheduler", "guidance_scale": 7.5, "seed": 9, "width": 64, "height": 72,
            "model": "org/repo", "model_revision": "a" * 40, "model_id": "diffusers.x", "decoder": "VAE",
            "precision": "bfloat16"}
    assert parse_infotext(infotext(used)) == {
        "prompt": used["prompt"], "negative_prompt": "dark: very", "steps": 3, "guidance_scale": 7.5, "seed": 9,
        "width": 64, "height": 72, "sampler": "PNDMScheduler", "model_id": "diffusers.x",
        "model_revision": "a" * 40, "model": "org/repo", "decoder": "VAE", "precision": "bfloat16"}


def test_parse_infotext_is_linear_and_capped():
    with pytest.raises(ValueError, match="30,000 characters; the limit is 20,000"):
        parse_infotext("a" * 30_000)
    for hostile in ("a" * 19_000, 'k: "' * 4_000, "k:" + '"a,' * 6_000, " :" * 9_000):
        started = time.perf_counter()
        parse_infotext(hostile)
        assert time.perf_counter() - started < 2, hostile[:20]  # a backtracking regex takes 14 s on the first
    text = 'p\nSteps: 2, Note: "say \\"hi\\", then go", Odd: "unclosed, Size: 8x16, tab:\tx'
    assert parse_infotext(text) == {"prompt": "p", "negative_prompt": "", "steps": 2, "width": 8, "height": 16}


def test_read_parameters_needs_a_png_with_parameters(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="no generation parameters"):
        read_parameters(tmp_path / "plain.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="Could not read"):
        read_parameters(tmp_path / "bad.png")
