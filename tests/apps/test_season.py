"""The season app's API through gradio_client against one live local server (tiny weights, no network)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from skimage import data

from core.weights import load_manifest

TINY = dict(ngf=4, n_blocks=1, norm="instance_affine")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import core.models
    from core.cache import MODEL_CACHE
    from tests.support.live import live_client

    tmp = tmp_path_factory.mktemp("season")
    torch.manual_seed(0)
    save_file(core.models.build("cyclegan_resnet", **TINY).state_dict(), str(tmp / "vintage.safetensors"))
    real = load_manifest()
    models = {}
    for model_id in ("cyclegan.vintage", "cyclegan.summer2winter", "cyclegan.winter2summer"):
        raw = {"arch": "cyclegan_resnet", **{k: v for k, v in real[model_id].info.items()}}
        raw["input"] = {**raw["input"], "size": 32}
        if model_id == "cyclegan.vintage":
            raw.update(config=TINY, sources=[{"kind": "local", "path": "vintage.safetensors"}])
        else:  # weights that are not on this machine
            raw.update(config=real[model_id].config, sources=[{"kind": "local", "path": "absent.pth"}])
        models[model_id] = raw
    (tmp / "manifest.json").write_text(json.dumps({"schema_version": 1, "models": models}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANHUB_MANIFEST", str(tmp / "manifest.json"))
        mp.setenv("GANHUB_CACHE", str(tmp / "cache"))
        mp.setenv("GANHUB_TILED_MAX_PIXELS", "20000")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("GANHUB_WEIGHTS_DIR", raising=False)
        MODEL_CACHE.clear()
        from apps.season.app import demo

        with live_client(demo) as c:
            yield c
        MODEL_CACHE.clear()


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "rocket.png"
    Image.fromarray(data.rocket()).resize((90, 61), Image.Resampling.LANCZOS).save(path)
    return path


def test_translate_returns_before_after_and_a_png_at_the_input_size(client, photo_file):
    from gradio_client import handle_file

    for mode in ("tiled", "resize"):
        slider, result, notes = client.predict(handle_file(str(photo_file)), "cyclegan.vintage", mode,
                                               api_name="/translate")
        before, after = (Image.open(p) for p in slider)
        assert before.size == after.size == (90, 61)
        assert result.endswith(".png") and Image.open(result).size == (90, 61)
        # the slider is a quick JPEG preview of the full PNG: close to it (the tiny model's output is noise-like,
        # the hardest case for JPEG: ~6 levels; another image would be ~50 off), not bit-identical
        assert after.format == "JPEG"
        difference = np.abs(np.asarray(Image.open(result).convert("RGB"), float) - np.asarray(after, float))
        assert difference.mean() < 12
        assert mode in notes and "90x61" in notes
        call = f"client.predict(image=handle_file('image.png'), model_id='cyclegan.vintage', mode={mode!r}, "
        assert call + "api_name='/translate')" in notes  # the notes end with the call that reproduces the result
        assert Image.open(result).info["gradio_client"] == call + "api_name='/translate')"


def test_missing_weights_give_a_clear_error_and_the_server_keeps_serving(client, photo_file):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="python -m core.weights fetch cyclegan.summer2winter"):
        client.predict(handle_file(str(photo_file)), "cyclegan.summer2winter", "tiled", api_name="/translate")
    slider, _, _ = client.predict(handle_file(str(photo_file)), "cyclegan.vintage", "resize", api_name="/translate")
    assert len(slider) == 2


def test_size_cap_and_bad_input_messages(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    big = tmp_path / "big.png"
    Image.new("RGB", (200, 150), (90, 120, 200)).save(big)
    with pytest.raises(AppError, match="'resize' mode"):
        client.predict(handle_file(str(big)), "cyclegan.vintage", "tiled", api_name="/translate")
    _, result, _ = client.predict(handle_file(str(big)), "cyclegan.vintage", "resize", api_name="/translate")
    assert Image.open(result).size == (200, 150)
    with pytest.raises(AppError, match="Upload a photo first"):
        client.predict(None, "cyclegan.vintage", "tiled", api_name="/translate")


def test_api_contract(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in info["/translate"]["parameters"]] == ["image", "model_id", "mode"]


def test_translate_in_the_model_worker_process_gives_the_same_result(client, photo_file, monkeypatch):
    """On a CPU the hub runs /translate in the model worker (core.model_worker): same pixels, same errors."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from core import model_worker

    def translate():
        _, result, notes = client.predict(handle_file(str(photo_file)), "cyclegan.vintage", "tiled",
                                          api_name="/translate")
        return np.asarray(Image.open(result).convert("RGB"), int), notes

    inline, _ = translate()
    monkeypatch.setenv("GANHUB_MODEL_WORKER", "process")
    model_worker.shutdown()
    try:
        in_worker, notes = translate()
        assert model_worker.status()["cpu"]["jobs_done"] == 1  # it ran there
        assert np.abs(in_worker - inline).max() <= 1 and "90x61" in notes
        with pytest.raises(AppError, match="python -m core.weights fetch cyclegan.summer2winter"):
            client.predict(handle_file(str(photo_file)), "cyclegan.summer2winter", "tiled", api_name="/translate")
    finally:
        model_worker.shutdown()
