"""CPU performance report: writes bench/RESULTS.md on the machine it runs on.

    python bench/run.py [--quick] [--threads N]

For every generator at its standard size: forward latency (p50 over repeats), achieved GFLOP/s
(FLOPs counted by torch's FlopCounterMode) next to a convolution peak measured in the same run,
and the effect of the usual CPU levers (inference_mode, channels_last, bfloat16 with its output
error). Then model load time next to the time to read the weight file's bytes, the gradio
round trip next to the direct call, and peak RSS. Random weights of the real sizes cost the same
as trained ones, so every row runs here even where the trained weights are absent.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core.models as registry  # noqa: E402

# name -> (arch, config, input builder, note). Standard sizes of the published checkpoints.
GENERATORS = {
    "DCGAN 64 (batch 16)": ("dcgan", {}, lambda: torch.randn(16, 100, 1, 1), "z -> 16 faces"),
    "CycleGAN ResNet-9 256": ("cyclegan_resnet", {"ngf": 64, "n_blocks": 9}, lambda: torch.rand(1, 3, 256, 256) * 2 - 1, ""),
    "pix2pix U-Net 256": ("pix2pix_unet", {"ngf": 64, "num_downs": 8}, lambda: torch.rand(1, 3, 256, 256) * 2 - 1, "eval mode"),
    "LaMa big-lama 512": ("lama", {}, lambda: torch.rand(1, 4, 512, 512), "FFTs not counted in FLOPs"),
    "GeneGAN 64 (swap, batch 1)": ("genegan", {}, None, "split x2 + join x2"),
    "StyleGAN2 1024 (synthesis)": ("stylegan2", {"size": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2},
                                   None, "one W+ latent"),
}


def timed(fn, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def conv_peak(repeats: int) -> tuple[float, str]:
    """Best GFLOP/s of dense 3x3 convolutions with shapes typical of these generators."""
    shapes = [(1, 256, 64, 64, 256), (1, 128, 128, 128, 128), (1, 512, 32, 32, 512), (1, 64, 256, 256, 64)]
    best, best_shape = 0.0, ""
    with torch.inference_mode():
        for n, cin, h, w, cout in shapes:
            x = torch.randn(n, cin, h, w)
            conv = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False).eval()
            flops = 2 * n * cout * h * w * cin * 9
            for fmt in (torch.contiguous_format, torch.channels_last):
                xf, cf = x.to(memory_format=fmt), conv.to(memory_format=fmt)
                seconds = statistics.median(timed(lambda: cf(xf), repeats))
                if flops / seconds / 1e9 > best:
                    best = flops / seconds / 1e9
                    best_shape = f"{cin}->{cout} 3x3 at {h}x{w}" + (" channels_last" if fmt == torch.channels_last else "")
    return best, best_shape


def build_case(name):
    arch, config, make_input, note = GENERATORS[name]
    model = registry.build(arch, **config).eval().requires_grad_(False)
    if arch == "genegan":
        images = torch.rand(2, 3, 64, 64) * 255

        def run(m=model):
            background_a, object_a = m.split(images[:1])
            background_b, object_b = m.split(images[1:])
            return m.join(background_b, object_a), m.join(background_a, torch.zeros_like(object_a))

        return model, run, note
    if arch == "stylegan2":
        w_plus = model.mapping(torch.randn(1, 512)).unsqueeze(1).repeat(1, model.n_latent, 1)
        return model, (lambda m=model: m.synthesis(w_plus)), note
    x = make_input()
    return model, (lambda m=model: m(x)), note


def generator_rows(repeats: int, peak: float, quick: bool) -> list[str]:
    rows = []
    for name in GENERATORS:
        if GENERATORS[name][0] not in registry.ARCHITECTURES:
            rows.append(f"| {name} | not built yet | | | | | |")
            continue
        model, run, note = build_case(name)
        reps = 1 if (quick or "StyleGAN2" in name) else repeats
        with torch.no_grad():
            base = statistics.median(timed(run, reps))
        with torch.inference_mode():
            flops = count_flops(run)
            infer = statistics.median(timed(run, reps))
            try:
                model.to(memory_format=torch.channels_last)
                channels_last = statistics.median(timed(run, reps))
                model.to(memory_format=torch.contiguous_format)
            except RuntimeError:  # 5-D weights (StyleGAN2's modulated convolutions) have no channels_last
                channels_last = None
            reference = run()
            try:
                bf16_error = _max_error(run, reference)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    bf16 = statistics.median(timed(run, reps))
            except (RuntimeError, TypeError) as e:  # an op without a bf16 CPU kernel
                bf16_error, bf16 = None, None
                note = f"{note}; bf16 failed: {type(e).__name__}"
        gflops = flops / infer / 1e9
        cl_cell = "n/a" if channels_last is None else f"{channels_last * 1000:.0f} ms"
        bf16_cell = "n/a" if bf16 is None else f"{bf16 * 1000:.0f} ms (max err {bf16_error:.3f})"
        rows.append(
            f"| {name} | {base * 1000:.0f} ms | {infer * 1000:.0f} ms | {cl_cell} | {bf16_cell} "
            f"| {flops / 1e9:.1f} GFLOP, {gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f}% of peak | {note} |"
        )
        print(rows[-1], flush=True)
    return rows


def _max_error(run, reference) -> float:
    """Largest absolute difference between the bfloat16-autocast output and the fp32 output."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = run()
    if isinstance(out, tuple):
        return max((o.float() - r).abs().max().item() for o, r in zip(out, reference))
    return (out.float() - reference).abs().max().item()


