"""core.pipelines.text_to_image_openvino: the UNet on OpenVINO, its derived IR cache and the fallbacks.

One tiny random pipeline is served from the local Hub; its UNet is converted once for the whole
module (the first load), and every later check reuses that IR.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from core import cpu_backend
from core.cache import MODEL_CACHE
from core.pipelines import text_to_image as t2i
from core.pipelines import text_to_image_loading as loading
from core.pipelines import text_to_image_openvino as ov_unet
from tests.support import tiny_diffusers as tiny

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    yield from tiny.served_test_models(tmp_path_factory)


@pytest.fixture(scope="module")
def first_load(hub):
    """The first OpenVINO load: eager torch at once, the IR converted in the background."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cpu_backend.BACKEND_VARIABLE, "openvino")
        MODEL_CACHE.clear()
        conversions = ov_unet.conversions
        pipe = loading.load_pipeline("diffusers.tiny")
        served_first = type(pipe.unet).__name__
        pipe._ganhub_openvino.join(timeout=300)
        assert ov_unet.conversions == conversions + 1
        telemetry = pytest.importorskip("openvino_telemetry")
        assert telemetry.Telemetry().consent is False, "the conversion must not send usage statistics"
        yield pipe, served_first
        MODEL_CACHE.clear()


def _torch_unet(pipe):
    from diffusers import UNet2DConditionModel

    folder = loading._snapshot("diffusers.tiny", download=False)
    return UNet2DConditionModel.from_pretrained(folder / "unet", use_safetensors=True).eval()


def test_torch_serves_until_the_background_conversion_switches(first_load):
    pipe, served_first = first_load
    assert served_first == "UNet2DConditionModel"
    assert isinstance(pipe.unet, ov_unet.OpenVINOUNet)
    assert pipe.unet.ir.parent.parent.name == "openvino" and pipe.unet.ir.with_suffix(".bin").is_file()
    assert pipe.unet.dtype == torch.float32 and pipe.unet.device == torch.device("cpu")
    assert pipe.unet.config.in_channels == 4 and pipe.unet.config.time_cond_proj_dim is None


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("side", [(8, 8), (9, 13)])  # 9 and 13: not multiples of the UNet's upsampling factor
def test_the_openvino_unet_computes_what_torch_does(first_load, batch, side):
    pipe, _ = first_load
    unet = _torch_unet(pipe)
    g = torch.Generator().manual_seed(batch * 100 + side[1])
    x, context = torch.randn(batch, 4, *side, generator=g), torch.randn(batch, 77, 16, generator=g)
    for t in (torch.tensor(981), torch.tensor(499.5)):  # int64 (PNDM) and float (Euler) timesteps
        with torch.inference_mode():
            expected = unet(x, t, encoder_hidden_states=context, return_dict=False)[0]
        got = pipe.unet(x, t, encoder_hidden_states=context, return_dict=False)[0]
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert pipe.unet(x, t, encoder_hidden_states=context).sample.shape == expected.shape


def test_the_pipeline_makes_the_image_eager_torch_makes(first_load, monkeypatch):
    pipe, _ = first_load
    settings = t2i.Settings("diffusers.tiny", steps=2, guidance_scale=5.0, width=64, height=72, seed=7, num_images=2)
    on_openvino = t2i.run("a red cat", settings, model=pipe)
    monkeypatch.setenv(cpu_backend.BACKEND_VARIABLE, "torch")
    MODEL_CACHE.clear()
    eager = loading.load_pipeline("diffusers.tiny")
    assert type(eager.unet).__name__ == "UNet2DConditionModel"
    on_torch = t2i.run("a red cat", settings, model=eager)
    for a, b in zip(on_openvino.images, on_torch.images, strict=True):
        difference = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
        assert difference.max() <= 1, difference.max()


def test_a_cached_ir_is_reused_without_converting_or_building_the_torch_unet(first_load, monkeypatch):
    monkeypatch.setenv(cpu_backend.BACKEND_VARIABLE, "openvino")
    MODEL_CACHE.clear()
    conversions = ov_unet.conversions
    built = []
    from diffusers import UNet2DConditionModel

    original = UNet2DConditionModel.__init__
    monkeypatch.setattr(UNet2DConditionModel, "__init__",
                        lambda self, *a, **k: built.append(1) or original(self, *a, **k))
    pipe = loading.load_pipeline("diffusers.tiny")
    assert isinstance(pipe.unet, ov_unet.OpenVINOUNet) and not hasattr(pipe, "_ganhub_openvino")
    assert ov_unet.conversions == conversions and built == []
    assert pipe.unet.ir == first_load[0].unet.ir


