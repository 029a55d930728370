"""MI-GAN generator: the published key set, strict loading, and the reference computation."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import core.models
from core.models import StateDictMismatchError
from tests.conftest import SPECS_DIR

TINY = dict(resolution=16, ch_base=64, ch_max=16)  # channels 4 (16x16), 8 (8x8), 16 (4x4)


def randomised(model: torch.nn.Module, seed: int = 0, keep_masks: bool = True) -> torch.nn.Module:
    """Every tensor random (FIR filters and noise strengths too), so nothing is left at a neutral value;
    the zero-insertion masks (``filter_const``) too unless ``keep_masks`` (published checkpoints hold the
    standard mask, for which the model takes a faster, equivalent path)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if keep_masks and name.endswith("filter_const"):
                continue
            values = torch.randn(tensor.shape, generator=generator)
            if tensor.ndim > 1 and not name.endswith("noise_const"):
                values = values / math.sqrt(tensor[0].numel())
            tensor.copy_(values)
    return model.eval()


# ----------------------------------------------------------- the reference, written out as functions


def act(x):
    return (F.leaky_relu(x, 0.2) * 2**0.5).clamp(-256, 256)


def separable(state, prefix, x, down=False, up=False, noise=False):
    """migan_inference.SeparableConv2d.forward with the tensors of ``state`` under ``prefix``."""
    x = F.conv2d(x, state[f"{prefix}.conv1.weight"], state[f"{prefix}.conv1.bias"], padding=1, groups=x.shape[1])
    x = act(x)
    if down:
        x = F.conv2d(x, state[f"{prefix}.downsample.filter.weight"], stride=2, padding=1, groups=x.shape[1])
    x = F.conv2d(x, state[f"{prefix}.conv2.weight"])
    if up:
        x = upsample(state, f"{prefix}.upsample", x)
    if noise:
        x = x + state[f"{prefix}.noise_const"] * state[f"{prefix}.noise_strength"]
    return act(x)


def upsample(state, prefix, x):
    """Upsample2d at ca4df2e: nearest x2, times filter_const, pad (2, 1, 2, 1), depthwise 4x4 filter."""
    x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3) * state[f"{prefix}.filter_const"]
    return F.conv2d(F.pad(x, (2, 1, 2, 1)), state[f"{prefix}.filter.weight"], groups=x.shape[1])


def reference_forward(state, x, resolution):
    encode = [2**i for i in range(int(math.log2(resolution)), 1, -1)]  # 16, 8, 4
    h, features = None, {}
    for res in encode[:-1]:
        p = f"encoder.b{res}"
        if h is None:
            h = act(F.conv2d(x, state[f"{p}.fromrgb.weight"], state[f"{p}.fromrgb.bias"]))
        features[res] = separable(state, f"{p}.conv1", h)
        h = separable(state, f"{p}.conv2", features[res], down=True)
    features[4] = separable(state, "encoder.b4.conv1", h)
    h = separable(state, "encoder.b4.conv2", features[4])
    h = separable(state, "synthesis.b4.conv2", separable(state, "synthesis.b4.conv1", h) + features[4])
    rgb = F.conv2d(h, state["synthesis.b4.torgb.weight"], state["synthesis.b4.torgb.bias"])
    for res in encode[-2::-1]:  # 8, 16
        p = f"synthesis.b{res}"
        h = separable(state, f"{p}.conv1", h, up=True, noise=True) + features[res]
        h = separable(state, f"{p}.conv2", h, noise=True)
        rgb = upsample(state, f"{p}.upsample", rgb) + F.conv2d(h, state[f"{p}.torgb.weight"], state[f"{p}.torgb.bias"])
    return rgb


# ------------------------------------------------------------------------------------------ tests


def test_full_size_keys_and_shapes_equal_the_published_spec():
    spec = json.loads((SPECS_DIR / "migan_512.json").read_text())
    assert spec["config"]["resolution"] == 512 and spec["config"]["ch_base"] == 32768 and spec["config"]["ch_max"] == 512
    model = core.models.build("migan", resolution=512, ch_base=32768, ch_max=512)
    own = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()]
    assert own == spec["state_dict"]  # same keys, shapes, dtypes and order
    assert sum(p.numel() for p in model.parameters()) == spec["params"] == 5_973_366
    assert sum(t.numel() for t in model.state_dict().values()) == spec["state_dict_numel"]


def test_256_config_matches_its_spec_too():
    spec = json.loads((SPECS_DIR / "migan_256.json").read_text())
    model = core.models.build("migan", resolution=256)
    assert [[k, list(v.shape), "float32"] for k, v in model.state_dict().items()] == spec["state_dict"]


