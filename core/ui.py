"""Shared Gradio pieces: model-card header, weights notices, error mapping, launch flags."""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import gradio as gr

from core.weights import WeightsUnavailableError, availability, get_entry, how_to_provide

def _save_pil_to_cache_atomically(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """gradio's ``processing_utils.save_pil_to_cache``, made safe for concurrent identical outputs.

    The cache is content-addressed (a folder per hash of the encoded bytes), and gradio 6.31
    rewrites the file in place: when two users get the same image (the same example and seed),
    one rewrite can truncate the file while the other user's client is downloading it, and that
    download fails ("peer closed connection", seen by ``bench/stress.py``). Here an existing
    file is kept as it is, and a new one appears at once through a rename.
    """
    from gradio import processing_utils

    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    target = (folder / f"{name}.{format}").resolve()
    if not (target.is_file() and target.stat().st_size == len(data)):
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        partial.write_bytes(data)
        os.replace(partial, target)
    return str(target)


def _install_atomic_image_cache() -> None:
    from gradio import processing_utils

    processing_utils.save_pil_to_cache = _save_pil_to_cache_atomically


_install_atomic_image_cache()

# Keyword arguments every app passes to launch() / gr.mount_gradio_app().
LAUNCH_KWARGS = dict(max_file_size="25mb", footer_links=["api", "gradio", "settings"])
QUEUE_MAX_SIZE = int(os.environ.get("GANHUB_QUEUE_MAX_SIZE", "16"))
# Every app's gr.Blocks(delete_cache=...): each hour, files gradio cached for uploads and outputs
# that are more than an hour old are deleted, so a long-running server does not fill its disk.
DELETE_CACHE = (3600, 3600)


def _load_upload(component: gr.Image, payload, keep_alpha: bool):
    from core.images import load_image

    if payload is None or payload.path is None:
        return gr.Image.preprocess(component, payload)
    try:
        return load_image(payload.path, keep_alpha=keep_alpha)
    except ValueError as e:
        raise gr.Error(str(e), title="Invalid image", print_exception=False) from e


class ImageInput(gr.Image):
    """``gr.Image`` whose upload goes through ``core.images.load_image``.

    Every bad-input check (not an image, truncated, 0 bytes, decompression bomb, over the pixel
    cap) then gives the user a clear message instead of gradio's generic error, and the handler
    always receives an upright RGB ``PIL.Image``.
    """

    is_template = True  # rendered by the frontend as a plain Image

    def preprocess(self, payload):
        return _load_upload(self, payload, keep_alpha=False)


class MaskInput(gr.Image):
    """Like :class:`ImageInput`, but the handler receives RGBA: a mask's transparency is kept."""

    is_template = True

    def preprocess(self, payload):
        return _load_upload(self, payload, keep_alpha=True)


def _checked_number(component, payload):
    """A number inside the component's bounds, or ``gr.Error`` naming the field and the bounds."""
    import math

    name = component.label or "This value"
    if isinstance(payload, bool) or not isinstance(payload, (int, float)):
        try:
            payload = float(payload)
        except (TypeError, ValueError):
            raise gr.Error(f"{name} must be a number, got {payload!r}.", title="Invalid input",
                           print_exception=False) from None
    low, high = component.minimum, component.maximum
    if math.isnan(payload) or (low is not None and payload < low) or (high is not None and payload > high):
        bounds = f"between {low:g} and {high:g}" if low is not None and high is not None else (
            f"at least {low:g}" if low is not None else f"at most {high:g}")
        raise gr.Error(f"{name} must be {bounds}, got {payload}.", title="Invalid input", print_exception=False)
    return payload


class Slider(gr.Slider):
    """``gr.Slider`` whose API errors name the field (wrong type, NaN, out of range)."""

    is_template = True

    def preprocess(self, payload):
        return super().preprocess(_checked_number(self, payload))


class Number(gr.Number):
    """``gr.Number`` whose API errors name the field (wrong type, NaN, out of range)."""

    is_template = True

    def preprocess(self, payload):
        return None if payload is None else super().preprocess(_checked_number(self, payload))


def model_card_markdown(model_ids: Iterable[str]) -> str:
    """A compact Markdown table: model, licence, paper, and whether its weights are here."""
    rows = ["| model | licence | paper | weights here |", "|---|---|---|---|"]
    for model_id in model_ids:
        entry = get_entry(model_id)
        available, where = availability(model_id)
        status = "yes" if available else f"no: `python -m core.weights fetch {model_id}`"
        licence = entry.license.replace("|", "/")
        rows.append(f"| **{entry.title}** (`{model_id}`) | {licence} | {entry.info.get('paper', '')} | {status} |")
    return "\n".join(rows)


def model_card(model_ids: Iterable[str]) -> gr.Markdown:
    """The model-card table as a Markdown component (built once, no API endpoint of its own)."""
    return gr.Markdown(model_card_markdown(model_ids))


def missing_weights_message(model_id: str) -> str:
    entry = get_entry(model_id)
    return f"The weights of {entry.title} (`{model_id}`) are not on this machine. " + how_to_provide(entry)


def out_of_memory_message() -> str:
    """What the user reads when the GPU ran out of memory, after its allocator's cache is freed."""
    import torch

    free = None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()
        free = torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    now = f" ({free / 2**30:.1f} GiB free now)" if free is not None else ""
    return (f"The GPU ran out of memory for this job{now}. Try a smaller image, fewer samples, restarts or "
            "steps, or try again in a moment: other jobs may be using the GPU.")


def _is_out_of_memory(e: BaseException) -> bool:
    import torch  # loaded already whenever a model ran

    return isinstance(e, torch.OutOfMemoryError) or "MPS backend out of memory" in str(e)


def user_errors(fn: Callable) -> Callable:
    """Show ``ValueError``, missing weights and GPU out-of-memory to the user as ``gr.Error`` (no
    traceback in the log); anything else is raised as it is."""

    def translate(e: Exception) -> gr.Error | None:
        if isinstance(e, gr.Error):
            return None
        if isinstance(e, WeightsUnavailableError):
            return gr.Error(str(e), title="Weights not available", print_exception=False)
        if isinstance(e, ValueError):
            return gr.Error(str(e), title="Invalid input", print_exception=False)
        if isinstance(e, RuntimeError) and _is_out_of_memory(e):
            return gr.Error(out_of_memory_message(), title="Out of GPU memory", print_exception=False)
        return None

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except (ValueError, RuntimeError) as e:
                error = translate(e)
                if error is None:
                    raise
                raise error from e

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, RuntimeError) as e:
            error = translate(e)
            if error is None:
                raise
            raise error from e

    return wrapper


