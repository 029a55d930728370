"""Glasses removal and addition at a photo's own resolution, with the 64 px GeneGAN as a guide.

- :func:`remove_glasses`: the frame mask of :mod:`core.pipelines.glasses.mask` is inpainted with the
  project's inpainting (:func:`core.pipelines.inpaint.run`, ``method="auto"``: a learned
  model where its weights are here, OpenCV otherwise), on a window around the glasses at a scale
  where the eyes are about 96 px apart (the same result for a phone photo as for a thumbnail). Only masked pixels change; the eyes behind
  transparent lenses are never masked (they are filled along with the frames, so that the fill
  comes from the skin, and then restored). If the classifier still sees glasses on the result, the
  mask is searched once more with a lower threshold and a wider margin.
- :func:`add_glasses`: the glasses go where GeneGAN puts them on B (a matte from where its output
  departs from its reconstruction of B, cleaned of specks), in the shape and colours of A's real
  frames, sampled from A's photo and warped to B through the two alignments; composited with that
  alpha times the strength, so every pixel outside the matte (lens interiors included) is B's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from core.faces import AlignedFace
from core.pipelines.glasses.layout import SIZE, eye_band, template
from core.pipelines.glasses.mask import GlassesMask, eye_ellipses, find_frames, model_evidence, occlusion_drop

MATTE_LEVEL = 18.0  # GeneGAN change (0..255, mean over RGB) above which a 64 px pixel is "glasses"
MIN_SPECK = 4  # pieces of the matte smaller than this many 64 px pixels (at the photo's scale) are dropped
INPAINT_CONTEXT = 1.5  # context around the frames given to the inpainting, x the eye distance
INPAINT_EYE_DISTANCE = 96  # px: the inpainting runs at a scale where the eyes are at most this far apart
GATE_REACH = 0.1  # A's frames are kept up to this far (x B's eye distance) from the model's matte


@dataclass
class Removal:
    image: Image.Image
    mask: GlassesMask
    method: str  # the inpainting method that ran
    notice: str  # the inpainting's message ("" when none)
    probability: float  # the classifier's P(glasses) on the result


def _to_photo(crop_map: np.ndarray, aligned: AlignedFace, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
    """A float map in crop coordinates, warped to the photo's resolution (0 outside the crop)."""
    inverse = cv2.invertAffineTransform(aligned.matrix)
    return cv2.warpAffine(crop_map.astype(np.float32), inverse, aligned.source_size, flags=interpolation,
                          borderValue=0)


def frame_mask(photo: Image.Image, aligned: AlignedFace, eyes: np.ndarray, swap: dict, classifier,
               sensitivity: float = 1.0, margin: float | None = None) -> GlassesMask:
    """The glasses of ``photo`` located with the models' evidence and refined on the photo itself."""
    crop = np.asarray(aligned.image)
    evidence = model_evidence(swap["a_rec"], swap["a_without"], occlusion_drop(classifier, crop))
    return find_frames(np.asarray(photo), eyes, _to_photo(evidence, aligned), sensitivity, margin)


def remove_glasses(photo: Image.Image, aligned: AlignedFace, eyes: np.ndarray, swap: dict, classifier,
                   judge: Callable[[Image.Image], float], method: str = "auto", threshold: float = 0.5) -> Removal:
    """``photo`` without its glasses: the frames inpainted, every other pixel bit for bit the same.

    ``judge(image)`` is the classifier's P(glasses) on an image aligned like ``aligned``.
    """
    from core.pipelines import inpaint
    from core.pipelines.inpaint_masks import mask_box

    distance = float(np.hypot(*(eyes[1] - eyes[0])))
    context = int(round(INPAINT_CONTEXT * distance))
    mask, result = None, None
    for sensitivity, margin_scale in ((1.0, 1.0), (1.6, 2.0)):
        mask = frame_mask(photo, aligned, eyes, swap, classifier, sensitivity, max(1.0, 0.03 * distance) * margin_scale)
        # The eyes are part of the hole given to the inpainting, so the fill is drawn from the skin
        # around the frames and not from the lashes; they are then put back, pixel for pixel.
        hole = mask.hole | mask.eyes
        left, top, right, bottom = mask_box(hole)
        window = max(right - left, bottom - top) + 2 * context
        working_size = max(64, int(window * min(1.0, INPAINT_EYE_DISTANCE / distance)))
        result = inpaint.run(photo, hole, inpaint.Settings(method=method, margin=context, working_size=working_size))
        image = Image.fromarray(np.where(mask.hole[..., None], np.asarray(result.image), np.asarray(photo)))
        after = judge(image)
        if after <= threshold:
            break
    return Removal(image, mask, result.method, result.notice, after)


