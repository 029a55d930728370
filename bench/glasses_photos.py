"""The glasses app on the real portraits the project ships, photo mode against the 64 px paper modes.

    python bench/glasses_photos.py [--grid apps/glasses/photo_grid.png] [--detail apps/glasses/photo_detail.png]
        [--json apps/glasses/photo_results.json]

Portraits (all public domain or CC0): Grace Hopper (``apps/glasses/examples/grace_hopper.jpg``,
US Navy, wears glasses), the astronaut Eileen Collins (``skimage.data.astronaut``, NASA), the
cameraman (``skimage.data.camera``, CC0), and the astronaut with drawn black frames
(``apps/glasses/examples/a_photo_glasses.jpg``, made by this project from the astronaut).

For each (A, B) pair and mode (``photo``, the default, and ``auto``, the paper's 64 px output
written back into the eye band as the app did before) it reports:
- removal: the classifier's P(glasses) on A before and after; the share of A's pixels changed;
  how many of them lie outside the inpainting mask (photo mode: must be 0); pixels changed on the
  eyes (ellipses at the eye landmarks);
- addition: P(glasses) on B before and after; the share of B's pixels changed, how many outside
  the frame matte (photo mode: must be 0) and by how much on average there (colour speckle);
  pixels changed on the eyes. The 64 px mode is measured against photo mode's mask and matte.
- seconds per swap (CPU, one thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.pipelines.glasses import swap as glasses  # noqa: E402
from core.faces import single_face  # noqa: E402
from core.pipelines.glasses.mask import EYE_AXES, _ellipse, _face_frame  # noqa: E402

EXAMPLES = ROOT / "apps" / "glasses" / "examples"
TILE = 128


def portraits() -> dict[str, Image.Image]:
    import skimage.data

    return {
        "Grace Hopper": Image.open(EXAMPLES / "grace_hopper.jpg").convert("RGB"),
        "drawn frames": Image.open(EXAMPLES / "a_photo_glasses.jpg").convert("RGB"),
        "astronaut": Image.fromarray(skimage.data.astronaut()),
        "cameraman": Image.fromarray(skimage.data.camera()).convert("RGB"),
    }


def eye_area(image: Image.Image) -> tuple[np.ndarray, float]:
    eyes = single_face(image).points()[:2]
    along, _, distance = _face_frame(eyes)
    shape = (image.height, image.width)
    axes = np.multiply(EYE_AXES, distance)
    return _ellipse(shape, eyes[0], along, axes) | _ellipse(shape, eyes[1], along, axes), distance


def measure(a_name, b_name, images, mode, masks=None) -> tuple[dict, glasses.Result]:
    a, b = images[a_name], images[b_name]
    start = time.perf_counter()
    result = glasses.run(a, b, glasses.Settings(mode=mode, inpaint_method="auto"))
    seconds = time.perf_counter() - start
    p = result.probabilities
    changed_a = (np.asarray(result.a_without_glasses) != np.asarray(a)).any(-1)
    changed_b = (np.asarray(result.b_with_glasses) != np.asarray(b)).any(-1)
    eyes_a, _ = eye_area(a)
    eyes_b, _ = eye_area(b)
    masks = masks or result.masks
    outside_matte = ~(masks["matte"] > 0)
    change_b = np.abs(np.asarray(result.b_with_glasses).astype(int) - np.asarray(b)).max(-1)
    row = {
        "A": a_name, "B": b_name, "mode": mode, "seconds": round(seconds, 2),
        "A_p_glasses_before": round(p["a"], 4), "A_p_glasses_after": round(p["a_without"], 4),
        "A_changed_fraction": round(float(changed_a.mean()), 5),
        "A_eye_pixels_changed": int(changed_a[eyes_a].sum()),
        "B_p_glasses_before": round(p["b"], 4), "B_p_glasses_after": round(p["b_with"], 4),
        "B_changed_fraction": round(float(changed_b.mean()), 5),
        "B_eye_pixels_changed": int(changed_b[eyes_b].sum()),
        "A_changed_outside_mask": int(changed_a[~masks["hole"]].sum()),
        "B_changed_outside_matte": int(changed_b[outside_matte].sum()),
        "B_mean_change_where_changed_outside_matte": round(float(change_b[outside_matte & changed_b].mean()), 1)
        if (outside_matte & changed_b).any() else 0.0,
    }
    return row, result


def face_tile(image: Image.Image, box_of: Image.Image) -> Image.Image:
    face = single_face(box_of)
    x, y, w, h = face.box
    side = 1.5 * max(w, h)
    cx, cy = x + w / 2, y + h * 0.45
    return image.crop((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2))).resize(
        (TILE, TILE), Image.Resampling.LANCZOS)


def eye_strip(image: Image.Image, box_of: Image.Image, width: int = 288) -> Image.Image:
    """The eye region of ``image`` (where the face of ``box_of`` has its eyes), ``width`` px wide."""
    eyes = single_face(box_of).points()[:2]
    distance = float(np.hypot(*(eyes[1] - eyes[0])))
    middle = eyes.mean(0)
    box = (middle[0] - 1.4 * distance, middle[1] - 0.6 * distance,
           middle[0] + 1.4 * distance, middle[1] + 0.8 * distance)
    crop = image.crop(tuple(int(round(v)) for v in box))
    return crop.resize((width, round(width * crop.height / crop.width)), Image.Resampling.LANCZOS)


def grid(rows: list[list[tuple[Image.Image, str]]]) -> Image.Image:
    label = 16
    out = Image.new("RGB", (TILE * len(rows[0]), (TILE + label) * len(rows)), "white")
    draw = ImageDraw.Draw(out)
    for r, row in enumerate(rows):
        for c, (tile, text) in enumerate(row):
            out.paste(tile, (c * TILE, r * (TILE + label) + label))
            draw.text((c * TILE + 3, r * (TILE + label) + 2), text, fill="black")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default=None, help="write the before/after grid (PNG) here")
    parser.add_argument("--detail", default=None, help="write the eye regions of the first pair (PNG) here")
    parser.add_argument("--json", default=None, help="write the numbers here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    images = portraits()
    pairs = [("Grace Hopper", "astronaut"), ("Grace Hopper", "cameraman"), ("drawn frames", "cameraman"),
             ("astronaut", "cameraman")]
    rows, grid_rows = [], []
    for a_name, b_name in pairs:
        results = {}
        for mode in ("photo", "auto"):
            photo_masks = results["photo"].masks if "photo" in results else None
            row, results[mode] = measure(a_name, b_name, images, mode, photo_masks)
            rows.append(row)
            print(json.dumps(row), flush=True)
        a, b = images[a_name], images[b_name]
        grid_rows.append([
            (face_tile(a, a), f"A: {a_name}"), (face_tile(results["photo"].a_without_glasses, a), "A - glasses (ours)"),
            (face_tile(results["auto"].a_without_glasses, a), "A - glasses (64 px)"),
            (face_tile(b, b), f"B: {b_name}"), (face_tile(results["photo"].b_with_glasses, b), "B + A's (ours)"),
            (face_tile(results["auto"].b_with_glasses, b), "B + A's (64 px)")])
        if args.detail and len(grid_rows) == 1:
            from core.pipelines.inpaint_masks import overlay_mask

            strips = [eye_strip(a, a), eye_strip(overlay_mask(a, results["photo"].masks["hole"]), a),
                      eye_strip(results["photo"].a_without_glasses, a), eye_strip(results["photo"].b_with_glasses, b)]
            detail = Image.new("RGB", (sum(s.width for s in strips), max(s.height for s in strips)), "white")
            for i, strip in enumerate(strips):
                detail.paste(strip, (sum(s.width for s in strips[:i]), 0))
            detail.save(args.detail, optimize=True)
    if args.grid:
        grid(grid_rows).save(args.grid, optimize=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
