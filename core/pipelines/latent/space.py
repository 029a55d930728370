"""The latent lab: what a generator's input space means, with the DCGAN and StyleGAN2 generators.

- **Explore**: every sample has its own seed, ``z = randn(nz)`` from ``torch.Generator(seed)``;
  StyleGAN2 adds the truncation ``w = w_avg + psi (mapping(z) - w_avg)`` (Karras et al., 2019).
- **Walk**: linear or spherical interpolation (:func:`slerp`: the angle is interpolated on the
  unit sphere and the norm linearly, so equal-norm endpoints keep the path on their sphere;
  White, 2016), in z, or in W for StyleGAN2; :func:`smoothness` measures the pixel distance
  between neighbouring frames.
- **Arithmetic**: :func:`attribute_direction` is the mean latent of the samples that have an
  attribute minus the mean of those that don't (the DCGAN paper's vector arithmetic, with labels
  measured by :mod:`core.pipelines.latent.attributes`); :func:`along` slides alpha along it.
- **Style mixing** (StyleGAN2): :func:`mix_styles` takes the coarse (4-8 px), middle (16-32 px)
  or fine (64 px and up) layers of W+ from a second latent (:data:`LAYER_GROUPS`).

Inversion ("back to z") is :mod:`core.pipelines.latent.inversion`.
"""

from __future__ import annotations

import numpy as np
import torch

SPACES = ("z", "w")
METHODS = ("lerp", "slerp")
MAX_FRAMES = 120
# W+ indices of each style-mixing group: the StyleGAN paper's split of its 18 layers (coarse: 4-8 px,
# middle: 16-32 px, fine: 64 px and up), by index, for any generator of at least 64 px.
LAYER_GROUPS = {"coarse": (0, 4), "middle": (4, 8), "fine": (8, None)}


class LatentGenerator:
    """A DCGAN or StyleGAN2 generator seen through its latent spaces; images come out in [-1, 1].

    ``decode`` takes z [N, nz] (``space="z"``), w [N, d] or W+ [N, n_latent, d] (``"w"``, StyleGAN2).
    StyleGAN2 renders with its stored noise buffers, so a latent always gives the same image.
    """

    def __init__(self, model: torch.nn.Module, model_id: str = "", w_avg_samples: int = 4096, batch: int | None = None):
        self.model, self.model_id = model, model_id
        self.kind = "stylegan2" if hasattr(model, "synthesis") else "dcgan"
        self.batch = batch or (64 if self.kind == "dcgan" else 4)
        self.nz = model.style_dim if self.kind == "stylegan2" else model.nz
        self.size = model.size if self.kind == "stylegan2" else 64
        self.device = next(model.parameters()).device
        self.spaces = SPACES if self.kind == "stylegan2" else ("z",)
        self._w_avg_samples, self._w_avg = w_avg_samples, None

    @property
    def w_avg(self) -> torch.Tensor:
        """The truncation centre: the mean of mapping(z) over ``w_avg_samples`` z (seed 0)."""
        if self._w_avg is None:
            self._w_avg = self.model.mean_latent(self._w_avg_samples, torch.Generator().manual_seed(0))[0].cpu()
        return self._w_avg

    def z_from_seeds(self, seeds) -> torch.Tensor:
        """z [len(seeds), nz]: one N(0, I) draw per seed, the same on every machine (CPU generator)."""
        return torch.stack([torch.randn(self.nz, generator=torch.Generator().manual_seed(int(s))) for s in seeds])

    def check_space(self, space: str) -> None:
        if space not in self.spaces:
            raise ValueError(f"The {self.kind.upper()} generator has the latent space(s) {', '.join(self.spaces)}, "
                             f"not {space!r}.")

    @torch.no_grad()
    def to_w(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """w [N, d] = w_avg + psi (mapping(z) - w_avg) (StyleGAN2 only)."""
        self.check_space("w")
        w = self.model.mapping(z.to(self.device, torch.float32)).cpu()
        return self.w_avg + psi * (w - self.w_avg)

    def decode(self, latent: torch.Tensor, space: str = "z", psi: float = 1.0, grad: bool = False) -> torch.Tensor:
        """Images [N, 3, size, size] in [-1, 1] on the CPU, rendered ``batch`` at a time; with
        ``grad=True`` one differentiable batch on the model's device (not clamped)."""
        self.check_space(space)
        latent = latent[None] if latent.ndim == 1 else latent
        if grad:
            return self._render(latent.to(self.device, torch.float32), space, psi)
        with torch.no_grad():
            return torch.cat([self._render(chunk.to(self.device, torch.float32), space, psi).float().cpu()
                              for chunk in latent.split(self.batch)]).clamp(-1, 1)

    def _render(self, latent: torch.Tensor, space: str, psi: float) -> torch.Tensor:
        if self.kind == "dcgan":
            return self.model(latent)
        if space == "z":
            w_avg = self.w_avg.to(self.device)
            latent = w_avg + psi * (self.model.mapping(latent) - w_avg)
        return self.model.synthesis(latent, noise=None)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3]."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] (or one [H, W, 3]) -> float [N, 3, H, W] in [-1, 1]."""
    images = np.asarray(images)
    images = images[None] if images.ndim == 3 else images
    return torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() / 127.5 - 1  # a copy: PIL arrays are read-only


