"""GeneGAN: official TF variable names/layouts load strictly and compute what the TF graph computes."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import core.models as registry
from core.models.genegan import GeneGAN, GeneGANCritic
from tests.conftest import SPECS_DIR

SPEC = json.loads((SPECS_DIR / "genegan.json").read_text())


@functools.lru_cache(maxsize=None)
def _tf_state(seed: int, scale: float) -> dict[str, np.ndarray]:
    return _make_tf_state(seed, scale)


def tf_state(seed: int = 0, scale: float = 0.05) -> dict[str, np.ndarray]:
    """Random float32 arrays under the official TF variable names and shapes (generator + critics)."""
    return dict(_tf_state(seed, scale))


def _make_tf_state(seed: int, scale: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape, _ in SPEC["state_dict"] + SPEC["discriminator_variables"]:
        if name.endswith("moving_variance"):
            state[name] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        elif name.endswith("gamma"):
            state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            state[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return state


def conv2d_same_nhwc(x: np.ndarray, w: np.ndarray, stride: int = 2) -> np.ndarray:
    """tf.nn.conv2d(x, w [kh,kw,in,out], strides=2, padding='SAME'), written out by hand (even sizes)."""
    n, h, wd, _ = x.shape
    kh, kw, _, cout = w.shape
    oh, ow = h // stride, wd // stride
    pad = max((oh - 1) * stride + kh - h, 0)  # SAME: total padding, the extra pixel goes high
    lo = pad // 2
    xp = np.pad(x.astype(np.float64), ((0, 0), (lo, pad - lo), (lo, pad - lo), (0, 0)))
    out = np.zeros((n, oh, ow, cout))
    for ky in range(kh):  # out[y, x] += xp[y*s + ky, x*s + kx] @ w[ky, kx]
        for kx in range(kw):
            out += xp[:, ky: ky + stride * oh: stride, kx: kx + stride * ow: stride, :] @ w[ky, kx]
    return out


def conv2d_transpose_same_nhwc(x: np.ndarray, w: np.ndarray, stride: int = 2) -> np.ndarray:
    """tf.nn.conv2d_transpose(x, w [kh,kw,OUT,IN], output 2x, 'SAME'): each input pixel scatters w."""
    n, h, wd, _ = x.shape
    kh, kw, cout, _ = w.shape
    oh, ow = h * stride, wd * stride
    pad = max((h - 1) * stride + kh - oh, 0)
    lo = pad // 2
    full = np.zeros((n, (h - 1) * stride + kh, (wd - 1) * stride + kw, cout))
    for ky in range(kh):  # full[y*s + ky, x*s + kx] += x[y, x] @ w[ky, kx].T
        for kx in range(kw):
            full[:, ky: ky + stride * h: stride, kx: kx + stride * wd: stride, :] += x.astype(np.float64) @ w[ky, kx].T
    return full[:, lo: lo + oh, lo: lo + ow, :]


def test_param_count_and_tf_names_load_strictly():
    model = registry.load("genegan", tf_state())  # critic variables in the dict are documented extras
    assert sum(p.numel() for p in model.parameters()) == SPEC["params"] == 8_934_403
    assert not model.training


def test_conv_layout_matches_hand_written_nhwc_convolution():
    state = tf_state(1)
    model = registry.load("genegan", state)
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        ours = model.splitter.conv1(torch.from_numpy(image / 255.0).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    reference = conv2d_same_nhwc(image / 255.0, state["G_splitter/conv1/W"])
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_deconv_layout_matches_hand_written_transpose_convolution():
    state = tf_state(1)
    model = registry.load("genegan", state)
    x = np.random.default_rng(4).standard_normal((1, 32, 32, 256)).astype(np.float32)
    with torch.no_grad():
        ours = model.joiner.deconv3(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    reference = conv2d_transpose_same_nhwc(x, state["G_joiner/deconv3/W"])
    assert ours.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(ours, reference, atol=1e-3)


def test_batchnorm_uses_tf_epsilon_and_moving_statistics():
    state = tf_state(1)
    model = registry.load("genegan", state)
    x = np.random.default_rng(6).standard_normal((2, 256, 16, 16)).astype(np.float32)
    with torch.no_grad():
        ours = model.splitter.bn2(torch.from_numpy(x)).numpy()
    prefix = "G_splitter/conv2/batch_normalization/"
    c = lambda v: state[prefix + v][None, :, None, None]  # noqa: E731
    reference = (x - c("moving_mean")) / np.sqrt(c("moving_variance") + 1e-3) * c("gamma") + c("beta")
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_full_graph_matches_numpy_reference_and_value_range():
    """Splitter and joiner end to end against the official graph written in NHWC numpy (test mode)."""
    state = tf_state(1)
    model = registry.load("genegan", state)
    image = np.random.default_rng(8).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)

    def bn(h, scope):
        g = lambda v: state[f"{scope}/batch_normalization/{v}"]  # noqa: E731
        return (h - g("moving_mean")) / np.sqrt(g("moving_variance") + 1e-3) * g("gamma") + g("beta")

    lrelu = lambda h: np.maximum(h, 0.2 * h)  # noqa: E731
    h = lrelu(conv2d_same_nhwc(image / 255.0, state["G_splitter/conv1/W"]))
    h = lrelu(bn(conv2d_same_nhwc(h, state["G_splitter/conv2/W"]), "G_splitter/conv2"))
    h = lrelu(bn(conv2d_same_nhwc(h, state["G_splitter/conv3/W"]), "G_splitter/conv3"))
    background, obj = h[..., :-128], h[..., -128:]
    g = np.concatenate([background, np.zeros_like(obj)], -1)  # join(A, 0): the "remove" output
    g = np.maximum(bn(conv2d_transpose_same_nhwc(g, state["G_joiner/deconv1/W"]), "G_joiner/deconv1"), 0)
    g = np.maximum(bn(conv2d_transpose_same_nhwc(g, state["G_joiner/deconv2/W"]), "G_joiner/deconv2"), 0)
    g = conv2d_transpose_same_nhwc(g, state["G_joiner/deconv3/W"]) + state["G_joiner/b"]
    reference = (np.tanh(g) + 1) * 255 / 2
    with torch.no_grad():
        a, x = model.split(torch.from_numpy(image).permute(0, 3, 1, 2))
        np.testing.assert_allclose(x.permute(0, 2, 3, 1).numpy(), obj, atol=1e-4)  # the object = LAST 128 channels
        ours = model.join(a, torch.zeros_like(x)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, reference, atol=2e-2)
    assert 0 <= ours.min() and ours.max() <= 255


def test_unknown_tf_variable_is_rejected_and_missing_one_named():
    state = tf_state()
    state["G_splitter/conv9/W"] = np.zeros((4, 4, 3, 3), np.float32)
    with pytest.raises(registry.StateDictMismatchError, match="conv9"):
        registry.load("genegan", state)
    state = tf_state()
    del state["G_joiner/b"]
    with pytest.raises(registry.StateDictMismatchError, match="out_bias"):
        registry.load("genegan", state)


def test_optimizer_slots_and_critics_are_dropped():
    state = tf_state()  # holds the critics' D_Ax/... and D_Be/... variables too
    assert any(k.startswith(("D_Ax/", "D_Be/")) for k in state)
    state["G_joiner/b/RMSProp"] = np.zeros((1, 1, 1, 3), np.float32)
    state["G_splitter/conv1/W/RMSProp_1"] = np.zeros((4, 4, 3, 128), np.float32)
    state["global_step"] = np.array(5)
    state["beta1_power"] = np.array(0.9, np.float32)
    converted = GeneGAN.convert_state_dict(state)
    assert not [k for k in converted if "/" in k or "RMSProp" in k or k in ("global_step", "beta1_power")]
    generator_only = {k: v for k, v in tf_state().items() if k.startswith(("G_splitter/", "G_joiner/"))}
    loaded, reference = registry.load("genegan", state), registry.load("genegan", generator_only)
    assert set(loaded.state_dict()) == set(reference.state_dict())
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_critic_loads_tf_variables_and_flattens_nhwc():
    state = tf_state(1)
    critic = GeneGANCritic()
    critic.load_state_dict(GeneGANCritic.convert_state_dict(state, "D_Be"), strict=True)
    critic.eval()
    image = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        h = image / 255
        for i in range(1, 5):
            h = getattr(critic, f"conv{i}")(h)
            if i > 1:
                h = getattr(critic, f"bn{i}")(h)
            h = torch.nn.functional.leaky_relu(h, 0.2)
        nhwc = h.permute(0, 2, 3, 1).reshape(2, -1).numpy()
        expected = nhwc @ state["D_Be/fct/W"][:, 0] + state["D_Be/fct/b"][0]
        np.testing.assert_allclose(critic(image).numpy(), expected, atol=1e-4)


def test_own_names_round_trip_with_a_quarter_width_config():
    model = GeneGAN(ch=(32, 64, 128)).eval()
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    loaded = registry.load("genegan", state, ch=[32, 64, 128])
    x = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    background, obj = loaded.split(x)
    assert background.shape == (2, 96, 8, 8) and obj.shape == (2, 32, 8, 8)


def test_swap_twice_gives_back_reconstructions_at_the_feature_level():
    """Swapping the object parts twice restores the original (background, object) pairs exactly."""
    model = GeneGAN(ch=(8, 16, 32)).eval()
    ax, be = torch.rand(1, 3, 64, 64) * 255, torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        a, x = model.split(ax)
        b, e = model.split(be)
        (b1, x1), (a1, e1) = (b, x), (a, e)  # first swap: B takes x, A takes e
        (a2, x2), (b2, e2) = (a1, x1), (b1, e1)  # second swap: objects go back
        assert torch.equal(model.join(a2, x2), model(ax))
        assert torch.equal(model.join(b2, e2), model(be))


@pytest.mark.real_weights("genegan.eyeglasses64")
def test_trained_model_swap_twice_returns_close_to_the_reconstructions():
    """With the shipped weights: swap(swap(Ax, Be)) ~ (rec(Ax), rec(Be)), much closer than Ax is to Be."""
    from PIL import Image

    from core.weights import load_model

    examples = Path(__file__).resolve().parents[3] / "apps" / "glasses" / "examples"
    model = load_model("genegan.eyeglasses64", device="cpu", dtype=torch.float32)
    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(Image.open(examples / name).convert("RGB"))).permute(2, 0, 1)[None].float()

    ax, be = tensor("a_glasses.png"), tensor("b_face64.png")
    def swap(with_attr, without_attr):  # the paper's test-time swap: (B gains A's object, A loses it)
        (a, x), (b, _) = model.split(with_attr), model.split(without_attr)
        return model.join(b, x), model.join(a, torch.zeros_like(x))

    with torch.no_grad():
        bx, ae = swap(ax, be)
        ax_back, be_back = swap(bx, ae)
        rec_ax, rec_be = model(ax), model(be)
    assert (ax_back - rec_ax).abs().mean() < 0.5 * (ax - be).abs().mean()
    assert (be_back - rec_be).abs().mean() < 0.5 * (ax - be).abs().mean()