def load_rows(repeats: int) -> list[str]:
    """Cold load of every checkpoint present here, through the resolver, vs reading its bytes.

    Each run starts from an empty model cache (emptied outside the timing, so freeing the
    previous copy is not counted); the file is in the page cache for both columns.
    """
    from core import weights
    from core.cache import MODEL_CACHE

    rows = []
    for model_id, entry in sorted(weights.load_manifest().items()):
        if entry.arch in ("diffusers", "external") or not weights.availability(model_id)[0]:
            continue
        path = weights.resolve(model_id)
        weights.load_model(model_id, device="cpu")  # converts once if needed; warms the page cache
        read = statistics.median(timed(lambda: path.read_bytes(), max(repeats, 5)))
        loads = []
        for _ in range(max(repeats, 5)):
            MODEL_CACHE.clear()
            start = time.perf_counter()
            weights.load_model(model_id, device="cpu")
            loads.append(time.perf_counter() - start)
        load = statistics.median(loads)
        rows.append(f"| {model_id} | {path.stat().st_size / 2**20:.1f} MB | {read * 1000:.1f} ms | "
                    f"{load * 1000:.1f} ms ({load / read:.2f}x) |")
        print(rows[-1], flush=True)
    MODEL_CACHE.clear()
    return rows


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repeat each (a smoke run)")
    parser.add_argument("--output", default=str(Path(__file__).with_name("RESULTS.md")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats

    peak, peak_shape = conv_peak(repeats)
    print(f"conv peak {peak:.1f} GFLOP/s ({peak_shape})", flush=True)
    generator_table = generator_rows(repeats, peak, args.quick)
    load_table = load_rows(repeats)
    extra = []
    round_trip = Path(__file__).with_name("round_trip.py")
    if round_trip.is_file():
        import runpy

        extra = runpy.run_path(str(round_trip))["rows"](repeats)

    lines = [
        "# CPU benchmark results", "",
        f"Written by `python bench/run.py` on {time.strftime('%Y-%m-%d %H:%M')}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads, median of {repeats} runs.", "",
        f"Convolution peak measured in this run: **{peak:.1f} GFLOP/s** ({peak_shape}).", "",
        "## Generators at their standard sizes (random weights of the real size)", "",
        "| generator | no_grad | inference_mode | + channels_last | bfloat16 autocast | FLOPs and efficiency | note |",
        "|---|---|---|---|---|---|---|", *generator_table, "",
        "## Cold model load vs reading the file", "",
        "| model | file | read bytes | resolve + strict load |", "|---|---|---|---|", *load_table, "",
        *extra,
        f"Peak RSS of this benchmark process: {peak_rss_mb():.0f} MB.", "",
    ]
    Path(args.output).write_text("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
