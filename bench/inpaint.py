"""Seconds per inpainting edit on this machine (CPU), through ``core.pipelines.inpaint.run``.

MI-GAN and LaMa run with random weights of their real sizes (MI-GAN 512: 6.0 M parameters, LaMa
big-lama: 51 M; the cost is the same as with the trained ones), given to the resolver as
``$GANHUB_WEIGHTS_DIR/<id>.safetensors``.

Cases, measured side by side in one run:
1. A 512x512 photo with a 160x120 hole, whole image: MI-GAN, LaMa, OpenCV Telea.
2. A small mask (a 120x90 blob) on a 4000x3000 (12 MP) photo, crop strategy: MI-GAN, LaMa, Telea;
   and Telea on the whole image. ``--full`` adds whole-image LaMa on 12 MP (the reference
   script's way: minutes and many GB).

Usage: ``python bench/inpaint.py [--threads 1] [--repeats 3] [--full]``
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
    parser.add_argument("--full", action="store_true", help="also whole-image LaMa on 12 MP (minutes, GBs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import core.models
    from core.pipelines.inpaint import FULL_MAX_PIXELS, Settings, run

    def inpaint(image, mask, **settings):
        return run(image, mask, Settings(**settings))
    from safetensors.torch import save_file

    weights_dir = tempfile.mkdtemp(prefix="bench_inpaint_")
    atexit.register(shutil.rmtree, weights_dir, ignore_errors=True)
    torch.manual_seed(0)
    save_file(core.models.build("lama").state_dict(), os.path.join(weights_dir, "lama.big_lama.safetensors"))
    migan = core.models.build("migan", resolution=512, ch_base=32768, ch_max=512)
    save_file(migan.state_dict(), os.path.join(weights_dir, "migan.places2_512.safetensors"))
    os.environ["GANHUB_WEIGHTS_DIR"] = weights_dir
    os.environ["GANHUB_DEVICE"] = "cpu"

    small = Image.fromarray(data.astronaut())  # 512x512
    small_mask = Image.new("L", small.size, 0)
    ImageDraw.Draw(small_mask).ellipse((180, 300, 340, 420), fill=255)  # 160x120
    big = Image.fromarray(data.coffee()).resize((4000, 3000), Image.Resampling.BICUBIC)
    big_mask = Image.new("L", big.size, 0)
    ImageDraw.Draw(big_mask).ellipse((1650, 1200, 1770, 1290), fill=255)  # a 120x90 blob

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU: {os.cpu_count()} cores visible")
    for method in ("lama", "migan"):  # warm-up: load the models, first-call costs
        inpaint(small, small_mask, method=method, strategy="full")
    rows = []

    def case(name, image, mask, repeats=args.repeats, **kwargs):
        seconds, runs = timed(lambda: inpaint(image, mask, **kwargs), repeats)
        rows.append((name, seconds, runs))
        print(f"{name:58s} {seconds:8.2f} s   (runs: {', '.join(f'{r:.2f}' for r in runs)})", flush=True)
        return seconds

    results = {}
    for method, title in (("migan", "MI-GAN"), ("lama", "LaMa"), ("telea", "Telea")):
        results[method, "512"] = case(f"{title}, 512x512, 160x120 hole, whole image", small, small_mask,
                                      method=method, strategy="full")
    for method, title in (("migan", "MI-GAN"), ("lama", "LaMa"), ("telea", "Telea")):
        results[method, "12mp"] = case(f"{title}, 4000x3000, 120x90 mask, crop strategy", big, big_mask,
                                       method=method, strategy="crop")
    case("Telea, 4000x3000, 120x90 mask, whole image", big, big_mask, method="telea", strategy="full")
    if args.full:
        import core.pipelines.inpaint as pipeline

        pipeline.FULL_MAX_PIXELS = max(FULL_MAX_PIXELS, 12_000_000)
        full = case("LaMa, 4000x3000, 120x90 mask, whole image (no crop)", big, big_mask, repeats=1,
                    method="lama", strategy="full")
        print(f"\nLaMa whole image / crop strategy on 4000x3000: {full / results['lama', '12mp']:.0f}x")
    print(f"\nLaMa / MI-GAN: {results['lama', '512'] / results['migan', '512']:.1f}x at 512x512, "
          f"{results['lama', '12mp'] / results['migan', '12mp']:.1f}x on the 12 MP photo (crop strategy)")


if __name__ == "__main__":
    main()
