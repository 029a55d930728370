"""Issue 20: where the SD-Turbo UNet and the 256 px pix2pix U-Net lose the CPU's peak, and the levers.

    python bench/t2i_cpu.py [--threads 2] [--case unet|compile|openvino|openvino_ir|openvino_ab|pix2pix] > out.jsonl

Random weights of the real size (the cost is the same as with the trained ones). Each case runs in
its own process and prints JSON lines; the parent runs them in order. Every case measures the
same-run convolution peak (``bench.run.conv_peak``) so its percentages do not depend on the load of
the moment. PSNR is of the decoded image (TAESD decode of the one-step x0) against eager fp32, so
it is the image-level error the issue bounds (>= 50 dB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import conv_peak, count_flops  # noqa: E402
from bench.text_to_image import TURBO_UNET, build_taesd  # noqa: E402
from core.device import tune_allocator  # noqa: E402

SIGMA_MAX = 14.6146  # Euler sigma at t=999 of the scaled-linear schedule (SD-Turbo's single step)


def emit(**row) -> None:
    print(json.dumps(row), flush=True)


def best_of(fn, repeats: int = int(os.environ.get("T2I_REPEATS", "2")), warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def turbo_inputs():
    g = torch.Generator().manual_seed(0)
    side = int(os.environ.get("T2I_LATENT", "64"))  # 64: 512x512 images; smaller sides for quick proxies
    sample = torch.randn(1, 4, side, side, generator=g) * SIGMA_MAX
    context = torch.randn(1, 77, 1024, generator=g)
    return sample / (SIGMA_MAX**2 + 1) ** 0.5, torch.tensor([999]), context, sample


def build_unet():
    import diffusers

    torch.manual_seed(0)
    return diffusers.UNet2DConditionModel(**TURBO_UNET).eval().requires_grad_(False)


class ImageCheck:
    """TAESD image of the one-step x0 from a UNet output; PSNR against the eager fp32 reference."""

    def __init__(self, sample):
        self.sample, self.taesd, self.reference = sample, build_taesd(torch.float32), None

    def image(self, eps):
        with torch.inference_mode():
            return self.taesd.decode(self.sample - SIGMA_MAX * eps.float(), return_dict=False)[0].clamp(-1, 1)

    def psnr(self, eps) -> float:
        img = self.image(eps)
        if self.reference is None:
            self.reference = img
        mse = torch.mean((img - self.reference) ** 2).item()
        return round(10 * torch.log10(torch.tensor(4.0 / max(mse, 1e-20))).item(), 1)


def profile_shares(fn) -> dict:
    """Self CPU time per op family over one evaluation (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    families = {"convolution": ("conv",), "attention (sdpa)": ("scaled_dot_product", "_flash_attention", "bmm",
                                                              "baddbmm", "softmax"),
                "linear (matmul)": ("addmm", "mm", "linear", "matmul"),
                "group/layer norm": ("group_norm", "layer_norm", "native_group_norm", "native_layer_norm"),
                "SiLU/GELU/add/mul": ("silu", "gelu", "add", "mul", "div", "cat"),
                "layout copies": ("copy_", "contiguous", "clone", "to_dense", "reorder", "permute")}
    totals, total = {k: 0.0 for k in families}, 0.0
    for ev in prof.key_averages():
        total += ev.self_cpu_time_total
        name = ev.key.lower()
        for fam, keys in families.items():
            if any(k in name for k in keys):
                totals[fam] += ev.self_cpu_time_total
                break
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
    return {"total_ms": round(total / 1e3), "share_%": {k: round(100 * v / total, 1) for k, v in totals.items()},
            "top_ops_ms": {e.key: round(e.self_cpu_time_total / 1e3) for e in top}}


def family_rates(fn, attention_flops: float, peak: float) -> dict:
    """GFLOP/s of the convolutions, the linear layers and attention in one evaluation: FLOPs from
    FlopCounterMode (it has no formula for the CPU flash-attention kernel, so attention's FLOPs are
    the math backend's, passed in), time from the profiler's self CPU time per op family."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    families = {"convolution": ("convolution",), "linear": ("addmm", "mm", "bmm"), "attention": ("scaled_dot_product",)}

    def family(op: str) -> str:
        return next((k for k, keys in families.items() if any(key in op.lower() for key in keys)), "other")

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    flops = {k: 0.0 for k in (*families, "other")}
    for op, n in counter.get_flop_counts()["Global"].items():
        flops[family(str(op))] += n
    flops["attention"] += attention_flops
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    seconds = {k: 0.0 for k in flops}
    for ev in prof.key_averages():
        seconds[family(ev.key)] += ev.self_cpu_time_total / 1e6
    total = sum(seconds.values())
    return {k: {"gflop": round(flops[k] / 1e9, 1), "share_%": round(100 * seconds[k] / total, 1),
                "pct_peak": round(100 * flops[k] / 1e9 / seconds[k] / peak, 1) if flops[k] else None}
            for k in flops}


def case_unet() -> None:
    """Eager levers side by side: layout, SDPA backend; profile; FLOPs; peak."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    peak, shape = conv_peak(3)
    emit(case="peak", gflops=round(peak, 1), shape=shape)
    unet = build_unet()
    x, t, ctx, sample = turbo_inputs()
    check = ImageCheck(sample)
    with torch.inference_mode():
        flops = count_flops(lambda: unet(x, t, encoder_hidden_states=ctx).sample)
        with sdpa_kernel([SDPBackend.MATH]):  # the math backend's bmms count attention's FLOPs
            all_flops = count_flops(lambda: unet(x, t, encoder_hidden_states=ctx).sample)
        emit(case="flops", unet_gflop=round(flops / 1e9, 1), attention_gflop=round((all_flops - flops) / 1e9, 1))
        ref = unet(x, t, encoder_hidden_states=ctx).sample
        emit(case="families", **family_rates(lambda: unet(x, t, encoder_hidden_states=ctx), all_flops - flops, peak))
        emit(case="profile_nchw", **profile_shares(lambda: unet(x, t, encoder_hidden_states=ctx)))
        levers = [("eager fp32 (default SDPA)", torch.contiguous_format, None),
                  ("eager, SDPA math", torch.contiguous_format, SDPBackend.MATH),
                  ("eager, SDPA flash (CPU kernel)", torch.contiguous_format, SDPBackend.FLASH_ATTENTION),
                  ("channels_last", torch.channels_last, None),
                  ("channels_last, SDPA flash", torch.channels_last, SDPBackend.FLASH_ATTENTION)]
        check.psnr(ref)
        for name, fmt, backend in levers:
            unet.to(memory_format=fmt)
            xf = x.to(memory_format=fmt)
            ctx_mgr = sdpa_kernel([backend]) if backend is not None else None

            def run():
                if ctx_mgr is None:
                    return unet(xf, t, encoder_hidden_states=ctx).sample
                with sdpa_kernel([backend]):
                    return unet(xf, t, encoder_hidden_states=ctx).sample

            seconds = best_of(run)
            emit(case="lever", lever=name, seconds=round(seconds, 2), pct_peak=round(100 * flops / seconds / 1e9 / peak, 1),
                 pct_peak_with_attention=round(100 * all_flops / seconds / 1e9 / peak, 1), psnr_db=check.psnr(run()))
        emit(case="profile_channels_last", **profile_shares(lambda: unet(x.to(memory_format=torch.channels_last), t,
                                                                         encoder_hidden_states=ctx)))
    emit(case="peak_end", gflops=round(conv_peak(3)[0], 1))


def eager_reference():
    """The same run's conv peak, the real-size UNet and its inputs, its FLOPs, the PSNR check seeded with
    eager fp32, and one eager timing: what every backend case compares itself with."""
    peak, _ = conv_peak(3)
    unet = build_unet()
    x, t, ctx, sample = turbo_inputs()
    check = ImageCheck(sample)
    with torch.inference_mode():
        flops = count_flops(lambda: unet(x, t, encoder_hidden_states=ctx).sample)
        check.psnr(unet(x, t, encoder_hidden_states=ctx).sample)
        eager = best_of(lambda: unet(x, t, encoder_hidden_states=ctx).sample, repeats=1)
    return peak, unet, (x, t, ctx), check, flops, eager


def case_compile() -> None:
    """torch.compile (inductor) variants, compile time included; run twice with one cache dir to see caching."""
    import torch._inductor.config as inductor_config

    mode = os.environ["T2I_COMPILE_MODE"]
    peak, unet, (x, t, ctx), check, flops, eager = eager_reference()
    with torch.inference_mode():
        if "cl" in mode:
            unet.to(memory_format=torch.channels_last)
            x = x.to(memory_format=torch.channels_last)
        inductor_config.freezing = "freeze" in mode
        compiled = torch.compile(unet)
        start = time.perf_counter()
        compiled(x, t, encoder_hidden_states=ctx)
        compile_s = time.perf_counter() - start
        seconds = best_of(lambda: compiled(x, t, encoder_hidden_states=ctx).sample, warmup=0)
        emit(case="compile", mode=mode, cache_dir=os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
             first_call_s=round(compile_s, 1), seconds=round(seconds, 2), eager_same_process_s=round(eager, 2),
             pct_peak=round(100 * flops / seconds / 1e9 / peak, 1), peak_gflops=round(peak, 1),
             psnr_db=check.psnr(compiled(x, t, encoder_hidden_states=ctx).sample))


def case_openvino() -> None:
    """OpenVINO CPU plugin on the in-memory torch UNet (converted at load, no file written)."""
    try:
        import openvino as ov
    except ImportError:
        raise SystemExit("The openvino case needs OpenVINO (requirements.txt, Linux/Windows x86_64)") from None

    peak, unet, (x, t, ctx), check, flops, eager = eager_reference()
    start = time.perf_counter()
    model = ov.convert_model(_Eps(unet), example_input=(x, t, ctx))
    convert_s = time.perf_counter() - start
    del unet
    core = ov.Core()
    for hint in ("f32",):
        start = time.perf_counter()
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint,
                                                     "INFERENCE_NUM_THREADS": torch.get_num_threads()})
        compile_s = time.perf_counter() - start
        request = compiled.create_infer_request()

        def run():
            return torch.from_numpy(request.infer([x.numpy(), t.numpy(), ctx.numpy()])[0].copy())

        seconds = best_of(run)
        emit(case="openvino", precision=hint, convert_s=round(convert_s, 1), compile_s=round(compile_s, 1),
             seconds=round(seconds, 2), eager_same_process_s=round(eager, 2),
             pct_peak=round(100 * flops / seconds / 1e9 / peak, 1), psnr_db=check.psnr(run()), version=ov.__version__)


