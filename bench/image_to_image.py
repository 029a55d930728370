"""Seconds per image of the image-to-image generators (pix2pix U-Nets, CycleGAN ResNet-9) on this CPU.

    python bench/image_to_image.py [--threads 1] [--repeats 3]

Random weights of the real sizes cost the same as trained ones, so every row runs without the
weights. Rows: each generator as one pass at 256x256 and at 1024x768 (the U-Net in eval mode and
in paper mode), the edges->faces model at its native 64x64, and the season app's full-resolution
procedure on a 1024x768 photo (overlapping tiles of 256 px for the Yosemite models, 512 px for the
vintage model; tile overlap 1/4) next to its fast resize mode. Prints a Markdown table; the load
average is printed too, since other processes on the machine slow every row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core.models as registry  # noqa: E402
from core.pipelines.translate import translate_tensor  # noqa: E402
from core.pipelines.tiling import tile_starts  # noqa: E402

UNET = ("pix2pix_unet", {"ngf": 64, "num_downs": 8})
FACES = ("pix2pix_unet", {"ngf": 32, "num_downs": 6})
RESNET = ("cyclegan_resnet", {"ngf": 64, "n_blocks": 9, "norm": "instance"})
VINTAGE = ("cyclegan_resnet", {"ngf": 64, "n_blocks": 9, "norm": "instance_affine"})


def seconds(fn, repeats: int) -> float:
    fn()  # warm-up (first call at a new size allocates)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {name: registry.build(arch, **config).eval() for name, (arch, config) in
              {"unet": UNET, "faces": FACES, "resnet": RESNET, "vintage": VINTAGE}.items()}
    small, large = torch.rand(1, 3, 256, 256) * 2 - 1, torch.rand(1, 3, 768, 1024) * 2 - 1

    def run(model, x, **kw):
        with torch.inference_mode():
            return model(x, **kw)

    rows = []
    for label, model, kw in (("pix2pix U-Net 256 (ngf 64, 54.4 M), eval mode", models["unet"], {}),
                             ("pix2pix U-Net 256, paper mode", models["unet"], {"batch_stats": True, "dropout": True}),
                             ("CycleGAN ResNet-9 (ngf 64, 11.4 M)", models["resnet"], {}),
                             ("edges->faces U-Net (ngf 32, 7.3 M), paper mode", models["faces"],
                              {"batch_stats": True, "dropout": True})):
        cells = [f"{seconds(lambda: run(model, x, **kw), args.repeats):.3f}" for x in (small, large)]
        rows.append((label, *cells))
    faces64 = seconds(lambda: run(models["faces"], small[..., :64, :64], batch_stats=True, dropout=True),
                      args.repeats)
    rows.append(("edges->faces U-Net at its native 64x64", f"{faces64:.4f} (64x64)", "-"))
    for label, model, tile in (("Season swap, full resolution (tiles of 256, ResNet-9)", models["resnet"], 256),
                               ("Vintage look, full resolution (tiles of 512)", models["vintage"], 512)):
        n = len(tile_starts(768, tile, tile // 4)) * len(tile_starts(1024, tile, tile // 4))
        full = seconds(lambda: translate_tensor(model, large, mode="tiled", size=tile), max(1, args.repeats // 2))
        fast = seconds(lambda: translate_tensor(model, large, mode="resize", size=tile), args.repeats)
        rows.append((f"{label}: {n} tiles", "-", f"{full:.2f}"))
        rows.append((f"{label.split(',')[0]}, fast resize mode (shorter side {tile})", "-", f"{fast:.2f}"))
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, median of {args.repeats} after a warm-up\n")
    print("| generator | s / image 256x256 | s / image 1024x768 |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
