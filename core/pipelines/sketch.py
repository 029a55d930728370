"""Photo -> sketch: thin black edges on white, in the style of the pix2pix edges2* training inputs.

The edges2shoes/edges2handbags datasets were made with HED edges, thinned and cleaned of short
fragments, drawn black on white. :func:`photo_to_sketch` gets close with OpenCV only: an
edge-preserving blur, Canny with thresholds set from the image's own gradient distribution (so
the edge density is similar for dark and bright photos), removal of short fragments, optional
thickening, black on white. :func:`prepare_sketch` turns a user drawing (any size, any mode) into
the model input the same way the training sketches were made.

The edges -> faces model was trained on raw 64 px DCGAN faces sketched by :func:`face_sketch`.
:func:`photo_to_face_sketch` frames a photo's face the same way (:func:`training_face_layout`, the
median landmark layout of those DCGAN faces) before sketching it with the same recipe, and
:func:`pad_guide` draws that framing faintly for the drawing pad. :func:`run` is the app's
"Photo -> sketch".
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from core.images import load_image, resize_max_side
from core.weights import face_layout

# The edges -> faces training crops are raw DCGAN samples; this layout is the median of 497 YuNet
# detections on such samples, so a face aligned to it is framed like a training crop.
TRAINING_FACE_LAYOUT_NAME = "dcgan_faces64_symmetric"
TRAINING_FACE_SIZE = 64
GUIDE_COLOUR = (190, 215, 245)  # light blue: visible on white, lighter than an "empty pad" (grey > 200)


def edge_map(image: Image.Image, *, detail: float = 0.5, min_fragment: int | None = None) -> np.ndarray:
    """Boolean edge mask (H, W) of an RGB image.

    ``detail`` in [0, 1]: the fraction of the strongest gradients kept grows with it (0.5 keeps
    about the strongest 12% as edge candidates). ``min_fragment``: connected edge pieces with
    fewer pixels are dropped (default: scales with the image size).
    """
    if not 0.0 <= detail <= 1.0:
        raise ValueError(f"detail must be between 0 and 1, got {detail}.")
    gray = cv2.cvtColor(np.asarray(load_image(image)), cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = min(height, width) / 256.0
    sigma = max(0.8, 1.2 * scale)
    smooth = cv2.bilateralFilter(gray, d=0, sigmaColor=40, sigmaSpace=sigma)
    smooth = cv2.GaussianBlur(smooth, (0, 0), sigma)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(gx, gy)
    # Canny's L2 gradient on the same Sobel kernels: thresholds as percentiles of the magnitude.
    keep = 0.04 + 0.16 * detail  # fraction of pixels allowed above the high threshold
    high = float(np.quantile(magnitude, 1.0 - keep))
    if high <= 1e-3:  # a flat image has no edges
        return np.zeros_like(gray, dtype=bool)
    edges = cv2.Canny(gx.astype(np.int16), gy.astype(np.int16), 0.4 * high, high, L2gradient=True) > 0
    if min_fragment is None:
        min_fragment = max(3, round(12 * scale))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edges.astype(np.uint8), connectivity=8)
    keep_label = np.zeros(count, dtype=bool)
    keep_label[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_fragment
    return keep_label[labels]


def photo_to_sketch(image, *, detail: float = 0.5, thickness: int | None = None) -> Image.Image:
    """Black edges on white (RGB PIL image, same size as ``image``).

    ``thickness`` in pixels (default: 1 px per 256 px of the shorter side, at least 1) so a
    256x256 sketch has the 1-2 px lines of the edges2shoes inputs.
    """
    pil = load_image(image)
    edges = edge_map(pil, detail=detail)
    if thickness is None:
        thickness = max(1, round(min(pil.size) / 256))
    if thickness > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thickness, thickness))
        edges = cv2.dilate(edges.astype(np.uint8), kernel) > 0
    sketch = np.where(edges, 0, 255).astype(np.uint8)
    return Image.fromarray(sketch, "L").convert("RGB")


def prepare_sketch(sketch, size: int) -> Image.Image:
    """A user's sketch -> ``size`` x ``size`` RGB model input (black strokes on white).

    Transparent areas become white (Sketchpad layers), the drawing is centred on a white square
    (aspect ratio kept) and downscaled with area averaging, the way the training sketches were.
    """
    pil = load_image(sketch)
    width, height = pil.size
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(pil, ((side - width) // 2, (side - height) // 2))
    array = cv2.resize(np.asarray(canvas), (size, size), interpolation=cv2.INTER_AREA)
    return Image.fromarray(array, "RGB")


def training_sketch(face: Image.Image, *, work_size: int = 256, detail: float = 0.4, stroke: int = 3) -> Image.Image:
    """The ``work_size`` sketch of a small face crop, before :func:`face_sketch` shrinks it: the
    crop upscaled (bicubic) and its edges drawn with ``stroke`` px lines."""
    big = load_image(face).resize((work_size, work_size), Image.Resampling.BICUBIC)
    return photo_to_sketch(big, detail=detail, thickness=stroke)


def face_sketch(face: Image.Image, size: int, *, work_size: int = 256, detail: float = 0.4,
                stroke: int = 3) -> Image.Image:
    """Training-style sketch of a small face crop: edges drawn at ``work_size``, then area-downscaled.

    Drawing ``stroke`` px lines at 256 px and shrinking gives the lines a user's drawing on the
    app's 256 px sketch pad (brush 3) has once it is reduced to the model's ``size``.
    """
    return prepare_sketch(training_sketch(face, work_size=work_size, detail=detail, stroke=stroke), size)


def training_face_layout() -> np.ndarray:
    """The five-landmark layout (fractions of the side, 5x2) of the edges -> faces training crops."""
    return face_layout(TRAINING_FACE_LAYOUT_NAME)


def align_like_training_faces(photo, size: int = TRAINING_FACE_SIZE):
    """The photo's one face (``core.faces``) aligned to :func:`training_face_layout` at ``size`` px."""
    from core.faces import align_face, single_face

    pil = load_image(photo)
    return align_face(pil, single_face(pil, "the photo"), size, template=training_face_layout())


