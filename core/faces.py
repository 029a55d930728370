"""Offline face detection, alignment and paste-back.

Detection uses YuNet (libfacedetection, BSD-3, weights compiled into the ``yuface`` wheel): a box,
a confidence and five landmarks (both eyes, nose tip, both mouth corners) per face.

Alignment maps the face to a square crop with one similarity transform:
- ``template="ffhq"``: the FFHQ recipe (Karras et al., 2019) from eye and mouth centres, which is
  what PULSE and StyleGAN expect;
- ``template="celeba"`` or a (5, 2) array of landmark positions in [0, 1]: a least-squares
  similarity fit of the five points to the template (GeneGAN-style 5-point alignment).

:func:`paste_back` warps an edited crop back into the photo; only pixels inside the (feathered)
face region change, every other pixel stays bit-for-bit the same.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # left/right as seen in the image
DETECT_MAX_SIDE = 960  # YuNet warns above this; larger photos are downscaled for detection only
DETECT_MIN_SIDE = 192  # tiny inputs are upscaled so small faces are still found

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


_yuface_threads_set = False


def _yuface():
    """Import yuface with its private OpenMP pool pinned to one thread (40 ms instead of ~400 ms at 512 px)."""
    global _yuface_threads_set
    import yuface

    if not _yuface_threads_set:
        libs = Path(yuface.__file__).resolve().parent.parent / "yuface.libs"
        for lib in libs.glob("libgomp*.so*"):
            ctypes.CDLL(str(lib)).omp_set_num_threads(1)
        _yuface_threads_set = True
    return yuface


def detect_faces(image: Image.Image, min_score: float = 0.6) -> list[Face]:
    """All faces in an RGB image, most confident first."""
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
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    confidences, boxes, landmarks = _yuface().detect(bgr, conf=min_score)
    faces = []
    for conf, box, marks in zip(confidences, boxes, landmarks):
        points = marks.astype(np.float64).reshape(5, 2) / scale
        faces.append(Face(
            box=tuple(float(v) / scale for v in box),
            score=float(conf) / 100.0,
            landmarks={name: points[i] for i, name in enumerate(LANDMARK_NAMES)},
        ))
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
    # A smooth ramp from 0 at the region's border to 1 at ``feather * size`` pixels inside it.
    radius = max(1.0, feather * size)
    inside = cv2.distanceTransform(np.pad((mask > 0.5).astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    ramp = np.clip(inside / radius, 0.0, 1.0)
    soft = (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)
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
