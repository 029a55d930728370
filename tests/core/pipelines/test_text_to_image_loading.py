"""core.pipelines.text_to_image_loading: pinned snapshots through the resolver, TAESD, the dtype per device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core import device
from core.pipelines import text_to_image_loading as loading
from tests.support import tiny_diffusers as tiny


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    yield from tiny.served_test_models(tmp_path_factory)


def test_pipeline_loads_through_the_resolver_from_the_pinned_snapshot(hub, monkeypatch):
    pipe = loading.load_pipeline("diffusers.tiny")
    assert type(pipe).__name__ == "StableDiffusionPipeline" and type(pipe.scheduler).__name__ == "PNDMScheduler"
    assert pipe.safety_checker is None
    assert loading.load_pipeline("diffusers.tiny") is pipe, "one pipeline per process (shared MODEL_CACHE)"
    paths = [p for _, p in hub.requests]
    assert any(p.startswith(f"/api/models/{tiny.TINY_REPO}/tree/{hub.revision}") for p in paths)
    downloaded = {p.split(f"/resolve/{hub.revision}/", 1)[1] for p in paths if "/resolve/" in p}
    assert "unet/diffusion_pytorch_model.safetensors" in downloaded
    assert not any(p.endswith((".bin", "README.md")) for p in downloaded), "only configs and safetensors"

    # Offline, from the Hugging Face cache alone, with another scheduler named in the manifest.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    requests_before = len(hub.requests)
    euler = loading.load_pipeline("diffusers.tiny_euler")
    assert euler is not pipe and type(euler.scheduler).__name__ == "EulerDiscreteScheduler"
    assert len(hub.requests) == requests_before


def test_missing_weights_say_what_to_download(hub):
    from core.weights import WeightsUnavailableError

    with pytest.raises(WeightsUnavailableError, match="python -m core.weights fetch diffusers.absent"):
        loading.load_pipeline("diffusers.absent")
    message = loading.missing_message("diffusers.absent")
    assert "tests/not-on-the-hub" in message and "1" * 40 in message and "Apache-2.0" in message
    assert "hf download tests/not-on-the-hub --revision" in message and "models--tests--not-on-the-hub" in message


def test_taesd_is_checked_against_the_pinned_sha256(hub, monkeypatch):
    from core.weights import WeightsUnavailableError

    assert type(loading.load_taesd(download=True)).__name__ == "AutoencoderTiny"
    monkeypatch.setattr(loading, "TAESD_ID", "diffusers.taesd_bad_sha")
    with pytest.raises(WeightsUnavailableError, match="sha256 of diffusion_pytorch_model.safetensors"):
        loading.load_taesd(download=True)
    assert loading.try_load_taesd(download=True) is None


def test_the_dtype_comes_from_the_manifest_on_cuda_and_the_cpu_policy_elsewhere(hub, monkeypatch):
    cuda = torch.device("cuda")
    assert loading.pipeline_dtype("diffusers.tiny", cuda) == torch.float16  # its manifest cuda_dtype
    assert loading.pipeline_dtype("diffusers.tiny_euler", cuda) == torch.float32  # none: the project's default
    cpu = torch.device("cpu")
    monkeypatch.setenv("GANHUB_CPU_BF16", "auto")
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(device, "cpu_has_native_bfloat16", lambda native=native: native)
        assert loading.pipeline_dtype("diffusers.tiny", cpu) == expected
    monkeypatch.setenv("GANHUB_CPU_BF16", "half")
    with pytest.raises(ValueError, match="GANHUB_CPU_BF16 must be 0, 1 or auto"):
        loading.pipeline_dtype("diffusers.tiny", cpu)


def test_import_diffusers_imports_the_pipeline_machinery():
    import subprocess
    import sys

    code = ("import sys; from core.pipelines import text_to_image_loading as l; "
            "assert 'diffusers' not in sys.modules; l.import_diffusers(); "
            "assert 'diffusers' in sys.modules and 'transformers' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[3])
