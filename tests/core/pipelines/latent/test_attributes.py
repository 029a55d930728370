"""Measured face attributes and the directions computed from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.faces import detector_ids
from core.pipelines.latent import attributes as attrs
from core.pipelines.latent import space as lab


class LinearFaces(torch.nn.Module):
    """A generator whose images depend visibly on z (a random DCGAN this small draws flat grey)."""

    nz = 8

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(3 * 64 * 64, 8, generator=torch.Generator().manual_seed(4)) * 0.3)

    def forward(self, z):
        return torch.tanh(z @ self.weight.T).view(-1, 3, 64, 64)


def test_compute_directions_labels_samples_by_their_measurements(monkeypatch):
    def brightness(images, classifier):  # a stand-in measurement for every attribute: mean pixel value
        value = images.reshape(len(images), -1).mean(1).astype(float)
        return {name: (value > np.median(value)).astype(float) if name in attrs.THRESHOLDS else value
                for name in attrs.ATTRIBUTES}

    monkeypatch.setattr(attrs, "measure", brightness)
    gen = lab.LatentGenerator(LinearFaces().requires_grad_(False), "linear")
    directions, info = attrs.compute_directions(gen, None, samples=300, seed=100, log=lambda _: None)
    assert set(directions) == set(attrs.ATTRIBUTES) and info["samples"] == 300
    assert info["attributes"]["yaw"]["with"] == info["attributes"]["yaw"]["without"] == 100  # thirds
    glasses = info["attributes"]["eyeglasses"]
    assert glasses["with"] + glasses["without"] == 300 and 100 < glasses["with"] < 200  # every sample, P > 0.5
    z = gen.z_from_seeds(range(5000, 5020))  # held out
    darker, brighter = (gen.decode(z + s * directions["hair_brightness"]).mean((1, 2, 3)) for s in (-1, 1))
    assert (brighter > darker).all()


# --- the real DCGAN -------------------------------------------------------------------------------
@pytest.mark.real_weights("dcgan.faces64", "genegan.glasses_classifier64", *detector_ids())
def test_the_shipped_glasses_direction_flips_the_classifier_on_most_faces():
    from core.pipelines.latent.lab import DEFAULT_ALPHA, role
    from core.weights import REPO_ROOT, load_model

    gen = lab.LatentGenerator(load_model("dcgan.faces64", device="cpu", dtype=torch.float32), "dcgan.faces64")
    classifier = load_model(role("classifier"), device="cpu", dtype=torch.float32)
    directions, info = attrs.load_directions(REPO_ROOT / "apps/latent/data/directions_dcgan_faces64.safetensors",
                                             "dcgan.faces64")
    assert set(directions) == set(attrs.ATTRIBUTES) and info["samples"] == 3000
    z = gen.z_from_seeds(range(3_000_000, 3_000_060))  # held out: neither the directions' nor the README's faces
    before = attrs.measure(lab.to_uint8(gen.decode(z)), classifier)["eyeglasses"]
    without = np.flatnonzero(before <= 0.5)
    assert len(without) > 30
    after = attrs.measure(lab.to_uint8(gen.decode(z[without] + DEFAULT_ALPHA["eyeglasses"] * directions["eyeglasses"])),
                          classifier)["eyeglasses"]
    assert np.nanmean(after > 0.5) > 0.5
    # and the opposite direction takes glasses off most faces that wear them
    wearing = np.flatnonzero(before > 0.5)
    off = attrs.measure(lab.to_uint8(gen.decode(z[wearing] - DEFAULT_ALPHA["eyeglasses"] * directions["eyeglasses"])),
                        classifier)["eyeglasses"]
    assert np.nanmean(off <= 0.5) > 0.5
