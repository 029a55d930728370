import json

import pytest
import torch
import torch.nn.functional as F

import core.models
from core.models import StateDictMismatchError
from tests.conftest import SPECS_DIR

SPEC = json.loads((SPECS_DIR / "cyclegan_resnet9.json").read_text())
NORM_INDICES = [2, 5, 8, 20, 23]  # the norm layers outside the residual blocks


def scale(shape, ngf):
    return [d * ngf // 64 if i < 2 and d % 64 == 0 else d for i, d in enumerate(shape)]


def random_like_spec(entries, ngf, g):
    state = {}
    for key, shape, dtype in entries:
        shape = scale(shape, ngf)
        if dtype == "int64":
            state[key] = torch.tensor(3)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(("running_mean", "bias")):
            state[key] = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[key] = 0.2 * torch.randn(shape, generator=g)
    return state


def spec_state(ngf: int, seed: int = 0, extra: bool = False) -> dict[str, torch.Tensor]:
    """Published key names with the spec shapes at width ``ngf``; ``extra`` adds the legacy InstanceNorm keys."""
    g = torch.Generator().manual_seed(seed)
    entries = SPEC["state_dict"] + (SPEC["published_checkpoint_extra_keys"] if extra else [])
    return random_like_spec(entries, ngf, g)


def norm_keys(n_blocks=9):
    layers = [f"model.{i}" for i in NORM_INDICES]
    layers += [f"model.{10 + b}.conv_block.{j}" for b in range(n_blocks) for j in (2, 6)]
    return layers


def reference_forward(s, x, norm: str, n_blocks: int = 9):
    """The reference ResnetGenerator written out with functional ops."""

    def nrm(y, layer):
        if norm == "batch":
            return F.batch_norm(y, s[layer + ".running_mean"], s[layer + ".running_var"], s[layer + ".weight"],
                                s[layer + ".bias"], training=False, eps=1e-5)
        affine = norm == "instance_affine"
        return F.instance_norm(y, weight=s[layer + ".weight"] if affine else None,
                               bias=s[layer + ".bias"] if affine else None, eps=1e-5)

    def conv(y, layer, **kw):
        return F.conv2d(y, s[layer + ".weight"], s.get(layer + ".bias"), **kw)

    h = F.relu(nrm(conv(F.pad(x, (3,) * 4, mode="reflect"), "model.1"), "model.2"))
    h = F.relu(nrm(conv(h, "model.4", stride=2, padding=1), "model.5"))
    h = F.relu(nrm(conv(h, "model.7", stride=2, padding=1), "model.8"))
    for b in range(n_blocks):
        p = f"model.{10 + b}.conv_block."
        r = F.relu(nrm(conv(F.pad(h, (1,) * 4, mode="reflect"), p + "1"), p + "2"))
        r = nrm(conv(F.pad(r, (1,) * 4, mode="reflect"), p + "5"), p + "6")
        h = h + r
    for up, n in ((19, 20), (22, 23)):
        h = F.conv_transpose2d(h, s[f"model.{up}.weight"], s.get(f"model.{up}.bias"), stride=2, padding=1,
                               output_padding=1)
        h = F.relu(nrm(h, f"model.{n}"))
    return torch.tanh(conv(F.pad(h, (3,) * 4, mode="reflect"), "model.26"))


def test_full_size_model_has_exactly_the_published_keys_and_shapes():
    with torch.device("meta"):
        model = core.models.build("cyclegan_resnet", ngf=64, n_blocks=9, norm="instance")
    own = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()]
    assert own == [tuple(entry) for entry in SPEC["state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == SPEC["params"] == 11_378_179


def test_published_file_with_legacy_instance_norm_keys_loads_and_ignores_them():
    state = spec_state(ngf=8, extra=True)
    assert len(SPEC["published_checkpoint_extra_keys"]) == 69
    model = core.models.load("cyclegan_resnet", state, ngf=8, n_blocks=9, norm="instance")
    assert not any("running" in k or "num_batches" in k for k in model.state_dict())
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        out = model(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, reference_forward(state, x, "instance"), atol=1e-5, rtol=1e-4)
    # the stale statistics are never used: absurd values change nothing
    for key in state:
        if "running" in key:
            state[key] = state[key] * 100 + 5
    again = core.models.load("cyclegan_resnet", state, ngf=8, n_blocks=9, norm="instance")
    assert again(x).equal(out)


def test_vintagify_layout_block_names_and_affine_instance_norm():
    g = torch.Generator().manual_seed(1)
    state = spec_state(ngf=8, seed=1)
    for layer in norm_keys():
        width = 8 * {"2": 1, "5": 2, "8": 4, "20": 2, "23": 1}.get(layer.split(".")[1], 4)
        state[layer + ".weight"] = 1 + 0.1 * torch.randn(width, generator=g)
        state[layer + ".bias"] = 0.1 * torch.randn(width, generator=g)
    vintagify = {k.replace(".conv_block.", ".block."): v for k, v in state.items()}
    model = core.models.load("cyclegan_resnet", vintagify, ngf=8, n_blocks=9, norm="instance_affine")
    x = torch.rand(2, 3, 40, 40) * 2 - 1
    torch.testing.assert_close(model(x), reference_forward(state, x, "instance_affine"), atol=1e-5, rtol=1e-4)
    with pytest.raises(StateDictMismatchError, match="unexpected"):  # affine weights do not fit plain instance norm
        core.models.load("cyclegan_resnet", vintagify, ngf=8, n_blocks=9, norm="instance")


def test_dropout_slot_layout_and_batch_norm_without_num_batches_tracked():
    g = torch.Generator().manual_seed(2)
    state = {k: v for k, v in spec_state(ngf=8, seed=2).items() if not k.endswith("bias") or k == "model.26.bias"}
    for layer in norm_keys():
        width = 8 * {"2": 1, "5": 2, "8": 4, "20": 2, "23": 1}.get(layer.split(".")[1], 4)
        state[layer + ".weight"] = 1 + 0.1 * torch.randn(width, generator=g)
        state[layer + ".bias"] = 0.1 * torch.randn(width, generator=g)
        state[layer + ".running_mean"] = 0.1 * torch.randn(width, generator=g)
        state[layer + ".running_var"] = 0.5 + torch.rand(width, generator=g)
    # GAN Compression / use_dropout=True layout: a Dropout at conv_block.4 shifts the second conv and norm
    shifted = {}
    for key, value in state.items():
        for old, new in ((".conv_block.6.", ".conv_block.7."), (".conv_block.5.", ".conv_block.6.")):
            if old in key:
                key = key.replace(old, new)
                break
        shifted[key] = value
    model = core.models.load("cyclegan_resnet", shifted, ngf=8, n_blocks=9, norm="batch")
    x = torch.rand(1, 3, 24, 36) * 2 - 1
    torch.testing.assert_close(model(x), reference_forward(state, x, "batch"), atol=1e-5, rtol=1e-4)


def test_sizes_that_are_not_multiples_of_4_come_back_at_the_same_size():
    model = core.models.build("cyclegan_resnet", ngf=4, n_blocks=2).eval()
    assert model(torch.zeros(1, 3, 37, 50)).shape == (1, 3, 37, 50)


def test_unknown_norm_is_refused():
    with pytest.raises(ValueError, match="norm must be one of"):
        core.models.build("cyclegan_resnet", norm="group")
