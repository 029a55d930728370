"""The registry's loader: strict, built without random init, and clear about who owns the tensors."""

from __future__ import annotations

import pytest
import torch

import core.models as registry

TINY_DCGAN = {"nz": 8, "ngf": 4, "nc": 3}
TINY_STYLEGAN2 = {"size": 8, "style_dim": 16, "n_mlp": 2, "channel_multiplier": 1}


def reference(arch, config, seed=0):
    torch.manual_seed(seed)
    return registry.build(arch, **config).eval()


@pytest.mark.parametrize("arch, config", [("dcgan", TINY_DCGAN), ("stylegan2", TINY_STYLEGAN2)])
def test_loaded_model_is_the_reference_and_nothing_is_left_on_meta(arch, config):
    ref = reference(arch, config)
    model = registry.load(arch, ref.state_dict(), **config)
    tensors = [*model.parameters(), *model.buffers()]
    assert tensors and not any(t.is_meta for t in tensors)
    assert all(t.device.type == "cpu" and not t.requires_grad for t in model.parameters())
    assert not model.training
    assert set(model.state_dict()) == set(ref.state_dict())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ref.state_dict().items())
    if arch == "dcgan":
        z = torch.randn(2, 8, 1, 1)
        with torch.no_grad():
            assert torch.equal(model(z), ref(z))


def test_default_load_copies_so_the_callers_dict_stays_independent():
    state = reference("dcgan", TINY_DCGAN).state_dict()
    before = state["main.0.weight"].clone()
    model = registry.load("dcgan", state, **TINY_DCGAN)
    state["main.0.weight"].zero_()
    assert torch.equal(model.state_dict()["main.0.weight"], before)


def test_copy_false_takes_owned_tensors_without_copying():
    state = {k: v.clone() for k, v in reference("dcgan", TINY_DCGAN).state_dict().items()}
    model = registry.load("dcgan", state, copy=False, **TINY_DCGAN)
    assert model.state_dict()["main.0.weight"].data_ptr() == state["main.0.weight"].data_ptr()


def test_half_precision_checkpoint_becomes_the_modules_dtype():
    ref = reference("dcgan", TINY_DCGAN)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in ref.state_dict().items()}
    model = registry.load("dcgan", half, copy=False, **TINY_DCGAN)
    weight = model.state_dict()["main.0.weight"]
    assert weight.dtype == torch.float32
    assert torch.equal(weight, half["main.0.weight"].float())


def test_non_contiguous_tensors_are_made_contiguous():
    state = {k: v.clone() for k, v in reference("dcgan", TINY_DCGAN).state_dict().items()}
    w = state["main.0.weight"]
    state["main.0.weight"] = w.transpose(0, 1).contiguous().transpose(0, 1)  # same values, other strides
    model = registry.load("dcgan", state, copy=False, **TINY_DCGAN)
    assert model.state_dict()["main.0.weight"].is_contiguous()
    assert torch.equal(model.state_dict()["main.0.weight"], w)


@pytest.mark.parametrize("damage", ["missing", "unexpected", "shape"])
def test_strict_failures_name_the_problem(damage):
    state = reference("dcgan", TINY_DCGAN).state_dict()
    if damage == "missing":
        del state["main.0.weight"]
    elif damage == "unexpected":
        state["extra.weight"] = torch.zeros(1)
    else:
        state["main.0.weight"] = torch.zeros(1, 1, 1, 1)
    with pytest.raises(registry.StateDictMismatchError, match={"missing": "missing key", "unexpected": "unexpected key",
                                                              "shape": "shape mismatch"}[damage]):
        registry.load("dcgan", state, **TINY_DCGAN)


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="Known architectures: .*dcgan"):
        registry.load("nope", {})


def test_models_loaded_from_one_template_are_independent():
    # Loaded models are structural copies of one cached meta-device module per (arch, config).
    state = reference("dcgan", TINY_DCGAN).state_dict()
    first = registry.load("dcgan", state, **TINY_DCGAN)
    second = registry.load("dcgan", state, **TINY_DCGAN)
    assert first is not second and first.main is not second.main
    assert first.main[0].weight.data_ptr() != second.main[0].weight.data_ptr()
    calls = []
    first.main[0].register_forward_hook(lambda *args: calls.append(1))
    first.train()
    assert not second.main[0]._forward_hooks and not second.training
    with torch.no_grad():
        first.main[0].weight.zero_()
        second(torch.randn(1, 8, 1, 1))
    assert calls == [] and second.main[0].weight.abs().sum() > 0
    template = registry._template("dcgan", TINY_DCGAN)[0]
    assert all(t.is_meta for t in template.parameters()) and not template.main[0]._forward_hooks


def test_a_module_registered_twice_stays_one_module():
    class Shared(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 1)
            self.alias = self.conv

    clone = registry._clone_structure(Shared())
    assert clone.alias is clone.conv


def test_strip_prefix_only_when_every_key_has_it():
    a, b = torch.zeros(1), torch.ones(1)
    assert registry.strip_prefix({"module.x": a, "module.y.z": b}) == {"x": a, "y.z": b}
    assert registry.strip_prefix({"module.x": a, "y": b}) == {"module.x": a, "y": b}  # a real name, not a wrapper
    assert registry.strip_prefix({"generator.x": a}, "generator.") == {"x": a}
    assert registry.strip_prefix({}) == {}


def test_fill_bn_counters_adds_the_missing_counters_only():
    stats = {"bn.running_mean": torch.zeros(2), "bn.running_var": torch.ones(2),
             "old.running_mean": torch.zeros(2), "old.num_batches_tracked": torch.tensor(7)}
    filled = registry.fill_bn_counters(stats)
    assert filled["bn.num_batches_tracked"].dtype == torch.long and int(filled["bn.num_batches_tracked"]) == 0
    assert int(filled["old.num_batches_tracked"]) == 7  # a stored counter is kept
    assert set(filled) == set(stats) | {"bn.num_batches_tracked"} and "bn.num_batches_tracked" not in stats
