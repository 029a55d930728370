"""Offline face detection, alignment and paste-back.

Detection uses MTCNN (Zhang et al., 2016; :mod:`core.models.mtcnn`, weights ``face.mtcnn_*`` read
from the facenet-pytorch wheel): a box, a confidence and five landmarks (both eyes, nose tip,
both mouth corners) per face. MTCNN alone is confident about some objects (0.93 for a
motorcycle's front wheel, 0.99 for a lion's paw), so a detection counts as a face only if its
confidence is at least ``min_score``, O-Net still finds a face in the mirrored crop
(:data:`MIN_MIRRORED_SCORE`) and its landmarks are laid out like a face's
(:func:`plausible_landmarks`). The README ("Faces") has the measurements behind the thresholds.

Alignment maps the face to a square crop with one similarity transform:
- ``template="ffhq"``: the FFHQ recipe (Karras et al., 2019) from eye and mouth centres, which is
  what PULSE and StyleGAN expect;
- ``template="celeba"`` or a (5, 2) array of landmark positions in [0, 1]: a least-squares
  similarity fit of the five points to the template (GeneGAN-style 5-point alignment).

:func:`paste_back` warps an edited crop back into the photo; only pixels inside the (feathered)
face region change, every other pixel stays bit-for-bit the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # left/right as seen in the image
DETECTOR_ARCHS = ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")  # MTCNN's three stages, in the order they run
DETECT_MAX_SIDE = 960  # larger photos are downscaled for detection only (faces under ~2% of the side are missed)
DETECT_MIN_SIDE = 192  # tiny inputs are upscaled so small faces are still found
MIN_FACE_SIZE = 20  # px, in the (resized) detection image: MTCNN's smallest pyramid window
MIN_SCORE = 0.9  # O-Net face probability (MTCNN's own last threshold is 0.7)
MIN_MIRRORED_SCORE = 0.8  # O-Net face probability of the mirrored crop (core.models.mtcnn.mirrored_scores)

# Approximate mean face of the 5-point CelebA alignment used by GeneGAN's preprocess.py
# (256 px crop, 70 px between the eyes, eye line at 1 : 1.42 of the height), as fractions of the side.
CELEBA_TEMPLATE = np.array(
    [[93 / 256, 106 / 256], [163 / 256, 106 / 256], [128 / 256, 143 / 256], [99 / 256, 181 / 256], [157 / 256, 181 / 256]]
)


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x, y, w, h in image pixels
    score: float  # 0..1
    landmarks: dict[str, np.ndarray]  # name -> (x, y) in image pixels

    def points(self) -> np.ndarray:
        """The five landmarks as a (5, 2) array in ``LANDMARK_NAMES`` order."""
        return np.stack([self.landmarks[name] for name in LANDMARK_NAMES]).astype(np.float64)


@dataclass(frozen=True)
class AlignedFace:
    image: Image.Image  # size x size crop
    matrix: np.ndarray  # 2x3 affine: original pixel coordinates -> crop coordinates
    source_size: tuple[int, int]  # (width, height) of the original image

    @property
    def size(self) -> int:
        return self.image.size[0]


def detector_ids() -> tuple[str, ...]:
    """The manifest ids of MTCNN's three stages (the models of the :data:`DETECTOR_ARCHS` architectures)."""
    from core.weights import load_manifest

    entries = load_manifest()
    ids = tuple(next((m for m, e in entries.items() if e.arch == arch), None) for arch in DETECTOR_ARCHS)
    if None in ids:
        raise ValueError(f"The weights manifest lists no face detector ({', '.join(DETECTOR_ARCHS)} models).")
    return ids


def _detector(device: "torch.device | str"):
    """MTCNN's three networks in fp32 on ``device``, each loaded once (shared model cache)."""
    import torch

    from core.weights import load_model

    return tuple(load_model(model_id, device=device, dtype=torch.float32) for model_id in detector_ids())


