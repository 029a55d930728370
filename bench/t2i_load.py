"""Issue 20: how long the real-size SD-Turbo pipeline takes to be ready, against reading its bytes.

    python bench/t2i_load.py [--folder /tmp/sd_turbo_hub] [--cache DIR] [--runs 1] > out.jsonl

Writes random weights of the real size once, in the layout the app reads: a Hugging Face cache
(``<folder>/hub/models--stabilityai--sd-turbo/snapshots/<pinned commit>/``, diffusers components
as safetensors). Then each case runs in a fresh process with every weight file (and the cached
OpenVINO IR) evicted from the page cache (``posix_fadvise(DONTNEED)``, no root needed):

- ``read``: the raw read of every file (64 MB ``readinto``);
- ``load``: ``load_pipeline`` on CPU, fp32, offline, with the eager ``torch`` UNet or the
  ``openvino`` one (from the cached IR, the torch UNet never built). diffusers
  leaves the weights memory-mapped, so a load that returns has not read them yet: each load is
  followed by either ``touch`` (one read per 4 KB page of every parameter and buffer: ready to
  generate) or ``unet`` (two UNet evaluations at 512 px: the first one after the cold load pays the
  page-ins and the kernels' first-call set-up; ready = load + what it costs beyond the second). diffusers' and transformers' imports are timed apart (the app imports them in the
  background at start when weights are here, so a request waits for the load alone);
- ``convert`` (once, when no IR is cached): the first OpenVINO start, eager torch serving while the
  IR is converted in the background; then eager vs the IR (dynamic shapes, and compiled for the one
  static shape) at 512 px, with the image PSNR of the IR against eager.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL_ID = "diffusers.sd_turbo"
CONFIGS = {"torch": "torch", "openvino": "openvino"}


def snapshot_folder(root: Path) -> Path:
    from core.weights import get_entry

    spec = next(s for s in get_entry(MODEL_ID).sources if s.kind == "hf").spec
    return root / "hub" / f"models--{spec['repo_id'].replace('/', '--')}" / "snapshots" / spec["revision"]


def write_snapshot(folder: Path) -> None:
    import torch

    from bench.text_to_image import build_pipeline

    with torch.no_grad():
        pipe = build_pipeline("turbo", torch.float32)
    pipe.save_pretrained(folder, safe_serialization=True)


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def cached_ir_files() -> list[Path]:
    from core.pipelines import text_to_image_openvino as ov_unet
    from core.weights.paths import cache_dir

    root = cache_dir() / "openvino"
    return sorted(root.glob("*/unet.*")) if root.is_dir() and ov_unet.openvino_version() else []


def evict(files: list[Path]) -> None:
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def rss_now_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def case_read(folder: Path) -> dict:
    files = weight_files(folder)
    buffer = bytearray(64 << 20)
    start = time.perf_counter()
    total = 0
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buffer):
                total += n
    return {"case": "raw_read", "seconds": round(time.perf_counter() - start, 2), "GB": round(total / 1e9, 2)}


def touch_every_page(pipe) -> int:
    """Read one value per 4 KB page of every parameter and buffer (what the first generation faults in)."""
    import torch

    pages = 0
    with torch.inference_mode():
        for module in pipe.components.values():
            if not isinstance(module, torch.nn.Module):
                continue
            for tensor in [*module.parameters(), *module.buffers()]:
                flat = tensor.detach().reshape(-1)
                step = max(1, 4096 // tensor.element_size())
                flat[::step].sum().item()
                pages += (flat.numel() + step - 1) // step
    return pages


def unet_inputs(config):
    """One 512x512 image's UNet inputs (64x64 latent)."""
    import torch

    g = torch.Generator().manual_seed(0)
    return (torch.randn(1, config.in_channels, 64, 64, generator=g), torch.tensor(999),
            torch.randn(1, 77, config.cross_attention_dim, generator=g))


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def case_load(config: str, then: str) -> dict:
    import torch

    from core.device import tune_allocator

    tune_allocator()
    os.environ["GANHUB_T2I_BACKEND"] = CONFIGS[config]
    cpu_start = time.process_time()
    from core.pipelines import text_to_image_loading as loading

    imports_s, _ = timed(_import_diffusers)
    load_s, pipe = timed(lambda: loading.load_pipeline(MODEL_ID, torch.device("cpu"), torch.float32, download=False))
    row = {"case": f"{config}/{then}", "imports_s": round(imports_s, 2), "load_s": round(load_s, 2),
           "unet": type(pipe.unet).__name__, "rss_after_load_MB": round(rss_now_mb())}
    if then == "touch":
        touch_s, pages = timed(lambda: touch_every_page(pipe))
        row.update(touch_s=round(touch_s, 2), pages=pages, ready_s=round(load_s + touch_s, 2))
    elif then == "unet":
        x, t, ctx = unet_inputs(pipe.unet.config)
        with torch.inference_mode():
            first, _ = timed(lambda: pipe.unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0])
            warm, _ = timed(lambda: pipe.unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0])
        # first - warm: the page-ins of the weights plus the kernels' first-call set-up
        row.update(first_unet_s=round(first, 2), warm_unet_s=round(warm, 2), first_extra_s=round(first - warm, 2),
                   ready_s=round(load_s + first - warm, 2))
    elif then == "convert":
        row.update(case_convert(pipe, load_s))
    row.update(cpu_s=round(time.process_time() - cpu_start, 2), peak_rss_MB=peak_rss_mb())
    return row