def model_matte(swap: dict, strength_level: float = MATTE_LEVEL) -> np.ndarray:
    """Bool 64 px matte of the glasses GeneGAN adds to B: where ``join(B, s·x_A)`` departs from
    ``join(B, 0)`` by more than ``strength_level``, inside the eye band, without specks."""
    change = np.abs(swap["b_with"] - swap["b_rec"]).mean(-1)
    matte = (change > strength_level) & eye_band(change.shape[0])
    return _without_specks(matte, MIN_SPECK)


def _without_specks(mask: np.ndarray, min_area: float) -> np.ndarray:
    """``mask`` without its connected pieces (8-connected) of fewer than ``min_area`` pixels."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def _eye_distance_64() -> float:
    """The eye distance of the aligned 64 px crop, in pixels."""
    layout = template()
    return float((layout[1, 0] - layout[0, 0]) * SIZE)


def _affine3(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def add_glasses(photo_b: Image.Image, aligned_b: AlignedFace, eyes_b: np.ndarray, swap: dict,
                photo_a: Image.Image, aligned_a: AlignedFace, frames_a: np.ndarray,
                strength: float) -> tuple[Image.Image, np.ndarray]:
    """B wearing A's frames: returns the photo and the alpha matte used (float [H, W] in 0..1)."""
    b = np.asarray(photo_b)
    width, height = photo_b.size
    alpha_full = np.zeros((height, width), np.float32)
    distance = float(np.hypot(*(eyes_b[1] - eyes_b[0])))
    gate = _to_photo(model_matte(swap).astype(np.float32), aligned_b) > 0.25
    if not gate.any() or not frames_a.any() or strength <= 0:
        return photo_b.copy(), alpha_full
    # Work on the window of B that the (grown) matte can reach.
    reach = int(np.ceil(GATE_REACH * distance))
    rows, cols = np.flatnonzero(gate.any(1)), np.flatnonzero(gate.any(0))
    top, left = max(0, rows[0] - reach - 1), max(0, cols[0] - reach - 1)
    bottom, right = min(height, rows[-1] + reach + 2), min(width, cols[-1] + reach + 2)
    size = (right - left, bottom - top)
    side = 2 * reach + 1
    gate = cv2.dilate(gate[top:bottom, left:right].astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))) > 0
    # A's photo coordinates -> the aligned crop -> B's photo coordinates -> the window.
    a_to_b = (np.linalg.inv(_affine3(aligned_b.matrix)) @ _affine3(aligned_a.matrix))[:2]
    a_to_window = a_to_b - np.array([[0, 0, left], [0, 0, top]], np.float64)
    colours = cv2.warpAffine(np.asarray(photo_a), a_to_window, size, flags=cv2.INTER_CUBIC,
                             borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    coverage = cv2.warpAffine(frames_a.astype(np.float32), a_to_window, size, flags=cv2.INTER_LINEAR, borderValue=0)
    alpha = np.clip(coverage, 0, 1) * gate * float(np.clip(strength, 0.0, 1.0))
    alpha *= ~eye_ellipses(alpha.shape, eyes_b - (left, top))  # a frame never covers B's eyes
    alpha *= _without_specks(alpha > 0, MIN_SPECK * (distance / _eye_distance_64()) ** 2)
    window = b[top:bottom, left:right]
    mixed = window.astype(np.float32) * (1 - alpha[..., None]) + colours * alpha[..., None]
    out = b.copy()
    out[top:bottom, left:right] = np.where(alpha[..., None] > 0, np.clip(np.rint(mixed), 0, 255).astype(np.uint8),
                                           window)
    alpha_full[top:bottom, left:right] = alpha
    return Image.fromarray(out), alpha_full
