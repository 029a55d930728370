"""Synthetic eyeglasses data with known ground truth, for training and judging GeneGAN offline.

Faces come from the offline DCGAN face generator (``dcgan.faces64``); each is detected with
:mod:`core.faces` (5 landmarks) and aligned to the manifest's ``dcgan_faces64_symmetric`` layout
(:mod:`core.pipelines.glasses.layout`: the mean landmark layout of DCGAN faces, so the warp is small;
photos are aligned to it in the app, so both look alike to the model). :func:`render_glasses` draws a pair of
eyeglasses described by :class:`GlassesParams` (frame shape, colour, thickness, bridge, temples,
lens tint) at a face's eye positions: the frame and lens masks are drawn at 4x and area-downsampled
for soft edges, then composited over the clean face, which is kept as the ground truth.

Because the renderer is deterministic, "B wearing exactly A's glasses" is ``render_glasses(B,
eyes_B, params_A)``: the truth that the evaluation (``bench/genegan_eval.py``) compares with.

Command line (writes an ``.npz`` of aligned faces and their landmarks)::

    python -m core.train.synthetic_glasses faces --out artifacts/genegan/faces.npz --count 12000 --seed 0
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from core.pipelines.glasses.layout import SIZE, template

SUPERSAMPLE = 4

SHAPES = ("round", "oval", "rect", "rounded", "cateye", "aviator", "browline")

FRAME_PALETTE = {
    "black": (20, 20, 22), "dark_brown": (70, 42, 25), "tortoise": (120, 70, 35), "red": (190, 30, 35),
    "blue": (30, 60, 190), "green": (30, 140, 60), "gold": (200, 165, 70), "silver": (185, 185, 195),
    "white": (235, 235, 235), "purple": (120, 40, 150), "pink": (230, 110, 170), "orange": (235, 120, 20),
    "teal": (20, 150, 150), "yellow": (230, 210, 40),
}
TINTS = {"grey": (60, 60, 60), "brown": (110, 70, 40), "green": (50, 90, 50), "blue": (50, 80, 150),
         "pink": (200, 90, 130), "yellow": (200, 180, 40)}


@dataclass(frozen=True)
class GlassesParams:
    """One pair of eyeglasses, in units of the eye distance ``d`` (so it fits any face)."""

    shape: str
    frame_rgb: tuple[int, int, int]
    thickness: float  # frame line width in 64-px pixels
    lens_width: float  # x d
    lens_height: float  # x lens width
    lens_dy: float  # lens centre below the eye, x d
    bridge: str  # "straight" | "arched" | "double"
    temples: bool
    tint_rgb: tuple[int, int, int]
    tint_alpha: float  # 0 = clear lenses

    def to_dict(self) -> dict:
        return asdict(self)


def random_glasses(rng: np.random.Generator) -> GlassesParams:
    """A random pair of eyeglasses (shape, colour, thickness, bridge, temples, tint)."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    names = list(FRAME_PALETTE)
    base = np.array(FRAME_PALETTE[names[rng.integers(len(names))]], float)
    frame = tuple(int(v) for v in np.clip(base + rng.normal(0, 18, 3), 0, 255))
    if rng.random() < 0.45:
        tint_rgb, tint_alpha = (128, 128, 128), float(rng.uniform(0.0, 0.08))
    else:
        tnames = list(TINTS)
        tint_rgb = TINTS[tnames[rng.integers(len(tnames))]]
        tint_alpha = float(rng.uniform(0.15, 0.55))
    return GlassesParams(
        shape=shape, frame_rgb=frame,
        thickness=float(rng.uniform(0.9, 2.6) if shape != "browline" else rng.uniform(0.8, 1.6)),
        lens_width=float(rng.uniform(0.68, 0.9)),
        lens_height=float(rng.uniform(0.55, 0.85) if shape not in ("round",) else 1.0),
        lens_dy=float(rng.uniform(-0.04, 0.10)),
        bridge=("straight", "arched", "double")[rng.integers(3)],
        temples=bool(rng.random() < 0.8),
        tint_rgb=tuple(int(v) for v in tint_rgb), tint_alpha=tint_alpha,
    )


