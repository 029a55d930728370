"""The inpainting app through gradio_client (one live server): both endpoints, fallbacks, edge cases.

LaMa runs with tiny random weights provided as ``lama.big_lama`` through $GANHUB_WEIGHTS_DIR (a
manifest copy gives the id the tiny config); before they are provided, the real id is missing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from safetensors.torch import save_file
from skimage import data

import core.models
from core.weights import MANIFEST_PATH
from tests.support.live import live_client

TINY = dict(ngf=8, n_downsampling=3, n_blocks=1)
SIZE = (160, 120)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inpaint_app")
    manifest = json.loads(MANIFEST_PATH.read_text())
    manifest["models"]["lama.big_lama"]["config"] = TINY
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    (tmp / "weights").mkdir()
    torch.manual_seed(0)
    save_file(core.models.build("lama", **TINY).state_dict(), str(tmp / "weights" / "lama.big_lama.safetensors"))
    photo = Image.fromarray(data.chelsea()).resize(SIZE, Image.Resampling.BILINEAR)
    photo.save(tmp / "photo.png")
    hole = np.zeros(SIZE[::-1], dtype=bool)
    hole[40:70, 60:100] = True
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp / "mask.png")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"GANHUB_MANIFEST": tmp / "manifest.json", "GANHUB_CACHE": tmp / "cache",
                            "HF_HOME": tmp / "hf", "HF_HUB_CACHE": tmp / "hf" / "hub", "HF_HUB_OFFLINE": "1"}.items():
            mp.setenv(name, str(value))
        mp.delenv("GANHUB_WEIGHTS_DIR", raising=False)
        yield {"tmp": tmp, "photo": np.asarray(photo), "hole": hole}
    from core.cache import MODEL_CACHE

    MODEL_CACHE.clear()  # drop the tiny model registered under the real id


@pytest.fixture(scope="module")
def client(env):
    from apps.inpaint.app import demo

    with live_client(demo) as c:
        yield c


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_auto_without_lama_weights_uses_telea_and_says_so(client, env):
    result, slider, used, notes = client.predict(handle_file(env["tmp"] / "photo.png"),
                                                 handle_file(env["tmp"] / "mask.png"), dilation=0, api_name="/inpaint")
    out, photo, hole = read(result), env["photo"], env["hole"]
    assert out.shape == photo.shape
    assert np.array_equal(out[~hole], photo[~hole])  # bit for bit through the PNG output
    assert not np.array_equal(out[hole], photo[hole])
    assert "OpenCV Telea" in notes and "LaMa big-lama (`lama.big_lama`) would be used" in notes
    assert "python -m core.weights fetch lama.big_lama" in notes
    before, after = slider
    assert np.array_equal(read(before), photo) and np.array_equal(read(after), out)
    assert read(used).shape == photo.shape


def test_lama_through_the_api_once_its_weights_are_provided(client, env, monkeypatch):
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(env["tmp"] / "weights"))
    result, _, _, notes = client.predict(handle_file(env["tmp"] / "photo.png"), handle_file(env["tmp"] / "mask.png"),
                                         "auto", 0, "crop", 768, 16, api_name="/inpaint")
    out, photo, hole = read(result), env["photo"], env["hole"]
    assert "**LaMa big-lama**" in notes and "Note" not in notes
    assert "region processed: 72x62 at (44, 24)" in notes  # the crop strategy: box grown by the margin
    assert np.array_equal(out[~hole], photo[~hole]) and not np.array_equal(out[hole], photo[hole])


def test_editor_endpoint_reads_the_mask_from_layer_alpha(client, env):
    background = np.dstack([env["photo"], np.full(SIZE[::-1], 255, np.uint8)])
    Image.fromarray(background, "RGBA").save(env["tmp"] / "background.png")
    layer = np.zeros((*SIZE[::-1], 4), dtype=np.uint8)
    layer[..., :3] = 255  # white where transparent: must not count
    layer[20:30, 10:50] = (255, 40, 120, 178)  # a translucent stroke
    Image.fromarray(layer, "RGBA").save(env["tmp"] / "layer.png")
    editor = {"background": handle_file(env["tmp"] / "background.png"),
              "layers": [handle_file(env["tmp"] / "layer.png")], "composite": None}
    result, _, _, notes = client.predict(editor, "ns", 0, "crop", 768, 128, api_name="/inpaint_editor")
    out, photo = read(result), env["photo"]
    changed = np.any(out != photo, axis=2)
    assert changed.any() and not changed[:20].any() and not changed[30:].any()
    assert not changed[:, :10].any() and not changed[:, 50:].any()
    assert "OpenCV Navier-Stokes" in notes


def test_a_mask_of_another_size_is_resized_nearest(client, env):
    small = np.zeros((60, 80), dtype=np.uint8)
    small[10:20, 30:40] = 255
    Image.fromarray(small).save(env["tmp"] / "small_mask.png")
    result, _, _, _ = client.predict(handle_file(env["tmp"] / "photo.png"), handle_file(env["tmp"] / "small_mask.png"),
                                     "telea", 0, api_name="/inpaint")
    changed = np.any(read(result) != env["photo"], axis=2)
    expected = np.zeros(SIZE[::-1], dtype=bool)
    expected[20:40, 60:80] = True
    assert changed.any() and not changed[~expected].any()


def test_empty_and_full_masks(client, env):
    Image.new("L", SIZE, 0).save(env["tmp"] / "empty.png")
    Image.new("L", SIZE, 255).save(env["tmp"] / "full.png")
    result, _, _, notes = client.predict(handle_file(env["tmp"] / "photo.png"), handle_file(env["tmp"] / "empty.png"),
                                         api_name="/inpaint")
    assert np.array_equal(read(result), env["photo"]) and "mask is empty" in notes
    with pytest.raises(AppError, match="covers the whole image"):
        client.predict(handle_file(env["tmp"] / "photo.png"), handle_file(env["tmp"] / "full.png"),
                       api_name="/inpaint")
    with pytest.raises(AppError, match="No mask"):
        client.predict(handle_file(env["tmp"] / "photo.png"), None, api_name="/inpaint")
    # The server keeps serving after user errors.
    result, _, _, _ = client.predict(handle_file(env["tmp"] / "photo.png"), handle_file(env["tmp"] / "mask.png"),
                                     "telea", api_name="/inpaint")
    assert read(result).shape == env["photo"].shape
