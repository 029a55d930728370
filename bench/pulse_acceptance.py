"""PULSE acceptance on the offline DCGAN (issue 4, section 5).

In distribution: 20 faces sampled from dcgan.faces64 at a fixed seed, bicubic-downscaled to 8x8
and 16x16; for each target one search of 4 restarts run as one batch, 100 steps, lr 0.4,
linear1cycledrop, on the sphere. Prints per target the best L2 and the first step at which
L2 <= eps, then the success rates, the median best L2 and the seconds per search.
Real photos: skimage astronaut and camera (cameraman, greyscale, 3/4 profile), aligned to the
DCGAN template and downscaled to 16x16, seeds 0-2; the search must cut L2 by at least 10x from
its start (matplotlib's grace_hopper.jpg is not installed here).

Run: .venv/bin/python bench/pulse_acceptance.py [--threads 1] [--targets 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.pipelines import pulse as P  # noqa: E402
from core.pipelines import pulse_adapters as A  # noqa: E402
from core.pipelines import pulse_search as S  # noqa: E402

TARGET_SEED = 2020


def in_distribution(adapter, size: int, targets: torch.Tensor, steps: int, restarts: int, eps: float) -> dict:
    rows = []
    for t, image in enumerate(targets):
        low = S.downscale(image[None], size)
        cpu = time.process_time()
        result = S.search(adapter, low, steps=steps, lr=0.4, eps=eps, restarts=restarts, seed=1000 + t)
        cpu = time.process_time() - cpu
        firsts = [s.first_success_step for s in result.samples if s.first_success_step is not None]
        best = result.samples[0]
        rows.append((t, best.l2, min(firsts) if firsts else None, result.seconds, cpu))
        print(f"  {size:>2}x{size:<2} target {t:2d}: best L2 {best.l2:.2e} "
              f"first success step {min(firsts) if firsts else '-':>3}  ({result.seconds:.2f} s wall, "
              f"{cpu:.2f} s CPU)", flush=True)
    l2s = [r[1] for r in rows]
    return {
        "size": size,
        "success_rate": sum(v <= eps for v in l2s) / len(l2s),
        "median_l2": statistics.median(l2s),
        "seconds_per_search": statistics.median(r[3] for r in rows),
        "cpu_per_search": statistics.median(r[4] for r in rows),
    }


def real_photos(adapter, steps: int, restarts: int, eps: float) -> None:
    import numpy as np
    import skimage.data
    from PIL import Image

    photos = {"astronaut": skimage.data.astronaut(), "camera": np.stack([skimage.data.camera()] * 3, -1)}
    for name, array in photos.items():
        low = P.low_res_input(Image.fromarray(array), 16, adapter.size, template=P.face_template("dcgan.faces64"))
        for seed in (0, 1, 2):
            result = S.search(adapter, low.tensor, steps=steps, lr=0.4, eps=eps, restarts=restarts, seed=seed)
            best = result.samples[0]
            mean_start = statistics.mean(s.start_l2 for s in result.samples)
            print(f"  {name} seed {seed}: best L2 {best.l2:.2e}, its start {best.start_l2:.2e} "
                  f"(cut {best.start_l2 / best.l2:.1f}x; mean start of the restarts {mean_start:.2e}, "
                  f"cut {mean_start / best.l2:.1f}x), success {result.success}")
        print(f"    message: {result.message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--eps", type=float, default=S.EPS_DEFAULT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adapter = A.load_adapter("dcgan.faces64", device="cpu")
    with torch.no_grad():
        z = torch.randn(args.targets, 100, generator=torch.Generator().manual_seed(TARGET_SEED))
        targets = (adapter.model(z) + 1) / 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {args.targets} DCGAN targets "
          f"(z seed {TARGET_SEED}), {args.restarts} restarts, {args.steps} steps, lr 0.4 linear1cycledrop, "
          f"eps {args.eps:g}")
    started = time.perf_counter()
    summaries = [in_distribution(adapter, size, targets, args.steps, args.restarts, args.eps) for size in (8, 16)]
    for s in summaries:
        print(f"{s['size']}x{s['size']}: {s['success_rate']:.0%} of targets reach L2 <= {args.eps:g}; "
              f"median best L2 {s['median_l2']:.2e}; median {s['seconds_per_search']:.2f} s wall "
              f"({s['cpu_per_search']:.2f} s CPU) per search of {args.restarts} restarts x {args.steps} steps")
    print("real photos (16x16):")
    real_photos(adapter, args.steps, args.restarts, args.eps)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
