"""Photo -> sketch -> face with the edges -> faces model on the real portraits the project ships.

    python bench/sketch_faces.py [--grid apps/sketch2photo/real_photos.png] [--json apps/sketch2photo/real_photos.json]

Portraits (public domain / CC0): the astronaut (``skimage.data.astronaut``), Grace Hopper
(``apps/glasses/examples/grace_hopper.jpg``) and the cameraman (``skimage.data.camera``).
The target is the photo's face aligned like the model's training crops (64 px,
``core.pipelines.sketch.align_like_training_faces``). Mean L1 (pixel values in [0, 1]) of:
- **framed** (the app's default): ``/photo_to_sketch`` with the face framed like the training
  crops, then ``/sketch_to_photo`` (paper mode, dropout seeds 0..3);
- **whole photo** (the app before): the whole photo sketched, centred and shrunk to 64 px;
  against the aligned crop and against the whole photo shrunk to 64 px (what it was asked to draw);
- the two baselines of the model's own evaluation: the blurred framed sketch (Gaussian, 2 px)
  and the mean training face (the first 1,024 training faces: DCGAN z from seed 0).
Also the mean absolute difference between pairs of the 4 variations (0..255 levels), on these
sketches and on the app's example sketches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.images import resize_max_side  # noqa: E402
from core.pipelines import sketch_to_photo  # noqa: E402
from core.pipelines.sketch_to_photo import variation_difference  # noqa: E402
from core.pipelines.sketch import photo_to_face_sketch, photo_to_sketch, prepare_sketch  # noqa: E402

MODEL = "pix2pix.edges2faces64"
VARIATIONS = 4
TILE = 96


def unit(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), np.float32) / 255


def mean_l1(images: list[Image.Image], target: Image.Image) -> float:
    return float(np.mean([np.abs(unit(image) - unit(target)).mean() for image in images]))


def mean_training_face(count: int = 1024) -> Image.Image:
    """The mean of the first ``count`` training faces (``core.train.edges2faces`` draws z from seed 0
    in batches of 64, so these are exactly its first faces)."""
    from core.weights import load_model

    generator = load_model("dcgan.faces64", device="cpu", dtype=torch.float32)
    rng = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        faces = torch.cat([generator(torch.randn(64, 100, generator=rng)) for _ in range(count // 64)])
    mean = (faces.clamp(-1, 1).mean(0).permute(1, 2, 0).numpy() + 1) * 127.5
    return Image.fromarray(np.clip(np.rint(mean), 0, 255).astype(np.uint8))


def portraits() -> dict[str, Image.Image]:
    import skimage.data

    return {
        "astronaut": Image.fromarray(skimage.data.astronaut()),
        "Grace Hopper": Image.open(ROOT / "apps" / "glasses" / "examples" / "grace_hopper.jpg").convert("RGB"),
        "cameraman": Image.fromarray(skimage.data.camera()).convert("RGB"),
    }


def generate(sketch: Image.Image) -> list[Image.Image]:
    return sketch_to_photo.run(sketch, sketch_to_photo.Settings(MODEL, True, VARIATIONS, 0)).images


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    mean_face = mean_training_face()
    rows, tiles = [], []
    for name, photo in portraits().items():
        framed_sketch, target = photo_to_face_sketch(photo)
        whole_sketch = photo_to_sketch(resize_max_side(photo, 512))
        framed, whole = generate(framed_sketch), generate(whole_sketch)
        blurred = prepare_sketch(framed_sketch, 64).filter(ImageFilter.GaussianBlur(2))
        square = prepare_sketch(photo, 64)  # the whole photo, centred on white and shrunk like the sketch
        row = {
            "photo": name,
            "framed_l1": round(mean_l1(framed, target), 4),
            "whole_photo_l1_vs_aligned_crop": round(mean_l1(whole, target), 4),
            "whole_photo_l1_vs_whole_photo": round(mean_l1(whole, square), 4),
            "baseline_blurred_sketch_l1": round(mean_l1([blurred], target), 4),
            "baseline_mean_training_face_l1": round(mean_l1([mean_face], target), 4),
            "variation_difference_framed": round(variation_difference(framed)[0], 2),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        tiles.append([(target, f"{name}, framed"), (prepare_sketch(whole_sketch, 64), "whole-photo sketch"),
                      (whole[0], "-> face (before)"), (prepare_sketch(framed_sketch, 64), "framed sketch"),
                      (framed[0], "-> face, seed 0"), (framed[1], "seed 1"),
                      (variation_difference(framed)[1], "spread x4")])
    examples = sorted((ROOT / "apps" / "sketch2photo" / "examples").glob("face_sketch_*.png"))
    spread = [variation_difference(generate(Image.open(p)))[0] for p in examples]
    rows.append({"example_sketches": len(examples), "variation_difference_mean": round(float(np.mean(spread)), 2)})
    print(json.dumps(rows[-1]))
    if args.grid:
        label = 14
        out = Image.new("RGB", (TILE * len(tiles[0]), (TILE + label) * len(tiles)), "white")
        draw = ImageDraw.Draw(out)
        for r, row in enumerate(tiles):
            for c, (image, text) in enumerate(row):
                out.paste(image.convert("RGB").resize((TILE, TILE), Image.Resampling.NEAREST),
                          (c * TILE, r * (TILE + label) + label))
                draw.text((c * TILE + 2, r * (TILE + label) + 1), text, fill="black")
        out.save(args.grid, optimize=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
