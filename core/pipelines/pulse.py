"""PULSE: self-supervised upsampling by latent-space search (Menon et al., CVPR 2020, arXiv:2003.03808).

PULSE does not sharpen pixels. It searches a face generator's latent space for high-resolution
faces that, once downscaled, match the low-resolution input; many faces do, so it returns
several (one per restart) and it can fail. The recipe (``adamian98/pulse`` defaults):

1. Latents start from N(0, I) (a seed or explicit tensors) and live on spheres: after every
   Adam step each latent vector (and each trainable noise map) is rescaled to its initial norm.
2. Loss per restart: ``100 * max(L2, eps) + 0.05 * GEOCROSS`` where L2 is the mean squared
   error between the bicubically downscaled output (a = -0.5) and the input, both in [0, 1],
   and GEOCROSS (W+ only) pulls the per-layer latents towards each other on the sphere.
3. Adam, lr 0.4, the ``linear1cycledrop`` schedule, 100 steps; success when L2 <= eps (2e-3).

One search procedure serves two generators through small adapters: StyleGAN2 (W+ in the
Gaussian-fitted space of its own mapping network, trainable noise in the first layers) and
the offline DCGAN (z in R^100, no GEOCROSS). For StyleGAN2 the search may run on the 256 px
intermediate RGB of the skip architecture and render the full 1024 px image once at the end.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

EPS_DEFAULT = 2e-3
SCHEDULES = ("linear1cycledrop", "linear1cycle", "fixed")

# Mean positions (fractions of the side) of the five landmarks on 197 DCGAN faces (dcgan.faces64,
# z seed 123), as YuNet found them: its DigiFace crops are tighter than FFHQ's (an FFHQ quad would be
# 1.28x the crop), so photos are aligned to this template for the DCGAN generator.
DCGAN_TEMPLATE = np.array([[0.342, 0.466], [0.645, 0.469], [0.483, 0.652], [0.369, 0.792], [0.616, 0.792]])


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


# --- generator adapters -------------------------------------------------------------------------
class DCGANAdapter:
    """DCGAN ``G(z)``, z in R^nz on its sphere; output mapped from [-1, 1] to [0, 1]; no GEOCROSS."""

    name = "DCGAN"
    template: str | np.ndarray = DCGAN_TEMPLATE

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.device = next(model.parameters()).device
        self.nz = model.nz
        self.size = 64
        self.search_size = 64

    def init_state(self, n: int, generator: torch.Generator) -> dict:
        return {"latent": torch.randn(n, 1, self.nz, generator=generator).to(self.device), "noise": []}

    def trainable(self, state: dict) -> list[torch.Tensor]:
        return [state["latent"]]

    def render(self, state: dict, final: bool = False) -> torch.Tensor:
        return (self.model(state["latent"][:, 0]) + 1) / 2

    def regulariser(self, state: dict) -> torch.Tensor | None:
        return None


class StyleGAN2Adapter:
    """StyleGAN2 W+ search as PULSE did for StyleGAN1.

    The optimised latent ``x`` [B, n_latent, dim] lives in a Gaussianised space:
    ``w = LeakyReLU(0.2)(x * std + mean)``, where (mean, std) fit ``LeakyReLU(5)(mapping(z))``
    over many z (:func:`gaussian_fit`). Noise: the first ``trainable_noise`` layers are optimised,
    the others are fixed N(0, 1) draws, and the last (full-resolution) layer is zero, as PULSE's
    defaults. ``search_resolution`` < size searches on the intermediate RGB of the skip
    architecture at that resolution; :meth:`render` with ``final=True`` always renders ``size``.
    """

    name = "StyleGAN2"
    template: str | np.ndarray = "ffhq"

    def __init__(self, model: torch.nn.Module, fit: tuple[torch.Tensor, torch.Tensor] | None = None,
                 search_resolution: int | None = None, trainable_noise: int = 5):
        self.model = model
        self.device = model.input.input.device
        self.size = model.size
        self.search_size = search_resolution or model.size
        if self.search_size not in model.channels:
            raise ValueError(f"search_resolution must be a power of two <= {model.size}, got {search_resolution}.")
        mean, std = fit if fit is not None else gaussian_fit(model)
        self.mean, self.std = mean.to(self.device), std.to(self.device)
        self.trainable_noise = trainable_noise

    def init_state(self, n: int, generator: torch.Generator) -> dict:
        m = self.model
        latent = torch.randn(n, m.n_latent, m.style_dim, generator=generator)
        noise = []
        for i in range(m.num_layers):
            r = m.noise_resolution(i)
            last = i == m.num_layers - 1  # PULSE zeroes the last (full-resolution) noise layer
            noise.append(torch.zeros(n, 1, r, r) if last else torch.randn(n, 1, r, r, generator=generator))
        return {"latent": latent.to(self.device), "noise": [t.to(self.device) for t in noise]}

    def trainable(self, state: dict) -> list[torch.Tensor]:
        return [state["latent"]] + state["noise"][: self.trainable_noise]

    def w_plus(self, state: dict) -> torch.Tensor:
        return F.leaky_relu(state["latent"] * self.std + self.mean, 0.2)

    def render(self, state: dict, final: bool = False) -> torch.Tensor:
        resolution = self.size if final else self.search_size
        return (self.model.synthesis(self.w_plus(state), noise=state["noise"], resolution=resolution) + 1) / 2

    def regulariser(self, state: dict) -> torch.Tensor | None:
        return geocross(self.w_plus(state))


@torch.no_grad()
def gaussian_fit(model: torch.nn.Module, samples: int = 100_000, seed: int = 0,
                 batch: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) [style_dim] of ``LeakyReLU(5)(mapping(z))`` over ``samples`` z ~ N(0, I) (float64 sums)."""
    generator = torch.Generator().manual_seed(seed)
    device = model.input.input.device
    total = torch.zeros(model.style_dim, dtype=torch.float64)
    total_sq = torch.zeros(model.style_dim, dtype=torch.float64)
    for start in range(0, samples, batch):
        z = torch.randn(min(batch, samples - start), model.style_dim, generator=generator).to(device)
        v = F.leaky_relu(model.mapping(z), 5.0).double().cpu()
        total += v.sum(0)
        total_sq += v.pow(2).sum(0)
    mean = total / samples
    std = (total_sq / samples - mean.pow(2)).clamp_min(0).sqrt() * math.sqrt(samples / max(samples - 1, 1))
    return mean.float(), std.float()


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
    stopped_early: bool = False
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


