"""Latent spaces on tiny generators: walks, arithmetic, seeds, truncation, style mixing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.pipelines.latent import space as lab


# --- walk -------------------------------------------------------------------------------------
def test_slerp_stays_on_the_sphere_at_constant_angular_speed():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(100, generator=g), torch.randn(100, generator=g)
    b = b / b.norm() * a.norm()
    path = lab.interpolate(a, b, 11, "slerp")
    assert torch.allclose(path.norm(dim=1), a.norm().expand(11), rtol=1e-5)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    cos = (path[1:] * path[:-1]).sum(1) / (path[1:].norm(dim=1) * path[:-1].norm(dim=1))
    steps = torch.arccos(cos.clamp(-1, 1))
    assert torch.allclose(steps, steps.mean().expand(10), rtol=1e-3)
    # lerp cuts through the ball: its midpoint of two near-orthogonal 100-d vectors is ~0.7 |a|
    assert lab.interpolate(a, b, 3, "lerp")[1].norm() < 0.8 * a.norm()


def test_slerp_interpolates_the_norm_linearly_and_handles_parallel_vectors():
    a = torch.tensor([3.0, 0.0])
    b = torch.tensor([0.0, 1.0])
    path = lab.slerp(a, b, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(path.norm(dim=1), torch.tensor([3.0, 2.0, 1.0]))
    assert torch.allclose(path[1] / path[1].norm(), torch.tensor([1.0, 1.0]) / 2**0.5)
    same = lab.slerp(a, 2 * a, torch.tensor([0.5]))  # zero angle: no division by sin(0)
    assert torch.allclose(same[0], 1.5 * a)


def test_interpolate_rejects_bad_requests():
    a = torch.zeros(4)
    with pytest.raises(ValueError, match="between 2 and 120"):
        lab.interpolate(a, a, 1)
    with pytest.raises(ValueError, match="lerp, slerp"):
        lab.interpolate(a, a, 4, "cubic")
    with pytest.raises(ValueError, match="differ in shape"):
        lab.interpolate(a, torch.zeros(5), 4)


def test_smoothness_measures_neighbour_steps():
    even = np.stack([np.full((2, 2, 3), 10 * i, np.uint8) for i in range(5)])
    s = lab.smoothness(even)
    assert s["mean_step"] == pytest.approx(10) and s["max_step"] == pytest.approx(10)
    assert s["step_cv"] == pytest.approx(0) and s["path_length"] == pytest.approx(40)
    jump = even.copy()
    jump[4] = 200
    assert lab.smoothness(jump)["step_cv"] > 1


# --- arithmetic -------------------------------------------------------------------------------
def test_direction_from_synthetic_labels_recovers_the_planted_direction():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4000, 32, generator=g)
    planted = torch.randn(32, generator=g)
    planted /= planted.norm()
    score = (z @ planted + 0.3 * torch.randn(4000, generator=g)).numpy()
    for threshold in (0.5, None):  # a binary classifier's labels, and the thirds of a measurement
        indices, labels = lab.split_by_score(score, threshold)
        direction = lab.attribute_direction(z[indices], labels)
        cosine = float(direction @ planted / direction.norm())
        assert cosine > 0.95, (threshold, cosine)
    # moving along it raises the score of every sample
    moved = lab.along(z[0], direction, [0.0, 1.0, 2.0])
    assert (np.diff((moved @ planted).numpy()) > 0).all()


def test_split_by_score_leaves_out_missing_faces_and_the_middle_third():
    scores = np.array([np.nan, 1, 2, 3, 4, 5, 6, np.nan, 7, 8, 9])
    indices, labels = lab.split_by_score(scores)
    assert sorted(scores[indices[~labels]]) == [1, 2, 3] and sorted(scores[indices[labels]]) == [7, 8, 9]
    indices, labels = lab.split_by_score(np.array([0.1, np.nan, 0.9]), threshold=0.5)
    assert list(indices) == [0, 2] and list(labels) == [False, True]
    with pytest.raises(ValueError, match="at least 5 samples with and without"):
        lab.attribute_direction(torch.zeros(10, 3), np.arange(10) < 2)


# --- generators -------------------------------------------------------------------------------
def test_each_sample_has_its_own_seed(dcgan):
    grid = dcgan.z_from_seeds(range(3, 9))
    assert torch.equal(grid[2], dcgan.z_from_seeds([5])[0])
    images = dcgan.decode(grid)
    assert images.shape == (6, 3, 64, 64) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(dcgan.decode(grid[2]), images[2:3])
    with pytest.raises(ValueError, match="latent space"):
        dcgan.decode(grid, space="w")


def test_stylegan2_truncation_and_w_space(stylegan):
    z = stylegan.z_from_seeds([0, 1])
    assert torch.allclose(stylegan.to_w(z, psi=0.0), stylegan.w_avg.expand(2, -1))
    w = stylegan.to_w(z, psi=0.7)
    assert torch.allclose(stylegan.decode(z, "z", psi=0.7), stylegan.decode(w, "w"), atol=1e-5)
    assert torch.equal(stylegan.decode(w, "w"), stylegan.decode(w, "w"))  # stored noise: deterministic


def test_style_mixing_takes_the_chosen_layers_from_the_second_latent(stylegan):
    assert lab.layer_indices("coarse", 18) == [0, 1, 2, 3]
    assert lab.layer_indices("middle", 18) == [4, 5, 6, 7]
    assert lab.layer_indices("fine", 18) == list(range(8, 18))
    with pytest.raises(ValueError, match="no fine layers"):
        lab.layer_indices("fine", 8)
    w = stylegan.to_w(stylegan.z_from_seeds([0, 1]))
    n = stylegan.model.n_latent
    mixed = lab.mix_styles(w[0], w[1], "fine", n)
    assert mixed.shape == (n, 16)
    assert torch.equal(mixed[:8], w[0].expand(8, -1)) and torch.equal(mixed[8:], w[1].expand(n - 8, -1))
    image = stylegan.decode(mixed[None], "w")
    assert not torch.equal(image, stylegan.decode(w[:1], "w"))
