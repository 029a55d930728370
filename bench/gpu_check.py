"""GPU check: every generator on the GPU in fp32, fp16 and bf16 against the CPU fp32 output.

    python bench/gpu_check.py [--write]             # on a CUDA machine (< 5 min); --write: bench/GPU.md
    python bench/gpu_check.py --device cpu --tiny   # the same checks on tiny models, in seconds
    python bench/gpu_check.py --device cpu --only trained   # CPU emulation of fp16/bf16 on trained weights

1. Every generator architecture of the manifest at its standard size with random weights of the
   real size, and every model whose trained weights are here. Each runs on the device in fp32,
   fp16 and bf16 (weights and inputs cast, as ``core.weights.load_model`` does for ``cuda_dtype``),
   on the same input as its CPU fp32 reference: max and mean error in 8-bit levels of the output,
   p50 latency, peak VRAM (torch's allocator) and the process's peak RSS, each counted on its own.
   A suggested ``cuda_dtype`` is printed next to the manifest's.
2. LaMa at a size that is not a power of two, padded as ``core.pipelines.inpaint`` pads it.
3. 20 steps of PULSE (``core.pipelines.pulse``) on DCGAN and StyleGAN2 (fp32: it needs gradients).
4. One step of a real-size text-to-image UNet (SD-Turbo's config, random weights) in fp16.
5. A forced out-of-memory error through ``core.ui.user_errors``: the message a user gets.

The output is markdown on stdout; ``--write`` also writes it to ``bench/GPU.md``, on CUDA only.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gpu_cases import NOT_GENERATORS, TINY, Case, cases, chw, describe_size, make_case_inputs, photo  # noqa: E402
from core.weights import availability, get_entry, load_manifest  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# A reduced dtype is suggested when its output stays this close to CPU fp32 (8-bit levels).
MAX_LEVELS, MEAN_LEVELS = 4.0, 0.5
SEARCHED_WITH_GRADIENTS = ("dcgan", "stylegan2")  # PULSE: always fp32


# --------------------------------------------------------------------------- measuring


class Probe:
    """Peak VRAM (torch's CUDA allocator) and peak resident memory (RSS) of the process during a block.

    The RSS peak is Linux's high-water mark ``VmHWM``, reset on entry through ``/proc/self/clear_refs``;
    where that is not possible it is the process's peak so far (``ru_maxrss``)."""

    def __init__(self, device: torch.device):
        self.device, self.vram_mib, self.rss_mib = device, 0.0, 0.0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.vram_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        try:
            status = Path("/proc/self/status").read_text()
            self.rss_mib = int(status.split("VmHWM:")[1].split()[0]) / 1024
        except (OSError, IndexError, ValueError):
            import resource

            self.rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)


def p50_ms(fn, device: torch.device, repeats: int) -> tuple[float, object]:
    """Median milliseconds of ``repeats`` calls of ``fn`` and its last result. On a GPU a first call
    warms kernels, the allocator and cuDNN up; on the CPU (emulation and tests) every call counts."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type != "cpu":
        fn()
        sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, result


def suggested_dtype(case: Case, results: dict[str, tuple]) -> str:
    if case.arch in SEARCHED_WITH_GRADIENTS:
        return "float32 (gradients)"
    for name, dtype in (("fp16", "float16"), ("bf16", "bfloat16")):
        max_err, mean_err = results.get(name, (math.inf, math.inf))[:2]
        if max_err <= MAX_LEVELS and mean_err <= MEAN_LEVELS:
            return dtype
    return "float32"


def _rounded(value, dtype: torch.dtype):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(dtype).float()
    if isinstance(value, (tuple, list)):
        return type(value)(_rounded(v, dtype) for v in value)
    return value


def rounding_emulation(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A float32 copy of ``model`` whose weights, and every layer's inputs and outputs, are rounded to
    ``dtype``: a GPU's reduced-precision storage with fp32 accumulation, at fp32 speed on a CPU
    (the CPU's own fp16 kernels are unusable at these sizes: over a minute for one 256-channel 3x3
    convolution at 64x64, 0.14 s in fp32)."""
    model = copy.deepcopy(model).float()
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype).float())
    for module in model.modules():
        if not any(True for _ in module.children()):
            module.register_forward_pre_hook(lambda m, args: _rounded(args, dtype))
            module.register_forward_hook(lambda m, args, output: _rounded(output, dtype))
    return model


GENERATOR_HEADER = ["| model | weights | dtype | max err (levels) | mean err (levels) | p50 ms | peak VRAM MiB | "
                    "peak RSS MiB | manifest cuda_dtype | suggested |", "|---|---|---|---|---|---|---|---|---|---|"]


def check_generators(device: torch.device, tiny: bool, only: str | None, repeats: int) -> list[str]:
    rows = list(GENERATOR_HEADER)
    for case in cases(tiny):
        if not only or only in case.name or only == case.weights:
            rows += check_case(case, device, repeats, emulate=device.type == "cpu" and not tiny)
    return rows