def _clone_state(state: dict) -> dict:
    return {"latent": state["latent"].detach().clone(), "noise": [t.detach().clone() for t in state["noise"]]}


def _copy_where(dst: dict, src: dict, mask: torch.Tensor) -> None:
    for d, s in zip([dst["latent"], *dst["noise"]], [src["latent"], *src["noise"]]):
        d[mask] = s.detach()[mask]


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


def pulse_iter(adapter, target: torch.Tensor, *, steps: int = 100, lr: float = 0.4, eps: float = EPS_DEFAULT,
               restarts: int = 4, seed: int | None = 0, init: dict | None = None,
               schedule: str = "linear1cycledrop", l2_weight: float = 100.0, geocross_weight: float = 0.05,
               preview_every: int = 5, should_stop: Callable[[], bool] | None = None, refine_steps: int = 0,
               budget=None) -> Iterator[PulseProgress | PulseResult]:
    """Run the search; yield :class:`PulseProgress` every ``preview_every`` steps, then the :class:`PulseResult`.

    ``init``: explicit starting tensors ``{"latent": ..., "noise": [...]}`` (batch = restarts) for
    reproducibility; otherwise they are drawn from ``seed`` (latent first, then noise layers in order; None
    draws a random seed, reported in the result).
    ``should_stop()`` returning True ends the search early (the result says so).
    ``refine_steps``: when the adapter searches below its full resolution, the last ``refine_steps``
    steps render the full resolution (the best state is then chosen among those steps only).
    ``budget``: a :class:`core.limits.Budget`; when it runs out the search ends like ``should_stop``
    and the result's message says so.
    """
    if steps < 1 or restarts < 1:
        raise ValueError("steps and restarts must be at least 1.")
    if not 0 < eps < 1:
        raise ValueError(f"eps must be between 0 and 1 (got {eps}).")
    lr_factor(schedule, 0, steps)  # validates the name
    started = time.perf_counter()
    target = check_target(target, adapter.search_size).to(adapter.device)
    if init is None:
        seed = secrets.randbelow(2**31) if seed is None else int(seed)  # reported in the result
        state = adapter.init_state(restarts, torch.Generator().manual_seed(seed))
    else:
        state = {"latent": init["latent"].detach().clone().to(adapter.device),
                 "noise": [t.detach().clone().to(adapter.device) for t in init.get("noise", [])]}
        restarts = state["latent"].shape[0]
    params = adapter.trainable(state)
    for p in params:
        p.requires_grad_(True)
    optimiser = SphericalAdam(params, lr=lr)

    best = _clone_state(state)
    best_success = torch.zeros(restarts, dtype=torch.bool, device=adapter.device)
    best_total = torch.full((restarts,), math.inf, device=adapter.device)
    best_l2 = torch.full((restarts,), math.inf, device=adapter.device)
    first_success = [None] * restarts
    start_l2 = None
    stopped = False
    budget_note = ""
    done = 0
    for step in range(steps):
        if should_stop is not None and should_stop():
            stopped = True
            break
        if budget is not None and budget.expired():
            stopped, budget_note = True, budget.stopped(f"{done} of {steps} steps")
            break
        for group in optimiser.adam.param_groups:
            group["lr"] = lr * lr_factor(schedule, step, steps)
        refining = adapter.search_size != adapter.size and step >= steps - refine_steps
        if refining and step == steps - refine_steps:  # from now on only full-resolution evaluations compete
            best_success.zero_()
            best_total.fill_(math.inf)
        image = adapter.render(state, final=refining)
        l2 = _per_sample_l2(image, target)
        total = l2_weight * l2.clamp_min(eps)
        regulariser = adapter.regulariser(state)
        if regulariser is not None and geocross_weight:
            total = total + geocross_weight * regulariser
        optimiser.adam.zero_grad(set_to_none=True)
        total.sum().backward()

        with torch.no_grad():  # keep the state that was just evaluated if it is the best of its restart
            l2, total = l2.detach(), total.detach()
            if start_l2 is None:
                start_l2 = l2.clone()
            success = l2 <= eps
            better = (success & ~best_success) | ((success == best_success) & (total < best_total))
            _copy_where(best, state, better)
            best_success |= success
            best_total = torch.where(better, total, best_total)
            best_l2 = torch.minimum(best_l2, l2)
            for i in torch.nonzero(success).flatten().tolist():
                if first_success[i] is None:
                    first_success[i] = step
        optimiser.step()
        done = step + 1
        if preview_every and (done % preview_every == 0 or done == steps):
            lead = int(torch.argmin(best_l2))
            yield PulseProgress(done, steps, l2.tolist(), best_l2.tolist(), image[lead].detach().clamp(0, 1).cpu())

    for p in params:
        p.requires_grad_(False)
    if done == 0:  # stopped before the first step: report the starting faces
        with torch.no_grad():
            start_l2 = _per_sample_l2(adapter.render(state), target)
    with torch.no_grad():
        final = adapter.render(best, final=True)
        final_l2 = _per_sample_l2(final, target)
        small = downscale(final, target.shape[-1])
    samples = [
        PulseSample(
            image=final[i].clamp(0, 1).cpu(), downscaled=small[i].clamp(0, 1).cpu(), l2=float(final_l2[i]),
            success=bool(final_l2[i] <= eps), restart=i, first_success_step=first_success[i],
            search_l2=float(best_l2[i]), start_l2=float(start_l2[i]), latent=best["latent"][i].cpu(),
        )
        for i in range(restarts)
    ]
    samples.sort(key=lambda s: (not s.success, s.l2))
    result = PulseResult(samples, eps=eps, steps=done, seed=None if init is not None else seed,
                         seconds=time.perf_counter() - started, stopped_early=stopped, budget_note=budget_note)
    result.message = describe(result, steps)
    yield result