def _import_diffusers() -> bool:
    from diffusers import StableDiffusionPipeline  # noqa: F401
    from transformers import CLIPTextModel  # noqa: F401

    return True


def case_convert(pipe, load_s: float) -> dict:
    """The first OpenVINO start: torch serves, the IR is converted in the background; then eager vs IR."""
    import openvino as ov
    import torch

    from bench.t2i_cpu import SIGMA_MAX, ImageCheck

    eager_unet = pipe.unet
    thread = getattr(pipe, "_ganhub_openvino", None)
    if thread is None:
        return {"error": "no background conversion started (IR already cached, or OpenVINO missing)"}
    convert_s, _ = timed(lambda: thread.join())
    row = {"convert_and_compile_after_load_s": round(convert_s, 1), "peak_rss_during_convert_MB": peak_rss_mb(),
           "switched_to": type(pipe.unet).__name__}
    x, t, ctx = unet_inputs(pipe.unet.config)
    sample = x * (SIGMA_MAX**2 + 1) ** 0.5
    check = ImageCheck(sample)
    with torch.inference_mode():
        eager_s, eps = timed(lambda: eager_unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0])
        check.psnr(eps)
        first, _ = timed(lambda: pipe.unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0])
        dynamic_s, eps_ov = timed(lambda: pipe.unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0])
        row.update(eager_unet_s=round(eager_s, 2), openvino_first_s=round(first, 2),
                   openvino_dynamic_s=round(dynamic_s, 2), speedup=round(eager_s / dynamic_s, 2),
                   psnr_db=check.psnr(eps_ov), max_abs_err=float((eps_ov - eps).abs().max()))
    core = ov.Core()
    model = core.read_model(str(pipe.unet.ir))
    shapes = (list(x.shape), [1], list(ctx.shape))
    model.reshape({port: ov.PartialShape(shape) for port, shape in zip(model.inputs, shapes)})
    compile_s, compiled = timed(lambda: core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": torch.get_num_threads()}))
    request = compiled.create_infer_request()
    inputs = [x.numpy(), t.float().reshape(1).numpy(), ctx.numpy()]
    request.infer(inputs)
    static_s, _ = timed(lambda: request.infer(inputs))
    row.update(static_compile_s=round(compile_s, 1), openvino_static_s=round(static_s, 2),
               openvino_version=ov.__version__)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/sd_turbo_hub"))
    parser.add_argument("--cache", type=Path, help="GANHUB_CACHE (the OpenVINO IR); default <folder>/ganhub")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--case", choices=("read", "load"))
    parser.add_argument("--config", choices=tuple(CONFIGS), default="torch")
    parser.add_argument("--then", choices=("touch", "unet", "convert"), default="touch")
    args = parser.parse_args()
    folder = snapshot_folder(args.folder)
    if args.case:
        evict(weight_files(folder) + cached_ir_files())
        result = case_read(folder) if args.case == "read" else case_load(args.config, args.then)
        print(json.dumps(result), flush=True)
        return
    if not (folder / "model_index.json").exists():
        start = time.perf_counter()
        write_snapshot(folder)
        print(json.dumps({"case": "write_snapshot", "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    sizes = {str(p.relative_to(folder)): round(p.stat().st_size / 1e6, 1) for p in weight_files(folder)
             if p.stat().st_size > 1e6}
    print(json.dumps({"case": "files_MB", **sizes, "load_avg": os.getloadavg()}), flush=True)
    cache = args.cache or args.folder / "ganhub"
    env = {**os.environ, "HF_HOME": str(args.folder), "HF_HUB_OFFLINE": "1", "GANHUB_DEVICE": "cpu",
           "GANHUB_CACHE": str(cache)}

    def child(*extra):
        proc = subprocess.run([sys.executable, __file__, "--folder", str(args.folder), *extra],
                              capture_output=True, text=True, env=env)
        out = proc.stdout.strip().splitlines()
        row = json.loads(out[-1]) if out else {"case": " ".join(extra), "error": proc.stderr[-1500:]}
        row["load_avg_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row), flush=True)

    os.environ.update(env)
    if not cached_ir_files():
        child("--case", "load", "--config", "openvino", "--then", "convert")
    for _ in range(args.runs):
        child("--case", "read")
        for config in CONFIGS:
            for then in ("touch", "unet"):
                child("--case", "load", "--config", config, "--then", then)
        child("--case", "read")


if __name__ == "__main__":
    main()
