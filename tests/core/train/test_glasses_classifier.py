"""The eyeglasses classifier's trainer: its batches, a short run that learns, and a loadable checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

import core.models as registry
from core.models.glasses_classifier import GlassesClassifier
from core.train import glasses_classifier as trainer
from core.weights import face_layout


@pytest.fixture(scope="module")
def faces():
    """24 smooth 'faces' (a skin ellipse with dark eyes) and their landmarks, aligned like the training crops."""
    landmarks = face_layout("dcgan_faces64_symmetric") * 64
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    images = []
    for _ in range(24):
        img = np.zeros((64, 64, 3), np.float32) + rng.uniform(40, 200, 3)
        img[(xx - 32) ** 2 / 22 ** 2 + (yy - 36) ** 2 / 28 ** 2 < 1] = rng.uniform(120, 230, 3)
        for ex, ey in landmarks[:2]:
            img[(xx - ex) ** 2 + (yy - ey) ** 2 < 5] = 30
        images.append(img.astype(np.uint8))
    return np.stack(images), np.repeat(landmarks[None], 24, 0)


def test_a_batch_is_half_clean_faces_half_faces_with_rendered_glasses(faces):
    images, landmarks = faces
    x, y = trainer.make_batch(images, landmarks, np.random.default_rng(3), 8, augment=False)
    assert x.shape == (8, 3, 64, 64) and x.dtype == torch.float32 and y.tolist() == [0, 1] * 4
    idx = np.random.default_rng(3).integers(len(images), size=8)  # the faces the batch drew
    drawn = torch.from_numpy(images[idx].astype(np.float32)).permute(0, 3, 1, 2)
    assert torch.equal(x[0::2], drawn[0::2])  # label 0: the face itself
    changed = (x[1::2] != drawn[1::2]).any(1)  # label 1: glasses drawn around the eyes only
    eye_y = landmarks[0, :2, 1].mean()
    rows = changed.any(-1).nonzero()[:, 1]
    assert changed.flatten(1).any(1).all() and abs(rows.float().mean().item() - eye_y) < 6
    augmented, _ = trainer.make_batch(images, landmarks, np.random.default_rng(3), 8)
    assert 0 <= augmented.min() and augmented.max() <= 255 and not torch.equal(augmented, x)


def test_a_short_run_lowers_the_loss_and_tells_glasses_apart(faces):
    images, landmarks = faces
    x, y = trainer.make_batch(images, landmarks, np.random.default_rng(99), 32, augment=False)
    torch.manual_seed(5)
    untrained = GlassesClassifier(width=4).eval()  # the weights train() starts from (same seed)
    model = trainer.train(images, landmarks, steps=40, batch=16, width=4, seed=5, log=lambda message: None)
    with torch.no_grad():
        before = F.binary_cross_entropy_with_logits(untrained(x), y).item()
        after = F.binary_cross_entropy_with_logits(model(x), y).item()
        probabilities = model.probability(x)
    assert after < 0.6 * before  # from chance (ln 2) towards telling them apart
    assert probabilities.shape == (32,) and ((0 <= probabilities) & (probabilities <= 1)).all()
    glasses = y.flatten() > 0.5
    assert probabilities[glasses].mean() > probabilities[~glasses].mean() + 0.2  # P(glasses) higher with glasses


def test_the_command_line_writes_a_checkpoint_the_registry_loads(faces, tmp_path, capsys):
    images, landmarks = faces
    np.savez(tmp_path / "faces.npz", faces=images, landmarks=landmarks)
    out = tmp_path / "weights" / "classifier.safetensors"
    assert trainer.main(["--faces", str(tmp_path / "faces.npz"), "--out", str(out), "--steps", "3", "--batch", "4",
                         "--width", "4", "--threads", "1"]) == 0
    assert f"saved {out}" in capsys.readouterr().out
    with safe_open(str(out), "pt") as f:
        assert f.metadata() == {"config": json.dumps({"width": 4}), "steps": "3"}
    model = registry.load("glasses_classifier", load_file(str(out)), width=4)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2,)
