"""Back to z: the latent of a face photo, three ways, and edits of the photo through it.

- ``optimise``: Adam on z from ``restarts`` random starts (the best one is kept), loss =
  mean squared pixel error in [-1, 1] + ``feature_weight`` x the squared error of the first two
  convolution blocks of the project's glasses classifier (the only face-trained feature
  extractor available offline; a weak stand-in for a perceptual loss) + ``prior_weight`` x
  (|z|^2 / nz - 1)^2, which keeps z near the shell where N(0, I) samples live.
- ``encoder``: one pass of the latent encoder trained here (the latent app's ``encoder`` in the manifest).
- ``hybrid``: the encoder's guess as the single start of the optimiser (Zhu et al., ECCV 2016).

A photo is first aligned to the generator's framing (:func:`align_photo`; DCGAN: the manifest's
``dcgan_faces64`` layout, the one PULSE uses). :func:`edit_photo` decodes ``z + alpha d`` and puts
the result back into the photo: ``residual`` adds the change the edit makes (G(z + alpha d) - G(z)) at the photo's
own resolution, so the person keeps their face where the inversion is imperfect; ``direct``
pastes the decoded face itself (:func:`core.faces.paste_back`). Both touch only a feathered
ellipse around the face.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.pipelines.latent.space import LatentGenerator, from_uint8, to_uint8

INVERSION_METHODS = ("optimise", "encoder", "hybrid")
BLENDS = ("residual", "direct")
FEATHER = 0.08  # x the crop size: the ramp inside the face ellipse where an edit fades in


def check_method(method: str) -> None:
    if method not in INVERSION_METHODS:
        raise ValueError(f"method must be one of {', '.join(INVERSION_METHODS)}, not {method!r}.")


def check_blend(blend: str) -> None:
    if blend not in BLENDS:
        raise ValueError(f"blend must be 'residual' or 'direct', not {blend!r}.")


@dataclass
class Inversion:
    latent: torch.Tensor  # [N, nz]
    images: torch.Tensor  # [N, 3, H, W] in [-1, 1]: G(latent)
    pixel_error: np.ndarray  # [N] mean absolute error against the target, 0-255 levels
    seconds: float
    method: str
    steps: int


def classifier_features(classifier: torch.nn.Module | None):
    """The glasses classifier's first two blocks (32 x 16 x 16 features) as a function of [-1, 1] images."""
    if classifier is None:
        return None
    blocks = classifier.features[:6]
    return lambda x: blocks(x)


def optimise(gen: LatentGenerator, target: torch.Tensor, start: torch.Tensor, steps: int = 100, lr: float = 0.05,
             features=None, feature_weight: float = 0.0, prior_weight: float = 0.01) -> torch.Tensor:
    """z [N, nz] that makes G(z) match ``target`` [N, 3, H, W] in [-1, 1], from ``start`` [N, nz]."""
    target = target.to(gen.device, torch.float32)
    z = start.detach().clone().to(gen.device, torch.float32).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    target_features = features(target).detach() if features is not None and feature_weight > 0 else None
    for _ in range(steps):
        image = gen.decode(z, grad=True)
        loss = (image - target).pow(2).mean((1, 2, 3))
        if target_features is not None:
            loss = loss + feature_weight * (features(image) - target_features).pow(2).mean((1, 2, 3))
        if prior_weight > 0:
            loss = loss + prior_weight * (z.pow(2).mean(1) - 1).pow(2)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
    return z.detach().cpu()