def test_the_cache_key_follows_the_weights_the_version_and_the_settings(tmp_path, monkeypatch):
    folder = tmp_path / "unet"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"weights one")
    first = ov_unet.ir_folder(folder)
    assert ov_unet.ir_folder(folder) == first
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"weights two")
    second = ov_unet.ir_folder(folder)
    assert second != first
    monkeypatch.setattr(ov_unet, "openvino_version", lambda: "0.0.0")
    assert ov_unet.ir_folder(folder) not in (first, second)
    monkeypatch.undo()
    monkeypatch.setattr(ov_unet, "CONVERSION", {**ov_unet.CONVERSION, "precision": "bf16"})
    assert ov_unet.ir_folder(folder) not in (first, second)


def test_a_hub_blob_names_its_own_hash_and_a_plain_file_is_hashed_once(tmp_path, monkeypatch):
    import hashlib
    import os

    monkeypatch.setenv("GANHUB_CACHE", str(tmp_path / "cache"))
    blob = tmp_path / "blobs" / ("ab" * 32)
    blob.parent.mkdir()
    blob.write_bytes(b"not hashed")
    link = tmp_path / "model.safetensors"
    link.symlink_to(blob)
    hashed = []
    monkeypatch.setattr(ov_unet, "sha256_of",
                        lambda p: hashed.append(p) or hashlib.sha256(Path(p).read_bytes()).hexdigest())
    assert ov_unet.weights_sha256(link) == "ab" * 32 and hashed == []
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(b"hashed")
    assert ov_unet.weights_sha256(plain) == hashlib.sha256(b"hashed").hexdigest()
    assert ov_unet.weights_sha256(plain) == hashlib.sha256(b"hashed").hexdigest() and len(hashed) == 1
    plain.write_bytes(b"changed")
    os.utime(plain, ns=(1, 1))  # a new mtime (and size): hashed again
    assert ov_unet.weights_sha256(plain) == hashlib.sha256(b"changed").hexdigest() and len(hashed) == 2


def test_a_failed_conversion_leaves_torch_serving_and_says_so_once(first_load, monkeypatch, caplog):
    monkeypatch.setenv(cpu_backend.BACKEND_VARIABLE, "openvino")
    monkeypatch.setattr(ov_unet, "cached_ir", lambda folder: None)

    release = threading.Event()

    def broken(unet, folder):
        release.wait(timeout=60)
        raise RuntimeError("no frontend for this op")

    monkeypatch.setattr(ov_unet, "convert", broken)
    with caplog.at_level(logging.WARNING, logger=ov_unet.__name__):
        for attempt in range(2):
            MODEL_CACHE.clear()
            pipe = loading.load_pipeline("diffusers.tiny")
            if attempt == 0:  # the conversion is still running: torch serves, and the user is told
                during = t2i.run("a dog", t2i.Settings("diffusers.tiny", steps=1, seed=1), model=pipe)
                assert len(during.images) == 1
                assert any("converted for OpenVINO in the background" in n for n in during.notes)
                release.set()
            pipe._ganhub_openvino.join(timeout=60)
            assert type(pipe.unet).__name__ == "UNet2DConditionModel"
    failures = [r for r in caplog.records if "no frontend for this op" in r.getMessage()]
    assert len(failures) == 1 and "using torch" in failures[0].getMessage()
    after = t2i.run("a dog", t2i.Settings("diffusers.tiny", steps=1, seed=1), model=pipe)
    assert len(after.images) == 1 and not any("OpenVINO" in n for n in after.notes)


def test_a_damaged_cached_ir_falls_back_to_torch(first_load, tmp_path, monkeypatch, caplog):
    damaged = tmp_path / "damaged" / ov_unet.IR_NAME
    damaged.parent.mkdir()
    damaged.write_text("<net>not an IR")
    damaged.with_suffix(".bin").write_bytes(b"")
    monkeypatch.setattr(ov_unet, "cached_ir", lambda folder: damaged)
    with caplog.at_level(logging.WARNING, logger=ov_unet.__name__):
        assert ov_unet.compile_cached(tmp_path) is None
    assert any("did not compile" in r.getMessage() for r in caplog.records)


def test_without_openvino_the_pipeline_runs_on_torch(hub, monkeypatch, caplog):
    monkeypatch.setenv(cpu_backend.BACKEND_VARIABLE, "openvino")
    monkeypatch.setattr(ov_unet, "openvino_version", lambda: None)
    MODEL_CACHE.clear()
    with caplog.at_level(logging.WARNING, logger=ov_unet.__name__):
        pipe = loading.load_pipeline("diffusers.tiny")
    assert type(pipe.unet).__name__ == "UNet2DConditionModel" and not hasattr(pipe, "_ganhub_openvino")
    assert any("OpenVINO is not installed" in r.getMessage() for r in caplog.records)
    MODEL_CACHE.clear()