def _lens_outline(shape: str, w: float, h: float, n: int = 48) -> np.ndarray:
    """Closed outline of one lens centred at 0 (x right, y down), for the RIGHT-hand lens in the image.

    Asymmetric shapes (cat-eye, aviator) are drawn with their outer corner at +x; the other lens
    is mirrored.
    """
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    if shape in ("round", "oval"):
        x, y = c * w / 2, s * h / 2
    elif shape in ("rect", "browline", "rounded"):
        p = 6.0 if shape == "rounded" else 12.0  # superellipse: larger p = sharper corners
        x = np.sign(c) * np.abs(c) ** (2 / p) * w / 2
        y = np.sign(s) * np.abs(s) ** (2 / p) * h / 2
    elif shape == "cateye":
        x = np.sign(c) * np.abs(c) ** (2 / 4) * w / 2
        y = np.sign(s) * np.abs(s) ** (2 / 4) * h / 2
        y = y - (np.clip(x / (w / 2), 0, 1) ** 2) * h * 0.35 * (y < 0)  # outer-top corner lifted
    elif shape == "aviator":
        x, y = c * w / 2, s * h / 2
        y = np.where(y > 0, y * (1.25 - 0.45 * (x / (w / 2))), y * 0.8)  # teardrop: deeper on the inside
    else:
        raise ValueError(f"unknown glasses shape {shape!r}")
    return np.stack([x, y], 1)