def plausible_landmarks(points: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    """Whether five landmarks (``LANDMARK_NAMES`` order) are laid out like a face in ``box``.

    Measured in the face's own frame (x along the eye line, y towards the mouth, in units of
    the eye distance): the nose lies below the eyes, the mouth below the nose, the mouth's
    centre roughly under the eyes' centre with a plausible width, and the eye distance is a
    plausible fraction of the box. The bounds (:data:`PLAUSIBLE`) hold, with a margin, every
    face MTCNN finds on the project's photos, 96 LFW faces and 63 DCGAN faces.
    """
    eye_left, eye_right = points[0], points[1]
    across = eye_right - eye_left
    eye_distance = float(np.hypot(*across))
    if eye_distance < 1e-6:
        return False
    u = across / eye_distance
    v = np.array([-u[1], u[0]])  # image y grows downwards: v points from the eyes towards the mouth
    local = (points - (eye_left + eye_right) / 2) @ np.stack([u, v], axis=1) / eye_distance
    nose_x, nose_y = local[2]
    (mouth_left_x, mouth_left_y), (mouth_right_x, mouth_right_y) = local[3], local[4]
    mouth_y = (mouth_left_y + mouth_right_y) / 2

    def within(value: float, name: str) -> bool:
        low, high = PLAUSIBLE[name]
        return low <= value <= high

    return bool(
        within(eye_distance / max(box[2], box[3]), "eye_distance_over_box")
        and within(nose_y, "nose_below_eyes") and within(mouth_y, "mouth_below_eyes") and nose_y < mouth_y
        and within(nose_x, "nose_across") and within((mouth_left_x + mouth_right_x) / 2, "mouth_across")
        and within(mouth_right_x - mouth_left_x, "mouth_width")
    )


# (low, high) bounds of the checks above, in eye distances (the first is a ratio to the box's
# longer side). Measured ranges on faces: 0.25-0.40, 0.34-1.08, 0.86-1.84, -0.47-0.60, -0.2-0.2, 0.61-1.10.
PLAUSIBLE = {"eye_distance_over_box": (0.18, 0.6), "nose_below_eyes": (0.15, 1.4), "mouth_below_eyes": (0.6, 2.3),
             "nose_across": (-0.9, 0.9), "mouth_across": (-0.6, 0.6), "mouth_width": (0.4, 1.6)}


def detect_faces(image: Image.Image, min_score: float = MIN_SCORE, device: "torch.device | str" = "cpu",
                 checks: bool = True) -> list[Face]:
    """All faces in an RGB image, most confident first.

    Runs on the CPU by default (~0.2 s of CPU for a 512 px photo), so it needs no GPU time;
    pass ``device`` to run it elsewhere. ``checks=False`` keeps the detections that fail the
    mirror or landmark checks (for measurements only).
    """
    import torch

    from core.models.mtcnn import THRESHOLDS, detect, mirrored_scores

    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    scale = 1.0
    if max(height, width) > DETECT_MAX_SIDE:
        scale = DETECT_MAX_SIDE / max(height, width)
    elif min(height, width) < DETECT_MIN_SIDE:
        scale = DETECT_MIN_SIDE / min(height, width)
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    pixels = torch.from_numpy(rgb.copy()).to(device=device, dtype=torch.float32).permute(2, 0, 1)
    pnet, rnet, onet = _detector(device)
    thresholds = (*THRESHOLDS[:2], min(THRESHOLDS[2], min_score))
    boxes, scores, landmarks = detect(pnet, rnet, onet, pixels, min_face_size=MIN_FACE_SIZE, thresholds=thresholds)
    mirrored = mirrored_scores(onet, pixels, boxes)
    faces = []
    for (x1, y1, x2, y2), score, points, mirrored_score in zip(
            *(t.cpu().double().numpy() for t in (boxes, scores, landmarks, mirrored))):
        box = (x1 / scale, y1 / scale, (x2 - x1) / scale, (y2 - y1) / scale)
        points = points / scale
        passes = mirrored_score >= MIN_MIRRORED_SCORE and plausible_landmarks(points, box)
        if score < min_score or (checks and not passes):
            continue
        faces.append(Face(box=tuple(float(v) for v in box), score=float(score),
                          landmarks={name: points[i] for i, name in enumerate(LANDMARK_NAMES)}))
    return sorted(faces, key=lambda f: f.score, reverse=True)


def _ffhq_quad(points: np.ndarray) -> np.ndarray:
    """FFHQ's oriented square (top-left, bottom-left, bottom-right, top-right) from 5 landmarks."""
    eye_left, eye_right, _, mouth_left, mouth_right = points
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth_avg = (mouth_left + mouth_right) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    center = eye_avg + eye_to_mouth * 0.1
    return np.stack([center - x - y, center - x + y, center + x + y, center + x - y])


def alignment_matrix(face: Face, size: int, template: str | np.ndarray = "ffhq") -> np.ndarray:
    """2x3 similarity transform from image pixels to a ``size`` x ``size`` aligned crop."""
    points = face.points()
    if isinstance(template, str) and template == "ffhq":
        quad = _ffhq_quad(points)
        target = np.array([[0, 0], [0, size], [size, size]], dtype=np.float32)
        return cv2.getAffineTransform(quad[:3].astype(np.float32), target).astype(np.float64)
    if isinstance(template, str) and template != "celeba":
        raise ValueError(f"Unknown alignment template {template!r}; use 'ffhq', 'celeba' or a (5, 2) array.")
    reference = CELEBA_TEMPLATE if isinstance(template, str) else np.asarray(template, float)
    if reference.shape != (5, 2):
        raise ValueError(f"A landmark template must have shape (5, 2), got {reference.shape}.")
    matrix, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), (reference * size).astype(np.float32),
                                            method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("The face landmarks are degenerate; cannot align this face.")
    return matrix.astype(np.float64)


