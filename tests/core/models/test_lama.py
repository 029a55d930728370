"""LaMa FFC ResNet generator: published key set, strict loading, and the reference computation."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import core.models
from core.models import StateDictMismatchError
from tests.conftest import SPECS_DIR

TINY = dict(ngf=8, n_downsampling=3, n_blocks=2)  # bottleneck 64 channels: 16 local / 48 global


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights AND random BatchNorm statistics, so eval-mode BN is not the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            values = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                values = values.abs() + 0.5
            elif name.endswith("weight") and tensor.ndim > 1:
                values = values / (tensor[0].numel() ** 0.5)
            tensor.copy_(values)
    return model.eval()


def test_full_size_keys_and_shapes_equal_the_published_spec():
    spec = json.loads((SPECS_DIR / "lama_big_lama.json").read_text())
    model = core.models.build("lama")  # big-lama defaults
    own = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    assert own == [tuple(entry) for entry in spec["state_dict"]]  # same keys, shapes, dtypes, same order
    assert sum(p.numel() for p in model.parameters()) == spec["params"] == 50_975_875


def test_tiny_round_trip_is_strict_and_accepts_published_prefixes():
    source = randomised(core.models.build("lama", **TINY))
    state = source.state_dict()
    x = torch.rand(1, 4, 24, 32)
    expected = source(x)
    for prefix in ("", "generator.", "model.generator.", "module."):
        loaded = core.models.load("lama", {prefix + k: v for k, v in state.items()}, **TINY)
        assert torch.equal(loaded(x), expected), prefix
    with pytest.raises(StateDictMismatchError, match="missing key"):
        core.models.load("lama", {k: v for k, v in state.items() if "convg2g.fu" not in k}, **TINY)
    with pytest.raises(StateDictMismatchError, match="unexpected key"):
        core.models.load("lama", {**state, "discriminator.model0.0.weight": torch.zeros(1)}, **TINY)
    with pytest.raises(StateDictMismatchError, match="shape"):
        core.models.load("lama", state, **{**TINY, "ngf": 16})


def test_input_size_must_be_a_multiple_of_eight():
    model = core.models.build("lama", **TINY).eval()
    with pytest.raises(ValueError, match="divisible by 8"):
        model(torch.rand(1, 4, 20, 32))


# --------------------------------------------------------------------------- a hand-written reference forward
# Written from the reference's description (advimman/lama ffc.py, big-lama.yaml): explicit reflect
# padding + F.conv2d, eval BatchNorm, the FourierUnit's stack(real, imag) on the LAST dim then
# permute to [B, C, 2, H, W/2+1], and the generator's Sequential indices.


def bn(sd, name, x):
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                        sd[f"{name}.bias"], training=False, momentum=0.0, eps=1e-5)


def conv(sd, name, x, stride=1, padding=0):
    if padding:
        x = F.pad(x, (padding,) * 4, mode="reflect")
    return F.conv2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), stride=stride)


def fourier_unit(sd, name, x):
    batch, _, height, width = x.shape
    ffted = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
    ffted = torch.stack((ffted.real, ffted.imag), dim=-1).permute(0, 1, 4, 2, 3).contiguous()
    ffted = ffted.view(batch, -1, height, width // 2 + 1)
    ffted = F.relu(bn(sd, f"{name}.bn", F.conv2d(ffted, sd[f"{name}.conv_layer.weight"])))
    ffted = ffted.view(batch, -1, 2, height, width // 2 + 1).permute(0, 1, 3, 4, 2).contiguous()
    return torch.fft.irfftn(torch.complex(ffted[..., 0], ffted[..., 1]), s=(height, width), dim=(-2, -1), norm="ortho")


def spectral_transform(sd, name, x):
    x = F.relu(bn(sd, f"{name}.conv1.1", F.conv2d(x, sd[f"{name}.conv1.0.weight"])))
    return F.conv2d(x + fourier_unit(sd, f"{name}.fu", x), sd[f"{name}.conv2.weight"])


def ffc_bn_act(sd, name, x_l, x_g, stride=1, padding=1):
    def path(kind, x):
        if x is None:
            return 0
        if kind == "convg2g":
            return spectral_transform(sd, f"{name}.ffc.convg2g", x) if f"{name}.ffc.convg2g.conv2.weight" in sd else 0
        return conv(sd, f"{name}.ffc.{kind}", x, stride, padding) if f"{name}.ffc.{kind}.weight" in sd else 0

    out_l = path("convl2l", x_l) + path("convg2l", x_g)
    out_g = path("convl2g", x_l) + path("convg2g", x_g)
    out_l = F.relu(bn(sd, f"{name}.bn_l", out_l)) if f"{name}.bn_l.weight" in sd else None
    out_g = F.relu(bn(sd, f"{name}.bn_g", out_g)) if f"{name}.bn_g.weight" in sd else None
    return out_l, out_g


def reference_forward(sd, x, n_downsampling, n_blocks):
    x = F.pad(x, (3, 3, 3, 3), mode="reflect")
    x_l, x_g = ffc_bn_act(sd, "model.1", x, None, padding=0)
    for i in range(n_downsampling):
        x_l, x_g = ffc_bn_act(sd, f"model.{2 + i}", x_l, x_g, stride=2, padding=1)
    for j in range(n_blocks):
        name = f"model.{2 + n_downsampling + j}"
        y_l, y_g = ffc_bn_act(sd, f"{name}.conv1", x_l, x_g)
        y_l, y_g = ffc_bn_act(sd, f"{name}.conv2", y_l, y_g)
        x_l, x_g = x_l + y_l, x_g + y_g
    x = torch.cat([x_l, x_g], dim=1)
    concat = 2 + n_downsampling + n_blocks
    for i in range(n_downsampling):
        up = f"model.{concat + 1 + 3 * i}"
        x = F.conv_transpose2d(x, sd[f"{up}.weight"], sd[f"{up}.bias"], stride=2, padding=1, output_padding=1)
        x = F.relu(bn(sd, f"model.{concat + 2 + 3 * i}", x))
    x = conv(sd, f"model.{concat + 2 + 3 * n_downsampling}", F.pad(x, (3, 3, 3, 3), mode="reflect"))
    return torch.sigmoid(x)


def test_forward_equals_the_reference_computation():
    model = randomised(core.models.build("lama", **TINY), seed=1)
    state = model.state_dict()
    generator = torch.Generator().manual_seed(2)
    image = torch.rand(2, 3, 40, 48, generator=generator)
    mask = (torch.rand(2, 1, 40, 48, generator=generator) > 0.7).float()
    x = torch.cat([image * (1 - mask), mask], dim=1)
    with torch.no_grad():
        ours = model(x)
        theirs = reference_forward(state, x, TINY["n_downsampling"], TINY["n_blocks"])
    assert ours.shape == (2, 3, 40, 48)
    assert 0 <= ours.min() and ours.max() <= 1
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert ours.std() > 0.01  # not a degenerate, constant output


def test_fourier_unit_uses_interleaved_real_imaginary_channels():
    # Channel 0 of the FourierUnit's conv input is c0.real, channel 1 is c0.imag: a conv that
    # copies channel 1 to 0 and zeroes the rest returns irfft(imag(X0)) only when interleaved.
    from core.models.lama import FourierUnit

    unit = FourierUnit(2).eval()
    with torch.no_grad():
        unit.conv_layer.weight.zero_()
        unit.conv_layer.weight[0, 1] = 1.0
        unit.bn.weight.fill_(1.0)
        unit.bn.bias.zero_()
        unit.bn.running_mean.zero_()
        unit.bn.running_var.fill_(1.0 - 1e-5)  # (var + eps) == 1: BN is the identity
        x = torch.randn(1, 2, 8, 8)
        spectrum = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        expected = torch.fft.irfftn(torch.complex(spectrum.imag[:, :1].clamp(min=0), torch.zeros(1, 1, 8, 5)),
                                    s=(8, 8), dim=(-2, -1), norm="ortho")
        torch.testing.assert_close(unit(x)[:, :1], expected, rtol=1e-5, atol=1e-6)
