"""core.pipelines.pulse_adapters: the Gaussian fit, loading through the real resolver, the real offline DCGAN."""

import io

import pytest
import torch

import core.models
from core.pipelines import pulse_adapters as A
from core.pipelines import pulse_search as S
from tests.support import tiny_pulse as tiny
from tests.support.tiny_pulse import TINY_SG2
from tests.support.tiny_pulse import one_thread, tiny_dcgan_adapter, tiny_sg2_with_fit  # noqa: F401  (fixtures)


def test_gaussian_fit_is_the_moments_of_leaky_relu5_of_the_mapping(tiny_sg2):
    model, _ = tiny_sg2
    mean, std = A.gaussian_fit(model, samples=500, seed=3, batch=128)
    z = torch.randn(500, 16, generator=torch.Generator().manual_seed(3))
    v = torch.nn.functional.leaky_relu(model.mapping(z), 5.0)
    torch.testing.assert_close(mean, v.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(std, v.std(0), rtol=1e-4, atol=1e-5)


def test_stylegan2_adapter_from_a_rosinality_checkpoint_on_the_hub(local_hub, write_manifest):
    from core.cache import MODEL_CACHE

    torch.manual_seed(0)
    g_ema = core.models.build("stylegan2", **TINY_SG2).state_dict()
    buffer = io.BytesIO()
    torch.save({"g_ema": g_ema, "latent_avg": torch.zeros(16), "d": {"convs.0.0.weight": torch.zeros(1)}}, buffer)
    commit = local_hub.add_file("org/sg2", "stylegan2-tiny.pt", buffer.getvalue())
    write_manifest({"stylegan2.tiny": {
        "arch": "stylegan2", "config": TINY_SG2, "title": "tiny StyleGAN2", "license": "test",
        "sources": [{"kind": "hf", "repo_id": "org/sg2", "filename": "stylegan2-tiny.pt", "revision": commit,
                     "format": {"type": "torch_pickle", "key": "g_ema"}}],
    }})
    try:
        adapter = A.load_adapter("stylegan2.tiny", device="cpu", fit_samples=256)
        assert isinstance(adapter, A.StyleGAN2Adapter) and adapter.size == 32
        torch.testing.assert_close(adapter.model.input.input, g_ema["input.input"])
        assert A.load_adapter("stylegan2.tiny", device="cpu", fit_samples=256).mean is adapter.mean  # fit cached
        result = S.search(adapter, torch.rand(1, 3, 8, 8), steps=2, restarts=1, seed=0)
        assert result.samples[0].image.shape == (3, 32, 32)
    finally:
        MODEL_CACHE.clear()


@pytest.mark.real_weights("dcgan.faces64")
def test_real_dcgan_recovers_an_in_distribution_8x8_face():
    adapter = A.load_adapter("dcgan.faces64", device="cpu")
    target = tiny.in_distribution_target(adapter, 8, seed=2020)
    result = S.search(adapter, target, steps=100, restarts=4, seed=1000)
    assert result.success, result.message
    best = result.samples[0]
    assert best.l2 <= 2e-3 and best.first_success_step is not None and best.start_l2 > 10 * best.l2
    assert "downscale to the input within eps" in result.message