def pulse(adapter, target: torch.Tensor, **kwargs) -> PulseResult:
    """:func:`pulse_iter` run to the end; returns the :class:`PulseResult`."""
    *_, result = pulse_iter(adapter, target, preview_every=0, **kwargs)
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


# --- faces in ---------------------------------------------------------------------------------
@dataclass
class LowResInput:
    tensor: torch.Tensor  # [1, 3, size, size] in [0, 1]
    image: Image.Image  # the same, as PIL
    aligned: Image.Image | None  # the aligned high-resolution crop (photos only)
    note: str  # what was done to the input


def pil_to_unit(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]


def unit_to_pil(tensor: torch.Tensor) -> Image.Image:
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


TINY_MAX_SIDE = 64  # square inputs up to this size are taken as already-cropped low-resolution faces


def low_res_input(image: Image.Image, size: int, hr_size: int, template: str | np.ndarray = "ffhq",
                  face_index: int | None = None) -> LowResInput:
    """The low-resolution face to search for.

    A square image of at most 64 px is used as is (downscaled to ``size`` with
    :class:`BicubicDownsample` when its side is a multiple of ``size``, else resized). A larger
    photo is searched for faces (MTCNN), the face is aligned (``template``) to ``hr_size`` and
    downscaled to ``size`` with :class:`BicubicDownsample`, PULSE's "downscale, then recover" demo.
    No face, or several faces without ``face_index``, raises ``ValueError`` with a clear message.
    """
    from core.faces import align_face, detect_faces

    width, height = image.size
    if width == height and width <= TINY_MAX_SIDE:
        note = f"The input is a {width}x{width} face, used as is"
        tensor = pil_to_unit(image)
        if width > size and width % size == 0:
            tensor = downscale(tensor, size).clamp(0, 1)
            note += f" after downscaling it to {size}x{size} (PULSE's bicubic)"
        elif width != size:
            tensor = pil_to_unit(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
            note += f" after resizing it to {size}x{size}"
        return LowResInput(tensor, unit_to_pil(tensor[0]), None, note + ".")
    if min(width, height) <= TINY_MAX_SIDE:
        raise ValueError(f"A {width}x{height} image is too small to find a face in and not square; crop it to a "
                         f"square face (8 to {TINY_MAX_SIDE} px) or send a larger photo.")
    faces = detect_faces(image)
    if not faces:
        raise ValueError("No face was found in the photo. Use a photo with a clear frontal face, "
                         f"or a square face crop of at most {TINY_MAX_SIDE} px.")
    if len(faces) > 1 and face_index is None:
        raise ValueError(f"{len(faces)} faces were found in the photo; choose one by its number, 1 to {len(faces)} "
                         "(1 is the most confident).")
    index = face_index or 0
    if not 0 <= index < len(faces):
        raise ValueError(f"Face {index + 1} does not exist: the photo has {len(faces)} face(s).")
    aligned = align_face(image, faces[index], hr_size, template=template)
    tensor = downscale(pil_to_unit(aligned.image), size).clamp(0, 1)
    note = (f"Found {len(faces)} face(s); face {index + 1} was aligned to {hr_size}x{hr_size} and downscaled "
            f"to {size}x{size}.")
    return LowResInput(tensor, unit_to_pil(tensor[0]), aligned.image, note)


# --- models -----------------------------------------------------------------------------------
# Seconds per step and sample on a 2-core CPU (apps/pulse/README.md, bench/pulse_speed.py); refined by
# the durations measured on the server (core.limits.JOB_CLOCK).
SECONDS_PER_STEP_SAMPLE = {"dcgan.faces64": 0.005, "stylegan2.ffhq1024": 0.6}


def clock_kind(generator: str, search: str) -> str:
    """The name under which a search's duration is measured (StyleGAN2's depends on its search size)."""
    return f"pulse:{generator}" + (f":{search}" if generator == "stylegan2.ffhq1024" else "")


def expected_seconds(generator: str, steps, samples, search: str = "256+1024") -> float:
    """How long a search of ``steps`` x ``samples`` should take here (raises on unreadable numbers)."""
    from core.limits import JOB_CLOCK

    prior = SECONDS_PER_STEP_SAMPLE.get(generator, 1.0)
    return JOB_CLOCK.estimate(clock_kind(generator, search), int(steps) * int(samples), prior)


def load_generator(model_id: str, device: torch.device | str | None = None) -> torch.nn.Module:
    """The generator of ``model_id`` as the search uses it: float32 (it back-propagates through it)."""
    from core.weights import load_model

    return load_model(model_id, device=device, dtype=torch.float32)


def load_adapter(model_id: str, device: torch.device | str | None = None, search_resolution: int | None = None,
                 fit_samples: int = 100_000):
    """The adapter for a manifest model (``dcgan`` or ``stylegan2``); loads weights (shared cache)."""
    from core.cache import MODEL_CACHE
    from core.weights import get_entry

    entry = get_entry(model_id)
    model = load_generator(model_id, device)
    if entry.arch == "dcgan":
        return DCGANAdapter(model)
    if entry.arch == "stylegan2":
        key = (model_id, "pulse_gaussian_fit", fit_samples, str(model.input.input.device))
        fit = MODEL_CACHE.get_or_load(key, lambda: gaussian_fit(model, samples=fit_samples),
                                      size=lambda f: sum(t.numel() * t.element_size() for t in f))
        search = min(search_resolution, model.size) if search_resolution else None  # 256 on a 256 px model: no-op
        return StyleGAN2Adapter(model, fit=fit, search_resolution=search)
    raise ValueError(f"PULSE supports dcgan and stylegan2 generators, not {entry.arch!r} ({model_id}).")
