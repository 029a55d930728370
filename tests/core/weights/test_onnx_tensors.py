"""ONNX initializers read without the onnx package, and MI-GAN converted from an ONNX file on the Hub."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import core.models
from core.weights.onnx_tensors import read_initializers
from tests.core.models.test_migan import TINY, randomised
from tests.support.onnx_files import field, onnx_model, tensor_proto


def test_initializers_of_every_stored_layout(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"conv.weight": rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
              "typed": rng.standard_normal((2, 5)).astype(np.float32),
              "scalar": np.array(0.25, np.float32), "half": rng.standard_normal(6).astype(np.float16),
              "index": np.array([-3, 0, 7], np.int64), "bytes": np.arange(4, dtype=np.uint8)}
    path = tmp_path / "m.onnx"
    path.write_bytes(onnx_model(arrays, typed=("typed",)))
    tensors = read_initializers(path)
    assert list(tensors) == list(arrays)
    for name, array in arrays.items():
        assert tuple(tensors[name].shape) == array.shape
        assert np.array_equal(tensors[name].numpy(), array), name


def test_damaged_or_foreign_files_are_clear_errors(tmp_path):
    good = onnx_model({"w": np.ones((2, 2), np.float32)})
    (tmp_path / "cut.onnx").write_bytes(good[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_initializers(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_bytes(field(1, 8))
    with pytest.raises(ValueError, match="not an ONNX model"):
        read_initializers(tmp_path / "text.onnx")
    wrong = field(7, field(5, field(1, b"\x02\x02") + field(2, 1) + field(8, b"w") + field(9, b"\0" * 12)))
    (tmp_path / "short.onnx").write_bytes(wrong)
    with pytest.raises(ValueError, match="3 values for shape"):
        read_initializers(tmp_path / "short.onnx")
    external = field(7, field(5, tensor_proto("w", np.ones(2, np.float32)) + field(14, 1)))
    (tmp_path / "external.onnx").write_bytes(external)
    with pytest.raises(ValueError, match="external"):
        read_initializers(tmp_path / "external.onnx")


def migan_pipeline_onnx(model: torch.nn.Module) -> bytes:
    """Initializers as the exported MI-GAN pipeline names them: the generator under ``model.``,
    next to the pipeline's own (its blur kernel) and exporter constants."""
    arrays = {f"model.{k}": v.numpy() for k, v in model.state_dict().items()}
    arrays["gaussian_blur.weight"] = np.full((1, 1, 5, 5), 0.04, np.float32)
    arrays["onnx::Mul_1234"] = np.array(2.0, np.float32)
    return onnx_model(arrays)


def test_migan_from_an_onnx_pipeline_through_the_resolver_and_the_local_hub(local_hub, write_manifest):
    from core.cache import MODEL_CACHE
    from core.weights import load_model, resolve

    source = randomised(core.models.build("migan", **TINY), seed=3)
    data = migan_pipeline_onnx(source)
    commit = local_hub.add_file("author/migan", "migan_pipeline_v2.onnx", data)
    write_manifest({"migan.tiny": {
        "arch": "migan", "config": TINY, "title": "tiny MI-GAN", "license": "MIT",
        "sources": [{"kind": "hf", "repo_id": "author/migan", "filename": "migan_pipeline_v2.onnx",
                     "revision": commit, "sha256": hashlib.sha256(data).hexdigest(),
                     "format": {"type": "onnx_initializers", "select_prefix": "model."}}]}})
    path = resolve("migan.tiny")
    assert path.suffix == ".safetensors"
    MODEL_CACHE.clear()
    try:
        model = load_model("migan.tiny", device="cpu")
        x = torch.randn(1, 4, 16, 16)
        with torch.no_grad():
            assert torch.equal(model(x), source(x))
    finally:
        MODEL_CACHE.clear()


def test_an_onnx_file_without_some_generator_weights_is_refused(local_hub, write_manifest):
    from core.models import StateDictMismatchError
    from core.weights import load_model

    source = randomised(core.models.build("migan", **TINY))
    arrays = {f"model.{k}": v.numpy() for k, v in source.state_dict().items() if "noise_strength" not in k}
    data = onnx_model(arrays)
    commit = local_hub.add_file("author/migan", "m.onnx", data)
    write_manifest({"migan.tiny": {
        "arch": "migan", "config": TINY, "title": "tiny MI-GAN", "license": "MIT",
        "sources": [{"kind": "hf", "repo_id": "author/migan", "filename": "m.onnx", "revision": commit,
                     "sha256": hashlib.sha256(data).hexdigest(),
                     "format": {"type": "onnx_initializers", "select_prefix": "model."}}]}})
    with pytest.raises(StateDictMismatchError, match=r"missing key\(s\): .*noise_strength"):
        load_model("migan.tiny", device="cpu")
