"""PULSE's latent search (Menon et al., CVPR 2020, arXiv:2003.03808), for any generator adapter.

PULSE does not sharpen pixels. It searches a face generator's latent space for high-resolution
faces that, once downscaled, match the low-resolution input; many faces do, so it returns
several (one per restart) and it can fail. The recipe (``adamian98/pulse`` defaults):

1. Latents start from N(0, I) (a seed or explicit tensors) and live on spheres: after every
   Adam step each latent vector (and each trainable noise map) is rescaled to its initial norm.
2. Loss per restart: ``100 * max(L2, eps) + 0.05 * GEOCROSS`` where L2 is the mean squared
   error between the bicubically downscaled output (a = -0.5) and the input, both in [0, 1],
   and GEOCROSS (W+ only) pulls the per-layer latents towards each other on the sphere.
3. Adam, lr 0.4, the ``linear1cycledrop`` schedule, 100 steps; success when L2 <= eps (2e-3).

The generators come in through the adapters of :mod:`core.pipelines.pulse_adapters`.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from core.pipelines.streaming import Stop

EPS_DEFAULT = 2e-3
SCHEDULES = ("linear1cycledrop", "linear1cycle", "fixed")


# --- the pieces -------------------------------------------------------------------------------
def cubic(x: float, a: float = -0.5) -> float:
    """Keys' cubic convolution kernel (a = -0.5)."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


