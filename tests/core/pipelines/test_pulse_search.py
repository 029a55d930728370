"""core.pipelines.pulse_search: the downsampler, GEOCROSS, the sphere and the schedule by hand; the search
on tiny generators."""

import math
import threading

import numpy as np
import pytest
import torch

from core.pipelines import pulse_adapters as A
from core.pipelines import pulse_search as S
from core.pipelines.streaming import Stop
from tests.support import tiny_pulse as tiny
from tests.support.tiny_pulse import one_thread, tiny_dcgan_adapter, tiny_sg2_with_fit  # noqa: F401  (fixtures)


def keys_cubic(x):
    """Keys (1981) cubic convolution with a = -0.5, written out."""
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x < 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def reflect(i, n):
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


def direct_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """[C, H, W] -> [C, H/f, W/f]: taps at (i - 2f + 0.5)/f, reflect padding 3f split floor/ceil, rows first."""
    n = 4 * factor
    taps = np.array([keys_cubic((i - n // 2 + 0.5) / factor) for i in range(n)])
    taps /= taps.sum()
    before = (3 * factor) // 2
    c, h, w = image.shape
    rows = np.zeros((c, h // factor, w))
    for y in range(h // factor):
        for i in range(n):
            rows[:, y] += taps[i] * image[:, reflect(y * factor + i - before, h)]
    out = np.zeros((c, h // factor, w // factor))
    for x in range(w // factor):
        for i in range(n):
            out[:, :, x] += taps[i] * rows[:, :, reflect(x * factor + i - before, w)]
    return out


@pytest.mark.parametrize("factor,size", [(2, 16), (4, 32), (8, 64)])
def test_bicubic_downsample_equals_the_direct_kernel(factor, size):
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(factor))
    out = S.BicubicDownsample(factor)(image)
    assert out.shape == (1, 3, size // factor, size // factor)
    expected = direct_downsample(image[0].double().numpy(), factor)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-6)


def test_bicubic_taps_by_hand_and_constants_are_kept():
    # factor 2: cubic at +-0.25, 0.75, 1.25, 1.75 = 0.8671875, 0.2265625, -0.0703125, -0.0234375 (sum 2)
    half = np.array([-0.0234375, -0.0703125, 0.2265625, 0.8671875]) / 2
    np.testing.assert_allclose(S.BicubicDownsample(2).taps.numpy(), np.concatenate([half, half[::-1]]), atol=1e-7)
    torch.testing.assert_close(S.downscale(torch.full((2, 3, 64, 64), 0.3), 8), torch.full((2, 3, 8, 8), 0.3))
    with pytest.raises(ValueError, match="integer factor"):
        S.downscale(torch.rand(1, 3, 64, 64), 12)


def test_geocross_by_hand():
    t = 0.7
    w = torch.tensor([[[1.0, 0.0], [math.cos(t), math.sin(t)]]], dtype=torch.float64)
    # d = [[0, t], [t, 0]]: mean(d^2 * 2) / 8 = (2 t^2 * 2 / 4) / 8 = t^2 / 8
    assert S.geocross(w).item() == pytest.approx(t**2 / 8, abs=1e-6)
    orthogonal = torch.eye(3, dtype=torch.float64)[None] * 5.0  # three orthogonal vectors in R^3
    assert S.geocross(orthogonal).item() == pytest.approx((6 * (math.pi / 2) ** 2 / 9) * 3 / 8, abs=1e-6)
    same = torch.randn(4, 1, 8).expand(4, 6, 8)
    assert S.geocross(same).shape == (4,)
    assert S.geocross(same).abs().max() < 1e-3


def test_spherical_adam_keeps_every_vector_on_its_initial_sphere():
    torch.manual_seed(0)
    latent = (torch.randn(3, 5, 8) * torch.rand(3, 5, 1) * 4).requires_grad_(True)
    noise = torch.randn(3, 1, 4, 4).requires_grad_(True)
    radii = [S.sphere_norms(latent).detach().clone(), S.sphere_norms(noise).detach().clone()]
    assert radii[0].shape == (3, 5, 1) and radii[1].shape == (3, 1, 1, 1)
    optimiser = S.SphericalAdam([latent, noise], lr=0.4)
    for _ in range(5):
        optimiser.adam.zero_grad()
        ((latent - 3).pow(2).sum() + noise.pow(3).sum()).backward()
        optimiser.step()
    torch.testing.assert_close(S.sphere_norms(latent), radii[0])
    torch.testing.assert_close(S.sphere_norms(noise), radii[1])


def test_linear1cycledrop_schedule_by_hand():
    f = lambda step: S.lr_factor("linear1cycledrop", step, 100)  # noqa: E731
    assert f(0) == pytest.approx(0.1)
    assert f(22.5) == pytest.approx(0.55)
    assert f(45) == pytest.approx(1.0)
    assert f(90) == pytest.approx(0.1)
    assert f(95) == pytest.approx(0.0505)
    assert f(99) == pytest.approx(0.1 - 9 * 0.0099)
    assert S.lr_factor("linear1cycle", 50, 100) == pytest.approx(1.0)
    assert S.lr_factor("fixed", 7, 100) == 1.0
    with pytest.raises(ValueError, match="Unknown schedule"):
        S.lr_factor("cosine", 0, 100)


def test_dcgan_search_lowers_l2_keeps_the_sphere_and_sorts_best_first(tiny_dcgan):
    target = tiny.in_distribution_target(tiny_dcgan, 16)
    init = {"latent": torch.randn(3, 1, 16, generator=torch.Generator().manual_seed(7))}
    result = S.search(tiny_dcgan, target, steps=30, restarts=3, init=init, eps=1e-9)  # never clamped
    assert len(result.samples) == 3 and result.steps == 30
    for sample in result.samples:
        assert sample.image.shape == (3, 64, 64) and sample.downscaled.shape == (3, 16, 16)
        assert sample.l2 < sample.start_l2 / 3
        start = init["latent"][sample.restart]
        torch.testing.assert_close(sample.latent.norm(dim=-1), start.norm(dim=-1))
    assert [s.l2 for s in result.samples] == sorted(s.l2 for s in result.samples)
    again = S.search(tiny_dcgan, target, steps=30, restarts=3, init=init, eps=1e-9)  # explicit tensors: reproducible
    assert [s.l2 for s in again.samples] == [s.l2 for s in result.samples]
    by_seed = [S.search(tiny_dcgan, target, steps=5, restarts=2, seed=11) for _ in range(2)]
    assert by_seed[0].seed == 11 and [s.l2 for s in by_seed[0].samples] == [s.l2 for s in by_seed[1].samples]
    drawn = S.search(tiny_dcgan, target, steps=3, restarts=1, seed=None)  # a random seed, reported
    assert isinstance(drawn.seed, int)
    assert S.search(tiny_dcgan, target, steps=3, restarts=1, seed=drawn.seed).samples[0].l2 == drawn.samples[0].l2


def test_failure_is_reported_with_the_closest_face(tiny_dcgan):
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))  # noise: not a face
    result = S.search(tiny_dcgan, target, steps=3, restarts=2, eps=1e-9, seed=0)
    assert not result.success and len(result.samples) == 2
    assert result.message.startswith("No face within eps = 1e-09 was found")
    assert "closest face has L2" in result.message and "more steps" in result.message
    assert result.samples[0].image.shape == (3, 64, 64)
    with pytest.raises(ValueError, match="must divide 64"):
        S.search(tiny_dcgan, torch.rand(1, 3, 12, 12), steps=1)


def test_progress_is_streamed_and_the_search_can_be_stopped(tiny_dcgan):
    target = tiny.in_distribution_target(tiny_dcgan, 8)
    events = list(S.search_iter(tiny_dcgan, target, steps=6, restarts=2, seed=0, preview_every=2))
    assert [type(e).__name__ for e in events] == ["PulseProgress"] * 3 + ["PulseResult"]
    assert [e.step for e in events[:3]] == [2, 4, 6]
    assert events[0].preview.shape == (3, 64, 64) and len(events[0].best_l2) == 2
    cancel = threading.Event()
    events = S.search_iter(tiny_dcgan, target, steps=50, restarts=2, seed=0, preview_every=1, stop=Stop(cancel))
    next(events), next(events)
    cancel.set()  # between steps 2 and 3, as the UI's Finish button does from another thread
    *_, result = events
    assert result.stopped_early and result.steps == 2
    assert "stopped after 2 of 50 steps" in result.message


def test_stylegan2_search_trains_the_first_noise_layers_and_lowers_the_loss(tiny_sg2):
    model, fit = tiny_sg2
    adapter = A.StyleGAN2Adapter(model, fit=fit, trainable_noise=3)
    target = tiny.in_distribution_target(adapter, 8)
    state = adapter.init_state(2, torch.Generator().manual_seed(0))
    assert state["latent"].shape == (2, model.n_latent, 16)
    assert [t.shape[-1] for t in state["noise"]] == [4, 8, 8, 16, 16, 32, 32]
    assert state["noise"][-1].abs().sum() == 0  # the last (full-resolution) noise layer is zero
    init = {"latent": state["latent"], "noise": state["noise"]}
    result = S.search(adapter, target, steps=12, init=init, eps=1e-9)
    assert result.samples[0].image.shape == (3, 32, 32)
    assert all(s.l2 < s.start_l2 / 2 for s in result.samples)
    # the trainable noise maps moved but stayed on their spheres; the others did not move
    best = {"latent": torch.stack([s.latent for s in sorted(result.samples, key=lambda s: s.restart)])}
    torch.testing.assert_close(best["latent"].norm(dim=-1), state["latent"].norm(dim=-1))
    class Spy(A.StyleGAN2Adapter):  # records the noise maps every step evaluates
        seen = []

        def render(self, state, final=False):
            self.seen.append([t.detach().clone() for t in state["noise"]])
            return super().render(state, final)

    S.search(Spy(model, fit=fit, trainable_noise=3), target, steps=3, init=init)
    evaluated = Spy.seen
    first, last = evaluated[0], evaluated[-1]
    assert all(not torch.equal(first[i], last[i]) for i in range(3))
    assert all(torch.equal(first[i], last[i]) for i in range(3, 7))
    torch.testing.assert_close(S.sphere_norms(last[1]), S.sphere_norms(first[1]))
    # GEOCROSS is part of the loss: switching it off changes the path
    no_geo = S.search(adapter, target, steps=12, init=init, eps=1e-9, geocross_weight=0.0)
    assert [s.l2 for s in no_geo.samples] != [s.l2 for s in result.samples]


def test_stylegan2_search_at_the_intermediate_resolution_renders_full_size_at_the_end(tiny_sg2):
    model, fit = tiny_sg2
    adapter = A.StyleGAN2Adapter(model, fit=fit, search_resolution=16)
    target = tiny.in_distribution_target(adapter, 8)
    events = list(S.search_iter(adapter, target, steps=4, restarts=2, seed=0, preview_every=4))
    assert events[0].preview.shape == (3, 16, 16)  # the search sees the 16 px intermediate RGB
    result = events[-1]
    assert result.samples[0].image.shape == (3, 32, 32)  # ... and the result is rendered at 32 px
    # the reported L2 is measured on the full-size render, not copied from the search
    assert all(s.l2 != pytest.approx(s.search_l2, rel=1e-3) for s in result.samples)
    with pytest.raises(ValueError, match="power of two"):
        A.StyleGAN2Adapter(model, fit=fit, search_resolution=12)


def test_refine_steps_switch_to_the_full_resolution_at_the_end(tiny_sg2):
    model, fit = tiny_sg2

    class Spy(A.StyleGAN2Adapter):  # records which resolution every render used
        sizes = []

        def render(self, state, final=False):
            image = super().render(state, final)
            self.sizes.append(image.shape[-1])
            return image

    adapter = Spy(model, fit=fit, search_resolution=16)
    target = tiny.in_distribution_target(adapter, 8)
    Spy.sizes.clear()
    result = S.search(adapter, target, steps=5, restarts=2, seed=0, refine_steps=2)
    assert Spy.sizes == [16, 16, 16, 32, 32, 32]  # 3 search steps, 2 refine steps, the final render
    assert result.samples[0].image.shape == (3, 32, 32)


def test_a_time_budget_ends_the_search_with_the_best_faces_so_far(tiny_dcgan):
    from core.limits import Budget

    target = tiny.in_distribution_target(tiny_dcgan, 8)

    class TwoSteps(Budget):  # runs out after two steps, whatever the machine's speed
        calls = 0

        def expired(self):
            self.calls += 1
            return self.calls > 2

    budget = TwoSteps(seconds=120)
    result = S.search(tiny_dcgan, target, steps=500, restarts=2, seed=0, stop=Stop(budget=budget))
    assert result.steps == 2 and result.stopped_early and len(result.samples) == 2
    assert "at most 120 s (GANHUB_JOB_SECONDS): the job was stopped after 2 of 500 steps" in result.message
    assert budget.notes == [result.budget_note]
    unlimited = S.search(tiny_dcgan, target, steps=3, restarts=1, seed=0, stop=Stop(budget=Budget(seconds=0)))
    assert unlimited.steps == 3 and not unlimited.budget_note
