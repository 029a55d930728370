"""Building models from their weights: strict loading, dtypes, the shared cache."""

from __future__ import annotations

import pytest
import torch

import core.models
from core import weights
from core.models import ARCHITECTURES
from core.weights import dtype_for, get_entry, load_manifest, load_model, loading
from tests.support.tiny_weights import hf_entry, safetensors_bytes, tiny_state


@pytest.mark.parametrize("damage", ["wrong_key", "wrong_shape", "missing_key"])
def test_strict_load_failures(local_hub, write_manifest, damage):
    state = tiny_state()
    if damage == "wrong_key":
        state["main.99.weight"] = state.pop("main.0.weight")
    elif damage == "wrong_shape":
        state["main.0.weight"] = torch.zeros(8, 16, 4, 4)
    else:
        del state["main.1.running_mean"]
    commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(state))
    write_manifest({"tiny.a": hf_entry("org/tiny", "g.safetensors", commit)})
    with pytest.raises(core.models.StateDictMismatchError) as err:
        weights.load_model("tiny.a", device="cpu")
    expected = {"wrong_key": "unexpected key(s): main.99.weight", "wrong_shape": "shape mismatch",
                "missing_key": "missing key(s): main.1.running_mean"}[damage]
    assert expected in str(err.value)


def test_every_generator_loaded_for_cuda_takes_its_manifest_dtype():
    for model_id, entry in load_manifest().items():
        if entry.arch not in ARCHITECTURES:  # diffusers, transformers: their own loaders
            continue
        assert "cuda_dtype" in entry.info, f"{model_id} has no cuda_dtype"
        assert dtype_for(model_id, "cuda") == getattr(torch, entry.info["cuda_dtype"])
        assert dtype_for(model_id, "cpu") == torch.float32
    # generators searched with gradients (PULSE) stay in float32
    assert dtype_for("stylegan2.ffhq1024", "cuda") == torch.float32
    assert dtype_for("dcgan.faces64", "cuda") == torch.float32


def test_load_model_builds_once_per_device_with_the_manifest_dtype(monkeypatch):
    from core.cache import MODEL_CACHE, module_bytes

    built = []
    monkeypatch.setattr(loading, "build_model", lambda model_id, dev, dtype: built.append((dev, dtype)) or
                        torch.nn.Linear(1, 1))
    MODEL_CACHE.clear()
    try:
        load_model("cyclegan.vintage", device="cuda")  # nothing runs on the device: the builder is replaced
        load_model("stylegan2.ffhq1024", device="cuda")
        load_model("cyclegan.vintage", device="cpu")
        load_model("cyclegan.vintage", device="cuda")  # cached: not built again
        entry_dtype = getattr(torch, get_entry("cyclegan.vintage").cuda_dtype)
        assert built == [(torch.device("cuda"), entry_dtype), (torch.device("cuda"), torch.float32),
                         (torch.device("cpu"), torch.float32)]
        # counted on the device it was asked for, whatever the stand-in holds
        assert MODEL_CACHE.total_bytes("cuda") == 2 * module_bytes(torch.nn.Linear(1, 1))
    finally:
        MODEL_CACHE.clear()