def pixel_error(images: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Mean absolute error per image in 0-255 levels (images in [-1, 1])."""
    return ((images.cpu().float() - target.cpu().float()).abs().mean((1, 2, 3)) * 127.5).numpy()


def invert(gen: LatentGenerator, target: torch.Tensor, method: str = "hybrid", encoder=None, steps: int = 100,
           restarts: int = 2, seed: int = 0, lr: float = 0.05, features=None, feature_weight: float = 0.0,
           prior_weight: float = 0.01) -> Inversion:
    """Invert ``target`` [N, 3, H, W] in [-1, 1] (the generator's size) with one of :data:`INVERSION_METHODS`."""
    check_method(method)
    if gen.kind != "dcgan":
        if method != "optimise":
            raise ValueError("Only the DCGAN has an encoder here; invert StyleGAN2 faces with 'optimise'.")
    if method in ("encoder", "hybrid") and encoder is None:
        raise ValueError(f"The {method!r} method needs the latent encoder.")
    if target.shape[-1] != gen.size:
        target = F.interpolate(target, size=(gen.size, gen.size), mode="bilinear", align_corners=False, antialias=True)
    started = time.perf_counter()
    n = target.shape[0]
    options = dict(steps=steps, lr=lr, features=features, feature_weight=feature_weight, prior_weight=prior_weight)
    if method == "optimise":
        starts = torch.randn(restarts, n, gen.nz, generator=torch.Generator().manual_seed(seed))
        candidates = optimise(gen, target.repeat(restarts, 1, 1, 1), starts.reshape(-1, gen.nz), **options)
        errors = pixel_error(gen.decode(candidates), target.repeat(restarts, 1, 1, 1)).reshape(restarts, n)
        best = errors.argmin(0)
        latent = candidates.reshape(restarts, n, gen.nz)[best, np.arange(n)]
    else:
        with torch.no_grad():  # the encoder lives on the generator's device, in float32
            latent = encoder(target.to(gen.device, torch.float32)).float().cpu()
        if method == "hybrid":
            latent = optimise(gen, target, latent, **options)
    images = gen.decode(latent)
    return Inversion(latent, images, pixel_error(images, target), time.perf_counter() - started, method,
                     0 if method == "encoder" else steps)


# --- photos -----------------------------------------------------------------------------------
def align_photo(photo: Image.Image, gen: LatentGenerator):
    """The photo's one face aligned to the generator's framing (a photo already at the generator's
    size is taken as aligned). Returns a :class:`core.faces.AlignedFace`."""
    from core.faces import AlignedFace, align_face, single_face
    from core.weights import face_layout

    photo = photo.convert("RGB")
    if photo.size == (gen.size, gen.size):
        return AlignedFace(photo, np.array([[1.0, 0, 0], [0, 1.0, 0]]), photo.size)
    return align_face(photo, single_face(photo, "the photo"), gen.size,
                      template=face_layout("dcgan_faces64") if gen.kind == "dcgan" else "ffhq")


def face_ellipse(size: int) -> np.ndarray:
    """Float [size, size] mask: the ellipse the face fills in an aligned crop (1 inside)."""
    y, x = np.mgrid[0:size, 0:size] / size
    return (((x - 0.5) / 0.42) ** 2 + ((y - 0.56) / 0.47) ** 2 <= 1).astype(np.float32)


def edit_photo(photo: Image.Image, aligned, before: torch.Tensor, after: torch.Tensor,
               blend: str = "residual") -> tuple[Image.Image, Image.Image]:
    """(edited photo, edited aligned crop) from G(z) ``before`` and G(z + alpha d) ``after`` ([3, H, W])."""
    from core.faces import feathered, paste_back, paste_change

    check_blend(blend)
    mask = face_ellipse(aligned.size)
    decoded = to_uint8(after[None])[0]
    if blend == "direct":
        return paste_back(photo, Image.fromarray(decoded), aligned, region=mask), Image.fromarray(decoded)
    change = (after - before).permute(1, 2, 0).cpu().numpy() * 127.5
    soft = feathered(mask, max(1.0, FEATHER * mask.shape[0]))  # paste_back's default feather
    crop = np.asarray(aligned.image.convert("RGB")).astype(np.float32)
    edited_crop = Image.fromarray(np.clip(np.rint(crop + change * soft[..., None]), 0, 255).astype(np.uint8))
    return paste_change(photo, aligned, change, soft), edited_crop


def target_from_crop(aligned) -> torch.Tensor:
    """[1, 3, H, W] in [-1, 1] from an aligned crop."""
    return from_uint8(np.asarray(aligned.image.convert("RGB")))
