"""PULSE speed (and the 256 px shortcut) on this CPU.

1. Steps per second of the search: DCGAN (dcgan.faces64) with 1 and 4 restarts; StyleGAN2
   FFHQ-1024 geometry with random weights (same cost as the real ones) searching on the 256 px
   intermediate RGB and on the full 1024 px output, 1 restart; plus one final 1024 px render.
2. ``--compare N``: the shortcut's success rate against the full search, both ways on the same N
   in-distribution targets (16x16), on a reduced-width random StyleGAN2 (1/8 of the channels,
   style_dim 64) of ``--compare-size`` px (default 256) searched on its size/4 intermediate RGB,
   the same 4x ratio as 256 vs 1024 (a 1024 px comparison costs hours of CPU here), and the
   shortcut refined at full resolution for the last 10 % of the steps: 4 restarts x ``--steps``
   steps each way.

Wall time and process CPU time are both printed: the machine is shared, so CPU time (with one
thread) is the steadier number. Run: .venv/bin/python bench/pulse_speed.py [--threads 1] [--compare 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import core.models  # noqa: E402
from core.models.stylegan2 import default_channels  # noqa: E402
from core.pipelines import pulse_adapters as A  # noqa: E402
from core.pipelines import pulse_search as S  # noqa: E402


def timed_steps(adapter, restarts: int, steps: int, size: int = 16, warmup: int = 1) -> tuple[float, float]:
    """Seconds per search step (wall, CPU), measured over ``steps`` steps after ``warmup``."""
    target = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    if warmup:
        S.search(adapter, target, steps=warmup, restarts=restarts, seed=0)  # warm-up (allocations, final render)
    events = S.search_iter(adapter, target, steps=steps + 1, restarts=restarts, seed=0, preview_every=1)
    next(events)  # step 1 done: start the clock after it
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        next(events)
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def speed(args) -> None:
    dcgan = A.load_adapter("dcgan.faces64", device="cpu")
    for restarts in (1, 4):
        wall, cpu = timed_steps(dcgan, restarts, steps=30)
        print(f"DCGAN 64 px, {restarts} restart(s): {1 / wall:6.2f} steps/s wall ({wall * 1e3:.0f} ms/step; "
              f"CPU {cpu * 1e3:.0f} ms/step); 100 steps = {100 * wall:.1f} s", flush=True)

    torch.manual_seed(0)
    model = core.models.build("stylegan2", size=1024).eval().requires_grad_(False)
    fit = A.gaussian_fit(model, samples=10_000)
    for resolution in (256, 1024):
        adapter = A.StyleGAN2Adapter(model, fit=fit, search_resolution=resolution)
        wall, cpu = timed_steps(adapter, 1, steps=args.sg2_steps, warmup=0)
        print(f"StyleGAN2 search at {resolution} px, 1 restart: {1 / wall:.3f} steps/s wall ({wall:.1f} s/step; "
              f"CPU {cpu:.1f} s/step); 100 steps = {100 * wall / 60:.1f} min", flush=True)
    adapter = A.StyleGAN2Adapter(model, fit=fit)
    state = adapter.init_state(1, torch.Generator().manual_seed(0))
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        adapter.render(state, final=True)
    print(f"StyleGAN2 one 1024 px render (no grad): {time.perf_counter() - wall:.1f} s wall, "
          f"{time.process_time() - cpu:.1f} s CPU", flush=True)


def compare(args) -> None:
    size, small = args.compare_size, args.compare_size // 4
    channels = {r: max(4, c // 8) for r, c in default_channels(2).items()}
    torch.manual_seed(0)
    model = core.models.build("stylegan2", size=size, style_dim=64, n_mlp=8, channels=channels)
    model = model.eval().requires_grad_(False)
    fit = A.gaussian_fit(model, samples=20_000)
    full = A.StyleGAN2Adapter(model, fit=fit)
    fast = A.StyleGAN2Adapter(model, fit=fit, search_resolution=small)
    names = (f"full {size}", f"shortcut {small}", f"{small}+{size} last 10%")
    print(f"reduced-width random StyleGAN2 {size} px (channels {channels}, style_dim 64): search on the full "
          f"output vs on the {small} px intermediate RGB (rendered at {size} px once); {args.compare} targets at "
          f"16x16, 4 restarts x {args.steps} steps, eps {S.EPS_DEFAULT:g}", flush=True)
    totals = {name: [0, 0.0, 0.0, []] for name in names}
    for t in range(args.compare):
        with torch.no_grad():
            target = S.downscale(full.render(full.init_state(1, torch.Generator().manual_seed(500 + t)),
                                             final=True), 16).clamp(0, 1)
        for name, adapter, refine in zip(names, (full, fast, fast), (0, 0, args.steps // 10)):
            cpu = time.process_time()
            result = S.search(adapter, target, steps=args.steps, restarts=4, seed=t, refine_steps=refine)
            cpu = time.process_time() - cpu
            best = result.samples[0]
            totals[name][0] += result.success
            totals[name][1] += result.seconds
            totals[name][2] += cpu
            totals[name][3].append(best.l2)
            print(f"  target {t} {name:>13}: final L2 {best.l2:.2e} (search L2 {best.search_l2:.2e}), "
                  f"success {result.success}, {result.seconds:.0f} s wall, {cpu:.0f} s CPU", flush=True)
    for name, (ok, wall, cpu, l2s) in totals.items():
        print(f"{name}: {ok}/{args.compare} targets within eps; median best L2 {sorted(l2s)[len(l2s) // 2]:.2e}; "
              f"{wall:.0f} s wall, {cpu:.0f} s CPU in total")
    for name in names[1:]:
        print(f"{name} speed-up over the full search (CPU time): {totals[names[0]][2] / totals[name][2]:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sg2-steps", type=int, default=2, help="timed StyleGAN2 steps per resolution")
    parser.add_argument("--compare", type=int, default=0, help="targets for the shortcut-vs-full comparison")
    parser.add_argument("--compare-size", type=int, default=256, help="generator size in the comparison")
    parser.add_argument("--steps", type=int, default=100, help="search steps in the comparison")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)", flush=True)
    if not args.skip_speed:
        speed(args)
    if args.compare:
        compare(args)


if __name__ == "__main__":
    main()
