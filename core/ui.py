"""Shared Gradio pieces: model-card header, weights notices, error mapping, launch flags."""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import gradio as gr

from core.limits import max_upload_bytes
from core.weights import WeightsUnavailableError, availability, get_entry, how_to_provide

def _save_pil_to_cache_atomically(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """gradio's ``processing_utils.save_pil_to_cache``, made safe for concurrent identical outputs.

    The cache is content-addressed (a folder per hash of the encoded bytes), and gradio 6.31
    rewrites the file in place: when two users get the same image (the same example and seed),
    one rewrite can truncate the file while the other user's client is downloading it, and that
    download fails ("peer closed connection", seen by ``bench/stress.py``). Here an existing
    file is kept (its time renewed, so the hourly clean-up counts from this result), and a new
    one appears at once through a rename.
    """
    from gradio import processing_utils

    data = encode_image(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    target = (folder / f"{name}.{format}").resolve()
    if target.is_file() and target.stat().st_size == len(data):
        try:  # a fresh result: gradio's delete_cache ages files by ctime, which utime renews
            os.utime(target)
        except OSError:
            pass
    else:
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
LAUNCH_KWARGS = dict(max_file_size=max_upload_bytes(), footer_links=["api", "gradio", "settings"], mcp_server=MCP_SERVER)
QUEUE_MAX_SIZE = int(os.environ.get("GANHUB_QUEUE_MAX_SIZE", "16"))
# Every app's gr.Blocks(delete_cache=...): each hour, files gradio cached for uploads and outputs
# that are more than an hour old are deleted, so a long-running server does not fill its disk.
DELETE_CACHE = (3600, 3600)


def _invalid_image(message: str) -> gr.Error:
    return gr.Error(message, title="Invalid image", print_exception=False)


def _load_upload(component: gr.Image, payload, keep_alpha: bool):
    from core.images import load_image

    if payload is None or payload.path is None:
        return gr.Image.preprocess(component, payload)
    try:
        return load_image(payload.path, keep_alpha=keep_alpha)
    except ValueError as e:
        raise _invalid_image(str(e)) from e


def _editor_parts(component: gr.ImageEditor, payload) -> list[tuple[str, Any]]:
    """(part name, file path or bytes) of an editor value: uploaded files, or the canvas's blobs."""
    if payload.id is not None:
        value = component.blob_storage.get(payload.id)
        if value is None:
            return []
    else:
        value = payload
    parts = [("background", value.background), *(("layer", x) for x in value.layers or []),
             ("composite", value.composite)]
    return [(name, getattr(f, "path", f)) for name, f in parts if f is not None]


class _AdmittedEditor:
    """``preprocess`` of an image editor with the admission check in front of gradio's decoding.

    gradio decodes the background, every layer and the composite itself (to the editor's mode,
    RGBA here), so a few KB of 1-bit PNG declaring 15000x15000 pixels would cost gigabytes
    before the handler could refuse it. Each part's header and size are checked first
    (``core.images.open_image``); what cannot be decoded afterwards (a truncated file) gets the
    same message as in ``ImageInput``.
    """

    def preprocess(self, payload):
        from core.images import open_image

        if payload is not None:
            for part, source in _editor_parts(self, payload):
                try:
                    open_image(source).close()
                except ValueError as e:
                    raise _invalid_image(f"The editor's {part}: {e}") from e
        try:
            return super().preprocess(payload)
        except (OSError, SyntaxError, ValueError) as e:
            raise _invalid_image(f"The image file is corrupt or truncated ({e}).") from e

    def get_block_name(self) -> str:  # rendered by the frontend as gradio's own editor
        return "imageeditor"

    def get_block_class(self) -> str:
        return "imageeditor"


class ImageEditor(_AdmittedEditor, gr.ImageEditor):
    """``gr.ImageEditor`` whose every image passes the admission check before it is decoded."""


class Sketchpad(_AdmittedEditor, gr.Sketchpad):
    """``gr.Sketchpad`` whose every image passes the admission check before it is decoded."""


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
        fmt = lambda v: str(int(v)) if float(v).is_integer() else f"{v:g}"  # noqa: E731  (seeds: all digits)
        bounds = f"between {fmt(low)} and {fmt(high)}" if low is not None and high is not None else (
            f"at least {fmt(low)}" if low is not None else f"at most {fmt(high)}")
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


MAX_SEED = 2**32 - 1  # what every generator's manual_seed takes on every device, and A1111's range


def seed_field(label: str = "Seed (-1 = random)", value: int = -1, random_allowed: bool = True, **kwargs) -> Number:
    """A whole-number seed field bounded to 0..MAX_SEED (and -1 for a random seed when allowed):
    the API answers an out-of-range seed with a message naming the field and the bounds."""
    return Number(value, precision=0, minimum=-1 if random_allowed else 0, maximum=MAX_SEED, label=label, **kwargs)


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
    Put this decorator below :func:`in_lane` (or `heavy`), so that waiting in a lane happens outside
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

    from core.weights import load_model

    load = load or (lambda model_id: load_model(model_id, device=torch.device("cuda")))
    loaded = []
    for model_id in model_ids:
        if availability(model_id)[0]:
            load(model_id)
            loaded.append(model_id)
    return loaded


def _progress_of(args, kwargs) -> gr.Progress | None:
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, gr.Progress)), None)