# --- walk -------------------------------------------------------------------------------------
def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) a + t b for every t [T] -> [T, *a.shape]."""
    t = t.reshape(-1, *([1] * a.ndim)).to(a)
    return a[None] + (b - a)[None] * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the last dimension for every t [T] -> [T, *a.shape].

    The direction moves along the great circle from a/|a| to b/|b| at constant angular speed;
    the norm goes linearly from |a| to |b|. (Nearly parallel vectors fall back to lerp.)
    """
    t = t.reshape(-1, *([1] * a.ndim)).to(a)
    norm_a, norm_b = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / norm_a.clamp_min(1e-12), b / norm_b.clamp_min(1e-12)
    omega = torch.arccos((ua * ub).sum(-1, keepdim=True).clamp(-1, 1))
    sin = torch.sin(omega)
    safe = sin.abs() > 1e-6
    wa = torch.where(safe, torch.sin((1 - t) * omega) / torch.where(safe, sin, 1), 1 - t)
    wb = torch.where(safe, torch.sin(t * omega) / torch.where(safe, sin, 1), t)
    direction = wa * ua + wb * ub
    if not bool(safe.all()):
        direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return direction * ((1 - t) * norm_a + t * norm_b)


def check_frames(frames: int) -> None:
    if not 2 <= frames <= MAX_FRAMES:
        raise ValueError(f"The number of frames must be between 2 and {MAX_FRAMES}, got {frames}.")


def interpolate(a: torch.Tensor, b: torch.Tensor, frames: int, method: str = "slerp") -> torch.Tensor:
    """``frames`` latents from a to b (both ends included)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}.")
    check_frames(frames)
    if a.shape != b.shape:
        raise ValueError(f"The two latents differ in shape: {tuple(a.shape)} and {tuple(b.shape)}.")
    t = torch.linspace(0, 1, frames)
    return (slerp if method == "slerp" else lerp)(a.float(), b.float(), t)


def smoothness(frames: np.ndarray) -> dict[str, float]:
    """Pixel distance between neighbouring frames (uint8 [T, H, W, 3]; mean absolute difference,
    0-255 levels): mean, max, and the coefficient of variation (0 = every step changes the image
    equally; a walk with a jump has a large one)."""
    steps = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    return {"mean_step": float(steps.mean()), "max_step": float(steps.max()),
            "step_cv": float(steps.std() / max(steps.mean(), 1e-9)), "path_length": float(steps.sum())}


# --- arithmetic -------------------------------------------------------------------------------
def attribute_direction(latents: torch.Tensor, labels, min_per_class: int = 5) -> torch.Tensor:
    """Mean of ``latents[labels]`` minus the mean of ``latents[~labels]`` (labels: bool [N])."""
    labels = torch.as_tensor(np.asarray(labels, bool))
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if min(positives, negatives) < min_per_class:
        raise ValueError(f"A direction needs at least {min_per_class} samples with and without the attribute; "
                         f"got {positives} with and {negatives} without.")
    latents = latents.float()
    return latents[labels].mean(0) - latents[~labels].mean(0)


def split_by_score(scores: np.ndarray, threshold: float | None = None, fraction: float = 1 / 3):
    """(indices, labels) of the samples a direction is computed from.

    With a ``threshold`` (a classifier's probability): every sample, labelled score > threshold.
    Without (a continuous measurement): the top ``fraction`` (label True) and the bottom
    ``fraction`` (False); the middle is left out. NaN scores (no face found) are left out.
    """
    scores = np.asarray(scores, float)
    valid = np.flatnonzero(~np.isnan(scores))
    if threshold is not None:
        return valid, scores[valid] > threshold
    order = valid[np.argsort(scores[valid])]
    k = max(1, int(len(order) * fraction))
    indices = np.concatenate([order[:k], order[-k:]])
    return indices, np.arange(len(indices)) >= k


def along(latent: torch.Tensor, direction: torch.Tensor, alphas) -> torch.Tensor:
    """latent + alpha * direction for every alpha -> [len(alphas), *latent.shape]."""
    alphas = torch.as_tensor(np.asarray(alphas, np.float32)).reshape(-1, *([1] * latent.ndim))
    return latent[None].float() + alphas * direction[None].float()


# --- style mixing -----------------------------------------------------------------------------
def layer_indices(group: str, n_latent: int) -> list[int]:
    if group not in LAYER_GROUPS:
        raise ValueError(f"The layer group must be one of {', '.join(LAYER_GROUPS)}, not {group!r}.")
    low, high = LAYER_GROUPS[group]
    indices = list(range(low, min(n_latent, high or n_latent)))
    if not indices:
        raise ValueError(f"This generator has {n_latent} style layers: no {group} layers to mix.")
    return indices


def mix_styles(w_a: torch.Tensor, w_b: torch.Tensor, group: str, n_latent: int) -> torch.Tensor:
    """W+ [n_latent, d]: ``w_a`` everywhere except the ``group`` layers, which come from ``w_b``
    (each a w [d] or a W+ [n_latent, d])."""
    mixed = (w_a if w_a.ndim == 2 else w_a[None].expand(n_latent, -1)).clone()
    source = w_b if w_b.ndim == 2 else w_b[None].expand(n_latent, -1)
    index = layer_indices(group, n_latent)
    mixed[index] = source[index]
    return mixed
