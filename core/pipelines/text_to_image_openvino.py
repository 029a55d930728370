"""The Stable Diffusion UNet on OpenVINO's CPU plugin, behind the interface diffusers calls.

Measured on a 2-core AVX2 CPU (bench/RESULTS.md, issue 20): images 143.5 dB from eager torch in
float32; 1.17x faster than eager at 512 px and 1.41x at 256 px (interleaved run), with a slower
load, so the manifest's rows keep torch and ``GANHUB_T2I_BACKEND=openvino`` turns this on.
The weights still come only from the resolver's safetensors: the torch UNet diffusers loaded
from them is converted with ``openvino.convert_model`` and the result is kept as a *derived*
cache (OpenVINO IR, rebuildable, never a source of weights) under
``$GANHUB_CACHE/openvino/<key>/``. The key hashes the content of the UNet's safetensors (in a
Hugging Face snapshot the file is a link to ``blobs/<sha256>``, so the hash is free), its
config, the OpenVINO version and the conversion settings; any change misses.

One IR serves every batch size and image size: the batch and the latent's height and width are
dynamic, and the trace is taken at a latent side that is not a multiple of the UNet's total
upsampling factor, so the traced graph sizes each upsampling from its skip connection (what the
torch UNet does for such sides) and is right for every side.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import warnings
from pathlib import Path

import torch

from core.weights.hashing import sha256_of
from core.weights.paths import cache_dir, temporary_sibling

log = logging.getLogger(__name__)
# Part of the cache key: change it whenever the conversion below changes what it writes.
CONVERSION = {"format": 1, "precision": "f32", "dynamic": ["batch", "height", "width"], "timestep": "float32[batch]"}
IR_NAME = "unet.xml"
_reported: set[str] = set()
conversions = 0  # how many conversions this process ran (tests check reuse with it, not with timing)


def report_once(message: str) -> None:
    """Log ``message`` at warning level the first time it comes up in this process."""
    if message not in _reported:
        _reported.add(message)
        log.warning(message)


def openvino_version() -> str | None:
    """The installed OpenVINO's version, or None when it cannot be imported."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__


def weights_sha256(path: Path) -> str:
    """The sha256 of a safetensors file: the name of the Hub blob it links to; else (a copied
    snapshot, Windows without symlinks) hashed once and remembered for its path, size and mtime."""
    real = Path(os.path.realpath(path))
    if re.fullmatch(r"[0-9a-f]{64}", real.name):
        return real.name
    stat = real.stat()
    memo = cache_dir() / "openvino" / "sha256" / hashlib.sha256(
        f"{real}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    if memo.is_file():
        return memo.read_text().strip()
    digest = sha256_of(real)
    memo.parent.mkdir(parents=True, exist_ok=True)
    partial = temporary_sibling(memo)
    partial.write_text(digest)
    partial.replace(memo)
    return digest


def ir_folder(unet_folder: Path) -> Path | None:
    """Where the IR of the UNet in ``unet_folder`` (a snapshot's ``unet/``) is cached; None
    without OpenVINO or without the UNet's safetensors."""
    version = openvino_version()
    weights = unet_folder / "diffusion_pytorch_model.safetensors"
    if version is None or not weights.is_file():
        return None
    config = (unet_folder / "config.json").read_bytes()
    key = json.dumps({"weights_sha256": weights_sha256(weights), "config_sha256": hashlib.sha256(config).hexdigest(),
                      "openvino": version, "conversion": CONVERSION}, sort_keys=True)
    return cache_dir() / "openvino" / hashlib.sha256(key.encode()).hexdigest()[:32]


def cached_ir(unet_folder: Path) -> Path | None:
    """The cached IR file of this UNet when a complete one is there."""
    folder = ir_folder(unet_folder)
    done = folder / IR_NAME if folder else None
    return done if done and done.is_file() and done.with_suffix(".bin").is_file() else None


@contextlib.contextmanager
def _telemetry_declined():
    """OpenVINO's converter sends usage statistics to Google Analytics unless the machine's user
    opted out (``opt_in_out --opt_out``); a server converting a model must not phone home, so the
    consent check answers "declined" while the conversion runs (nothing sent, no file written)."""
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # no telemetry package: OpenVINO uses its no-op stub
        yield
        return
    original = OptInChecker.check
    OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED
    try:
        yield
    finally:
        OptInChecker.check = original


class _NoiseFunction(torch.nn.Module):
    """The UNet as a function of three tensors (what the exporter traces)."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]


def _trace_side(unet) -> int:
    """A latent side that is not a multiple of the UNet's upsampling factor (see the module doc)."""
    factor = 2 ** sum(1 for block in unet.up_blocks if getattr(block, "upsamplers", None))
    return factor + 1 if factor > 1 else 8


def convert(unet, unet_folder: Path) -> Path:
    """Convert a loaded torch UNet (float32, CPU) to IR and cache it; return the IR file. The IR is
    written into a temporary sibling folder and renamed into place, so no reader sees half of it."""
    import openvino as ov

    global conversions
    target = ir_folder(unet_folder)
    side, cfg = _trace_side(unet), unet.config
    example = (torch.randn(1, cfg.in_channels, side, side), torch.tensor([999.0]),
               torch.randn(1, 77, cfg.cross_attention_dim))
    shapes = [ov.PartialShape([-1, cfg.in_channels, -1, -1]), ov.PartialShape([-1]),
              ov.PartialShape([-1, -1, cfg.cross_attention_dim])]
    with torch.no_grad(), warnings.catch_warnings(), _telemetry_declined():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants (module doc)
        model = ov.convert_model(_NoiseFunction(unet), example_input=example, input=shapes)
    conversions += 1
    partial = temporary_sibling(target)
    partial.mkdir(parents=True)
    try:
        ov.save_model(model, partial / IR_NAME, compress_to_fp16=False)  # float32 weights, as converted
        del model
        if target.exists():  # an unreadable earlier IR: replace it
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target / IR_NAME


class OpenVINOUNet(torch.nn.Module):
    """A compiled IR of a diffusers UNet2DConditionModel, called exactly like it by the pipelines:
    ``unet(sample, t, encoder_hidden_states=..., return_dict=False)[0]``, with its ``config``,
    ``dtype`` and ``device``. Inputs are computed in float32 and the output comes back in the
    sample's dtype. Calls are serialised (one infer request; the pipeline runs one job at a time)."""

    def __init__(self, ir: Path, config, threads: int | None = None):
        import openvino as ov

        super().__init__()
        self.ir, self.config = Path(ir), config
        core = ov.Core()
        model = core.read_model(str(self.ir))
        self.compiled = core.compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads())})
        self.request = self.compiled.create_infer_request()
        self.weight_bytes = self.ir.with_suffix(".bin").stat().st_size  # what the model cache counts
        self._lock = threading.Lock()

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None, cross_attention_kwargs=None,
                added_cond_kwargs=None, return_dict: bool = True, **unsupported):
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        extras = {k: v for k, v in {"timestep_cond": timestep_cond, "cross_attention_kwargs": cross_attention_kwargs,
                                    "added_cond_kwargs": added_cond_kwargs, **unsupported}.items() if v}
        if extras:
            raise ValueError(f"The OpenVINO UNet takes sample, timestep and encoder_hidden_states only "
                             f"(got {', '.join(sorted(extras))}); set GANHUB_T2I_BACKEND=torch.")
        t = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1)
        inputs = [sample.detach().float().contiguous().numpy(), t.numpy(),
                  encoder_hidden_states.detach().float().contiguous().numpy()]
        with self._lock:
            out = torch.from_numpy(self.request.infer(inputs)[0].copy())
        out = out.to(sample.dtype)
        return UNet2DConditionOutput(sample=out) if return_dict else (out,)