def on_zero_gpu() -> bool:
    """Whether this process serves a Hugging Face ZeroGPU Space (the Space sets ``SPACES_ZERO_GPU``)."""
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")


# The longest GPU window a handler asks ZeroGPU for; longer requests are refused by ZeroGPU's scheduler
# and eat into visitors' daily quota, so long jobs are bounded by their own settings instead.
GPU_SECONDS_MAX = 180


def gpu(duration: int | Callable[..., float] = 60) -> Callable[[Callable], Callable]:
    """Decorator for handlers that run a model: ``spaces.GPU`` on Hugging Face ZeroGPU, where the
    GPU is attached only while the handler runs; the handler unchanged everywhere else (the
    ``spaces`` package returns it as it is outside ZeroGPU, and is not needed at all).

    ``duration`` is the GPU window in seconds, or a function of the handler's arguments that
    estimates it (e.g. steps x samples); its answer is clamped to 5..``GPU_SECONDS_MAX``, and a
    request whose arguments it cannot read gets 60 s (the handler then refuses them itself).
    Put this decorator below :func:`heavy`, so that waiting for the device slot happens outside
    the GPU window and spends none of the visitor's GPU quota."""
    try:
        import spaces
    except ImportError:
        return lambda fn: fn
    if callable(duration):
        estimate = duration

        def duration(*args, **kwargs):
            try:
                seconds = float(estimate(*args, **kwargs))
            except (TypeError, ValueError, KeyError):
                seconds = 60.0
            return int(min(max(seconds, 5.0), GPU_SECONDS_MAX))

    return spaces.GPU(duration=duration)


def preload_on_zero_gpu(model_ids: Iterable[str], load: Callable[[str], object] | None = None) -> list[str]:
    """On ZeroGPU, put the models whose weights are here on the GPU at start-up; elsewhere do nothing.

    ZeroGPU keeps a model on the GPU across requests only if it was moved there outside any GPU
    window (it packs those tensors at start-up and maps them into each window); a model moved
    inside a handler would be loaded again on every request. Returns the ids it loaded."""
    if not on_zero_gpu():
        return []
    import torch

    from core.cache import MODEL_CACHE

    load = load or (lambda model_id: MODEL_CACHE.get(model_id, device=torch.device("cuda")))
    loaded = []
    for model_id in model_ids:
        if availability(model_id)[0]:
            load(model_id)
            loaded.append(model_id)
    return loaded


def heavy(fn: Callable) -> Callable:
    """Run a model-calling handler in the device's slot (``core.device.device_slot``), so the hub's
    apps share one queue for heavy work per device. Works for generator (streaming) handlers."""
    from core.device import device_slot

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            with device_slot():
                yield from fn(*args, **kwargs)

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with device_slot():
            return fn(*args, **kwargs)

    return wrapper


def parse_launch_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a GAN Demo Hub app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to bind (0.0.0.0 to serve the network)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--root-path", default=os.environ.get("GRADIO_ROOT_PATH"), help="when behind a reverse proxy")
    return parser.parse_args(argv)


def launch(demo: gr.Blocks, argv: list[str] | None = None) -> None:
    """Launch one app with the hub's defaults and the command-line flags."""
    from core.device import tune_allocator

    args = parse_launch_args(argv)
    tune_allocator()
    demo.queue(max_size=QUEUE_MAX_SIZE).launch(
        server_name=args.host, server_port=args.port, share=args.share, root_path=args.root_path, **LAUNCH_KWARGS
    )
