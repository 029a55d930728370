"""pix2pix trainer: aligned data, safetensors checkpoints, exact resume, CLI dispatch; edges2faces data/eval."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

import core.models
from core.train import pix2pix
from core.train.__main__ import main as train_main

ARGS = ["--size", "32", "--num-downs", "5", "--ngf", "2", "--ndf", "4", "--n-layers-d", "2", "--batch", "2",
        "--seed", "3", "--log-every", "1"]


@pytest.fixture
def dataroot(tmp_path):
    """Six aligned A|B pairs (A: a dark square on white, B: a coloured version)."""
    rng = np.random.default_rng(0)
    (tmp_path / "data" / "train").mkdir(parents=True)
    for i in range(6):
        a = np.full((48, 48, 3), 255, np.uint8)
        y, x = rng.integers(4, 30, size=2)
        a[y:y + 14, x:x + 14] = 0
        b = np.where(a == 0, rng.integers(0, 255, size=3), 40).astype(np.uint8)
        pix2pix.save_aligned(Image.fromarray(a), Image.fromarray(b), tmp_path / "data" / "train" / f"{i}.png")
    return tmp_path / "data"


def test_aligned_layout_is_split_left_input_right_target(dataroot):
    a, b = pix2pix.load_aligned_folder(dataroot / "train", 32)
    assert a.shape == b.shape == (6, 3, 32, 32)
    assert a.mean() > 0.5 and b.median() < 0  # A is the white sketch side, B the dark target side
    inputs, targets = pix2pix.load_aligned_folder(dataroot / "train", 32, direction="BtoA")
    assert torch.equal(inputs, b) and torch.equal(targets, a)
    with pytest.raises(ValueError, match="aligned layout"):
        pix2pix.load_aligned_folder(dataroot / "missing", 32)


def test_training_writes_loadable_safetensors_and_resume_is_exact(dataroot, tmp_path, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--dataroot", str(dataroot), *ARGS, "--save-every", "2"]
    assert train_main(["pix2pix", *common, "--out", str(straight), "--steps", "4"]) == 0
    assert train_main(["pix2pix", *common, "--out", str(resumed), "--steps", "4", "--save-every", "2"]) == 0
    log = capsys.readouterr().out
    assert "step 4/4" in log and "it/s" in log and "G_L1" in log
    # a run interrupted after 2 steps and resumed ends exactly where the uninterrupted run ends
    interrupted = tmp_path / "interrupted"
    train_main(["pix2pix", *common, "--out", str(interrupted), "--steps", "2"])
    args = pix2pix.build_parser().parse_args([*common, "--out", str(interrupted), "--steps", "4", "--resume"])
    assert args.resume
    pix2pix.main([*common, "--out", str(interrupted), "--steps", "4", "--resume"])
    assert "resuming at step 2" in capsys.readouterr().out
    g_straight = load_file(str(straight / "latest_net_G.safetensors"))
    g_resumed = load_file(str(interrupted / "latest_net_G.safetensors"))
    assert g_straight.keys() == g_resumed.keys()
    for key in g_straight:
        assert torch.equal(g_straight[key], g_resumed[key]), key
    with safe_open(str(straight / "latest_net_G.safetensors"), "pt") as f:
        meta = f.metadata()
    config = json.loads(meta["config"])
    assert meta["step"] == "4" and config["ngf"] == 2 and config["num_downs"] == 5
    model = core.models.load("pix2pix_unet", g_straight, **config)  # strict
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    assert (straight / "samples_000004.png").is_file()
    assert int(g_straight["model.model.1.model.2.num_batches_tracked"]) == 4  # running stats tracked for eval mode


def test_cli_dispatch_lists_trainers_and_rejects_unknown_names(capsys):
    assert train_main([]) == 2
    assert "pix2pix" in capsys.readouterr().out
    assert train_main(["nonexistent"]) == 2
    assert "Unknown trainer" in capsys.readouterr().err


@pytest.mark.real_weights("dcgan.faces64")
def test_edges2faces_data_and_evaluation(tmp_path):
    from core.train import edges2faces

    data = tmp_path / "faces"
    edges2faces.make_data(data, n_train=4, n_test=3, seed=0)
    a, b = pix2pix.load_aligned_folder(data / "test", 64)
    assert a.shape == (3, 3, 64, 64)
    assert (a > 0.9).float().mean() > 0.6  # sketches: mostly white with dark lines
    torch.manual_seed(0)
    model = core.models.build("pix2pix_unet", ngf=2, num_downs=6)
    from safetensors.torch import save_file

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