def unet_config(unet_folder: Path):
    """The UNet's config as diffusers exposes it (``unet.config.in_channels``...): its
    ``config.json`` over the constructor's defaults, without building the model."""
    import inspect

    from diffusers import UNet2DConditionModel
    from diffusers.configuration_utils import FrozenDict

    defaults = {name: p.default for name, p in inspect.signature(UNet2DConditionModel.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return FrozenDict({**defaults, **UNet2DConditionModel.load_config(unet_folder)})


def compile_cached(unet_folder: Path) -> OpenVINOUNet | None:
    """The compiled cached IR of this UNet, or None when none is cached or it fails to compile
    (logged once; the caller then uses the torch UNet and may convert again)."""
    ir = cached_ir(unet_folder)
    if ir is None:
        return None
    try:
        return OpenVINOUNet(ir, unet_config(unet_folder))
    except Exception as error:  # a damaged cache entry: the torch UNet serves, a new conversion replaces it
        report_once(f"The cached OpenVINO UNet {ir.parent.name} did not compile ({error}); using torch.")
        return None


def _at_lower_priority(fn, niceness: int = 10):
    """``fn()`` in a thread of its own at ``niceness`` (Linux threads have their own nice value;
    raising it back would need privileges, so the caller's thread keeps its priority)."""
    result = {}

    def work():
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), niceness))
        except (AttributeError, OSError):
            pass
        try:
            result["value"] = fn()
        except BaseException as error:  # handed back to the caller
            result["error"] = error

    thread = threading.Thread(target=work, name="openvino-convert", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def switch_in_background(pipe, unet_folder: Path, lock: threading.Lock) -> threading.Thread:
    """Convert ``pipe.unet`` (torch) in a low-priority thread, cache the IR, compile it and put it in
    the pipeline between two generations (under ``lock``). Eager torch serves meanwhile; a failure
    is logged once and leaves torch in place."""

    def work():
        try:
            started = time.perf_counter()
            log.warning("Converting the UNet to OpenVINO in the background (first start with these weights, "
                        "a few minutes); torch serves until then.")
            ir = _at_lower_priority(lambda: convert(pipe.unet, unet_folder))
            unet = OpenVINOUNet(ir, pipe.unet.config)  # compiled at normal priority: its threads serve later
            with lock:
                pipe.register_modules(unet=unet)
            log.warning("The UNet now runs on OpenVINO (converted and compiled in %.0f s; IR cached in %s).",
                        time.perf_counter() - started, ir.parent)
        except Exception as error:  # never fails a request: torch keeps serving
            report_once(f"Converting the UNet to OpenVINO failed ({type(error).__name__}: {error}); using torch.")

    thread = threading.Thread(target=work, name="openvino-unet", daemon=True)
    thread.start()
    return thread