def in_lane(cost: Callable[..., tuple[str, float]]) -> Callable[[Callable], Callable]:
    """Run a handler in the lane its cost calls for (``core.lanes``): ``cost(*args, **kwargs)`` gives
    the job's kind and its expected seconds on this hardware (from the benchmarks); under a second
    is the light lane, anything else the device's heavy lane. While the job waits, a ``gr.Progress``
    argument of the handler shows its position and the estimated wait (from the durations measured
    here, ``core.limits.JOB_CLOCK``). Works for generator (streaming) handlers."""
    from core.lanes import LaneFullError, lane, lane_for
    from core.limits import JOB_CLOCK

    def decorate(fn: Callable) -> Callable:
        @contextlib.contextmanager
        def slot(args, kwargs):
            kind, expected = cost(*args, **kwargs)
            chosen = lane(lane_for(expected))
            progress = _progress_of(args, kwargs)

            def on_wait(position: int, seconds: float) -> None:
                if progress is not None:
                    progress(0, desc=f"Waiting for the {chosen.name}: queue position {position}, about "
                                     f"{max(1, round(seconds))} s")

            try:
                job = f"job:{kind}"  # seconds per job (apps may measure their own units under ``kind``)
                with chosen.enter(JOB_CLOCK.estimate(job, 1, prior=expected), on_wait):
                    started = time.monotonic()
                    yield
                    JOB_CLOCK.record(job, 1, time.monotonic() - started)
            except LaneFullError as e:
                raise gr.Error(str(e), title="Server busy", print_exception=False) from None

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def generator_wrapper(*args, **kwargs):
                with slot(args, kwargs):
                    yield from fn(*args, **kwargs)

            return generator_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with slot(args, kwargs):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


HEAVY_PRIOR_SECONDS = 30.0  # the wait announced for a heavy job of a kind not measured here yet


def heavy(fn: Callable) -> Callable:
    """Run a handler that always does heavy model work in the device's heavy lane (one job per device
    across the hub's apps; see :func:`in_lane`)."""
    return in_lane(lambda *args, **kwargs: (fn.__qualname__, HEAVY_PRIOR_SECONDS))(fn)


def light(fn: Callable) -> Callable:
    """Run a handler that always takes well under a second (no model, a tiny one) in the light lane."""
    return in_lane(lambda *args, **kwargs: (fn.__qualname__, 0.0))(fn)


# The events of an app's jobs. gradio's queue (which shows each waiting user their position and
# an estimated wait) hands an app's jobs to the lanes, which run them by cost: several at once for
# events that may be light, so a quick job never waits in gradio's queue behind a long one of the
# same app; one at a time per device for handlers that are always heavy.
JOB_EVENTS = dict(concurrency_id="jobs", concurrency_limit=int(os.environ.get("GANHUB_APP_WORKERS", "4")))
HEAVY_EVENTS = dict(concurrency_id="heavy", concurrency_limit=int(os.environ.get("GANHUB_DEVICE_CONCURRENCY", "1")))


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