def photo_to_face_sketch(photo, *, detail: float = 0.4) -> tuple[Image.Image, Image.Image]:
    """(256 px sketch, 64 px aligned face): the photo's face framed and sketched exactly as the
    edges -> faces training pairs were (aligned at 64 px, then :func:`training_sketch`)."""
    face = align_like_training_faces(photo).image
    return training_sketch(face, detail=detail), face


@dataclass(frozen=True)
class Settings:
    """``detail`` in [0, 1] (more edges); ``frame_face``: frame the photo's one face like the training
    crops (a 256 px sketch), else sketch the whole photo reduced to ``max_side`` px at most."""

    detail: float = 0.4
    frame_face: bool = True
    max_side: int = 512

    def __post_init__(self):
        object.__setattr__(self, "detail", float(self.detail))
        object.__setattr__(self, "frame_face", bool(self.frame_face))
        if not 0.0 <= self.detail <= 1.0:
            raise ValueError(f"detail must be between 0 and 1, got {self.detail}.")


@dataclass(frozen=True)
class Result:
    sketch: Image.Image
    details: dict


def run(photo, settings: Settings = Settings()) -> Result:
    """The app's "Photo -> sketch" of ``photo`` (no GAN: OpenCV edges, and the face detector to frame
    a face)."""
    if photo is None:
        raise ValueError("Upload a photo first.")
    if settings.frame_face:
        sketch = photo_to_face_sketch(photo, detail=settings.detail)[0]
    else:
        sketch = photo_to_sketch(resize_max_side(load_image(photo), settings.max_side), detail=settings.detail)
    return Result(sketch, {"detail": settings.detail, "frame_face": settings.frame_face, "size": list(sketch.size)})


def pad_guide(size: int = 256) -> Image.Image:
    """A white pad with a faint outline of where a face sits in the training crops: face oval,
    eyes, nose and mouth at the mean landmark layout (:func:`training_face_layout`)."""
    pad = np.full((size, size, 3), 255, np.uint8)
    points = training_face_layout() * size
    eye_distance = points[1, 0] - points[0, 0]
    centre = (int(round(size / 2)), int(round(points[0, 1] + 0.4 * eye_distance)))  # hairline to chin
    axes = (int(round(0.88 * eye_distance)), int(round(1.3 * eye_distance)))
    draw = dict(color=GUIDE_COLOUR, thickness=1, lineType=cv2.LINE_AA)
    cv2.ellipse(pad, centre, axes, 0, 0, 360, **draw)
    for eye in points[:2]:
        cv2.ellipse(pad, tuple(int(round(v)) for v in eye), (int(0.22 * eye_distance), int(0.09 * eye_distance)),
                    0, 0, 360, **draw)
    nose, mouth_left, mouth_right = points[2], points[3], points[4]
    cv2.line(pad, (int(nose[0]), int(points[0, 1] + 0.25 * eye_distance)), tuple(int(v) for v in nose), **draw)
    cv2.ellipse(pad, (int(size / 2), int(mouth_left[1] - 0.1 * eye_distance)),
                (int((mouth_right[0] - mouth_left[0]) / 2), int(0.15 * eye_distance)), 0, 20, 160, **draw)
    return Image.fromarray(pad)


def sketch_from_editor(value) -> Image.Image:
    """The drawing of a ``gr.Sketchpad`` value (``{"composite", "background", "layers"}``) as RGB on white.

    The drawn layers are composited on white (the background, e.g. :func:`pad_guide`, is left
    out); without layers, the composite or the background is the drawing. Transparent pixels
    become white. Raises ``ValueError`` when nothing was drawn.
    """
    if isinstance(value, dict):
        layers = [layer for layer in value.get("layers") or [] if layer is not None]
        # The strokes are the layers; the background may be the pad's guide, which is not part of the sketch.
        if layers:
            value = _layers_on_white(layers)
        else:
            value = value.get("composite") if value.get("composite") is not None else value.get("background")
    if value is None:
        raise ValueError("Draw a sketch first (select the brush tool, then draw black strokes on the white pad).")
    image = load_image(value)
    if np.asarray(image.convert("L")).min() > 200:
        raise ValueError("The sketch is empty: draw some strokes first (select the brush tool on the pad).")
    return image


def _layers_on_white(layers: list) -> Image.Image:
    base = None
    for layer in layers:
        rgba = load_image(layer, keep_alpha=True).convert("RGBA")
        base = Image.new("RGBA", rgba.size, (255, 255, 255, 255)) if base is None else base
        base.alpha_composite(rgba.resize(base.size) if rgba.size != base.size else rgba)
    return base.convert("RGB")
