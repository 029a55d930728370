"""Seconds per inpainting edit on this machine (CPU), through ``core.pipelines.inpaint.inpaint``.

LaMa runs with random weights of the real big-lama size (51 M parameters; the cost is the same as
with the trained ones), given to the resolver as ``$GANHUB_WEIGHTS_DIR/lama.big_lama.safetensors``.

Cases, measured side by side in one run:
1. LaMa on a 512x512 photo (whole image).
2. A small mask (a 120x90 blob) on a 3000x2000 photo: LaMa with the crop strategy, and without it
   (the whole 6 MP image at full resolution, as the reference script does); the same for OpenCV Telea.

Usage: ``python bench/inpaint.py [--threads 1] [--repeats 3] [--skip-full]``
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from skimage import data  # noqa: E402


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true", help="skip whole-image LaMa on 6 MP (minutes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import core.models
    from core.pipelines.inpaint import FULL_MAX_PIXELS, inpaint
    from safetensors.torch import save_file

    weights_dir = tempfile.mkdtemp(prefix="bench_lama_")
    atexit.register(shutil.rmtree, weights_dir, ignore_errors=True)
    torch.manual_seed(0)
    save_file(core.models.build("lama").state_dict(), os.path.join(weights_dir, "lama.big_lama.safetensors"))
    os.environ["GANHUB_WEIGHTS_DIR"] = weights_dir
    os.environ["GANHUB_DEVICE"] = "cpu"

    small = Image.fromarray(data.astronaut())  # 512x512
    small_mask = Image.new("L", small.size, 0)
    ImageDraw.Draw(small_mask).ellipse((180, 300, 340, 420), fill=255)
    big = Image.fromarray(data.coffee()).resize((3000, 2000), Image.Resampling.BICUBIC)
    big_mask = Image.new("L", big.size, 0)
    ImageDraw.Draw(big_mask).ellipse((1650, 1200, 1770, 1290), fill=255)  # a 120x90 blob

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU: {os.cpu_count()} cores visible")
    inpaint(small, small_mask, method="lama", strategy="full")  # warm-up: load the model, first-call costs
    rows = []

    def case(name, image, mask, repeats=args.repeats, **kwargs):
        seconds, runs = timed(lambda: inpaint(image, mask, **kwargs), repeats)
        rows.append((name, seconds, runs))
        print(f"{name:58s} {seconds:8.2f} s   (runs: {', '.join(f'{r:.2f}' for r in runs)})", flush=True)
        return seconds

    case("LaMa, 512x512, whole image", small, small_mask, method="lama", strategy="full")
    crop = case("LaMa, 3000x2000, 120x90 mask, crop strategy", big, big_mask, method="lama", strategy="crop")
    telea_crop = case("Telea, 3000x2000, 120x90 mask, crop strategy", big, big_mask, method="telea", strategy="crop")
    telea_full = case("Telea, 3000x2000, 120x90 mask, whole image", big, big_mask, method="telea", strategy="full")
    if not args.skip_full:
        import core.pipelines.inpaint as pipeline

        pipeline.FULL_MAX_PIXELS = max(FULL_MAX_PIXELS, 6_000_000)
        full = case("LaMa, 3000x2000, 120x90 mask, whole image (no crop)", big, big_mask, repeats=1,
                    method="lama", strategy="full")
        print(f"\nLaMa whole image / crop strategy on 3000x2000: {full / crop:.0f}x")
    print(f"Telea whole image / crop strategy on 3000x2000: {telea_full / telea_crop:.1f}x")


if __name__ == "__main__":
    main()
