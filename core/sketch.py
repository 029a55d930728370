"""Photo -> sketch: thin black edges on white, in the style of the pix2pix edges2* training inputs.

The edges2shoes/edges2handbags datasets were made with HED edges, thinned and cleaned of short
fragments, drawn black on white. :func:`photo_to_sketch` gets close with OpenCV only: an
edge-preserving blur, Canny with thresholds set from the image's own gradient distribution (so
the edge density is similar for dark and bright photos), removal of short fragments, optional
thickening, black on white. :func:`prepare_sketch` turns a user drawing (any size, any mode) into
the model input the same way the training sketches were made.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from core.images import load_image


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


def face_sketch(face: Image.Image, size: int, *, work_size: int = 256, detail: float = 0.4,
                stroke: int = 3) -> Image.Image:
    """Training-style sketch of a small face crop: edges drawn at ``work_size``, then area-downscaled.

    Drawing ``stroke`` px lines at 256 px and shrinking gives the lines a user's drawing on the
    app's 256 px sketch pad (brush 3) has once it is reduced to the model's ``size``.
    """
    big = load_image(face).resize((work_size, work_size), Image.Resampling.BICUBIC)
    return prepare_sketch(photo_to_sketch(big, detail=detail, thickness=stroke), size)


def sketch_from_editor(value) -> Image.Image:
    """The drawing of a ``gr.Sketchpad`` value (``{"composite", "background", "layers"}``) as RGB on white.

    Transparent pixels become white. Raises ``ValueError`` when nothing was drawn.
    """
    if isinstance(value, dict):
        composite = value.get("composite")
        if composite is None:
            layers = [layer for layer in value.get("layers") or [] if layer is not None]
            composite = layers[0] if layers else value.get("background")
        value = composite
    if value is None:
        raise ValueError("Draw a sketch first (select the brush tool, then draw black strokes on the white pad).")
    image = load_image(value)
    if np.asarray(image.convert("L")).min() > 200:
        raise ValueError("The sketch is empty: draw some strokes first (select the brush tool on the pad).")
    return image
