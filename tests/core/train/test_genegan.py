"""GeneGAN training: a tiny config lowers its losses on synthetic data; resume is exact; CLI errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import core.models as registry
from core.train import genegan as trainer
from core.train import genegan_data
from core.weights import face_layout

GLASSES_LAYOUT = face_layout("dcgan_faces64_symmetric")


@pytest.fixture(scope="module")
def faces_npz(tmp_path_factory):
    """32 smooth synthetic 'faces' (a skin disc with dark eyes at the template positions)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    faces = []
    for _ in range(32):
        img = np.zeros((64, 64, 3), np.float32) + rng.uniform(40, 200, 3)
        skin = (xx - 32) ** 2 / 22 ** 2 + (yy - 36) ** 2 / 28 ** 2 < 1
        img[skin] = rng.uniform(120, 230, 3)
        for ex, ey in GLASSES_LAYOUT[:2] * 64:
            img[(xx - ex) ** 2 + (yy - ey) ** 2 < 5] = 30
        faces.append(img.astype(np.uint8))
    path = tmp_path_factory.mktemp("data") / "faces.npz"
    np.savez(path, faces=np.stack(faces), landmarks=np.repeat((GLASSES_LAYOUT * 64)[None], 32, 0))
    return path


def losses(log: str, key: str) -> list[float]:
    lines = [line for line in log.splitlines() if line.startswith("step ")]
    return [float(re.search(rf"{key} ([-\d.]+)", line).group(1)) for line in lines]


def test_tiny_training_lowers_the_losses_and_saves_a_loadable_model(faces_npz, tmp_path):
    out = tmp_path / "run"
    args = ["--synthetic", str(faces_npz), "--out", str(out), "--ch", "8,16,32", "--batch", "8", "--steps", "30",
            "--log-every", "10", "--sample-every", "30", "--save-every", "30", "--lr", "1e-3", "--threads", "1",
            "--bn-batches", "2"]
    assert trainer.main(args) == 0
    log = (out / "log.txt").read_text()
    rec, para, total = losses(log, "rec"), losses(log, "para"), losses(log, " g")
    assert len(rec) == 3
    assert rec[-1] < 0.85 * rec[0] and para[-1] < 0.85 * para[0] and total[-1] < total[0]
    state = load_file(str(out / "latest_net_G.safetensors"))
    model = registry.load("genegan", state, ch=[8, 16, 32])
    assert model(torch.full((1, 3, 64, 64), 128.0)).shape == (1, 3, 64, 64)
    assert (out / "samples_000030.png").exists()


def test_resume_continues_exactly(faces_npz, tmp_path):
    common = ["--synthetic", str(faces_npz), "--ch", "4,8,16", "--batch", "4", "--log-every", "2",
              "--sample-every", "100", "--save-every", "3", "--threads", "1", "--bn-batches", "2"]
    trainer.main(common + ["--out", str(tmp_path / "straight"), "--steps", "6"])
    trainer.main(common + ["--out", str(tmp_path / "resumed"), "--steps", "3"])
    trainer.main(common + ["--out", str(tmp_path / "resumed"), "--steps", "6", "--resume"])
    a = load_file(str(tmp_path / "straight" / "latest_net_G.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "latest_net_G.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="rmsprop"):
        trainer.main(common + ["--out", str(tmp_path / "resumed"), "--steps", "7", "--resume", "--recipe", "official"])


def test_official_recipe_clips_the_critics(faces_npz, tmp_path):
    args = trainer.resolve_config(trainer.build_parser().parse_args(
        ["--synthetic", str(faces_npz), "--out", str(tmp_path), "--recipe", "official"]))
    assert (args.gan, args.optim, args.lr, args.rec, args.para, args.wd, args.clip) == \
        ("wgan", "rmsprop", 5e-5, 1.0, 0.01, 5e-5, 0.01)
    data = genegan_data.SyntheticPairs(faces_npz, seed=0)
    model = trainer.GeneGAN(ch=(4, 8, 16))
    critics = [trainer.GeneGANCritic(ch=(4, 8, 16)) for _ in range(2)]
    opt = trainer.make_optimizer([p for c in critics for p in c.parameters()], args)
    ax, be = data.batch(0, 4)
    with torch.no_grad():
        fakes = trainer.swap_forward(model, ax, be)
    trainer.critic_step(critics, opt, ax, be, fakes["bx"], fakes["ae"], args)
    assert max(p.abs().max().item() for c in critics for p in c.parameters()) <= 0.01