def align_face(image: Image.Image, face: Face, size: int, template: str | np.ndarray = "ffhq") -> AlignedFace:
    """Crop ``face`` to an aligned ``size`` x ``size`` RGB image (reflection outside the photo)."""
    rgb = np.asarray(image.convert("RGB"))
    matrix = alignment_matrix(face, size, template)
    # Shrink first when the crop is much smaller than the face, so the warp does not alias.
    zoom = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    source, to_source = rgb, np.eye(3)
    if zoom < 0.5:
        shrink = int(np.floor(0.5 / zoom))
        if shrink > 1:
            small = (max(1, rgb.shape[1] // shrink), max(1, rgb.shape[0] // shrink))
            source = cv2.resize(rgb, small, interpolation=cv2.INTER_AREA)
            to_source = np.diag([small[0] / rgb.shape[1], small[1] / rgb.shape[0], 1.0])
    full = np.vstack([matrix, [0, 0, 1]]) @ np.linalg.inv(to_source)
    crop = cv2.warpAffine(source, full[:2], (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return AlignedFace(Image.fromarray(crop), matrix, (rgb.shape[1], rgb.shape[0]))


def feathered(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` (> 0.5 = inside) as a float ramp in 0..1: 0 at its border, rising smoothly
    (smoothstep) to 1 at ``radius`` pixels inside it, so an edit fades in without a seam."""
    inside = cv2.distanceTransform(np.pad((mask > 0.5).astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    ramp = np.clip(inside / radius, 0.0, 1.0)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)


def paste_change(photo: Image.Image, aligned: AlignedFace, change: np.ndarray, alpha: np.ndarray) -> Image.Image:
    """Add ``change`` (float [size, size, 3], crop coordinates) to ``photo`` weighted by ``alpha``
    (crop coordinates), at the photo's own resolution; pixels where the warped ``alpha`` is 0 are
    returned unchanged, bit for bit."""
    rgb = np.asarray(photo.convert("RGB"))
    height, width = rgb.shape[:2]
    inverse = cv2.invertAffineTransform(aligned.matrix)
    delta = cv2.warpAffine(change.astype(np.float32), inverse, (width, height), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REPLICATE)
    weight = np.clip(cv2.warpAffine(alpha, inverse, (width, height), flags=cv2.INTER_LINEAR, borderValue=0), 0, 1)
    out = np.clip(np.rint(rgb + delta * weight[..., None]), 0, 255).astype(np.uint8)
    return Image.fromarray(np.where(weight[..., None] > 0, out, rgb))


def paste_back(original: Image.Image, edited: Image.Image, aligned: AlignedFace,
               region: np.ndarray | None = None, feather: float = 0.08) -> Image.Image:
    """Warp ``edited`` (an aligned crop) back into ``original``.

    ``region`` is a float mask in crop coordinates (1 = replace; default: the whole crop); its edge
    fades in over ``feather`` x crop size pixels inside the region, so the change fades in
    without a seam. Pixels where the warped mask is 0 are returned unchanged, bit for bit.
    """
    rgb = np.asarray(original.convert("RGB"))
    height, width = rgb.shape[:2]
    size = aligned.size
    if edited.size != (size, size):
        edited = edited.resize((size, size), Image.Resampling.BICUBIC)
    mask = np.ones((size, size), np.float32) if region is None else np.asarray(region, np.float32)
    if mask.shape != (size, size):
        raise ValueError(f"region must be {size}x{size}, got {mask.shape}.")
    soft = feathered(mask, max(1.0, feather * size))
    inverse = cv2.invertAffineTransform(aligned.matrix)
    warped = cv2.warpAffine(np.asarray(edited.convert("RGB")), inverse, (width, height), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(soft, inverse, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    alpha = np.clip(alpha, 0.0, 1.0)
    blended = rgb.astype(np.float32) * (1 - alpha) + warped.astype(np.float32) * alpha
    out = np.where(alpha > 0, np.clip(np.rint(blended), 0, 255).astype(np.uint8), rgb)
    return Image.fromarray(out)


def single_face(image: Image.Image, what: str = "the image") -> Face:
    """The one face in ``image``; ``ValueError`` with a clear message for none or several."""
    faces = detect_faces(image)
    if not faces:
        raise ValueError(f"No face was found in {what}. Use a photo with a clear, frontal face.")
    if len(faces) > 1:
        raise ValueError(f"{len(faces)} faces were found in {what}; please crop it to one face.")
    return faces[0]
