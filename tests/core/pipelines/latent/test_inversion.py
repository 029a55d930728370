"""Back to z on a tiny DCGAN: optimisation, encoder, hybrid, and edits pasted into a photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.pipelines.latent import inversion as inv


# --- inversion --------------------------------------------------------------------------------
class NoisyEncoder(torch.nn.Module):
    """A stand-in encoder that answers the true latent plus a known error."""

    def __init__(self, truth: torch.Tensor, error: torch.Tensor):
        super().__init__()
        self.register_buffer("answer", truth + error)

    def forward(self, image):
        return self.answer[: image.shape[0]]


def test_optimisation_recovers_the_latent_of_a_sample(dcgan):
    truth = dcgan.z_from_seeds([11, 12])
    target = dcgan.decode(truth)
    result = inv.invert(dcgan, target, "optimise", steps=200, restarts=3, lr=0.05, prior_weight=0)
    relative = (result.latent - truth).norm(dim=1) / truth.norm(dim=1)
    assert (relative < 0.1).all(), relative
    assert (result.pixel_error < 1.0).all()


def test_hybrid_refines_the_encoders_guess(dcgan):
    truth = dcgan.z_from_seeds([21, 22])
    target = dcgan.decode(truth)
    encoder = NoisyEncoder(truth, 0.5 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(3)))
    guess = inv.invert(dcgan, target, "encoder", encoder=encoder)
    assert torch.equal(guess.latent, encoder.answer) and guess.steps == 0
    refined = inv.invert(dcgan, target, "hybrid", encoder=encoder, steps=100, prior_weight=0)
    assert ((refined.latent - truth).norm(dim=1) < 0.3 * (guess.latent - truth).norm(dim=1)).all()
    assert (refined.pixel_error < guess.pixel_error).all()


def test_inversion_rejects_what_it_cannot_do(dcgan, stylegan):
    target = dcgan.decode(dcgan.z_from_seeds([0]))
    with pytest.raises(ValueError, match="needs the latent encoder"):
        inv.invert(dcgan, target, "hybrid")
    with pytest.raises(ValueError, match="optimise, encoder, hybrid"):
        inv.invert(dcgan, target, "magic")
    with pytest.raises(ValueError, match="Only the DCGAN has an encoder"):
        inv.invert(stylegan, target, "encoder", encoder=torch.nn.Identity())


def test_feature_loss_uses_the_classifiers_first_blocks(dcgan):
    from core.models.glasses_classifier import GlassesClassifier

    features = inv.classifier_features(GlassesClassifier().eval())
    assert features(torch.zeros(1, 3, 64, 64)).shape == (1, 32, 16, 16)
    truth = dcgan.z_from_seeds([5])
    result = inv.invert(dcgan, dcgan.decode(truth), "optimise", steps=20, restarts=1, features=features,
                        feature_weight=1.0)
    assert result.latent.shape == (1, 8) and np.isfinite(result.pixel_error).all()


def test_edits_change_only_the_face_region_of_a_photo():
    from core.faces import AlignedFace

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (200, 160, 3), np.uint8))
    matrix = np.array([[0.5, 0, -10.0], [0, 0.5, -20.0]])  # the face: a 128 px square at (20, 40)
    aligned = AlignedFace(photo.transform((64, 64), Image.Transform.AFFINE, (2, 0, 20, 0, 2, 40)), matrix, photo.size)
    before, after = torch.zeros(3, 64, 64), torch.full((3, 64, 64), 0.5)  # the edit brightens by 64 levels
    for blend in ("residual", "direct"):
        edited, crop = inv.edit_photo(photo, aligned, before, after, blend)
        assert edited.size == photo.size and crop.size == (64, 64)
        changed = (np.asarray(edited) != np.asarray(photo)).any(-1)
        assert changed[40:168, 20:148].mean() > 0.3 and not changed[:38].any() and not changed[:, 150:].any()
    unchanged, _ = inv.edit_photo(photo, aligned, before, before, "residual")
    assert np.array_equal(np.asarray(unchanged), np.asarray(photo))  # no edit: the photo, bit for bit
    with pytest.raises(ValueError, match="residual' or 'direct"):
        inv.edit_photo(photo, aligned, before, after, "blend")
