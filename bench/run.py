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
from core.device import cpu_has_native_bfloat16, tune_allocator  # noqa: E402

# name -> (arch, config, input builder, note). Standard sizes of the published checkpoints.
GENERATORS = {
    "DCGAN 64 (batch 16)": ("dcgan", {}, lambda: torch.randn(16, 100, 1, 1), "z -> 16 faces"),
    "CycleGAN ResNet-9 256": ("cyclegan_resnet", {"ngf": 64, "n_blocks": 9}, lambda: torch.rand(1, 3, 256, 256) * 2 - 1, ""),
    "pix2pix U-Net 256": ("pix2pix_unet", {"ngf": 64, "num_downs": 8}, lambda: torch.rand(1, 3, 256, 256) * 2 - 1, "eval mode"),
    "LaMa big-lama 512": ("lama", {"ngf": 64}, lambda: torch.rand(1, 4, 512, 512), "FFTs not counted in FLOPs"),
    "GeneGAN 64 (swap, batch 1)": ("genegan", {}, None, "split x2 + join x2"),
    "StyleGAN2 1024 (synthesis)": ("stylegan2", {"size": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2},
                                   None, "one W+ latent"),
}


# (target, measurement, met): the targets, checked against this run's numbers
CHECKS: list[tuple[str, str, bool]] = []
EFFICIENCY_TARGET, LOAD_TARGET, ROUND_TRIP_TARGET = 50.0, 2.0, 1.15
# The round-trip cases this report runs (labels of bench/round_trip.py, which also has the season app's fast
# mode and a larger photo: run it alone for those).
ROUND_TRIP_CASES = ("inpaint", "sketch2photo", "season, vintage, full resolution, 451x300", "pulse", "glasses",
                    "latent", "text2image")


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


def conv_peak(repeats: int, bfloat16: bool = False) -> tuple[float, str]:
    """Best GFLOP/s of dense 3x3 convolutions with shapes typical of these generators."""
    shapes = [(1, 256, 64, 64, 256), (1, 128, 128, 128, 128), (1, 512, 32, 32, 512), (1, 64, 256, 256, 64)]
    best, best_shape = 0.0, ""
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
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


def repeats_for(run, repeats: int) -> int:
    """More repeats for fast models (at least ~1 s of timing), so their medians are stable; at most 3
    for models slower than 1 s a run (LaMa takes 8 s: with 5 it alone took 4 of the run's 11 minutes)."""
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    if seconds > 1.0:
        return min(repeats, 3)
    return max(repeats, min(50, int(1.0 / max(seconds, 1e-3))))


def default_allocator_latencies(repeats: int, quick: bool) -> dict[str, float]:
    """inference_mode latency of every generator under glibc's default malloc (run before tuning)."""
    out = {}
    for name in GENERATORS:
        model, run, _ = build_case(name)
        with torch.inference_mode():
            reps = 1 if (quick or "StyleGAN2" in name) else repeats_for(run, repeats)
            out[name] = statistics.median(timed(run, reps))
        del model, run
    return out


def adopted_channels_last(name: str) -> bool:
    """Whether the apps run this generator channels_last on CPU (a manifest entry of the same
    architecture and config has ``cpu_channels_last``)."""
    from core.weights import load_manifest

    arch, config = GENERATORS[name][:2]
    return any(e.arch == arch and e.config == config and e.info.get("cpu_channels_last")
               for e in load_manifest().values())


