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

    data = encode_image(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    target = (folder / f"{name}.{format}").resolve()
    if not (target.is_file() and target.stat().st_size == len(data)):
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        partial.write_bytes(data)
        os.replace(partial, target)
    return str(target)


# Measured in bench/RESULTS.md ("What an image costs to ship"): PNG level 1 encodes ~3x faster than
# PIL's default level 6 for ~3% more bytes; previews are JPEG (q90, 4:4:4), ~100x faster than PNG.
PNG_COMPRESS_LEVEL = 1
JPEG_QUALITY = 90
# Before/after sliders and other previews: JPEG at display size; the result itself is a full PNG.
PREVIEW_FORMAT, PREVIEW_SIDE = "jpeg", 1024


def encode_image(img, format: str = "png") -> bytes:
    """The bytes gradio serves for an output image: PNG keeps the image's text metadata (the
    ``parameters`` and ``gradio_client`` chunks) at :data:`PNG_COMPRESS_LEVEL`; JPEG is for previews."""
    import io

    from gradio import processing_utils

    kind = format.lower()
    if kind == "png":
        options = {"pnginfo": processing_utils.get_pil_metadata(img), "compress_level": PNG_COMPRESS_LEVEL}
    elif kind in ("jpeg", "jpg"):
        img = img if img.mode in ("RGB", "L") else img.convert("RGB")
        options = {"quality": JPEG_QUALITY, "subsampling": 0}  # 4:4:4: colour edges stay sharp
    else:
        return processing_utils.encode_pil_to_bytes(img, format)
    with io.BytesIO() as out:
        img.save(out, kind.replace("jpg", "jpeg"), **options)
        return out.getvalue()


def preview(image):
    """``image`` at display size (at most :data:`PREVIEW_SIDE` px), for outputs in :data:`PREVIEW_FORMAT`."""
    from core.images import resize_max_side

    return resize_max_side(image, PREVIEW_SIDE)


def _install_atomic_image_cache() -> None:
    from gradio import processing_utils

    processing_utils.save_pil_to_cache = _save_pil_to_cache_atomically


_install_atomic_image_cache()


def _install_mcp_multiple_outputs_fix() -> None:
    """gradio 6.31's MCP server, on a call without a progress token, wraps a multi-output endpoint's
    whole result tuple as one output: the client gets one text blob of server paths instead of the
    images (base64) and texts. Split the tuple into its outputs, as the progress path already does."""
    try:
        from gradio.mcp import GradioMCPServer
    except ImportError:  # gradio without the mcp extra
        return
    original = GradioMCPServer._execute_tool_without_progress
    if getattr(original, "splits_outputs", False):
        return

    async def execute_without_progress(self, job):
        outputs = await original(self, job)
        return list(outputs[0]) if len(outputs) == 1 and isinstance(outputs[0], tuple) else outputs

    execute_without_progress.splits_outputs = True
    GradioMCPServer._execute_tool_without_progress = execute_without_progress


_install_mcp_multiple_outputs_fix()

# Every public endpoint is also an MCP tool (streamable HTTP at <app URL>/gradio_api/mcp/), unless
# GRADIO_MCP_SERVER=False; gradio's own variable, here on by default.
MCP_SERVER = os.environ.get("GRADIO_MCP_SERVER", "True").strip().lower() not in ("0", "false", "no", "off")
# Keyword arguments every app passes to launch() / gr.mount_gradio_app().
LAUNCH_KWARGS = dict(max_file_size="25mb", footer_links=["api", "gradio", "settings"], mcp_server=MCP_SERVER)
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


class Radio(gr.Radio):
    """``gr.Radio`` whose API schema types its choices: gradio 6.31 says ``"type": "string"`` even for
    numbers, so MCP clients (which validate arguments against the schema) cannot send any value."""

    is_template = True

    def api_info(self) -> dict:
        info = super().api_info()
        values = [value for _, value in self.choices]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            info["type"] = "integer"
        elif values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            info["type"] = "number"
        return info


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


def user_errors(fn: Callable) -> Callable:
    """Show ``ValueError`` and missing weights to the user as ``gr.Error`` (no traceback in the log)."""

    def translate(e: Exception) -> gr.Error:
        if isinstance(e, WeightsUnavailableError):
            return gr.Error(str(e), title="Weights not available", print_exception=False)
        return gr.Error(str(e), title="Invalid input", print_exception=False)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except (ValueError, WeightsUnavailableError) as e:
                if isinstance(e, gr.Error):
                    raise
                raise translate(e) from e

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, WeightsUnavailableError) as e:
            if isinstance(e, gr.Error):
                raise
            raise translate(e) from e

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


def reuse_settings(api_name: str, made_by: tuple[str, ...], settings: dict[str, gr.components.Component]) -> gr.File:
    """A "drop a PNG made here" box: the settings stored in the PNG (``core.reproduce``) go back into the
    ``settings`` components (parameter name -> component) for a PNG made by one of the ``made_by`` endpoints.
    Registers ``api_name`` (an API endpoint and MCP tool) that returns those settings."""
    from core.reproduce import read_call
    from core.reproduce import settings as stored_settings

    names = list(settings)

    def read(png):
        if not png:
            raise ValueError("Drop a PNG made by this app to reuse its settings.")
        values = stored_settings(read_call(png), made_by, names)
        return tuple(gr.update() if value is None else value for value in values)

    read.__name__ = api_name  # the MCP tool's name
    read.__doc__ = (f"Read the settings stored in a PNG made by {' or '.join('/' + a for a in made_by)}.\n\n"
                    f"Args:\n    png: a PNG returned by this app (an http(s) URL or a base64 data URL).\n\n"
                    f"Returns:\n    the settings in this order: {', '.join(names)}")
    box = gr.File(label="Reuse settings: drop a PNG made here", file_types=[".png"], type="filepath", height=120)
    box.upload(user_errors(read), box, list(settings.values()), api_name=api_name)
    return box


def parse_launch_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a GAN Demo Hub app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to bind (0.0.0.0 to serve the network)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--root-path", default=os.environ.get("GRADIO_ROOT_PATH"), help="when behind a reverse proxy")
    return parser.parse_args(argv)


def app_kwargs(demo: gr.Blocks) -> dict:
    """``app_kwargs`` for launch() / mount_gradio_app(): the app's ``GET /health`` (``core.health``).

    The app's module is the one whose ``demo`` is ``demo`` (it holds ``TITLE`` and ``MODEL_IDS``); any other
    Blocks gets no extra route."""
    import sys

    from fastapi.routing import APIRoute

    from core import health

    module = next((m for m in list(sys.modules.values())
                   if getattr(m, "demo", None) is demo and hasattr(m, "MODEL_IDS") and hasattr(m, "TITLE")), None)
    if module is None:  # a Blocks that is not one of the apps: no health route
        return {}
    name = Path(module.__file__).parent.name  # apps/<name>/app.py, also when run as __main__

    def app_health() -> dict:
        return health.report({name: health.app_status(module)})

    return {"routes": [APIRoute("/health", app_health, methods=["GET"])]}


def launch(demo: gr.Blocks, argv: list[str] | None = None) -> None:
    """Launch one app with the hub's defaults and the command-line flags."""
    from core.device import tune_allocator

    args = parse_launch_args(argv)
    tune_allocator()
    demo.queue(max_size=QUEUE_MAX_SIZE).launch(
        server_name=args.host, server_port=args.port, share=args.share, root_path=args.root_path,
        app_kwargs=app_kwargs(demo), **LAUNCH_KWARGS
    )
