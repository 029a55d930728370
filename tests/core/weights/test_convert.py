"""Checkpoint formats to state dicts: Lightning checkpoints and TorchScript archives read without running code."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

import core.models
from core.weights import build_model, convert
from core.weights.convert import read_state_dict
from core.weights.unpickler import OpaqueObject, restricted_load

TINY = dict(ngf=8, n_downsampling=3, n_blocks=1)
LIGHTNING = {"type": "lightning_ckpt", "key": "state_dict", "select_prefix": "generator."}

MARKERS: list[str] = []


class Marker:
    """Not on any allowlist: a normal unpickler would import this module and call __setstate__."""

    def __init__(self, payload):
        self.payload = payload

    def __setstate__(self, state):
        MARKERS.append("setstate ran")
        self.__dict__.update(state)


def tiny_generator(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    model = core.models.build("lama", **TINY)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                tensor.normal_()
    return model.eval()


def fake_lightning_checkpoint(path: Path, generator: nn.Module) -> Path:
    """The layout of LaMa's best.ckpt: generator.* and discriminator.* tensors, pickled config objects."""
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state["discriminator.model0.0.weight"] = torch.randn(4, 3, 3, 3)
    torch.save({
        "epoch": 40, "global_step": 1000, "pytorch-lightning_version": "1.2.9",
        "state_dict": state,
        "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(3)}}}],
        "hyper_parameters": {"config": Marker({"generator": {"ngf": 64}}), "use_ddp": True},
    }, path)
    return path


def test_lightning_checkpoint_selects_the_generator_without_running_pickled_classes(tmp_path):
    generator = tiny_generator()
    path = fake_lightning_checkpoint(tmp_path / "best.ckpt", generator)
    MARKERS.clear()
    checkpoint = restricted_load(path)
    config = checkpoint["hyper_parameters"]["config"]
    assert isinstance(config, OpaqueObject) and config.global_name.endswith("test_convert.Marker")
    assert config.state == {"payload": {"generator": {"ngf": 64}}}  # recorded, not applied
    assert MARKERS == []  # Marker.__setstate__ never ran
    assert checkpoint["epoch"] == 40 and checkpoint["optimizer_states"][0]["state"][0]["exp_avg"].shape == (3,)

    state = read_state_dict(path, LIGHTNING)
    assert set(state) == set(generator.state_dict())  # discriminator dropped by the prefix selection
    for name, tensor in generator.state_dict().items():
        assert torch.equal(state[name], tensor) and state[name].dtype == tensor.dtype
    loaded = core.models.load("lama", state, **TINY)
    x = torch.rand(1, 4, 16, 16)
    assert torch.equal(loaded(x), generator(x))


def test_lightning_checkpoint_through_the_hub_resolver(local_hub, write_manifest):
    import tempfile

    generator = tiny_generator(3)
    with tempfile.TemporaryDirectory() as tmp:
        data = fake_lightning_checkpoint(Path(tmp) / "best.ckpt", generator).read_bytes()
    commit = local_hub.add_file("org/big-lama", "big-lama/models/best.ckpt", data)
    write_manifest({"lama.tiny": {
        "arch": "lama", "config": TINY, "title": "tiny LaMa", "license": "Apache-2.0",
        "sources": [{"kind": "hf", "repo_id": "org/big-lama", "filename": "big-lama/models/best.ckpt",
                     "revision": commit, "sha256": None, "format": LIGHTNING}]}})
    model = build_model("lama.tiny", device="cpu", dtype=torch.float32)
    x = torch.rand(1, 4, 24, 24)
    assert torch.equal(model(x), generator(x))


class TrainingModule(nn.Module):  # what bin/to_jit.py traces: a wrapper around the training module
    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, image, mask):
        prediction = self.generator(torch.cat([image * (1 - mask), mask], dim=1))
        return mask * prediction + (1 - mask) * image


class JITWrapper(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image, mask):
        return self.model(image, mask)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("wrapped", [True, False], ids=["to_jit-wrapper", "bare-generator"])
def test_torchscript_tensors_are_read_without_torchscript(tmp_path, monkeypatch, wrapped):
    generator = tiny_generator(1)
    image, mask = torch.rand(1, 3, 16, 16), (torch.rand(1, 1, 16, 16) > 0.5).float()
    if wrapped:
        traced = torch.jit.trace(JITWrapper(TrainingModule(generator)), (image, mask))
    else:
        traced = torch.jit.trace(generator, torch.cat([image, mask], dim=1))
    path = tmp_path / "big-lama.pt"
    traced.save(str(path))

    def refuse(*args, **kwargs):
        raise AssertionError("TorchScript must not be loaded")

    monkeypatch.setattr(torch.jit, "load", refuse)
    state = read_state_dict(path, {"type": "torchscript_tensors"})
    prefix = "model.generator." if wrapped else ""
    assert set(state) == {prefix + k for k in generator.state_dict()}
    loaded = core.models.load("lama", state, **TINY)  # the arch maps the prefix onto its own keys
    x = torch.rand(1, 4, 16, 16)
    assert torch.equal(loaded(x), generator(x))


def test_readers_are_registered():
    assert {"lightning_ckpt", "torchscript_tensors"} <= set(convert.READERS)


def _torch_zip(path: Path, obj, storage_extra: bytes = b"", zeros_mb: int = 0) -> Path:
    """``torch.save(obj)`` rewritten as a deflate-compressed zip; the first storage gets ``zeros_mb``
    MB of zeros appended (a few hundred KB compressed)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            with dst.open(name, "w", force_zip64=True) as out:
                out.write(src.read(name))
                if name.endswith("/data/0"):
                    for _ in range(zeros_mb):
                        out.write(bytes(1 << 20))
    return path


@pytest.mark.parametrize("kind", ["torch_pickle", "lightning_ckpt"])
def test_stride_zero_views_are_refused_before_they_are_copied(tmp_path, kind):
    # One float declared as an 8192x8192 view: the copy into a contiguous tensor would take 256 MB
    # (a crafted file can declare terabytes the same way).
    expanded = torch.zeros(1).expand(8192, 8192)
    assert expanded.stride() == (0, 0)
    path = tmp_path / "expanded.pt"
    torch.save({"w": expanded}, path)
    with pytest.raises(ValueError, match="declares 67,108,864 elements on a storage of 1; stride-0"):
        read_state_dict(path, {"type": kind})


def test_deflated_storages_are_inflated_only_as_far_as_the_tensor_needs(tmp_path):
    import tracemalloc

    path = _torch_zip(tmp_path / "padded.ckpt", {"w": torch.arange(4.0)}, zeros_mb=200)
    assert path.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        state = read_state_dict(path, {"type": "lightning_ckpt"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert torch.equal(state["w"], torch.arange(4.0))
    assert peak < 20 << 20, f"{peak / 2**20:.0f} MB allocated to read 16 bytes of tensors"


@pytest.mark.parametrize("kind", ["torch_pickle", "lightning_ckpt"])
def test_archives_inflating_past_the_cap_are_refused(tmp_path, monkeypatch, kind):
    path = _torch_zip(tmp_path / "bomb.ckpt", {"w": torch.arange(4.0)}, zeros_mb=3)
    monkeypatch.setenv("GANHUB_MAX_CHECKPOINT_MB", "2")
    with pytest.raises(ValueError, match="inflates to 3 MB; the converter's limit is 2 MB"):
        read_state_dict(path, {"type": kind})