def generator_rows(repeats: int, peak: float, bf16_peak: float | None, quick: bool,
                   default_malloc: dict[str, float]) -> list[str]:
    """One row per generator; bfloat16 is timed only when ``bf16_peak`` is given (a CPU with native bf16)."""
    rows = []
    for name in GENERATORS:
        model, run, note = build_case(name)
        adopted = adopted_channels_last(name)
        with torch.no_grad():
            reps = 1 if (quick or "StyleGAN2" in name) else repeats_for(run, repeats)
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
            if adopted:  # bfloat16 is then timed in the layout the apps use
                model.to(memory_format=torch.channels_last)
            bf16_error, bf16 = None, None
            try:
                if bf16_peak is not None:
                    bf16_error = _max_error(run, reference)
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        bf16 = statistics.median(timed(run, reps))
            except (RuntimeError, TypeError) as e:  # an op without a bf16 CPU kernel
                bf16_error, bf16 = None, None
                note = f"{note}; bf16 failed: {type(e).__name__}"
        used = channels_last if adopted else infer  # the fp32 configuration the apps run
        gflops = flops / used / 1e9
        if adopted:
            note = f"{note}; the apps run it channels_last" if note else "the apps run it channels_last"
        CHECKS.append((f"convolutional generators at >= {EFFICIENCY_TARGET:.0f}% of the fp32 convolution peak",
                       f"{name}: {100 * gflops / peak:.0f}%", 100 * gflops / peak >= EFFICIENCY_TARGET))
        cl_cell = "n/a" if channels_last is None else f"{channels_last * 1000:.0f} ms"
        bf16_cell = ("skipped (emulated here)" if bf16_peak is None else "n/a") if bf16 is None else (
            f"{bf16 * 1000:.0f} ms, {flops / bf16 / 1e9:.0f} GFLOP/s = {100 * flops / bf16 / 1e9 / bf16_peak:.0f}% "
            f"of bf16 peak (max err {bf16_error:.3f})")
        rows.append(
            f"| {name} | {default_malloc[name] * 1000:.0f} ms | {base * 1000:.0f} ms | {infer * 1000:.0f} ms "
            f"| {cl_cell} | {bf16_cell} "
            f"| {flops / 1e9:.1f} GFLOP, {gflops:.1f} GFLOP/s = **{100 * gflops / peak:.0f}%** of peak | {note} |"
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


def bf16_quality_rows(repeats: int) -> list[str]:
    """bfloat16 autocast against fp32 on the trained weights available here, on real inputs."""
    import numpy as np
    from PIL import Image

    from core import weights
    from core.images import to_tensor
    from core.pipelines.translate import native_size
    from core.pipelines.sketch import prepare_sketch

    apps = Path(__file__).resolve().parents[1] / "apps"

    def photo(path, size):
        image = Image.open(path).convert("RGB")
        scale = size / min(image.size)
        return to_tensor(image.resize((round(image.width * scale / 4) * 4, round(image.height * scale / 4) * 4),
                                      Image.BICUBIC))

    def genegan_case(model):
        a = torch.from_numpy(np.array(Image.open(apps / "glasses/examples/a_glasses.png").convert("RGB")))
        b = torch.from_numpy(np.array(Image.open(apps / "glasses/examples/b_face64.png").convert("RGB")))
        images = torch.stack([a, b]).permute(0, 3, 1, 2).float()

        def run():
            background_a, object_a = model.split(images[:1])
            background_b, _ = model.split(images[1:])
            return torch.cat([model.join(background_b, object_a), model.join(background_a, torch.zeros_like(object_a))])

        return run, lambda y: y.clamp(0, 255)

    to_levels = lambda y: (y.clamp(-1, 1) + 1) * 127.5  # noqa: E731
    cases = {
        "cyclegan.vintage": ("chelsea.jpg at the native size",
                             lambda m: (lambda x=photo(apps / "season/examples/chelsea.jpg", native_size("cyclegan.vintage")): m(x)),
                             to_levels),
        "pix2pix.edges2faces64": ("a face sketch, eval mode",
                                  lambda m: (lambda x=to_tensor(prepare_sketch(Image.open(
                                      apps / "sketch2photo/examples/face_sketch_1.png"), 64)): m(x)), to_levels),
        "dcgan.faces64": ("16 seeded samples",
                          lambda m: (lambda z=torch.randn(16, 100, 1, 1, generator=torch.Generator().manual_seed(0)): m(z)),
                          to_levels),
        "genegan.eyeglasses64": ("swap + removal of the two example faces", None, None),
    }
    rows = []
    for model_id, (what, make, levels) in cases.items():
        if not weights.availability(model_id)[0]:
            rows.append(f"| {model_id}: {what} | weights absent | | | | | |")
            continue
        model = weights.load_model(model_id, device="cpu")
        run, levels = genegan_case(model) if make is None else (make(model), levels)
        with torch.inference_mode():
            reference = levels(run().float())
            fp32 = statistics.median(timed(run, repeats))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                diff = (levels(run().float()) - reference).abs()
                bf16 = statistics.median(timed(run, repeats))
        rows.append(f"| {model_id}: {what} | {fp32 * 1000:.1f} ms | {bf16 * 1000:.1f} ms | {fp32 / bf16:.2f}x "
                    f"| {diff.max().item():.1f} | {diff.mean().item():.2f} | {100 * (diff > 2).float().mean().item():.2f}% |")
        print(rows[-1], flush=True)
    return rows


def load_rows(repeats: int) -> list[str]:
    """Cold load of every checkpoint present here, through the resolver, vs reading its bytes.

    Each run starts from an empty model cache (emptied outside the timing, so freeing the
    previous copy is not counted); the file is in the page cache for both columns.
    """
    from core import weights
    from core.cache import MODEL_CACHE

    rows = []
    for model_id, entry in sorted(weights.load_manifest().items()):
        if entry.arch in weights.SNAPSHOT_ARCHS or not weights.availability(model_id)[0]:
            continue
        path = weights.resolve(model_id)
        weights.load_model(model_id, device="cpu")  # converts once if needed; warms the page cache
        read = statistics.median(timed(lambda: path.read_bytes(), max(repeats, 15)))
        loads = []
        for _ in range(max(repeats, 15)):
            MODEL_CACHE.clear()
            start = time.perf_counter()
            weights.load_model(model_id, device="cpu")
            loads.append(time.perf_counter() - start)
        load = statistics.median(loads)
        CHECKS.append((f"cold load at most {LOAD_TARGET:.0f}x the raw read",
                       f"{model_id} ({path.stat().st_size / 2**20:.1f} MB): {load / read:.2f}x", load / read <= LOAD_TARGET))
        rows.append(f"| {model_id} | {path.stat().st_size / 2**20:.1f} MB | {read * 1000:.1f} ms | "
                    f"{load * 1000:.1f} ms ({load / read:.2f}x, +{(load - read) * 1000:.1f} ms) |")
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
    parser.add_argument("--bfloat16", action="store_true",
                        help="time bfloat16 even where the CPU only emulates it (very slow: AVX2 CPUs take >25 min)")
    args = parser.parse_args()
    native_bf16 = cpu_has_native_bfloat16() or args.bfloat16
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    started = section_started = time.perf_counter()
    sections: dict[str, float] = {}

    def section_done(name: str) -> None:  # wall time per part, printed and written: the run should stay ~10 min
        nonlocal section_started
        sections[name], section_started = time.perf_counter() - section_started, time.perf_counter()
        print(f"[{name}: {sections[name]:.0f} s]", flush=True)

    default_peak, _ = conv_peak(repeats)
    default_malloc = default_allocator_latencies(repeats, args.quick)
    tuned = tune_allocator()  # what the apps and the hub do at start (core.device.tune_allocator)
    peak, peak_shape = conv_peak(repeats)
    bf16_peak, bf16_shape = conv_peak(repeats, bfloat16=True) if native_bf16 else (None, "")
    print(f"conv peak {peak:.1f} GFLOP/s ({peak_shape}), default malloc {default_peak:.1f}; "
          + (f"bf16 {bf16_peak:.1f} ({bf16_shape})" if native_bf16 else "bf16 skipped: not native here"), flush=True)
    section_done("convolution peaks and allocator")
    generator_table = generator_rows(repeats, peak, bf16_peak, args.quick, default_malloc)
    section_done("generators")
    quality_table = bf16_quality_rows(repeats) if native_bf16 else [
        "| skipped: this CPU has no native bfloat16 (AVX512-BF16 or AMX), so the apps keep fp32 here "
        "(`python bench/run.py --bfloat16` times the emulation anyway) | | | | | | |"]
    bf16_summary = (f"{bf16_peak:.1f} GFLOP/s under bfloat16 autocast ({bf16_shape})" if native_bf16 else
                    "bfloat16 **skipped**: this CPU has no native bfloat16 (AVX512-BF16 or AMX) and the apps keep fp32 "
                    "on it (`core.device.cpu_has_native_bfloat16`)")
    section_done("bfloat16 quality")
    load_table = load_rows(repeats)
    section_done("model loads")
    extra = []
    round_trip = Path(__file__).with_name("round_trip.py")
    if round_trip.is_file():
        import runpy

        trips = []
        # one case per app's main endpoint, 5 pairs of seconds-long calls (single 5 s PULSE calls vary by
        # +-12 % here); the keep-alive column is the server's own round trip, the check's measure, and
        # gradio_client's default set-up what a script gets (round_trip.py alone adds one TLS context)
        extra = runpy.run_path(str(round_trip))["rows"](repeats, trips, only=ROUND_TRIP_CASES,
                                                       clients=("gradio_client", "keep-alive HTTP"))
        for trip in trips:
            direct, http, api = trip["direct"], trip["keep-alive HTTP"], trip["gradio_client"]
            if direct >= 0.5:  # the server's round trip: on one keep-alive connection, as the app's page calls it
                CHECKS.append((f"round trip at most {ROUND_TRIP_TARGET}x the direct call (calls of 0.5 s or more)",
                               f"{trip['label']}: {http / direct:.2f}x on one keep-alive connection ({http - direct:.2f} s "
                               f"over {direct:.2f} s); gradio_client {api / direct:.2f}x with its default set-up",
                               http / direct <= ROUND_TRIP_TARGET))
        section_done("round trips")
    total = time.perf_counter() - started

    lines = [
        "# CPU benchmark results", "",
        f"Written by `python bench/run.py` on {time.strftime('%Y-%m-%d %H:%M')}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads, median of {repeats} runs. "
        f"The run took {total:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in sections.items()) + ").", "",
        f"Convolution peak measured in this run: **{peak:.1f} GFLOP/s** fp32 ({peak_shape}); "
        f"{bf16_summary}; {default_peak:.1f} GFLOP/s fp32 "
        "with glibc's default malloc.", "",
        "## Against the targets", "",
        *[f"- {'met' if met else '**NOT met**'}: {target}: {measured}" for target, measured, met in CHECKS], "",
        "## Generators at their standard sizes (random weights of the real size)", "",
        "First column: glibc's default malloc, measured before the allocator tuning that the apps and the hub "
        f"apply at start (`core.device.tune_allocator`, {'applied' if tuned else 'NOT applied here'}); every "
        "other column runs with it. Efficiency: the fp32 latency of the configuration the apps use (inference_mode, "
        "channels_last where the manifest says `cpu_channels_last`) against the fp32 peak.", "",
        "| generator | default malloc | no_grad | inference_mode | + channels_last | bfloat16 autocast "
        "| FLOPs and efficiency | note |",
        "|---|---|---|---|---|---|---|---|", *generator_table, "",
        "## bfloat16 autocast on trained weights and real inputs", "",
        "Output difference against fp32 in 8-bit levels (outputs mapped to 0..255), and the speed-up.", "",
        "| model and input | fp32 | bfloat16 | speed-up | max diff | mean diff | pixels off by > 2 levels |",
        "|---|---|---|---|---|---|---|", *quality_table, "",
        "## Cold model load vs reading the file", "",
        "| model | file | read bytes | resolve + strict load |", "|---|---|---|---|", *load_table, "",
        *extra,
        f"Peak RSS of this benchmark process: {peak_rss_mb():.0f} MB.", "",
    ]
    Path(args.output).write_text("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
