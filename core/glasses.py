"""Eyeglasses transfer on photos with GeneGAN: "B wearing A's glasses" and "A without glasses".

Recipe (:func:`swap_glasses`):

1. each photo's one face is found with :mod:`core.faces` (YuNet, 5 landmarks) and aligned by a
   similarity transform to :data:`core.synthetic_glasses.GLASSES_TEMPLATE` at 64x64 (the layout
   the model was trained on); a 64x64 input is taken as already aligned;
2. GeneGAN splits both crops, ``B`` gets ``strength * x_A`` and ``A`` gets
   ``(1 - strength) * x_A`` (the official interpolation of the object part);
3. only the eye band (:func:`core.synthetic_glasses.eye_band`) changes: the *change* the model
   makes there (``join(B, x_A) - join(B, 0)``, ``mode="residual"``) is warped back
   to the photo's resolution and added to the original pixels with a feathered mask, so the
   photo keeps its own sharpness and every pixel outside the band stays bit-for-bit the same.
   ``mode="direct"`` pastes the decoded band itself (the paper's output) instead, with
   :func:`core.faces.paste_back`; ``mode="auto"`` (the default) adds the change for B and pastes
   the output for A (an added change cannot take sharp glasses off).

A small classifier (``genegan.glasses_classifier64``) refuses a ``B`` that already wears glasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from PIL import Image

from core.faces import AlignedFace, align_face, paste_back, single_face
from core.synthetic_glasses import GLASSES_TEMPLATE, SIZE, eye_band

MODEL_ID = "genegan.eyeglasses64"
CLASSIFIER_ID = "genegan.glasses_classifier64"
FEATHER = 3.0  # px (in the 64 px crop) over which the band fades in
GLASSES_THRESHOLD = 0.5


@dataclass
class SwapResult:
    b_with_glasses: Image.Image  # photo B wearing A's glasses (same size as B)
    a_without_glasses: Image.Image  # photo A without glasses (same size as A)
    crops: dict[str, Image.Image] = field(default_factory=dict)  # the 64 px aligned inputs and outputs
    notes: list[str] = field(default_factory=list)


def band_alpha(size: int = SIZE, feather: float = FEATHER) -> np.ndarray:
    """Soft eye-band mask [size, size] in 0..1: 1 inside, a smooth ramp over ``feather`` px, 0 outside."""
    band = eye_band(size).astype(np.uint8)
    inside = cv2.distanceTransform(np.pad(band, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    ramp = np.clip(inside / feather, 0.0, 1.0)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)


def prepare(image: Image.Image, what: str) -> AlignedFace:
    """The face of ``image`` aligned to the model's 64 px layout (a 64x64 image is used as it is)."""
    image = image.convert("RGB")
    if image.size == (SIZE, SIZE):
        return AlignedFace(image, np.array([[1.0, 0, 0], [0, 1.0, 0]]), image.size)
    face = single_face(image, what)
    return align_face(image, face, SIZE, template=GLASSES_TEMPLATE)


def _to_tensor(images: list[np.ndarray], device, dtype) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(device=device, dtype=dtype)


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.float().clamp(0, 255).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def swap_crops(model, a: np.ndarray, b: np.ndarray, strength: float = 1.0,
               removal_passes: int = 1) -> dict[str, np.ndarray]:
    """GeneGAN on aligned uint8 crops: decoded float images (0..255) of the swap and the reconstructions.

    ``removal_passes`` > 1 runs the removal again on its own result (the previous output pasted
    into A's eye band, split again, joined with the same object): each pass takes off more of
    what is left of thick frames, at the cost of some blur.
    """
    p = next(model.parameters())
    x = _to_tensor([a, b], p.device, p.dtype)
    bg, obj = model.split(x)
    bg_a, bg_b, obj_a = bg[:1], bg[1:], obj[:1]
    # Reconstructions as in training: Ax2 = join(A, x), Be2 = join(B, 0) (B's object is nulled).
    out = model.join(torch.cat([bg_b, bg_a, bg_a, bg_b]),
                     torch.cat([obj_a * strength, obj_a * (1 - strength), obj_a, torch.zeros_like(obj_a)]))
    b_with, a_without, a_rec, b_rec = _to_numpy(out)
    for _ in range(removal_passes - 1):
        again = composite(a, a_without, None, "direct")
        bg_again, _ = model.split(_to_tensor([again], p.device, p.dtype))
        a_without = _to_numpy(model.join(bg_again, obj_a * (1 - strength)))[0]
    return {"b_with": b_with, "a_without": a_without, "a_rec": a_rec, "b_rec": b_rec}


def composite(original: np.ndarray, decoded: np.ndarray, reconstruction: np.ndarray, mode: str,
              alpha: np.ndarray | None = None) -> np.ndarray:
    """Edit an aligned uint8 crop inside the eye band only (``residual``: add the model's change)."""
    alpha = band_alpha(original.shape[0]) if alpha is None else alpha
    base = original.astype(np.float32)
    target = base + (decoded - reconstruction) if mode == "residual" else decoded
    mixed = base * (1 - alpha[..., None]) + target * alpha[..., None]
    out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return np.where(alpha[..., None] > 0, out, original)