def case_openvino_ir() -> None:
    """The app's OpenVINO UNet (its cached dynamic-shape IR) against eager torch on the same snapshot
    weights, alternating eager / OpenVINO twice per latent side (``T2I_SIDES``, default 64,32), so
    the load's drift shows in the repeats. ``T2I_SNAPSHOT``: the snapshot folder (bench/t2i_load.py's);
    its IR must be cached under ``GANHUB_CACHE`` (bench/t2i_load.py converts it)."""
    from diffusers import UNet2DConditionModel

    from core.pipelines import text_to_image_openvino as ov_unet

    folder = Path(os.environ["T2I_SNAPSHOT"]) / "unet"
    compiled = ov_unet.compile_cached(folder)
    if compiled is None:
        raise SystemExit(f"No cached IR for {folder}: run bench/t2i_load.py first.")
    unet = UNet2DConditionModel.from_pretrained(folder, use_safetensors=True).eval().requires_grad_(False)
    for side in (int(v) for v in os.environ.get("T2I_SIDES", "64,32").split(",")):
        g = torch.Generator().manual_seed(side)
        x, t, ctx = torch.randn(1, 4, side, side, generator=g), torch.tensor(999), torch.randn(1, 77, 1024, generator=g)
        compiled(x, t, encoder_hidden_states=ctx)  # first call at this shape (set-up)
        with torch.inference_mode():
            unet(x, t, encoder_hidden_states=ctx)
            for round_ in range(2):
                for name, fn in (("eager", unet), ("openvino", compiled)):
                    start = time.perf_counter()
                    fn(x, t, encoder_hidden_states=ctx)
                    emit(case="openvino_ir", latent=side, round=round_, engine=name,
                         seconds=round(time.perf_counter() - start, 2), load_avg=round(os.getloadavg()[0], 1))