@pytest.mark.parametrize("keep_masks", [True, False], ids=["published_masks", "random_masks"])
def test_same_output_as_the_reference_computation(keep_masks):
    model = randomised(core.models.build("migan", **TINY), keep_masks=keep_masks)
    assert model.synthesis.b8.upsample._inserts_zeros() == keep_masks
    state = model.state_dict()
    generator = torch.Generator().manual_seed(1)
    known = (torch.rand(2, 1, 16, 16, generator=generator) > 0.3).float()
    image = torch.rand(2, 3, 16, 16, generator=generator) * 2 - 1
    x = torch.cat([known - 0.5, image * known], dim=1)
    with torch.no_grad():
        out = model(x)
        expected = reference_forward(state, x, 16)
    assert out.shape == (2, 3, 16, 16)
    assert torch.allclose(out, expected, atol=1e-5, rtol=1e-5)
    assert out.std() > 0.01  # not a degenerate constant


def test_default_filters_are_the_reference_fir_and_zero_insertion():
    model = core.models.build("migan", **TINY)
    up = model.synthesis.b8.conv1.upsample
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    assert torch.allclose(up.filter.weight[0, 0], torch.outer(taps, taps) / 16)  # gain 4
    assert torch.allclose(model.encoder.b16.conv2.downsample.filter.weight[0, 0], torch.outer(taps, taps) / 64)
    assert up.filter_const[0, 0].tolist() == [[1.0 if r % 2 == 0 and c % 2 == 0 else 0.0 for c in range(8)]
                                              for r in range(8)]
    # The first release's formulation (a depthwise ConvTranspose2d that inserts zeros) computes the same.
    x = torch.randn(1, up.filter.weight.shape[0], 4, 4)
    zeros_inserted = F.conv_transpose2d(x, torch.tensor([[1.0, 0.0], [0.0, 0.0]]).expand(x.shape[1], 1, 2, 2),
                                        stride=2, groups=x.shape[1])
    expected = F.conv2d(F.pad(zeros_inserted, (2, 1, 2, 1)), up.filter.weight, groups=x.shape[1])
    assert torch.allclose(up(x), expected, atol=1e-6)


def test_strict_loading_and_the_fixed_input_size():
    source = randomised(core.models.build("migan", **TINY))
    state = source.state_dict()
    loaded = core.models.load("migan", state, **TINY)
    x = torch.randn(1, 4, 16, 16)
    assert torch.equal(loaded(x), source(x))
    with pytest.raises(StateDictMismatchError, match="missing key"):
        core.models.load("migan", {k: v for k, v in state.items() if "noise_const" not in k}, **TINY)
    with pytest.raises(StateDictMismatchError, match="unexpected key"):
        core.models.load("migan", {**state, "model.extra": torch.zeros(1)}, **TINY)
    with pytest.raises(StateDictMismatchError, match="shape"):
        core.models.load("migan", state, **{**TINY, "ch_max": 8})
    with pytest.raises(ValueError, match=r"\[N, 4, 16, 16\]"):
        loaded(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match="power of two"):
        core.models.build("migan", resolution=300)


def test_a_torchscript_copy_converts_by_its_tensors_and_is_md5_checked(tmp_path, write_manifest, isolated_cache):
    """IOPaint's ``migan_traced.pt`` route: a traced generator, read for its tensors (never run), md5 pinned."""
    import hashlib

    from core.weights import WeightsUnavailableError, load_model

    source = randomised(core.models.build("migan", **TINY), seed=5)
    x = torch.randn(1, 4, 16, 16)
    torch.jit.trace(source, x).save(str(tmp_path / "migan_traced.pt"))
    digest = hashlib.md5((tmp_path / "migan_traced.pt").read_bytes()).hexdigest()

    def manifest(md5):
        return {"migan.tiny": {"arch": "migan", "config": TINY, "title": "tiny MI-GAN", "license": "MIT",
                               "sources": [{"kind": "local", "path": "migan_traced.pt", "md5": md5,  # beside the manifest
                                            "sha256": None, "format": {"type": "torchscript_tensors"}}]}}

    write_manifest(manifest("0" * 32))
    with pytest.raises(WeightsUnavailableError, match="md5 mismatch"):
        load_model("migan.tiny", device="cpu")
    write_manifest(manifest(digest))
    from core.cache import MODEL_CACHE

    MODEL_CACHE.clear()
    try:
        with torch.no_grad():
            assert torch.equal(load_model("migan.tiny", device="cpu")(x), source(x))
    finally:
        MODEL_CACHE.clear()