class BicubicDownsample(torch.nn.Module):
    """PULSE's downsampler: separable ``4 * factor``-tap bicubic (a = -0.5) filter, stride ``factor``.

    Taps ``k[i] = cubic((i - floor(4 * factor / 2) + 0.5) / factor)`` normalised to sum 1;
    reflect padding of ``4 * factor - factor`` pixels split floor/ceil; rows first, then columns.
    """

    def __init__(self, factor: int):
        super().__init__()
        if factor < 1:
            raise ValueError(f"factor must be a positive integer, got {factor}.")
        size = 4 * factor
        taps = torch.tensor([cubic((i - size // 2 + 0.5) / factor) for i in range(size)], dtype=torch.float64)
        self.register_buffer("taps", (taps / taps.sum()).float(), persistent=False)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        pad = 3 * self.factor
        before, after = pad // 2, pad - pad // 2
        taps = self.taps.to(x)
        x = F.pad(x, (0, 0, before, after), mode="reflect")
        x = F.conv2d(x, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), stride=(self.factor, 1), groups=channels)
        x = F.pad(x, (before, after, 0, 0), mode="reflect")
        return F.conv2d(x, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), stride=(1, self.factor), groups=channels)


def downscale(image: torch.Tensor, size: int) -> torch.Tensor:
    """[B, C, H, H] -> [B, C, size, size] with :class:`BicubicDownsample` (H must be a multiple of size)."""
    if image.shape[-1] % size or image.shape[-2] != image.shape[-1]:
        raise ValueError(f"Cannot downscale {tuple(image.shape[-2:])} to {size}x{size} by an integer factor.")
    factor = image.shape[-1] // size
    return image if factor == 1 else BicubicDownsample(factor).to(image.device)(image)


def geocross(w_plus: torch.Tensor) -> torch.Tensor:
    """GEOCROSS per sample: ``mean_{i,j}(d_ij^2 * dim) / 8`` with ``d_ij = 2 atan2(|x_i - x_j|, |x_i + x_j|)``."""
    x, y = w_plus[:, None, :, :], w_plus[:, :, None, :]
    a = ((x - y).pow(2).sum(-1) + 1e-9).sqrt()
    b = ((x + y).pow(2).sum(-1) + 1e-9).sqrt()
    d = 2 * torch.atan2(a, b)
    return (d.pow(2) * w_plus.shape[-1]).mean((1, 2)) / 8


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """Learning-rate multiplier at optimisation step ``step`` (0-based) of ``steps``."""
    if schedule == "fixed":
        return 1.0
    if schedule == "linear1cycle":
        return (9 * (1 - abs(step / steps - 0.5) * 2) + 1) / 10
    if schedule == "linear1cycledrop":
        ramp = 0.9 * steps
        if step < ramp:  # 0.1 -> 1 -> 0.1 over the first 90 %
            return (9 * (1 - abs(step / ramp - 0.5) * 2) + 1) / 10
        return 0.1 + (step - ramp) * (0.001 - 0.1) / (0.1 * steps)  # then 0.1 -> 0.001
    raise ValueError(f"Unknown schedule {schedule!r}; use one of {', '.join(SCHEDULES)}.")


def sphere_norms(t: torch.Tensor) -> torch.Tensor:
    """Norm of every latent vector / noise map: over dims >= 2, as PULSE's SphericalOptimizer."""
    return (t.pow(2).sum(tuple(range(2, t.ndim)), keepdim=True) + 1e-9).sqrt()


class SphericalAdam:
    """Adam whose parameters are projected back to their initial norms (:func:`sphere_norms`) after each step."""

    def __init__(self, params: Sequence[torch.Tensor], lr: float):
        self.params = list(params)
        self.adam = torch.optim.Adam(self.params, lr=lr)
        with torch.no_grad():
            self.radii = [sphere_norms(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.adam.step()
        for p, radius in zip(self.params, self.radii):
            p.mul_(radius / sphere_norms(p))


# --- the search -------------------------------------------------------------------------------
@dataclass
class PulseSample:
    image: torch.Tensor  # [3, R, R] in [0, 1], the high-resolution face
    downscaled: torch.Tensor  # [3, r, r] in [0, 1], what it looks like at the input size
    l2: float  # L2 of the final render vs the input
    success: bool  # l2 <= eps
    restart: int  # which restart produced it
    first_success_step: int | None  # first search step at which the evaluated L2 <= eps (None: never)
    search_l2: float  # best L2 seen during the search (at the resolution each step evaluated)
    start_l2: float  # L2 of the initial latent
    latent: torch.Tensor = field(repr=False)  # the latent found (same layout as the initial one)


@dataclass
class PulseResult:
    samples: list[PulseSample]  # successful first, then by L2
    eps: float
    steps: int
    seed: int | None
    seconds: float
    stopped_early: bool = False  # cancelled, or out of time
    message: str = ""
    budget_note: str = ""  # set when the time budget ended the search

    @property
    def success(self) -> bool:
        return any(s.success for s in self.samples)


@dataclass
class PulseProgress:
    step: int  # steps done
    steps: int
    l2: list[float]  # current L2 of every restart
    best_l2: list[float]  # best L2 so far of every restart
    preview: torch.Tensor = field(repr=False)  # [3, R, R] current image of the best restart (search resolution)


def _per_sample_l2(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (downscale(image, target.shape[-1]) - target).pow(2).mean((1, 2, 3))


def check_target(target: torch.Tensor, search_size: int) -> torch.Tensor:
    """[3, r, r] or [1, 3, r, r] in [0, 1] -> [1, 3, r, r]; r must divide the search resolution."""
    if target.ndim == 3:
        target = target[None]
    if target.ndim != 4 or target.shape[:2] != (1, 3) or target.shape[2] != target.shape[3]:
        raise ValueError(f"The low-resolution input must be one square RGB image, got shape {tuple(target.shape)}.")
    size = target.shape[-1]
    if size >= search_size or search_size % size:
        raise ValueError(f"The input size must divide {search_size} and be smaller; got {size}x{size}.")
    return target


class _Best:
    """Per restart: the best state evaluated so far (a success beats any failure, then the lower loss)."""

    def __init__(self, state: dict, restarts: int, device):
        self.state = {"latent": state["latent"].detach().clone(), "noise": [t.detach().clone() for t in state["noise"]]}
        self.success = torch.zeros(restarts, dtype=torch.bool, device=device)
        self.total = torch.full((restarts,), math.inf, device=device)
        self.l2 = torch.full((restarts,), math.inf, device=device)
        self.first_success: list[int | None] = [None] * restarts
        self.start_l2: torch.Tensor | None = None

    def reset_competition(self) -> None:
        """From now on only new evaluations compete (the switch to full-resolution renders)."""
        self.success.zero_()
        self.total.fill_(math.inf)

    @torch.no_grad()
    def update(self, state: dict, l2: torch.Tensor, total: torch.Tensor, eps: float, step: int) -> None:
        if self.start_l2 is None:
            self.start_l2 = l2.clone()
        success = l2 <= eps
        better = (success & ~self.success) | ((success == self.success) & (total < self.total))
        for d, s in zip([self.state["latent"], *self.state["noise"]], [state["latent"], *state["noise"]]):
            d[better] = s.detach()[better]
        self.success |= success
        self.total = torch.where(better, total, self.total)
        self.l2 = torch.minimum(self.l2, l2)
        for i in torch.nonzero(success).flatten().tolist():
            if self.first_success[i] is None:
                self.first_success[i] = step


def _start_state(adapter, restarts: int, seed: int | None, init: dict | None) -> tuple[dict, int | None]:
    """The starting tensors, explicit (``init``) or drawn from ``seed`` (None: a random seed, returned)."""
    if init is not None:
        return {"latent": init["latent"].detach().clone().to(adapter.device),
                "noise": [t.detach().clone().to(adapter.device) for t in init.get("noise", [])]}, None
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    return adapter.init_state(restarts, torch.Generator().manual_seed(seed)), seed


def _samples(adapter, best: _Best, target: torch.Tensor, eps: float) -> list[PulseSample]:
    """The final full-resolution faces of every restart's best state, successes first, then by L2."""
    with torch.no_grad():
        final = adapter.render(best.state, final=True)
        final_l2 = _per_sample_l2(final, target)
        small = downscale(final, target.shape[-1])
    samples = [
        PulseSample(
            image=final[i].clamp(0, 1).cpu(), downscaled=small[i].clamp(0, 1).cpu(), l2=float(final_l2[i]),
            success=bool(final_l2[i] <= eps), restart=i, first_success_step=best.first_success[i],
            search_l2=float(best.l2[i]), start_l2=float(best.start_l2[i]), latent=best.state["latent"][i].cpu(),
        )
        for i in range(final.shape[0])
    ]
    return sorted(samples, key=lambda s: (not s.success, s.l2))


def search_iter(adapter, target: torch.Tensor, *, steps: int = 100, lr: float = 0.4, eps: float = EPS_DEFAULT,
                restarts: int = 4, seed: int | None = 0, init: dict | None = None,
                schedule: str = "linear1cycledrop", l2_weight: float = 100.0, geocross_weight: float = 0.05,
                preview_every: int = 5, stop: Stop | None = None,
                refine_steps: int = 0) -> Iterator[PulseProgress | PulseResult]:
    """Run the search; yield :class:`PulseProgress` every ``preview_every`` steps, then the :class:`PulseResult`.

    ``init``: explicit starting tensors ``{"latent": ..., "noise": [...]}`` (batch = restarts) for
    reproducibility; otherwise they are drawn from ``seed`` (latent first, then noise layers in order; None
    draws a random seed, reported in the result).
    ``stop`` (:class:`core.pipelines.streaming.Stop`) ends the search before a step, with the best faces so far.
    ``refine_steps``: when the adapter searches below its full resolution, the last ``refine_steps``
    steps render the full resolution (the best state is then chosen among those steps only).
    """
    if steps < 1 or restarts < 1:
        raise ValueError("steps and restarts must be at least 1.")
    if not 0 < eps < 1:
        raise ValueError(f"eps must be between 0 and 1 (got {eps}).")
    lr_factor(schedule, 0, steps)  # validates the name
    started = time.perf_counter()
    target = check_target(target, adapter.search_size).to(adapter.device)
    state, seed = _start_state(adapter, restarts, seed, init)
    restarts = state["latent"].shape[0]
    params = adapter.trainable(state)
    for p in params:
        p.requires_grad_(True)
    optimiser = SphericalAdam(params, lr=lr)
    best = _Best(state, restarts, adapter.device)
    done = 0
    while done < steps and not (stop is not None and stop.now(f"{done} of {steps} steps")):
        for group in optimiser.adam.param_groups:
            group["lr"] = lr * lr_factor(schedule, done, steps)
        refining = adapter.search_size != adapter.size and done >= steps - refine_steps
        if refining and done == steps - refine_steps:
            best.reset_competition()
        image = adapter.render(state, final=refining)
        l2 = _per_sample_l2(image, target)
        total = l2_weight * l2.clamp_min(eps)
        regulariser = adapter.regulariser(state)
        if regulariser is not None and geocross_weight:
            total = total + geocross_weight * regulariser
        optimiser.adam.zero_grad(set_to_none=True)
        total.sum().backward()
        best.update(state, l2.detach(), total.detach(), eps, done)  # the state just evaluated, before the step
        optimiser.step()
        done += 1
        if preview_every and (done % preview_every == 0 or done == steps):
            lead = int(torch.argmin(best.l2))
            yield PulseProgress(done, steps, l2.tolist(), best.l2.tolist(), image[lead].detach().clamp(0, 1).cpu())

    for p in params:
        p.requires_grad_(False)
    if done == 0:  # stopped before the first step: report the starting faces
        with torch.no_grad():
            best.start_l2 = _per_sample_l2(adapter.render(state), target)
    result = PulseResult(_samples(adapter, best, target, eps), eps=eps, steps=done, seed=seed,
                         seconds=time.perf_counter() - started, stopped_early=bool(stop and stop.stopped),
                         budget_note=stop.note if stop else "")
    result.message = describe(result, steps)
    yield result


def search(adapter, target: torch.Tensor, **kwargs) -> PulseResult:
    """:func:`search_iter` run to the end; returns the :class:`PulseResult`."""
    *_, result = search_iter(adapter, target, preview_every=0, **kwargs)
    return result


def describe(result: PulseResult, planned_steps: int) -> str:
    """An honest one-paragraph summary of a search."""
    good = [s for s in result.samples if s.success]
    closest = result.samples[0]
    stop = f" The search was stopped after {result.steps} of {planned_steps} steps." if result.stopped_early else ""
    if result.budget_note:
        stop = f" {result.budget_note}"
    if good:
        return (f"{len(good)} of {len(result.samples)} faces downscale to the input within eps = {result.eps:g} "
                f"(best L2 {closest.l2:.2e}, from {closest.start_l2:.2e} at the start). They are invented faces "
                f"consistent with the input pixels, not the real person.{stop}")
    hint = ""
    if any(s.search_l2 <= result.eps for s in result.samples):
        hint = (" The search did reach eps at its search resolution, but the final full-resolution render "
                "does not downscale as closely.")
    return (f"No face within eps = {result.eps:g} was found: the closest face has L2 = {closest.l2:.2e} "
            f"(from {closest.start_l2:.2e} at the start); it is shown anyway.{hint}{stop} Try more steps, "
            "more restarts, another seed or a larger eps; inputs far from the generator's faces "
            "(real photos for a generator trained on synthetic faces, odd crops) may never reach eps.")