def check_case(case: Case, device: torch.device, repeats: int, emulate: bool = False) -> list[str]:
    """The table rows of one generator case: each dtype on ``device`` against CPU fp32. ``emulate``:
    fp16 and bf16 by :func:`rounding_emulation` (tiny CPU runs use the real dtypes, which also
    checks that every forward accepts them)."""
    reference_model = case.build()
    inputs, forward = make_case_inputs(case.arch, case.config, case.size)
    with torch.inference_mode():
        reference = forward(reference_model, *inputs)
    results = {}
    for name, dtype in DTYPES.items():
        try:
            with Probe(device) as probe, torch.inference_mode():
                if emulate and dtype != torch.float32:
                    model = rounding_emulation(reference_model, dtype)
                else:
                    model = copy.deepcopy(reference_model).to(device=device, dtype=dtype)
                reps = 3 if case.arch == "stylegan2" and device.type != "cpu" else repeats
                ms, output = p50_ms(lambda: forward(model, *inputs), device, reps)
            error = (output - reference).abs()
            finite = bool(torch.isfinite(output).all())
            results[name] = (error.max().item() if finite else math.inf, error.mean().item() if finite else math.inf,
                             ms, probe.vram_mib, probe.rss_mib)
        except Exception as e:  # a dtype the device cannot run is a finding, not a crash of the check
            results[name] = (math.inf, math.inf, math.nan, math.nan, math.nan, f"{type(e).__name__}: {e}"[:120])
        finally:
            model = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
    manifest = {get_entry(i).info.get("cuda_dtype", "float32 (absent)") for i in case.model_ids}
    suggestion = suggested_dtype(case, results)
    rows = []
    for name, result in results.items():
        max_err, mean_err, ms, vram, rss = result[:5]
        error_text = f"failed: {result[5]}" if len(result) > 5 else f"{max_err:.3f}"
        rows.append(f"| {case.name} | {case.weights} | {name} | {error_text} | {mean_err:.3f} | {ms:.2f} | "
                    f"{vram:.0f} | {rss:.0f} | {', '.join(sorted(manifest))} | {suggestion} |")
    return rows


def check_pulse(device: torch.device, tiny: bool, steps: int = 20) -> list[str]:
    """``steps`` PULSE steps per generator on ``device`` in fp32 (random weights of the real size,
    or the trained DCGAN when it is here): time per step, loss, peak memory."""
    from core.pipelines import pulse_adapters as A
    from core.pipelines import pulse_search as S

    target = chw(photo("pulse/examples/dcgan_face_16.png", (8, 8) if tiny else (16, 16)))
    rows = ["| generator | weights | restarts | steps | s/step p50 | L2 first -> last | finite | peak VRAM MiB | "
            "peak RSS MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for arch in ("dcgan", "stylegan2"):
        entry = next(e for e in load_manifest().values() if e.arch == arch)
        trained = not tiny and availability(entry.id)[0]
        case = Case(arch, "trained" if trained else "random", arch, TINY[arch] if tiny else entry.config, "latent",
                    (entry.id,))
        restarts = 2 if tiny else 4
        with Probe(device) as probe:
            model = case.build().to(device)
            if arch == "dcgan":
                adapter = A.DCGANAdapter(model)
            else:
                fit = A.gaussian_fit(model, samples=1000 if tiny else 10_000)
                adapter = A.StyleGAN2Adapter(model, fit=fit, search_resolution=None if tiny else 256)
            times = []
            start = time.perf_counter()
            for event in S.search_iter(adapter, target, steps=steps, restarts=restarts, seed=0, preview_every=1):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if isinstance(event, S.PulseProgress):
                    times.append(time.perf_counter() - start)
                    start = time.perf_counter()
                else:
                    result = event
        first, last = min(s.start_l2 for s in result.samples), min(s.l2 for s in result.samples)
        finite = all(math.isfinite(s.l2) for s in result.samples) and bool(torch.isfinite(result.samples[0].image).all())
        rows.append(f"| {arch} {describe_size(case)} | {case.weights} | {restarts} | {result.steps} | "
                    f"{statistics.median(times):.3f} | {first:.4f} -> {last:.4f} | {finite} | "
                    f"{probe.vram_mib:.0f} | {probe.rss_mib:.0f} |")
        del model, adapter
    return rows


def check_unet(device: torch.device, tiny: bool) -> list[str]:
    """One fp16 step of SD-Turbo's UNet (random weights) and its difference to fp32 on the same device."""
    from diffusers import UNet2DConditionModel
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # casting a random UNet with .to() is what this check means to do

    from bench.text_to_image import TURBO_UNET

    config = dict(TURBO_UNET, sample_size=8, block_out_channels=(8, 16, 32, 32), attention_head_dim=2,
                  cross_attention_dim=16, norm_num_groups=4) if tiny else TURBO_UNET
    side = 8 if tiny else 64  # latents of a 512 px image
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, side, side, generator=g)
    context = torch.randn(1, 77, config["cross_attention_dim"], generator=g)
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(**config).eval().requires_grad_(False)
    params = sum(p.numel() for p in unet.parameters()) / 1e6
    with torch.inference_mode():
        reference = unet(latents.to(device), 999, encoder_hidden_states=context.to(device)).sample.float()
        unet.to(torch.float16)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the peak below is the fp16 model's, not the fp32 reference's
        step = lambda: unet(latents.to(device, torch.float16), 999,  # noqa: E731
                            encoder_hidden_states=context.to(device, torch.float16)).sample
        with Probe(device) as probe:
            ms, eps = p50_ms(step, device, 1 if tiny else 5)
        eps = eps.float()
    relative = float((eps - reference).norm() / reference.norm())
    return ["| UNet | params | latents | dtype | p50 ms | finite | rel. L2 vs fp32 | peak VRAM MiB | peak RSS MiB |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| SD-Turbo UNet2DConditionModel{' (tiny)' if tiny else ''}, random | {params:.1f} M | 1x4x{side}x{side} | "
            f"fp16 | {ms:.1f} | {bool(torch.isfinite(eps).all())} | {relative:.2e} | {probe.vram_mib:.0f} | "
            f"{probe.rss_mib:.0f} |"]


