"""Eyeglasses transfer on photos with GeneGAN: "B wearing A's glasses" and "A without glasses".

Recipe (:func:`run`):

1. each photo's one face is found with :mod:`core.faces` (5 landmarks) and aligned by a
   similarity transform to the 64 px layout the model was trained on
   (:mod:`core.pipelines.glasses.layout`); a 64x64 input is taken as already aligned;
2. GeneGAN splits both crops, ``B`` gets ``strength * x_A`` and ``A`` gets
   ``(1 - strength) * x_A`` (the official interpolation of the object part);
3. ``mode="photo"`` (the default) uses the 64 px results only as a guide, at the photos' own
   resolution (:mod:`core.pipelines.glasses.photo`): A's frames are found
   (:mod:`core.pipelines.glasses.mask`) and inpainted, B gets A's real frames where GeneGAN puts
   glasses. Only those pixels change. The 64 px paths of the paper are kept for comparison:
   ``mode="residual"`` adds the model's change inside the eye band to the photo, ``"direct"``
   pastes the decoded band (:func:`core.faces.paste_back`), ``"auto"`` does residual for B and
   direct for A. Every pixel outside the band stays bit-for-bit the same.

A small classifier (the manifest's glasses classifier) refuses a ``B`` that already wears glasses
and judges the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from core.faces import AlignedFace, Face, align_face, feathered, paste_back, paste_change, single_face
from core.pipelines.glasses.layout import SIZE, eye_band, template
from core.pipelines.glasses.mask import batch

FEATHER = 3.0  # px (in the 64 px crop) over which the band fades in
GLASSES_THRESHOLD = 0.5
MODES = ("photo", "auto", "residual", "direct")


def _manifest_model(role: str) -> str:
    from core.weights import model_for_role

    return model_for_role("glasses", role)


@dataclass(frozen=True)
class Settings:
    """``mode``: ``photo`` (A's real frames found, inpainted away and carried to B at full resolution;
    ``strength`` sets how strongly B wears them, A loses them whatever it is), ``residual`` (add the
    model's change), ``direct`` (paste the decoded band) or ``auto`` (residual for B, direct for A).
    ``removal_passes`` (64 px modes): 1 is the paper's ``join(A, 0)``; 2 runs the removal once more on
    its own result. ``inpaint_method``: the :func:`core.pipelines.inpaint.run` method of the photo mode.
    ``check_b``: refuse a B that the classifier sees wearing glasses."""

    strength: float = 1.0
    mode: str = "photo"
    removal_passes: int = 2
    inpaint_method: str = "auto"
    check_b: bool = True
    model_id: str = field(default_factory=lambda: _manifest_model("generator"))
    classifier_id: str = field(default_factory=lambda: _manifest_model("classifier"))

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {self.mode!r}")
        if not 0.0 <= self.strength <= 1.5:
            raise ValueError(f"strength must be between 0 and 1.5, got {self.strength}")
        if self.removal_passes not in (1, 2, 3):
            raise ValueError(f"removal_passes must be 1, 2 or 3, got {self.removal_passes}")


@dataclass(frozen=True)
class Result:
    b_with_glasses: Image.Image  # photo B wearing A's glasses (same size as B)
    a_without_glasses: Image.Image  # photo A without glasses (same size as A)
    crops: dict[str, Image.Image] = field(default_factory=dict)  # the 64 px aligned inputs and outputs
    notes: list[str] = field(default_factory=list)
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # photo mode: A's "hole", B's "matte" (photo size)
    probabilities: dict[str, float] = field(default_factory=dict)  # classifier P(glasses): a, b, a_without, b_with
    previews: list[tuple[Image.Image, str]] = field(default_factory=list)  # photo mode: the masks over the photos
    details: dict = field(default_factory=dict)  # every setting used, the models and the probabilities


def band_alpha(size: int = SIZE, feather: float = FEATHER) -> np.ndarray:
    """Soft eye-band mask [size, size] in 0..1: 1 inside, a smooth ramp over ``feather`` px, 0 outside."""
    return feathered(eye_band(size).astype(np.float32), feather)


@dataclass
class Located:
    aligned: AlignedFace
    eyes: np.ndarray  # (2, 2) eye positions in the photo (left and right as seen)
    face: Face | None  # None for a 64x64 input taken as already aligned

    def recrop(self, image: Image.Image) -> np.ndarray:
        """``image`` (the photo, edited) cropped exactly as the photo was."""
        if self.face is None:
            return np.asarray(image.convert("RGB"))
        return np.asarray(align_face(image, self.face, SIZE, template=template()).image)


def locate(image: Image.Image, what: str) -> Located:
    """The face of ``image`` aligned to the model's 64 px layout (a 64x64 image is used as it is)."""
    image = image.convert("RGB")
    if image.size == (SIZE, SIZE):
        aligned = AlignedFace(image, np.array([[1.0, 0, 0], [0, 1.0, 0]]), image.size)
        return Located(aligned, template()[:2] * SIZE, None)
    face = single_face(image, what)
    return Located(align_face(image, face, SIZE, template=template()), face.points()[:2], face)


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.float().clamp(0, 255).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def swap_crops(model, a: np.ndarray, b: np.ndarray, strength: float = 1.0,
               removal_passes: int = 1) -> dict[str, np.ndarray]:
    """GeneGAN on aligned uint8 crops: decoded float images (0..255) of the swap and the reconstructions.

    ``b_with`` = join(B, strength x_A), ``a_without`` = join(A, (1 - strength) x_A); at strength 1 the
    removal is the paper's join(A, 0). ``removal_passes`` > 1 runs the removal again on its own result
    (the previous output pasted into A's eye band, split again, joined with the same object): each
    pass takes off more of what is left of thick frames, at the cost of some blur.
    """
    p = next(model.parameters())
    bg, obj = model.split(batch([a, b], p))
    bg_a, bg_b, obj_a = bg[:1], bg[1:], obj[:1]
    # Reconstructions as in training: Ax2 = join(A, x), Be2 = join(B, 0) (B's object is nulled).
    out = model.join(torch.cat([bg_b, bg_a, bg_a, bg_b]),
                     torch.cat([obj_a * strength, obj_a * (1 - strength), obj_a, torch.zeros_like(obj_a)]))
    b_with, a_without, a_rec, b_rec = _to_numpy(out)
    for _ in range(removal_passes - 1):
        again = composite(a, a_without, None, "direct")
        bg_again, _ = model.split(batch([again], p))
        a_without = _to_numpy(model.join(bg_again, obj_a * (1 - strength)))[0]
    return {"b_with": b_with, "a_without": a_without, "a_rec": a_rec, "b_rec": b_rec}


def composite(original: np.ndarray, decoded: np.ndarray, reconstruction: np.ndarray | None, mode: str,
              alpha: np.ndarray | None = None) -> np.ndarray:
    """Edit an aligned uint8 crop inside the eye band only (``residual``: add the model's change)."""
    alpha = band_alpha(original.shape[0]) if alpha is None else alpha
    base = original.astype(np.float32)
    target = base + (decoded - reconstruction) if mode == "residual" else decoded
    mixed = base * (1 - alpha[..., None]) + target * alpha[..., None]
    out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return np.where(alpha[..., None] > 0, out, original)


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
    """The classifier's P(glasses) for aligned uint8 crops."""
    with torch.no_grad():
        return classifier.probability(batch(crops, next(classifier.parameters()))).float().cpu().numpy()


def run(photo_a: Image.Image, photo_b: Image.Image, settings: Settings | None = None, *, model=None,
        classifier=None) -> Result:
    """``photo_a`` wears glasses, ``photo_b`` does not; returns B with A's glasses and A without them.

    ``model`` / ``classifier``: a GeneGAN and a glasses classifier already built (default: the
    manifest's, loaded through the shared cache).
    """
    from core.weights import load_model

    settings = settings or Settings()
    if photo_a is None or photo_b is None:
        raise ValueError("Please give both images: A (wearing glasses) and B (without glasses).")
    photo_a, photo_b = photo_a.convert("RGB"), photo_b.convert("RGB")
    a = locate(photo_a, "image A (the face wearing glasses)")
    b = locate(photo_b, "image B (the face without glasses)")
    notes = []
    classifier = classifier if classifier is not None else load_model(settings.classifier_id)
    prob_a, prob_b = glasses_probability(classifier, [np.asarray(a.aligned.image), np.asarray(b.aligned.image)])
    if settings.check_b and prob_b > GLASSES_THRESHOLD:
        raise ValueError(f"Image B already seems to wear glasses (classifier: {prob_b:.0%}). "
                         "Use a face without glasses for B, and the one wearing glasses for A.")
    if prob_a < GLASSES_THRESHOLD:
        notes.append(f"Image A does not seem to wear glasses (classifier: {prob_a:.0%}); there may be nothing to move.")
    model = model if model is not None else load_model(settings.model_id)
    if settings.mode == "photo":
        b_with, a_without, extra = _swap_photos(photo_a, photo_b, a, b, settings, model, classifier, prob_a, notes)
    else:
        b_with, a_without = _swap_bands(photo_a, photo_b, a.aligned, b.aligned, settings, model)
        extra = {}
    crops = {"a": a.aligned.image, "b": b.aligned.image, "b_with": Image.fromarray(b.recrop(b_with)),
             "a_without": Image.fromarray(a.recrop(a_without))}
    judged = glasses_probability(classifier, [np.asarray(crops["a_without"]), np.asarray(crops["b_with"])])
    probabilities = {"a": float(prob_a), "b": float(prob_b), "a_without": float(judged[0]), "b_with": float(judged[1])}
    notes.append(f"Classifier, P(glasses): A {prob_a:.0%} -> {judged[0]:.0%} after removal; "
                 f"B {prob_b:.0%} -> {judged[1]:.0%} after addition.")
    details = {**vars(settings), "probabilities": probabilities}
    return Result(b_with, a_without, crops, notes, probabilities=probabilities, details=details, **extra)


def _swap_bands(photo_a, photo_b, a: AlignedFace, b: AlignedFace, settings: Settings, model):
    """The paper's 64 px results written back into the photos' eye bands."""
    mode_b = "residual" if settings.mode == "auto" else settings.mode
    mode_a = "direct" if settings.mode == "auto" else settings.mode
    out = swap_crops(model, np.asarray(a.image), np.asarray(b.image), settings.strength, settings.removal_passes)
    alpha = band_alpha()
    return (_apply(photo_b, b, out["b_with"], out["b_rec"], mode_b, alpha),
            _apply(photo_a, a, out["a_without"], out["a_rec"], mode_a, alpha))


def _swap_photos(photo_a, photo_b, a: Located, b: Located, settings: Settings, model, classifier, prob_a, notes):
    """Full-resolution removal (frames inpainted) and addition (A's frames where GeneGAN puts glasses)."""
    from core.pipelines.glasses.photo import add_glasses, remove_glasses

    if prob_a < GLASSES_THRESHOLD:  # no frames to find: both photos are returned as they are
        masks = {"hole": np.zeros((photo_a.height, photo_a.width), bool),
                 "matte": np.zeros((photo_b.height, photo_b.width), np.float32)}
        return photo_b.copy(), photo_a.copy(), {"masks": masks}
    strength = settings.strength
    crop_a, crop_b = np.asarray(a.aligned.image), np.asarray(b.aligned.image)
    out = swap_crops(model, crop_a, crop_b, strength, 1)
    # A's frames are found from the full removal, join(A, 0), whatever strength B gets.
    full = out if strength == 1.0 else swap_crops(model, crop_a, crop_b, 1.0, 1)
    judge = lambda image: float(glasses_probability(classifier, [a.recrop(image)])[0])  # noqa: E731
    removal = remove_glasses(photo_a, a.aligned, a.eyes, full, classifier, judge, method=settings.inpaint_method)
    if removal.notice:  # a learned inpainting model was wanted but its weights are missing
        notes.append(f"The frames were filled with OpenCV ({removal.method}); a learned inpainting model, whose "
                     "weights are not on this machine, fills them better (see the inpainting app).")
    b_with, matte = add_glasses(photo_b, b.aligned, b.eyes, out, photo_a, a.aligned, removal.mask.frames, strength)
    notes.append(f"Removal: {removal.mask.hole.mean():.2%} of A's pixels inpainted ({removal.method}); "
                 f"addition: {(matte > 0).mean():.2%} of B's pixels carry A's frames.")
    previews = [(mask_preview(photo_a, removal.mask.hole), "A: frames found (inpainted)"),
                (mask_preview(photo_b, matte > 0), "B: where A's frames go")]
    return b_with, removal.image, {"masks": {"hole": removal.mask.hole, "matte": matte}, "previews": previews}


def mask_preview(photo: Image.Image, mask: np.ndarray, margin: float = 0.15) -> Image.Image:
    """``mask`` tinted over ``photo``, cropped to the mask's box and ``margin`` x its size around it."""
    from core.pipelines.inpaint_masks import mask_box, overlay_mask

    if not mask.any():
        return photo.copy()
    left, top, right, bottom = mask_box(mask)
    pad = int(margin * max(right - left, bottom - top)) + 2
    left, top, right, bottom = max(0, left - pad), max(0, top - pad), min(photo.width, right + pad), \
        min(photo.height, bottom + pad)
    return overlay_mask(photo.crop((left, top, right, bottom)), mask[top:bottom, left:right])
