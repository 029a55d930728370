"""Where the eyeglasses are in a photo: a mask of the frame pixels at the photo's resolution.

GeneGAN and the classifier work on 64x64 crops; a photo's frames are a few pixels wide. So:

1. **Model evidence** (:func:`model_evidence`, 64 px): where GeneGAN's "with" and "without"
   decodings of the face differ (``|join(A, x_A) - join(A, 0)|``, the object it would remove) and
   where blurring a 7x7 patch lowers the classifier's "glasses" logit (occlusion saliency), each
   normalised inside the eye band and averaged. It is warped to the photo as a soft prior.
2. **Photo evidence** (:func:`line_score`, full resolution): thin dark lines (morphological
   black-hat of the lightness, kernel 0.08 x the eye distance), at half weight thin bright ones
   (metal frames), and lines of another hue (a*, b*; coloured plastic), times the prior.
3. **Frames** (:func:`find_frames`): around each eye, the strongest closed ring of that score
   (a smooth radius per angle, found by dynamic programming in polar coordinates), its measured
   thickness, plus the strong line pieces that touch the rings between and beside the eyes
   (bridge, hinges). The eyes themselves (an ellipse at each eye landmark) and the lens interiors
   are never in the mask: with transparent lenses the eyes stay the photo's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from core.pipelines.glasses.layout import eye_band

ANGLES = 96
RADII = 56
RING_RADII = (0.22, 0.85)  # ring radius range, x the eye distance (horizontally; vertically x ASPECT)
SCORE_EYE_DISTANCE = 96  # px: larger faces are scored at this scale
PRIOR_FLOOR = 0.4  # the line score keeps this weight where the models see no glasses
ASPECT = 0.72  # lenses are wider than tall
COLOUR_WEIGHT = 1.5  # a* / b* line strength counts this much against lightness (Lab, 0..255 scales)
OUTWARD_BIAS = 0.3  # the ring score grows by this much from the smallest radius to the largest
EYE_AXES = (0.23, 0.09)  # protected ellipse at each eye landmark, x the eye distance
MAX_HALF_THICKNESS = 0.07  # x the eye distance, on each side of the ring's centre line
GAP_ANGLES = 16  # weak stretches of a rim up to this many angles (60 degrees) between strong ones are kept
ATTACH_REACH = 0.08  # bridge and hinge pieces are kept up to this far from the rings, x the eye distance
RING_LEVEL = 0.3  # ring pixels keep their line score above this fraction of the threshold
ATTACH_LEVEL = 0.6  # ... when their line score is above this fraction of the rings' threshold
SEARCH = (1.0, -0.65, 0.8)  # search box, x the eye distance: beyond each eye; above and below the eye line


@dataclass
class GlassesMask:
    frames: np.ndarray  # bool [H, W]: the frame pixels themselves (what glasses addition copies)
    hole: np.ndarray  # bool [H, W]: ``frames`` grown by a margin (what removal inpaints)
    lenses: np.ndarray  # bool [H, W]: the lens interiors inside the rings, outside the hole (kept)
    eyes: np.ndarray  # bool [H, W]: the protected ellipses at the eye landmarks (never in ``hole``)
    score: np.ndarray  # float [H, W]: the line score that was searched
    coverage: float  # fraction of ring angles where a frame line was found (0..1)


def _normalise_in(values: np.ndarray, region: np.ndarray) -> np.ndarray:
    top = float(np.quantile(values[region], 0.98)) if region.any() else 0.0
    return np.clip(values / top, 0.0, 1.0) * region if top > 1e-6 else np.zeros_like(values)


def batch(images: list[np.ndarray], parameter: torch.Tensor) -> torch.Tensor:
    """uint8 crops [H, W, 3] as one NCHW batch on ``parameter``'s device and dtype (the models' 0..255 input)."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(parameter.device, parameter.dtype)


