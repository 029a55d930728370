import json
import math

import pytest
import torch
import torch.nn.functional as F

import core.models
from core.models import StateDictMismatchError
from tests.conftest import SPECS_DIR

SPEC = json.loads((SPECS_DIR / "stylegan2_rosinality_1024.json").read_text())
TINY = dict(size=32, style_dim=16, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8})


def randomised(model):
    """Non-trivial values everywhere (biases, noise strengths), so no term can hide behind a zero."""
    torch.manual_seed(1)
    state = model.state_dict()
    for key, value in state.items():
        if not key.endswith("kernel"):
            state[key] = torch.randn_like(value) * (0.5 if key.endswith(("bias", "noise.weight")) else 1.0)
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)


# --- an independent reference: rosinality's fused formulation, written out -------------------------
def ref_upfirdn(x, kernel, up=1, pad=(0, 0)):
    """Zero insertion, padding, then an explicit sum of shifted copies weighted by the flipped kernel."""
    b, c, h, w = x.shape
    if up > 1:
        big = x.new_zeros(b, c, h * up, w * up)
        big[:, :, ::up, ::up] = x
        x = big
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    kh, kw = kernel.shape
    out_h, out_w = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = x.new_zeros(b, c, out_h, out_w)
    for i in range(kh):
        for j in range(kw):
            out += kernel[kh - 1 - i, kw - 1 - j] * x[:, :, i:i + out_h, j:j + out_w]
    return out


