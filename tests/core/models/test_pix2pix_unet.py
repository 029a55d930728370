import json

import pytest
import torch
import torch.nn.functional as F

import core.models
from core.models import StateDictMismatchError
from tests.conftest import SPECS_DIR

SPEC = json.loads((SPECS_DIR / "pix2pix_unet256.json").read_text())


def scaled_spec_state(ngf: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the published key names and the spec's shapes scaled from ngf 64 to ``ngf``."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape, dtype in SPEC["state_dict"]:
        shape = [d * ngf // 64 if i < 2 and d % 64 == 0 else d for i, d in enumerate(shape)]
        if dtype == "int64":
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(("running_mean", "bias")):
            state[key] = torch.randn(shape, generator=g) * 0.1
        elif key.endswith("weight") and len(shape) == 1:  # BatchNorm scale
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[key] = torch.randn(shape, generator=g) * 0.2
    return state


def reference_forward(s: dict[str, torch.Tensor], x: torch.Tensor, num_downs: int, batch_stats: bool) -> torch.Tensor:
    """The reference UnetGenerator written out with functional ops (dropout off)."""

    def bn(y, p):
        return F.batch_norm(y, None if batch_stats else s[p + "running_mean"],
                            None if batch_stats else s[p + "running_var"], s[p + "weight"], s[p + "bias"],
                            training=batch_stats, eps=1e-5)

    def block(y, prefix, depth):  # depth 1 = just below the outermost block
        innermost = depth == num_downs - 1
        h = F.leaky_relu(y, 0.2)
        h = F.conv2d(h, s[prefix + "1.weight"], stride=2, padding=1)
        if innermost:
            h = F.relu(h)
            h = F.conv_transpose2d(h, s[prefix + "3.weight"], stride=2, padding=1)
            h = bn(h, prefix + "4.")
        else:
            h = bn(h, prefix + "2.")
            h = block(h, prefix + "3.model.", depth + 1)
            h = F.relu(h)
            h = F.conv_transpose2d(h, s[prefix + "5.weight"], stride=2, padding=1)
            h = bn(h, prefix + "6.")
        return torch.cat([y, h], 1)

    h = F.conv2d(x, s["model.model.0.weight"], stride=2, padding=1)
    h = block(h, "model.model.1.model.", 1)
    h = F.conv_transpose2d(F.relu(h), s["model.model.3.weight"], s["model.model.3.bias"], stride=2, padding=1)
    return torch.tanh(h)


def test_full_size_model_has_exactly_the_published_keys_and_shapes():
    with torch.device("meta"):
        model = core.models.build("pix2pix_unet", ngf=64, num_downs=8)
    own = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()]
    assert own == [tuple(entry) for entry in SPEC["state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == SPEC["params"] == 54_413_955


def test_loads_spec_named_keys_strictly_and_matches_reference_forward_in_eval_mode():
    state = scaled_spec_state(ngf=4)
    model = core.models.load("pix2pix_unet", state, ngf=4, num_downs=8)
    assert not model.training
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 3, 256, 256)
    torch.testing.assert_close(out, reference_forward(state, x, 8, batch_stats=False), atol=1e-5, rtol=1e-4)
    assert model(x).equal(out)  # eval mode is deterministic


def test_paper_mode_uses_the_image_statistics_and_leaves_the_buffers_alone():
    state = scaled_spec_state(ngf=4, seed=1)
    model = core.models.load("pix2pix_unet", state, ngf=4, num_downs=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        paper = model(x, batch_stats=True, dropout=False)
        eval_out = model(x)
    # the reference's train-mode BatchNorm at batch size 1 (test.py without --eval), dropout aside
    torch.testing.assert_close(paper, reference_forward(state, x, 8, batch_stats=True), atol=1e-5, rtol=1e-4)
    assert (paper - eval_out).abs().max() > 1e-2
    for key, value in model.state_dict().items():
        assert value.equal(before[key]), key
    # each image of a batch is normalised with its own statistics (= batch size 1, image by image)
    x2 = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        pair = model(torch.cat([x, x2]), batch_stats=True, dropout=False)
        alone = model(x2, batch_stats=True, dropout=False)
    torch.testing.assert_close(pair[:1], paper, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pair[1:], alone, atol=1e-5, rtol=1e-4)


def test_dropout_variations_are_seeded():
    torch.manual_seed(0)
    model = core.models.build("pix2pix_unet", ngf=4, num_downs=6).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1

    def run(seed):
        return model(x, batch_stats=True, dropout=True, generator=torch.Generator().manual_seed(seed))

    with torch.no_grad():
        a, a2, b = run(1), run(1), run(2)
        no_dropout = model(x, batch_stats=True, dropout=False)
    assert a.equal(a2)
    assert (a - b).abs().max() > 1e-3
    assert (a - no_dropout).abs().max() > 1e-3
    # the dropout sits in the (num_downs - 5) innermost ngf*8 blocks only, after the up path
    drops = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == ["model.model.1.model.3.model.3.model.3.model.7"]


def test_legacy_files_without_num_batches_tracked_and_with_module_prefix_load():
    state = scaled_spec_state(ngf=4)
    legacy = {"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    model = core.models.load("pix2pix_unet", legacy, ngf=4, num_downs=8)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    torch.testing.assert_close(model(x), reference_forward(state, x, 8, batch_stats=False), atol=1e-5, rtol=1e-4)


def test_mismatched_weights_raise():
    state = scaled_spec_state(ngf=4)
    with pytest.raises(StateDictMismatchError, match="shape mismatch"):
        core.models.load("pix2pix_unet", state, ngf=8, num_downs=8)
    state.pop("model.model.3.bias")
    with pytest.raises(StateDictMismatchError, match="missing"):
        core.models.load("pix2pix_unet", state, ngf=4, num_downs=8)


def test_input_size_must_fit_the_depth():
    model = core.models.build("pix2pix_unet", ngf=4, num_downs=6).eval()
    with pytest.raises(ValueError, match="divisible by 64"):
        model(torch.zeros(1, 3, 96, 64))
