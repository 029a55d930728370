"""The sketch-to-photo app's API through gradio_client against one live local server (tiny weights, no network)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from core.faces import detector_ids
from core.weights import MANIFEST_PATH, availability, load_manifest, resolve

TINY = dict(ngf=4, num_downs=6)
EXAMPLES = Path(__file__).resolve().parents[2] / "apps" / "sketch2photo" / "examples"
DETECTOR = pytest.mark.real_weights(*detector_ids())


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import core.models
    from apps.sketch2photo.app import MODEL_IDS
    from core.cache import MODEL_CACHE
    from tests.support.live import live_client

    tmp = tmp_path_factory.mktemp("sketch2photo")
    torch.manual_seed(0)
    save_file(core.models.build("pix2pix_unet", **TINY).state_dict(), str(tmp / "faces.safetensors"))
    real = load_manifest()
    (tmp / "override").mkdir()
    for model_id in detector_ids():  # photo -> sketch frames the face first: the real detector, as an override
        if availability(model_id)[0]:
            shutil.copy(resolve(model_id, download=False), tmp / "override" / f"{model_id}.safetensors")
    models = {model_id: {"arch": real[model_id].arch, **real[model_id].info} for model_id in detector_ids()}
    for model_id in MODEL_IDS:
        raw = {"arch": real[model_id].arch, **real[model_id].info}
        if model_id == "pix2pix.edges2faces64":
            raw.update(config=TINY, sources=[{"kind": "local", "path": "faces.safetensors"}])
        else:  # weights that are not on this machine
            raw.update(config=real[model_id].config, sources=[{"kind": "local", "path": "absent.pth"}])
        models[model_id] = raw
    layouts = json.loads(MANIFEST_PATH.read_text())["face_layouts"]  # the pad's guide is drawn from one
    (tmp / "manifest.json").write_text(json.dumps({"schema_version": 1, "face_layouts": layouts, "models": models}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANHUB_MANIFEST", str(tmp / "manifest.json"))
        mp.setenv("GANHUB_CACHE", str(tmp / "cache"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("GANHUB_WEIGHTS_DIR", str(tmp / "override"))
        MODEL_CACHE.clear()
        from apps.sketch2photo.app import demo

        with live_client(demo) as c:
            yield c
        MODEL_CACHE.clear()


def images(gallery) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"]).convert("RGB"), dtype=np.int16) for item in gallery]


def test_sketch_to_photo_paper_mode_gives_seeded_variations(client):
    from gradio_client import handle_file

    sketch = handle_file(str(EXAMPLES / "face_sketch_0_simple.png"))
    gallery, notes = client.predict(sketch, "pix2pix.edges2faces64", True, 3, 5, api_name="/sketch_to_photo")
    first = images(gallery)
    assert [im.shape for im in first] == [(64, 64, 3)] * 3
    assert np.abs(first[0] - first[1]).max() > 0
    assert [item["caption"] for item in gallery] == ["seed 5", "seed 6", "seed 7"]
    again = images(client.predict(sketch, "pix2pix.edges2faces64", True, 3, 5, api_name="/sketch_to_photo")[0])
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert "paper mode" in notes and "The variations differ by" in notes


def test_eval_mode_is_deterministic_and_differs_from_paper_mode(client):
    from gradio_client import handle_file

    sketch = handle_file(str(EXAMPLES / "face_sketch_1.png"))
    one = images(client.predict(sketch, "pix2pix.edges2faces64", False, 4, 0, api_name="/sketch_to_photo")[0])
    two = images(client.predict(sketch, "pix2pix.edges2faces64", False, 4, 9, api_name="/sketch_to_photo")[0])
    paper = images(client.predict(sketch, "pix2pix.edges2faces64", True, 1, 0, api_name="/sketch_to_photo")[0])
    assert len(one) == 1 and np.array_equal(one[0], two[0])
    assert np.abs(one[0] - paper[0]).max() > 0


def test_sketch_pad_value_and_empty_pad(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    strokes = np.zeros((256, 256, 4), dtype=np.uint8)  # transparent layer with black strokes
    strokes[60:64, 40:220, 3] = 255
    strokes[100:200, 126:130, 3] = 255
    Image.fromarray(strokes, "RGBA").save(tmp_path / "layer.png")
    from core.pipelines.sketch import pad_guide

    pad_guide().convert("RGBA").save(tmp_path / "white.png")  # the pad's background is its faint guide
    value = {"background": handle_file(str(tmp_path / "white.png")),
             "layers": [handle_file(str(tmp_path / "layer.png"))], "composite": None}
    gallery, _ = client.predict(value, "pix2pix.edges2faces64", True, 2, 0, api_name="/sketch_to_photo_pad")
    assert len(gallery) == 2
    empty = {"background": handle_file(str(tmp_path / "white.png")), "layers": [], "composite": None}
    with pytest.raises(AppError, match="sketch is empty"):
        client.predict(empty, "pix2pix.edges2faces64", True, 2, 0, api_name="/sketch_to_photo_pad")


@DETECTOR
def test_photo_to_sketch_gives_thin_black_edges_on_white(client):
    from gradio_client import handle_file

    whole = client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), 0.4, False, api_name="/photo_to_sketch")
    framed = client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), 0.4, api_name="/photo_to_sketch")
    for path, side in ((whole, 512), (framed, 256)):  # framing the face is the default
        sketch = np.asarray(Image.open(path).convert("L"))
        assert sketch.shape == (side, side)
        assert set(np.unique(sketch)) <= {0, 255}
        dark = (sketch == 0).mean()
        assert 0.01 < dark < 0.25  # lines, not regions


@DETECTOR
def test_photo_to_sketch_without_a_face_says_so(client, tmp_path):
    import skimage.data
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    Image.fromarray(skimage.data.coffee()).save(tmp_path / "coffee.png")
    with pytest.raises(AppError, match="No face was found in the photo"):
        client.predict(handle_file(str(tmp_path / "coffee.png")), 0.4, True, api_name="/photo_to_sketch")
    assert client.predict(handle_file(str(tmp_path / "coffee.png")), 0.4, False, api_name="/photo_to_sketch")


def test_missing_weights_are_reported_and_the_server_keeps_serving(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    sketch = handle_file(str(EXAMPLES / "face_sketch_2.png"))
    with pytest.raises(AppError, match="python -m core.weights fetch pix2pix.edges2shoes"):
        client.predict(sketch, "pix2pix.edges2shoes", True, 1, 0, api_name="/sketch_to_photo")
    gallery, _ = client.predict(sketch, "pix2pix.edges2faces64", True, 1, 0, api_name="/sketch_to_photo")
    assert len(gallery) == 1