def paste_change(photo: Image.Image, aligned: AlignedFace, change: np.ndarray, alpha: np.ndarray) -> Image.Image:
    """Add ``change`` (float, crop coordinates) to ``photo`` inside ``alpha``; pixels where the
    warped mask is 0 are returned unchanged, bit for bit."""
    rgb = np.asarray(photo.convert("RGB"))
    height, width = rgb.shape[:2]
    inverse = cv2.invertAffineTransform(aligned.matrix)
    delta = cv2.warpAffine(change.astype(np.float32), inverse, (width, height), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REPLICATE)
    weight = np.clip(cv2.warpAffine(alpha, inverse, (width, height), flags=cv2.INTER_LINEAR, borderValue=0), 0, 1)
    out = np.clip(np.rint(rgb + delta * weight[..., None]), 0, 255).astype(np.uint8)
    return Image.fromarray(np.where(weight[..., None] > 0, out, rgb))


def _apply(photo: Image.Image, aligned: AlignedFace, decoded: np.ndarray, reconstruction: np.ndarray,
           mode: str, alpha: np.ndarray) -> Image.Image:
    crop = np.asarray(aligned.image)
    if photo.size == (SIZE, SIZE):
        return Image.fromarray(composite(crop, decoded, reconstruction, mode, alpha))
    if mode == "residual":  # the model's change, added at the photo's own resolution
        return paste_change(photo, aligned, decoded - reconstruction, alpha)
    # "direct": the decoded band itself, warped back and blended in (core.faces.paste_back).
    edited = Image.fromarray(np.clip(np.rint(decoded), 0, 255).astype(np.uint8))
    return paste_back(photo, edited, aligned, region=eye_band(SIZE).astype(np.float32), feather=FEATHER / SIZE)


def glasses_probability(classifier, crops: list[np.ndarray]) -> np.ndarray:
    p = next(classifier.parameters())
    with torch.no_grad():
        return classifier.probability(_to_tensor(crops, p.device, p.dtype)).float().cpu().numpy()


def swap_glasses(photo_a: Image.Image, photo_b: Image.Image, strength: float = 1.0, mode: str = "auto",
                 removal_passes: int = 2, model=None, classifier=None, check_b: bool = True) -> SwapResult:
    """``photo_a`` wears glasses, ``photo_b`` does not; returns B with A's glasses and A without them.

    ``mode``: ``residual`` (add the model's change), ``direct`` (paste the decoded band) or ``auto``
    (residual for B, direct for A: adding the change cannot take sharp glasses off, because the
    model's blurry reconstruction only cancels their blurry part). ``removal_passes``: 1 is the
    paper's ``join(A, 0)``; 2 (default) runs the removal once more on its own result.
    """
    from core.weights import load_model

    if mode not in ("auto", "residual", "direct"):
        raise ValueError(f"mode must be 'auto', 'residual' or 'direct', not {mode!r}")
    mode_b = "residual" if mode == "auto" else mode
    mode_a = "direct" if mode == "auto" else mode
    if not 0.0 <= strength <= 1.5:
        raise ValueError(f"strength must be between 0 and 1.5, got {strength}")
    if removal_passes not in (1, 2, 3):
        raise ValueError(f"removal_passes must be 1, 2 or 3, got {removal_passes}")
    photo_a, photo_b = photo_a.convert("RGB"), photo_b.convert("RGB")
    a = prepare(photo_a, "image A (the face wearing glasses)")
    b = prepare(photo_b, "image B (the face without glasses)")
    crop_a, crop_b = np.asarray(a.image), np.asarray(b.image)
    notes = []
    classifier = classifier if classifier is not None else load_model(CLASSIFIER_ID)
    prob_a, prob_b = glasses_probability(classifier, [crop_a, crop_b])
    if check_b and prob_b > GLASSES_THRESHOLD:
        raise ValueError(f"Image B already seems to wear glasses (classifier: {prob_b:.0%}). "
                         "Use a face without glasses for B, and the one wearing glasses for A.")
    if prob_a < GLASSES_THRESHOLD:
        notes.append(f"Image A does not seem to wear glasses (classifier: {prob_a:.0%}); there may be nothing to move.")
    model = model if model is not None else load_model(MODEL_ID)
    out = swap_crops(model, crop_a, crop_b, strength, removal_passes)
    alpha = band_alpha()
    b_with = _apply(photo_b, b, out["b_with"], out["b_rec"], mode_b, alpha)
    a_without = _apply(photo_a, a, out["a_without"], out["a_rec"], mode_a, alpha)
    crops = {
        "a": a.image, "b": b.image,
        "b_with": Image.fromarray(composite(crop_b, out["b_with"], out["b_rec"], mode_b, alpha)),
        "a_without": Image.fromarray(composite(crop_a, out["a_without"], out["a_rec"], mode_a, alpha)),
    }
    return SwapResult(b_with, a_without, crops, notes)