class _Eps(torch.nn.Module):
    """The UNet as a plain tensor function (what exporters want)."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, t, ctx):
        return self.unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0]


def stream_bandwidth(n_bytes: int = 1 << 30) -> dict:
    """Copy and triad bandwidth (GB/s) of large fp32 tensors (best of 5)."""
    n = n_bytes // 4
    a, b, c = torch.empty(n), torch.rand(n), torch.rand(n)
    copy = best_of(lambda: a.copy_(b), repeats=5)
    triad = best_of(lambda: torch.add(b, c, alpha=3.0, out=a), repeats=5)
    return {"copy_GBps": round(2 * n * 4 / copy / 1e9, 1), "triad_GBps": round(3 * n * 4 / triad / 1e9, 1)}


def case_openvino_ab() -> None:
    """OpenVINO against eager torch on the same inputs, alternating (eager, OpenVINO, eager, ...) three
    times at 512 and 256 px, best of each: load drift hits both sides alike."""
    import openvino as ov

    peak, unet, (x, t, ctx), check, flops, _ = eager_reference()
    start = time.perf_counter()
    model = ov.convert_model(_Eps(unet), example_input=(x, t, ctx))
    emit(case="openvino_ab_convert", seconds=round(time.perf_counter() - start, 1))
    for side in (64, 32):
        xs = x if side == x.shape[-1] else torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(1))
        model.reshape({0: [1, 4, side, side], 1: [1], 2: [1, 77, 1024]})
        request = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                         "INFERENCE_NUM_THREADS": torch.get_num_threads()}
                                          ).create_infer_request()
        runs = {"eager": lambda: unet(xs, t, encoder_hidden_states=ctx).sample,
                "openvino": lambda: torch.from_numpy(request.infer([xs.numpy(), t.numpy(), ctx.numpy()])[0].copy())}
        times = {k: [] for k in runs}
        with torch.inference_mode():
            err = (runs["openvino"]() - runs["eager"]()).abs().max().item()
            for _ in range(3):
                for name, fn in runs.items():
                    begin = time.perf_counter()
                    fn()
                    times[name].append(round(time.perf_counter() - begin, 2))
        emit(case="openvino_ab", latent_side=side, seconds=times, speedup=round(min(times["eager"]) / min(times["openvino"]), 2),
             openvino_pct_peak=round(100 * flops / min(times["openvino"]) / 1e9 / peak, 1) if side == x.shape[-1] else None,
             eps_max_abs_err=err)
    emit(case="peak_end", gflops=round(conv_peak(3)[0], 1))


def case_pix2pix() -> None:
    """pix2pix U-Net 256 at batch 1: roofline limit (per layer: max(FLOPs/peak, bytes/bandwidth)) and levers."""
    import torch._inductor.config as inductor_config

    import core.models as registry

    peak, _ = conv_peak(3)
    bw = stream_bandwidth()
    emit(case="bandwidth", peak_gflops=round(peak, 1), **bw)
    model = registry.build("pix2pix_unet", ngf=64, num_downs=8).eval().requires_grad_(False)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    layers = []  # (flops, weight bytes, activation bytes in+out) per conv
    hooks = [m.register_forward_hook(lambda m, i, o: layers.append(
        (2 * m.weight.numel() * (o if isinstance(m, torch.nn.Conv2d) else i[0]).shape[-2:].numel(),
         m.weight.numel() * 4, (i[0].numel() + o.numel()) * 4)))
        for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.inference_mode():
        model(x)
        for h in hooks:
            h.remove()
        flops = count_flops(lambda: model(x))
        triad = bw["triad_GBps"] * 1e9
        limit = sum(max(f / (peak * 1e9), (wb + ab) / triad) for f, wb, ab in layers)
        emit(case="pix2pix_limits", gflop=round(flops / 1e9,2), weight_MB=round(weight_bytes / 1e6, 1),
             compute_limit_ms=round(1e3 * flops / peak / 1e9, 1), weight_limit_ms=round(1e3 * weight_bytes / triad, 1),
             roofline_limit_ms=round(1e3 * limit, 1))
        ref = model(x)
        variants = [("eager NCHW", torch.contiguous_format, None), ("eager channels_last", torch.channels_last, None),
                    ("compile", torch.contiguous_format, False), ("compile + freezing", torch.contiguous_format, True),
                    ("compile + freezing, channels_last", torch.channels_last, True)]
        for name, fmt, freeze in variants:
            m = model.to(memory_format=fmt)
            xf = x.to(memory_format=fmt)
            if freeze is not None:
                torch._dynamo.reset()
                inductor_config.freezing = freeze
                m = torch.compile(m)
                start = time.perf_counter()
                m(xf)
                first = time.perf_counter() - start
            seconds = best_of(lambda: m(xf), repeats=20, warmup=2)
            err = (m(xf).float() - ref).abs().max().item()
            emit(case="pix2pix", variant=name, ms=round(1e3 * seconds, 1), pct_of_roofline=round(100 * limit / seconds, 1),
                 pct_peak=round(100 * flops / seconds / 1e9 / peak, 1), max_abs_err=round(err, 6),
                 first_call_s=round(first, 1) if freeze is not None else None)


CASES = {"unet": case_unet, "compile": case_compile, "openvino": case_openvino, "openvino_ir": case_openvino_ir,
         "openvino_ab": case_openvino_ab, "pix2pix": case_pix2pix}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--only", help="comma-separated cases for the parent to run (default: all)")
    args = parser.parse_args()
    if args.case:
        torch.set_num_threads(args.threads)
        tune_allocator()
        CASES[args.case]()
        return
    emit(case="machine", threads=args.threads, latent_side=int(os.environ.get("T2I_LATENT", "64")),
         torch=torch.__version__, load_avg_at_start=os.getloadavg())
    cache = Path("/tmp/t2i_inductor_cache")
    shutil.rmtree(cache, ignore_errors=True)  # the first compile of each mode starts cold
    runs = [("unet", {}), ("openvino", {}), ("pix2pix", {})]
    runs += [("compile", {"T2I_COMPILE_MODE": m, "TORCHINDUCTOR_CACHE_DIR": str(cache / m)})
             for m in ("cl+freeze", "cl+freeze", "cl")]
    for name, env in (r for r in runs if not args.only or r[0] in args.only.split(",")):
        proc = subprocess.run([sys.executable, __file__, "--case", name, "--threads", str(args.threads)],
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "GANHUB_DEVICE": "cpu", **env})
        if proc.returncode:
            emit(case=name, error=proc.stderr[-1500:])
    emit(case="machine", load_avg_at_end=os.getloadavg())


if __name__ == "__main__":
    main()
