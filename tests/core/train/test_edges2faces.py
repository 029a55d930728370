"""The edges -> faces data, evaluation and export (``core.train.edges2faces``)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import core.models
from core.train import edges2faces, pix2pix

TINY = {"ngf": 2, "num_downs": 6}


def constant_pairs(folder, sketch_values, face_values):
    """One aligned ``sketch|face`` PNG per pair, each half a constant grey."""
    folder.mkdir(parents=True)
    for i, (sketch, face) in enumerate(zip(sketch_values, face_values)):
        pix2pix.save_aligned(Image.new("RGB", (64, 64), (sketch,) * 3), Image.new("RGB", (64, 64), (face,) * 3),
                             folder / f"{i:05d}.png")


@pytest.fixture
def tiny_generator(tmp_path):
    torch.manual_seed(0)
    model = core.models.build("pix2pix_unet", **TINY)
    path = tmp_path / "g.safetensors"
    save_file(model.state_dict(), str(path), metadata={"config": json.dumps(TINY), "step": "7"})
    return model.eval(), path


def test_evaluation_has_known_baselines_and_the_models_l1(tmp_path, tiny_generator):
    model, weights = tiny_generator
    constant_pairs(tmp_path / "data" / "train", [255, 255], [0, 255])  # the mean training face: 0 in [-1, 1]
    constant_pairs(tmp_path / "data" / "test", [255, 255, 255], [255, 255, 255])  # white faces: +1
    result = edges2faces.evaluate(tmp_path / "data", weights)
    assert result["pairs"] == 3
    assert result["baseline_mean_training_face"] == pytest.approx(0.5)  # |0 - 1| / 2
    assert result["baseline_blurred_sketch"] == pytest.approx(0.0)  # a white sketch blurred is white
    with torch.inference_mode():
        out = model(torch.ones(1, 3, 64, 64))  # eval mode: the same output for every (identical) sketch
    assert result["model_eval_mode"] == pytest.approx(float((out.clamp(-1, 1) - 1).abs().mean() / 2), abs=1e-6)


def test_export_halves_the_floats_and_keeps_the_metadata(tmp_path, tiny_generator):
    model, weights = tiny_generator
    out = tmp_path / "ship" / "edges2faces64.safetensors"
    digest = edges2faces.export(weights, out)
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    state = load_file(str(out))
    original = model.state_dict()
    assert set(state) == set(original)
    for key, value in state.items():
        if original[key].is_floating_point():
            assert value.dtype == torch.float16 and torch.equal(value, original[key].half())
        else:
            assert torch.equal(value, original[key])  # the BatchNorm counters stay integers
    with safe_open(str(out), "pt") as f:
        assert f.metadata() == {"config": json.dumps(TINY), "step": "7", "dtype": "float16"}
    loaded = core.models.load("pix2pix_unet", state, **TINY)
    assert loaded.state_dict()["model.model.0.weight"].dtype == torch.float32


@pytest.mark.real_weights("dcgan.faces64")
def test_data_from_the_dcgan_and_evaluation(tmp_path):
    data = tmp_path / "faces"
    edges2faces.make_data(data, n_train=4, n_test=3, seed=0)
    a, b = pix2pix.load_aligned_folder(data / "test", 64)
    assert a.shape == (3, 3, 64, 64)
    assert (a > 0.9).float().mean() > 0.6  # sketches: mostly white with dark lines
    torch.manual_seed(0)
    model = core.models.build("pix2pix_unet", ngf=2, num_downs=6)
    save_file(model.state_dict(), str(tmp_path / "g.safetensors"), metadata={"config": json.dumps(
        {"ngf": 2, "num_downs": 6})})
    result = edges2faces.evaluate(data, tmp_path / "g.safetensors")
    assert result["pairs"] == 3
    for key in ("model_eval_mode", "model_paper_mode", "baseline_blurred_sketch", "baseline_mean_training_face"):
        assert 0 < result[key] < 1


@pytest.mark.real_weights("pix2pix.edges2faces64", "dcgan.faces64")
def test_shipped_edges2faces_model_beats_the_trivial_baselines_on_held_out_faces():
    """Faces from the held-out seed (1), sketched as in training: the model beats the mean face."""
    from core.images import to_pil, to_tensor
    from core.pipelines.sketch import face_sketch
    from core.weights import load_model

    dcgan, model = load_model("dcgan.faces64"), load_model("pix2pix.edges2faces64")
    with torch.inference_mode():
        train_faces = dcgan(torch.randn(64, 100, generator=torch.Generator().manual_seed(0)))
        faces = dcgan(torch.randn(24, 100, generator=torch.Generator().manual_seed(1)))
        sketches = torch.cat([to_tensor(face_sketch(to_pil(f), 64)) for f in faces])
        eval_out = model(sketches)
        paper_out = torch.cat([model(s[None], batch_stats=True, dropout=True) for s in sketches])
    l1 = lambda pred: float((pred.clamp(-1, 1) - faces).abs().mean() / 2)  # noqa: E731
    mean_face = l1(train_faces.mean(0, keepdim=True).expand_as(faces))
    assert l1(paper_out) < mean_face and l1(eval_out) < mean_face
    assert l1(paper_out) < l1(sketches)