@torch.no_grad()
def occlusion_drop(classifier, crop: np.ndarray, patch: int = 7, stride: int = 2) -> np.ndarray:
    """How much blurring each ``patch`` x ``patch`` square of the eye band lowers the classifier's
    logit, averaged per pixel (0 where it raises it): the classifier's evidence for glasses."""
    band = eye_band(crop.shape[0])
    blurred = cv2.GaussianBlur(crop, (0, 0), 2.5)
    ys, xs = np.nonzero(band)
    corners = [(y, x) for y in range(ys.min() - patch // 2, ys.max() - patch // 2 + 1, stride)
               for x in range(xs.min() - patch // 2, xs.max() - patch // 2 + 1, stride)]
    images = []
    for y, x in corners:
        image = crop.copy()
        y0, x0 = max(0, y), max(0, x)
        image[y0:y + patch, x0:x + patch] = blurred[y0:y + patch, x0:x + patch]
        images.append(image)
    p = next(classifier.parameters())
    base = float(classifier(batch([crop], p))[0])
    logits = torch.cat([classifier(batch(images[i:i + 256], p)) for i in range(0, len(images), 256)]).float()
    heat, count = np.zeros(crop.shape[:2], np.float32), np.zeros(crop.shape[:2], np.float32)
    for (y, x), logit in zip(corners, logits.cpu().numpy()):
        y0, x0 = max(0, y), max(0, x)
        heat[y0:y + patch, x0:x + patch] += base - logit
        count[y0:y + patch, x0:x + patch] += 1
    return np.maximum(heat / np.maximum(count, 1), 0.0)


def model_evidence(with_object: np.ndarray, without_object: np.ndarray, occlusion: np.ndarray) -> np.ndarray:
    """64 px map in 0..1 of where the models see glasses (GeneGAN's object, classifier occlusion)."""
    band = eye_band(with_object.shape[0])
    removed = cv2.GaussianBlur(np.abs(with_object - without_object).mean(-1).astype(np.float32), (0, 0), 1.0)
    return 0.5 * _normalise_in(removed, band) + 0.5 * _normalise_in(occlusion.astype(np.float32), band)


def line_score(rgb: np.ndarray, eye_distance: float) -> np.ndarray:
    """Thin-line strength per pixel (Lab levels): dark lines fully, bright lines at half weight, and
    lines of another colour than their surroundings. Faces with eyes more than
    ``SCORE_EYE_DISTANCE`` px apart are scored at that scale and the score is upscaled back (the
    morphology's cost grows with the kernel, i.e. with the face)."""
    height, width = rgb.shape[:2]
    scale = SCORE_EYE_DISTANCE / eye_distance
    if scale < 1:
        small = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        return cv2.resize(line_score(small, SCORE_EYE_DISTANCE), (width, height), interpolation=cv2.INTER_LINEAR)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    side = 2 * max(1, round(0.08 * eye_distance)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    line = lambda channel, op: cv2.morphologyEx(lab[..., channel], op, kernel)  # noqa: E731
    dark, bright = line(0, cv2.MORPH_BLACKHAT), line(0, cv2.MORPH_TOPHAT)
    # Coloured frames on skin of a similar lightness: lines that differ in a* or b* (either way).
    colour = np.maximum(line(1, cv2.MORPH_TOPHAT) + line(1, cv2.MORPH_BLACKHAT),
                        line(2, cv2.MORPH_TOPHAT) + line(2, cv2.MORPH_BLACKHAT))
    score = np.maximum(np.maximum(dark, 0.5 * bright), COLOUR_WEIGHT * colour)
    return cv2.GaussianBlur(score, (0, 0), max(0.5, 0.012 * eye_distance))


def _face_frame(eyes: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit vectors along and across the eye line, and the eye distance."""
    along = eyes[1] - eyes[0]
    distance = float(np.hypot(*along))
    along = along / distance
    return along, np.array([-along[1], along[0]]), distance


def _ellipse(shape, centre, along, axes) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    dx, dy = xx - centre[0], yy - centre[1]
    u = dx * along[0] + dy * along[1]
    v = -dx * along[1] + dy * along[0]
    return (u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1.0


def eye_ellipses(shape: tuple[int, int], eyes: np.ndarray) -> np.ndarray:
    """Bool mask of the ellipses at both eye landmarks (``EYE_AXES``): never part of a frame."""
    along, _, distance = _face_frame(np.asarray(eyes, np.float64))
    return _ellipse(shape, eyes[0], along, np.multiply(EYE_AXES, distance)) | \
        _ellipse(shape, eyes[1], along, np.multiply(EYE_AXES, distance))


def _best_ring(polar: np.ndarray, max_step: int = 3, smooth: float = 0.05) -> np.ndarray:
    """Index of the radius per angle of the highest-scoring smooth closed path through ``polar``
    [angles, radii] (dynamic programming around the circle twice; the middle turn is kept)."""
    n, m = polar.shape
    score = np.concatenate([polar, polar, polar])
    total = score[0].copy()
    back = np.zeros((3 * n, m), np.int64)
    steps = range(-max_step, max_step + 1)
    for i in range(1, 3 * n):
        candidates = np.full((len(steps), m), -np.inf)
        for k, step in enumerate(steps):
            shifted = np.full(m, -np.inf)
            if step >= 0:
                shifted[step:] = total[:m - step]
            else:
                shifted[:step] = total[-step:]
            candidates[k] = shifted - smooth * abs(step) * float(polar.max())
        choice = candidates.argmax(0)
        back[i] = np.asarray(steps)[choice]
        total = candidates[choice, np.arange(m)] + score[i]
    path = np.zeros(3 * n, np.int64)
    path[-1] = int(total.argmax())
    for i in range(3 * n - 1, 0, -1):
        path[i - 1] = path[i] - back[i, path[i]]
    return path[n:2 * n]


def _polar(score: np.ndarray, eye: np.ndarray, to_nose: np.ndarray, across: np.ndarray, distance: float):
    """``score`` sampled on a polar grid [ANGLES, RADII] around ``eye``; angle 0 points to the nose and
    angles grow downwards for both eyes, so the two eyes' grids are mirror images of each other."""
    angles = np.linspace(0, 2 * np.pi, ANGLES, endpoint=False)
    radii = np.linspace(*RING_RADII, RADII) * distance
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None] * ASPECT
    map_x = (eye[0] + radii * (cos * to_nose[0] + sin * across[0])).astype(np.float32)
    map_y = (eye[1] + radii * (cos * to_nose[1] + sin * across[1])).astype(np.float32)
    polar = cv2.remap(score, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return polar, map_x, map_y


def _rings(score: np.ndarray, eyes: np.ndarray, along, across, distance: float):
    """Per eye: inner and outer outline of the frame line (pixels) and its peak score per angle.

    The frames of a pair of glasses are mirror images, so one ring shape is fitted to the sum of
    both eyes' mirrored polar scores; each eye's line thickness and strength are its own.
    """
    grids = [_polar(score, eye, sign * along, across, distance) for eye, sign in zip(eyes, (1, -1))]
    outward = 1.0 + OUTWARD_BIAS * np.linspace(0, 1, RADII)[None]  # eye bags lie inside the rims
    path = _best_ring((grids[0][0] + grids[1][0]) * outward)
    step = (RING_RADII[1] - RING_RADII[0]) * distance / (RADII - 1)
    limit = max(1, int(round(MAX_HALF_THICKNESS * distance / step)))
    rows = np.arange(ANGLES)
    found = []
    for polar, map_x, map_y in grids:
        peak = polar[rows, path]
        inner, outer = path.copy(), path.copy()
        for i, j in enumerate(path):  # the line's extent: contiguous radii above half the peak
            while inner[i] > 0 and j - inner[i] < limit and polar[i, inner[i] - 1] >= 0.5 * peak[i]:
                inner[i] -= 1
            while outer[i] < RADII - 1 and outer[i] - j < limit and polar[i, outer[i] + 1] >= 0.5 * peak[i]:
                outer[i] += 1
        outline = lambda index: np.stack([map_x[rows, index], map_y[rows, index]], -1)  # noqa: E731
        found.append((outline(inner), outline(outer), peak))
    return found


def find_frames(rgb: np.ndarray, eyes: np.ndarray, prior: np.ndarray | None = None, sensitivity: float = 1.0,
                margin: float | None = None) -> GlassesMask:
    """The frame mask of the glasses around ``eyes`` ((2, 2): left and right eye in pixels).

    ``prior``: the model evidence at the photo's resolution (0..1; None = no prior).
    ``sensitivity`` > 1 accepts fainter line pieces. ``margin``: how far the inpainting hole
    extends beyond the frames (pixels; default 3% of the eye distance, at least 1 px).
    The work is done on a window around the eyes, so a large photo costs no more than a small one.
    """
    eyes = np.asarray(eyes, np.float64)
    height, width = rgb.shape[:2]
    left, top, right, bottom = _window(eyes, width, height)
    offset = np.array([left, top], np.float64)
    window = _find_in_window(np.ascontiguousarray(rgb[top:bottom, left:right]), eyes - offset,
                             None if prior is None else prior[top:bottom, left:right], sensitivity, margin)
    full = {}
    for name in ("frames", "hole", "lenses", "eyes", "score"):
        part = getattr(window, name)
        full[name] = np.zeros((height, width), part.dtype)
        full[name][top:bottom, left:right] = part
    return GlassesMask(**full, coverage=window.coverage)


def _window(eyes: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel box (left, top, right, bottom) holding the search box around the eyes, with a margin."""
    along, across, distance = _face_frame(eyes)
    beyond, above, below = SEARCH
    middle = eyes.mean(0)
    corners = [middle + u * (0.5 + beyond + 0.1) * distance * along + v * distance * across
               for u in (-1, 1) for v in (above - 0.1, below + 0.1)]
    corners = np.stack(corners)
    left, top = np.floor(corners.min(0)).astype(int)
    right, bottom = np.ceil(corners.max(0)).astype(int) + 1
    return max(0, left), max(0, top), min(width, right), min(height, bottom)


def _find_in_window(rgb, eyes, prior, sensitivity, margin) -> GlassesMask:
    height, width = rgb.shape[:2]
    along, across, distance = _face_frame(eyes)
    score = line_score(rgb, distance)
    if prior is not None:
        score = score * (PRIOR_FLOOR + (1 - PRIOR_FLOOR) * np.clip(prior, 0, 1))
    protected = eye_ellipses((height, width), eyes)
    score = np.where(protected, 0.0, score).astype(np.float32)
    lenses = np.zeros((height, width), np.uint8)
    found = _rings(score, eyes, along, across, distance)
    for inner, _, _ in found:
        cv2.fillPoly(lenses, [np.round(inner).astype(np.int32)], 1)
    peaks = np.stack([peak for *_, peak in found])
    u, v = _face_coordinates((height, width), eyes, along, across)
    box = _search_box(u, v, distance)
    background = float(np.median(score[box & ~protected]))
    threshold = max(3.0 / sensitivity, background * 2.0, 0.25 / sensitivity * float(np.median(peaks)))
    strong = np.stack([_close_gaps(keep) for keep in peaks >= threshold])
    drawn = np.zeros((height, width), np.uint8)
    for (inner, outer, _), keep in zip(found, strong):
        for i in np.flatnonzero(keep):
            j = (i + 1) % ANGLES
            quad = np.round(np.stack([inner[i], outer[i], outer[j], inner[j]])).astype(np.int32)
            cv2.fillConvexPoly(drawn, quad, 1)
    frames = (drawn > 0) & (score >= RING_LEVEL * threshold)
    # Bridge and hinges: line pieces above the lens centres that touch the rings.
    candidates = (score >= ATTACH_LEVEL * threshold) & box & (lenses == 0) & (v <= 0.15 * distance)
    frames |= _touching(candidates & _grow(frames, ATTACH_REACH * distance), frames)
    frames &= ~protected
    margin = max(1.0, 0.03 * distance) if margin is None else margin
    hole = _grow(frames, margin) & ~protected
    return GlassesMask(frames, hole, (lenses > 0) & ~hole, protected, score, float(strong.mean()))


def _close_gaps(strong: np.ndarray) -> np.ndarray:
    """Around the circle: bridge gaps of up to ``GAP_ANGLES`` weak angles between strong ones (a
    faint stretch of one rim), then drop strong runs shorter than 3 angles (noise, not a frame)."""
    ring = np.tile(strong.astype(np.uint8), 3)[None]
    closed = cv2.morphologyEx(ring, cv2.MORPH_CLOSE, np.ones((1, GAP_ANGLES + 1), np.uint8))
    opened = cv2.morphologyEx(closed, cv2.MORPH_OPEN, np.ones((1, 3), np.uint8))
    return opened[0, ANGLES:2 * ANGLES] > 0


def _face_coordinates(shape, eyes, along, across) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: distance along the eye line and across it (down), from the eyes' midpoint."""
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    middle = (eyes[0] + eyes[1]) / 2
    dx, dy = xx - middle[0], yy - middle[1]
    return dx * along[0] + dy * along[1], dx * across[0] + dy * across[1]


def _search_box(u: np.ndarray, v: np.ndarray, distance: float) -> np.ndarray:
    beyond, above, below = SEARCH
    return (np.abs(u) <= (0.5 + beyond) * distance) & (v >= above * distance) & (v <= below * distance)


def _touching(candidates: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The connected pieces of ``candidates`` that touch ``frames``, outside ``frames``."""
    count, labels = cv2.connectedComponents(candidates.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[_grow(frames, 1.5) & candidates])
    keep = np.zeros(count, bool)
    keep[touching[touching > 0]] = True
    return keep[labels] & ~frames


def _grow(mask: np.ndarray, radius: float) -> np.ndarray:
    side = 2 * int(np.ceil(radius)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0
