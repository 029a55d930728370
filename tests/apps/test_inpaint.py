"""The inpainting app through gradio_client (one live server): every endpoint, fallbacks, edge cases.

LaMa and MI-GAN run with tiny random weights provided as ``lama.big_lama`` and
``migan.places2_512`` through $GANHUB_WEIGHTS_DIR (a manifest copy gives the ids the tiny
configs); before they are provided, the real ids are missing and Auto falls back to Telea.
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
from tests.core.models.test_migan import randomised
from tests.core.pipelines.test_select import disc_photo
from tests.support.live import live_client

TINY = dict(ngf=8, n_downsampling=3, n_blocks=1)
TINY_MIGAN = dict(resolution=32, ch_base=128, ch_max=16)
SIZE = (160, 120)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inpaint_app")
    manifest = json.loads(MANIFEST_PATH.read_text())
    manifest["models"]["lama.big_lama"]["config"] = TINY
    manifest["models"]["migan.places2_512"]["config"] = TINY_MIGAN
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    (tmp / "weights").mkdir()
    torch.manual_seed(0)
    save_file(core.models.build("lama", **TINY).state_dict(), str(tmp / "weights" / "lama.big_lama.safetensors"))
    migan = randomised(core.models.build("migan", **TINY_MIGAN))
    save_file(migan.state_dict(), str(tmp / "weights" / "migan.places2_512.safetensors"))
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


def test_auto_without_weights_uses_telea_and_says_so(client, env):
    result, slider, used, notes = client.predict(handle_file(env["tmp"] / "photo.png"),
                                                 handle_file(env["tmp"] / "mask.png"), dilation=0, api_name="/inpaint")
    out, photo, hole = read(result), env["photo"], env["hole"]
    assert out.shape == photo.shape
    assert np.array_equal(out[~hole], photo[~hole])  # bit for bit through the PNG output
    assert not np.array_equal(out[hole], photo[hole])
    assert "OpenCV Telea" in notes and "MI-GAN 512 (Places2) (`migan.places2_512`) would be used" in notes
    assert "python -m core.weights fetch migan.places2_512" in notes
    before, after = slider  # a quick JPEG preview of the photo and of the full PNG result: close, not bit-identical
    assert Image.open(after).format == "JPEG" and Image.open(after).size == Image.open(result).size
    assert np.abs(read(before).astype(int) - photo).mean() < 6 and np.abs(read(after).astype(int) - out).mean() < 6
    mask_png = Image.open(used)
    assert mask_png.size == SIZE and np.array_equal(np.asarray(mask_png.convert("L")) > 127, hole)  # white = hole


def test_migan_is_the_default_and_lama_stays_on_the_menu_once_weights_are_provided(client, env, monkeypatch):
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(env["tmp"] / "weights"))
    result, _, _, notes = client.predict(handle_file(env["tmp"] / "photo.png"), handle_file(env["tmp"] / "mask.png"),
                                         "auto", 0, api_name="/inpaint")
    out, photo, hole = read(result), env["photo"], env["hole"]
    assert "**MI-GAN 512**" in notes and "Note" not in notes
    assert np.array_equal(out[~hole], photo[~hole]) and not np.array_equal(out[hole], photo[hole])
    result, _, _, notes = client.predict(handle_file(env["tmp"] / "photo.png"), handle_file(env["tmp"] / "mask.png"),
                                         "lama", 0, "crop", 768, 16, api_name="/inpaint")
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


def test_a_mask_with_other_proportions_is_refused(client, env):
    Image.new("L", (90, 30), 255).save(env["tmp"] / "wide_mask.png")
    with pytest.raises(AppError, match="The mask is 90x30 but the photo is 160x120"):
        client.predict(handle_file(env["tmp"] / "photo.png"), handle_file(env["tmp"] / "wide_mask.png"), "telea",
                       api_name="/inpaint")


@pytest.fixture(scope="module")
def disc(env):
    image, truth = disc_photo()
    image.save(env["tmp"] / "disc.png")
    return env["tmp"] / "disc.png", truth


def test_select_mask_offline_with_grabcut(client, disc):
    path, truth = disc
    preview, mask_png, notes = client.predict(handle_file(path), "box 65,25,135,95", "auto", 0,
                                              api_name="/select_mask")
    selected = np.asarray(Image.open(mask_png).convert("L")) > 127
    assert selected.shape == truth.shape and (selected & truth).sum() / (selected | truth).sum() > 0.9
    assert "GrabCut" in notes and "sam.vit_base" in notes  # says why Segment Anything was not used
    assert Image.open(preview).size == (160, 120)


def test_remove_object_at_a_point_in_one_call(client, disc, env):
    path, truth = disc
    Image.fromarray(np.pad(np.ones((4, 4), np.uint8) * 255, ((4, 112), (4, 152)))).save(env["tmp"] / "corner.png")
    result, _, used, notes = client.predict(handle_file(path), '{"include": [[100, 60]]}', "grabcut",
                                            handle_file(env["tmp"] / "corner.png"), "telea", 3, api_name="/remove_object")
    hole = np.asarray(Image.open(used).convert("L")) > 127
    corner = np.zeros_like(hole)
    corner[4:8, 4:8] = True
    assert hole[truth].mean() > 0.95 and hole[corner].all()  # the selection and the uploaded mask, united
    assert hole.sum() > (truth | corner).sum()  # then dilated by 3 px
    out, photo = read(result), np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(out[~hole], photo[~hole]) and "OpenCV Telea" in notes
    red = out[truth].astype(int)
    assert (red[:, 0] - red[:, 1]).mean() < 60  # the red disc is gone (it was ~170 redder than green)


@pytest.mark.parametrize("prompts, message", [
    ("", "Nothing is selected"),
    ("box 100,20,400,90", "must lie inside the 160x120 photo"),
    ("+170,10", "outside the 160x120 photo"),
    ("here please", "Cannot read"),
])
def test_selection_errors_are_clear(client, disc, prompts, message):
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(disc[0]), prompts, "grabcut", 0, api_name="/select_mask")


def test_compare_methods_gallery_and_slider(client, env, monkeypatch):
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(env["tmp"] / "weights"))
    gallery, pair, used, notes = client.predict(handle_file(env["tmp"] / "photo.png"),
                                                handle_file(env["tmp"] / "mask.png"), ["telea", "migan", "ns"], 0,
                                                api_name="/compare_methods")
    assert [item["caption"].split(":")[0] for item in gallery] == ["OpenCV Telea", "MI-GAN 512", "OpenCV Navier-Stokes"]
    images = [read(item["image"]) for item in gallery]
    assert all(np.abs(read(p).astype(int) - image).mean() < 6 for p, image in zip(pair, images))  # JPEG previews
    for image in images:
        assert np.array_equal(image[~env["hole"]], env["photo"][~env["hole"]])
    assert not np.array_equal(images[0], images[1])
    assert np.array_equal(np.asarray(Image.open(used).convert("L")) > 127, env["hole"])


def test_extend_canvas_offline(client, env):
    result, used, notes = client.predict(handle_file(env["tmp"] / "photo.png"), 16, 0, 0, 8, "telea",
                                         api_name="/extend_canvas")
    out = read(result)
    assert out.shape == (128, 176, 3) and np.array_equal(out[:120, 16:], env["photo"])
    new_area = np.asarray(Image.open(used).convert("L")) > 127
    assert new_area.sum() == 176 * 128 - 160 * 120 and "OpenCV Telea" in notes
    with pytest.raises(AppError, match="at least one side"):
        client.predict(handle_file(env["tmp"] / "photo.png"), 0, 0, 0, 0, "telea", api_name="/extend_canvas")


def _replay(client, notes: str, folder) -> tuple:
    """Run the call that ends ``notes``, its file names mapped to the files in ``folder`` (a name with
    "layer" in it: the editor's layer, with "mask": the mask, else the photo); also return the call."""
    from core.ui.reproduce import InputFile, parse_call

    assert notes.rstrip().endswith("```"), notes[-200:]
    code = notes.rstrip()[:-3].rsplit("\n", 2)[-2]
    call = parse_call(code)

    def real(value):
        if isinstance(value, InputFile):
            return handle_file(folder / next(f for k, f in (("layer", "layer.png"), ("mask", "mask.png"),
                                                             ("", "photo.png")) if k in value.name))
        if isinstance(value, dict):
            return {k: real(v) for k, v in value.items()}
        return [real(v) for v in value] if isinstance(value, list) else value

    return client.predict(**{k: real(v) for k, v in call.arguments.items()}, api_name=call.api_name), call


@pytest.mark.parametrize("api_name, arguments, images", [
    ("/inpaint_editor", lambda t: [{"background": handle_file(t / "photo.png"), "layers": [handle_file(t / "layer.png")],
                                    "composite": None}, "ns", 2, "crop", 512, 64], (0, 2)),
    ("/select_mask", lambda t: [handle_file(t / "photo.png"), "box 50,30,110,80", "grabcut", 1], (0, 1)),
    ("/remove_object", lambda t: [handle_file(t / "photo.png"), "box 50,30,110,80", "grabcut",
                                  handle_file(t / "mask.png"), "telea", 3], (0, 2)),
    ("/compare_methods", lambda t: [handle_file(t / "photo.png"), handle_file(t / "mask.png"), ["ns", "telea"], 1],
     (2,)),
    ("/extend_canvas", lambda t: [handle_file(t / "photo.png"), 8, 0, 0, 16, "ns"], (0, 1)),
])
def test_every_endpoint_ends_its_notes_with_a_call_that_reproduces_it(client, env, api_name, arguments, images):
    from core.ui.reproduce import read_call

    tmp = env["tmp"]
    layer = np.zeros((*SIZE[::-1], 4), np.uint8)
    layer[40:70, 60:100] = (255, 40, 120, 178)
    Image.fromarray(layer, "RGBA").save(tmp / "layer.png")
    first = client.predict(*arguments(tmp), api_name=api_name)
    again, call = _replay(client, first[-1], tmp)
    assert call.api_name == api_name
    for i in images:  # the PNGs carry the same call, and the replay gives the same pixels
        assert read_call(first[i]) == call
        assert np.array_equal(read(first[i]), read(again[i]))
    if api_name == "/compare_methods":
        for item in first[0]:
            assert read_call(item["image"]) == call
        assert [read(item["image"]).tolist() for item in first[0]] == [read(item["image"]).tolist() for item in again[0]]
    method, dilation, *_ = client.predict(handle_file(first[images[0]]), api_name="/read_inpaint_parameters")
    assert dilation == call.arguments["dilation"] if "dilation" in call.arguments else True
    assert method == call.arguments["method"] if "method" in call.arguments else True