def glasses_layers(eyes: np.ndarray, params: GlassesParams, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Soft frame and lens masks (float [size, size] in 0..1) for glasses on eyes ``(2, 2)`` (x, y px).

    ``eyes[0]`` is the left eye as seen in the image. Drawn at ``SUPERSAMPLE`` x and area-downsampled.
    """
    k = SUPERSAMPLE
    big = size * k
    left, right = np.asarray(eyes, float) * k
    d = float(np.hypot(*(right - left)))
    angle = math.atan2(right[1] - left[1], right[0] - left[0])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = (left + right) / 2
    w = params.lens_width * d
    h = params.lens_height * w
    dy = params.lens_dy * d

    def place(points: np.ndarray) -> list[tuple[float, float]]:  # local (x along eyes, y down) -> image
        return [tuple(p) for p in (points @ rot.T + centre)]

    outline = _lens_outline(params.shape, w, h)
    lenses = []
    for side in (-1, 1):
        pts = outline * [side, 1] + [side * d / 2, dy]
        lenses.append(pts)
    frame = Image.new("L", (big, big), 0)
    lens = Image.new("L", (big, big), 0)
    fd, ld = ImageDraw.Draw(frame), ImageDraw.Draw(lens)
    width = max(1, int(round(params.thickness * k)))
    for pts in lenses:
        ld.polygon(place(pts), fill=255)
        fd.line(place(np.vstack([pts, pts[:1]])), fill=255, width=width, joint="curve")
        if params.shape == "browline":  # a thick bar along the top half
            top = pts[pts[:, 1] <= dy]
            top = top[np.argsort(top[:, 0])]
            fd.line(place(top), fill=255, width=int(width * 2.6), joint="curve")
    # Bridge between the inner edges of the lenses.
    inner_l = lenses[0][np.argmax(lenses[0][:, 0])]
    inner_r = lenses[1][np.argmin(lenses[1][:, 0])]
    y_b = dy - 0.12 * h
    a, b = np.array([inner_l[0] - 0.3 * width, y_b]), np.array([inner_r[0] + 0.3 * width, y_b])
    if params.bridge == "arched":
        xs = np.linspace(a[0], b[0], 12)
        ys = y_b - 0.12 * d * np.sin(np.linspace(0, np.pi, 12))
        fd.line(place(np.stack([xs, ys], 1)), fill=255, width=width, joint="curve")
    else:
        fd.line(place(np.stack([a, b])), fill=255, width=width)
        if params.bridge == "double":
            top = dy - 0.45 * h
            fd.line(place(np.array([[-d / 2, top], [d / 2, top]])), fill=255, width=max(1, width * 2 // 3))
    if params.temples:  # arms from the outer top corners towards the ears
        for side, pts in ((-1, lenses[0]), (1, lenses[1])):
            outer = pts[np.argmax(side * pts[:, 0] - 0.4 * pts[:, 1])]
            end = outer + [side * 0.33 * d, -0.04 * d]
            fd.line(place(np.stack([outer, end])), fill=255, width=width)
    frame_a = cv2.resize(np.asarray(frame, np.float32) / 255.0, (size, size), interpolation=cv2.INTER_AREA)
    lens_a = cv2.resize(np.asarray(lens, np.float32) / 255.0, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(frame_a, 0, 1), np.clip(lens_a, 0, 1)


def render_glasses(face: np.ndarray, eyes: np.ndarray, params: GlassesParams) -> tuple[np.ndarray, np.ndarray]:
    """Face uint8 [H, W, 3] + glasses -> (uint8 face wearing them, soft frame mask [H, W] in 0..1)."""
    size = face.shape[0]
    frame_a, lens_a = glasses_layers(eyes, params, size)
    img = face.astype(np.float32)
    tint = lens_a[..., None] * params.tint_alpha
    img = img * (1 - tint) + np.array(params.tint_rgb, np.float32) * tint
    # The frame is one flat colour, blended in by its soft coverage.
    img = img * (1 - frame_a[..., None]) + np.array(params.frame_rgb, np.float32) * frame_a[..., None]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), frame_a


# --------------------------------------------------------------------------- DCGAN faces


def sample_faces(count: int, seed: int = 0, batch: int = 256, min_score: float = 0.8,
                 max_eye_error: float = 0.08) -> dict[str, np.ndarray]:
    """``count`` DCGAN faces (candidates), detected and aligned to the glasses models' layout.

    Faces with no confident single detection, or whose eyes land more than ``max_eye_error`` x
    size away from the template after alignment (profile views, broken faces), are dropped.
    Returns ``faces`` uint8 [N,64,64,3], ``landmarks`` float [N,5,2] (aligned, in pixels),
    ``index`` (candidate number, for reproducibility).
    """
    import torch

    from core.faces import align_face, detect_faces
    from core.weights import load_model

    layout = template()
    generator = load_model("dcgan.faces64", device="cpu", dtype=torch.float32)
    torch_gen = torch.Generator().manual_seed(seed)
    faces, marks, index = [], [], []
    done = 0
    while done < count:
        n = min(batch, count - done)
        with torch.no_grad():
            out = generator(torch.randn(n, 100, generator=torch_gen))
        imgs = ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        for i, img in enumerate(imgs):
            pil = Image.fromarray(img)
            found = detect_faces(pil, min_score=0.5)
            if len(found) != 1 or found[0].score < min_score:
                continue
            aligned = align_face(pil, found[0], SIZE, template=layout)
            pts = found[0].points()
            pts = pts @ aligned.matrix[:, :2].T + aligned.matrix[:, 2]
            if np.abs(pts[:2] - layout[:2] * SIZE).max() > max_eye_error * SIZE:
                continue
            faces.append(np.asarray(aligned.image))
            marks.append(pts)
            index.append(done + i)
        done += n
    return {"faces": np.stack(faces), "landmarks": np.stack(marks).astype(np.float32), "index": np.array(index)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.train.synthetic_glasses")
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("faces", help="sample, detect and align DCGAN faces into an .npz")
    f.add_argument("--out", required=True)
    f.add_argument("--count", type=int, default=12000)
    f.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    data = sample_faces(args.count, seed=args.seed)
    np.savez_compressed(args.out, **data)
    print(f"{len(data['faces'])} of {args.count} candidates kept -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