def check_out_of_memory(device: torch.device) -> list[str]:
    """An allocation larger than the GPU, through ``user_errors``: the message, and the device still works."""
    import gradio as gr

    from core.ui import user_errors

    if device.type == "cuda":
        how = "allocate 2x the GPU's memory"
        total = torch.cuda.get_device_properties(device).total_memory

        def job():
            return torch.empty(2 * total, dtype=torch.uint8, device=device)
    else:  # no GPU memory to exhaust here: the error a GPU raises, raised by this check
        how = "no GPU: torch.OutOfMemoryError raised by the check"

        def job():
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 TiB")
    try:
        user_errors(job)()
        message = "no error: the allocation succeeded"
    except gr.Error as e:
        message = str(e.message)
    works = bool(torch.ones(4, device=device).sum().item() == 4)
    return ["| forced | how | message the user gets | device works afterwards |", "|---|---|---|---|",
            f"| out of memory | {how} | {message} | {works} |"]


def environment(device: torch.device, tiny: bool) -> list[str]:
    lines = [f"- torch {torch.__version__}, Python {platform.python_version()}, {platform.machine()}, "
             f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        lines.append(f"- GPU: {props.name}, {props.total_memory / 2**30:.1f} GiB, CUDA {torch.version.cuda}, "
                     f"cuDNN {torch.backends.cudnn.version()}")
    else:
        lines.append(f"- **No GPU was used**: every row ran on `{device}`; the fp16/bf16 rows are CPU emulations "
                     "of those dtypes (" + ("the CPU's own kernels" if tiny else "weights and every layer's inputs "
                     "and outputs rounded to the dtype, fp32 arithmetic") + "), not GPU numbers.")
    return lines


def report(device: torch.device, tiny: bool = False, only: str | None = None) -> str:
    start = time.perf_counter()
    repeats = 1 if device.type == "cpu" else 10  # CPU: emulation and tests, where the errors matter
    sections = [f"# GPU check on {device}{' (tiny models)' if tiny else ''}", "",
                f"Written by `python bench/gpu_check.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
                *environment(device, tiny), "",
                "## Generators against CPU fp32",
                "", f"Error: |output - CPU fp32 output| in 8-bit levels, same weights and input. Suggested cuda_dtype: "
                f"fp16, else bf16, when max <= {MAX_LEVELS:g} and mean <= {MEAN_LEVELS:g} levels; fp32 for the "
                "generators PULSE searches with gradients. VRAM: torch's peak allocation on the device (weights "
                "and activations); RSS: the process's peak resident memory, counted separately.", "",
                *check_generators(device, tiny, only, repeats)]
    if not only:
        sections += ["", "## PULSE (fp32)", "", *check_pulse(device, tiny), "",
                     "## Text to image: one UNet step", "", *check_unet(device, tiny), "",
                     "## Out of memory", "", *check_out_of_memory(device)]
    sections += ["", f"Total: {time.perf_counter() - start:.0f} s."]
    return "\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny configs: the whole check in seconds")
    parser.add_argument("--only", help="only generator rows whose name contains this ('trained': trained weights)")
    parser.add_argument("--write", action="store_true", help="also write bench/GPU.md (CUDA runs only)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.write and (device.type != "cuda" or args.tiny or args.only):
        parser.error("--write records a full run on a CUDA GPU only (bench/GPU.md holds GPU numbers)")
    text = report(device, tiny=args.tiny, only=args.only)
    print(text, end="")
    if args.write:
        (ROOT / "bench" / "GPU.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