def ref_modconv(x, sd, prefix, style, demodulate=True, upsample=False):
    weight = sd[f"{prefix}.weight"]  # [1, out, in, k, k]
    _, out_c, in_c, k, _ = weight.shape
    b = x.shape[0]
    mod_w, mod_b = sd[f"{prefix}.modulation.weight"], sd[f"{prefix}.modulation.bias"]
    s = style @ (mod_w / math.sqrt(mod_w.shape[1])).t() + mod_b
    w = weight / math.sqrt(in_c * k * k) * s.view(b, 1, in_c, 1, 1)
    if demodulate:
        w = w * torch.rsqrt(w.pow(2).sum((2, 3, 4)) + 1e-8).view(b, out_c, 1, 1, 1)
    xb = x.reshape(1, b * in_c, *x.shape[2:])
    if upsample:
        wt = w.transpose(1, 2).reshape(b * in_c, out_c, k, k)
        out = F.conv_transpose2d(xb, wt, stride=2, padding=0, groups=b)
        out = out.view(b, out_c, *[2 * n + 1 for n in x.shape[2:]])
        return ref_upfirdn(out, sd[f"{prefix}.blur.kernel"], pad=(1, 1))
    out = F.conv2d(xb, w.reshape(b * out_c, in_c, k, k), padding=k // 2, groups=b)
    return out.view(b, out_c, *x.shape[2:])


def ref_styled(x, sd, prefix, style, noise, upsample=False):
    out = ref_modconv(x, sd, f"{prefix}.conv", style, upsample=upsample)
    out = out + sd[f"{prefix}.noise.weight"] * noise
    return F.leaky_relu(out + sd[f"{prefix}.activate.bias"].view(1, -1, 1, 1), 0.2) * math.sqrt(2)


def ref_synthesis(sd, w_plus, noise, n_blocks):
    b = w_plus.shape[0]
    out = ref_styled(sd["input.input"].repeat(b, 1, 1, 1), sd, "conv1", w_plus[:, 0], noise[0])
    skip = ref_modconv(out, sd, "to_rgb1.conv", w_plus[:, 1], demodulate=False) + sd["to_rgb1.bias"]
    for j in range(n_blocks):
        k = 1 + 2 * j
        out = ref_styled(out, sd, f"convs.{2 * j}", w_plus[:, k], noise[k], upsample=True)
        out = ref_styled(out, sd, f"convs.{2 * j + 1}", w_plus[:, k + 1], noise[k + 1])
        rgb = ref_modconv(out, sd, f"to_rgbs.{j}.conv", w_plus[:, k + 2], demodulate=False) + sd[f"to_rgbs.{j}.bias"]
        skip = rgb + ref_upfirdn(skip, sd[f"to_rgbs.{j}.upsample.kernel"], up=2, pad=(2, 1))
    return skip


def ref_mapping(sd, z, n_mlp, lr_mul=0.01):
    x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        w, b = sd[f"style.{i}.weight"], sd[f"style.{i}.bias"]
        x = F.leaky_relu(x @ (w * lr_mul / math.sqrt(w.shape[1])).t() + b * lr_mul, 0.2) * math.sqrt(2)
    return x


# --- layout -------------------------------------------------------------------------------------
def test_full_size_model_has_exactly_the_published_keys_shapes_and_buffers():
    with torch.device("meta"):  # no memory, no compute: only the structure
        model = core.models.build("stylegan2", size=1024, style_dim=512, n_mlp=8, channel_multiplier=2)
    own = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()]
    assert own == [tuple(entry) for entry in SPEC["state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == SPEC["params"]
    assert sorted(name for name, _ in model.named_buffers()) == sorted(SPEC["buffer_keys"])
    assert (model.n_latent, model.num_layers) == (SPEC["config"]["n_latent"], SPEC["config"]["num_layers"])
    assert [model.noise_resolution(i) for i in range(17)] == SPEC["config"]["noise_resolution_of_index"]


def test_reduced_width_model_loads_strictly_from_the_spec_key_names():
    channels = {r: 4 for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)}
    config = dict(size=1024, style_dim=8, n_mlp=8, channel_multiplier=2, channels=channels)
    shapes = {k: v.shape for k, v in core.models.build("stylegan2", **config).state_dict().items()}
    assert list(shapes) == [key for key, _, _ in SPEC["state_dict"]]
    torch.manual_seed(0)
    checkpoint = {key: torch.randn(shapes[key]) for key, _, _ in SPEC["state_dict"]}
    model = core.models.load("stylegan2", checkpoint, **config)
    assert torch.equal(model.convs[15].conv.weight, checkpoint["convs.15.conv.weight"])
    assert torch.equal(model.noises.noise_16, checkpoint["noises.noise_16"])
    assert not model.training and not any(p.requires_grad for p in model.parameters())

    old = {k: v for k, v in checkpoint.items() if not k.startswith("noises.")}  # converted before the noise buffers
    with pytest.raises(StateDictMismatchError, match=r"17 missing key\(s\): noises.noise_0"):
        core.models.load("stylegan2", old, **config)
    wrong = dict(checkpoint, **{"conv1.conv.weight": torch.randn(1, 4, 4, 1, 1)})
    with pytest.raises(StateDictMismatchError, match="conv1.conv.weight"):
        core.models.load("stylegan2", wrong, **config)


# --- numbers ------------------------------------------------------------------------------------
def test_upfirdn_upsample_of_a_constant_is_constant_inside_and_matches_the_reference():
    from core.models.stylegan2_layers import Upsample, upfirdn2d

    up = Upsample((1, 3, 3, 1))
    assert up.pad == (2, 1)
    torch.testing.assert_close(up.kernel.sum(), torch.tensor(4.0))
    out = up(torch.ones(1, 2, 6, 6))
    assert out.shape == (1, 2, 12, 12)
    torch.testing.assert_close(out[..., 2:-2, 2:-2], torch.ones(1, 2, 8, 8))
    x = torch.randn(2, 3, 5, 7)
    kernel = torch.rand(4, 3)  # asymmetric: the flip matters
    for up, pad in [(1, (1, 1)), (1, (2, 1)), (2, (2, 1)), (2, (1, 2)), (2, (0, 0)), (3, (4, 0))]:
        torch.testing.assert_close(upfirdn2d(x, kernel, up=up, pad=pad), ref_upfirdn(x, kernel, up=up, pad=pad))


def test_mapping_and_synthesis_equal_the_reference_formulation():
    model = randomised(core.models.build("stylegan2", **TINY))
    sd = model.state_dict()
    z = torch.randn(3, 16)
    w = model.mapping(z)
    torch.testing.assert_close(w, ref_mapping(sd, z, n_mlp=2), rtol=1e-5, atol=1e-5)
    w_plus = torch.randn(3, model.n_latent, 16)
    noise = [torch.randn(3, 1, r, r) for r in (4, 8, 8, 16, 16, 32, 32)]
    out = model.synthesis(w_plus, noise=noise)
    assert out.shape == (3, 3, 32, 32)
    torch.testing.assert_close(out, ref_synthesis(sd, w_plus, noise, n_blocks=3), rtol=1e-4, atol=1e-4)
    # the intermediate RGB of the skip architecture at 16x16 = the reference stopped after two blocks
    torch.testing.assert_close(model.synthesis(w_plus, noise=noise, resolution=16),
                               ref_synthesis(sd, w_plus, noise, n_blocks=2), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model(z, noise=noise), model.synthesis(w[:, None].expand(-1, 8, -1), noise=noise))


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad", "autograd"])
def test_one_sample_path_equals_the_reference(mode):
    # A batch of one modulates the weight instead of the activations, and without autograd it
    # updates activations in place: each sample alone must still be the reference's output.
    model = randomised(core.models.build("stylegan2", **TINY))
    sd = model.state_dict()
    w_plus = torch.randn(3, model.n_latent, 16)
    noise = [torch.randn(3, 1, r, r) for r in (4, 8, 8, 16, 16, 32, 32)]
    expected = ref_synthesis(sd, w_plus, noise, n_blocks=3)
    for i in range(3):
        latent = w_plus[i : i + 1].clone().requires_grad_(mode == "autograd")
        context = {"inference_mode": torch.inference_mode(), "no_grad": torch.no_grad()}.get(mode, torch.enable_grad())
        with context:
            out = model.synthesis(latent, noise=[n[i : i + 1] for n in noise])
        assert out.requires_grad == (mode == "autograd")
        torch.testing.assert_close(out.detach(), expected[i : i + 1], rtol=1e-4, atol=1e-4)
        if mode == "autograd":
            out.square().mean().backward()
            assert latent.grad.abs().sum(-1).gt(0).all()


def test_noise_none_uses_the_stored_buffers_and_a_list_overrides_them():
    model = randomised(core.models.build("stylegan2", **TINY))
    w_plus = torch.randn(2, model.n_latent, 16)
    stored = model.synthesis(w_plus)
    torch.testing.assert_close(model.synthesis(w_plus), stored)  # deterministic
    torch.testing.assert_close(model.synthesis(w_plus, noise=model.stored_noise()), stored)
    assert not torch.allclose(model.synthesis(w_plus, noise="random"), stored)
    # one explicit layer changed: the output changes; per-sample noise [B, 1, r, r] is accepted
    noise = list(model.stored_noise())
    noise[3] = torch.randn(2, 1, 16, 16)
    changed = model.synthesis(w_plus, noise=noise)
    assert not torch.allclose(changed, stored)
    torch.testing.assert_close(model.synthesis(w_plus, noise=noise), changed)
    with pytest.raises(ValueError, match="7 entries"):
        model.synthesis(w_plus, noise=noise[:6])
    with pytest.raises(ValueError, match=r"\[B, 8, 16\]"):
        model.synthesis(torch.randn(2, 7, 16))


def test_w_plus_layout_last_index_drives_only_the_last_to_rgb():
    model = randomised(core.models.build("stylegan2", **TINY))
    w_plus = torch.randn(1, model.n_latent, 16)
    moved = w_plus.clone()
    moved[:, 7] += 1.0  # n_latent - 1: only to_rgbs.2 (32x32)
    assert not torch.allclose(model.synthesis(moved), model.synthesis(w_plus))
    torch.testing.assert_close(model.synthesis(moved, resolution=16), model.synthesis(w_plus, resolution=16))
    moved = w_plus.clone()
    moved[:, 5] += 1.0  # to_rgbs.1 (16x16) and convs.4 (the 32x32 upsampling conv)
    assert not torch.allclose(model.synthesis(moved, resolution=16), model.synthesis(w_plus, resolution=16))
    torch.testing.assert_close(model.synthesis(moved, resolution=8), model.synthesis(w_plus, resolution=8))
    with pytest.raises(ValueError, match="power of two"):
        model.synthesis(w_plus, resolution=24)


def test_gradients_reach_w_plus_and_noise():
    model = randomised(core.models.build("stylegan2", **TINY))
    w_plus = torch.randn(2, model.n_latent, 16, requires_grad=True)
    noise = [t.expand(2, -1, -1, -1).clone().requires_grad_(True) for t in model.stored_noise()]
    model.synthesis(w_plus, noise=noise).square().mean().backward()
    assert w_plus.grad.abs().sum(-1).gt(0).all()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in noise)
