"""How output images are shipped: the encodings gradio serves, display-size previews, streamed
previews only for the page that shows them, a race-free write into gradio's file cache and a
job's images encoded at the same time (both installed when ``core.ui`` is imported)."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import Any

# Measured in bench/RESULTS.md ("What an image costs to ship"): PNG level 1 encodes ~3x faster than
# PIL's default level 6 for ~3% more bytes; previews are JPEG (q90, 4:4:4), ~100x faster than PNG.
PNG_COMPRESS_LEVEL = 1
JPEG_QUALITY = 90
# Before/after sliders and other previews: JPEG at display size; the result itself is a full PNG.
PREVIEW_FORMAT, PREVIEW_SIDE = "jpeg", 1024


def encode_image(img, format: str = "png") -> bytes:
    """The bytes gradio serves for an output image: PNG keeps the image's text metadata (the
    ``parameters`` and ``gradio_client`` chunks) at :data:`PNG_COMPRESS_LEVEL`; JPEG is for previews."""
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


def preview(image, side: int = PREVIEW_SIDE):
    """``image`` at display size (at most ``side`` px), for outputs in :data:`PREVIEW_FORMAT`."""
    from core.images import resize_max_side

    return resize_max_side(image, side)


def contact_sheet(rows, heights=(192,), gap: int = 8, caption_height: int = 22):
    """Several captioned images as one RGB image: one output file instead of a gallery's many.

    ``rows``: lists of (image, caption); row i is scaled to ``heights[i]`` px (the last height for
    the rows after; an image already that tall keeps its pixels), captions are written above their
    image, empty rows are left out. Every file a call returns costs a ``gradio_client`` script its
    own HTTP request (bench/RESULTS.md, "Round trip"), so views that belong together ship as one PNG."""
    from PIL import Image, ImageDraw, ImageFont

    def scaled(tile, height):
        if tile.height == height:
            return tile
        return tile.resize((max(1, round(tile.width * height / tile.height)), height), Image.Resampling.LANCZOS)

    heights = list(heights)
    rows = [(heights[min(i, len(heights) - 1)], row) for i, row in enumerate(rows)]
    rows = [(height, [(scaled(tile, height), caption) for tile, caption in row]) for height, row in rows if row]
    if not rows:
        raise ValueError("a contact sheet needs at least one image")
    width = max(sum(t.width for t, _ in row) + gap * (len(row) - 1) for _, row in rows)
    total = sum(caption_height + height for height, _ in rows) + gap * (len(rows) - 1)
    sheet = Image.new("RGB", (width, total), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=caption_height - 8)
    y = 0
    for height, row in rows:
        x = 0
        for tile, caption in row:
            draw.text((x + 2, y + 3), caption, fill=(40, 40, 40), font=font)
            sheet.paste(tile.convert("RGB"), (x, y + caption_height))
            x += tile.width + gap
        y += caption_height + height + gap
    return sheet


def preview_file(image, side: int = PREVIEW_SIDE) -> str:
    """A streamed preview as a JPEG at display size in gradio's cache; yield its path to an image
    or gallery output. gradio serves a cached file as it is, so the component's own format (PNG,
    for the final result) is not spent on previews."""
    from gradio.utils import get_upload_folder

    return save_pil_to_cache_atomically(preview(image, side), get_upload_folder(), "preview", PREVIEW_FORMAT)


def sees_previews(request) -> bool:
    """Whether a streaming handler's previews reach someone who looks at them: the app's own page
    (gradio's frontend sends ``x-gradio-user: app`` with each job). ``gradio_client`` scripts
    (``api``), MCP agents (``mcp``), raw HTTP callers and in-process calls take the final result;
    gradio_client downloads every streamed file, each costing it a new HTTP connection and TLS
    context (bench/RESULTS.md), so those callers get the progress notes without the images."""
    headers = getattr(request, "headers", None)
    return headers is not None and headers.get("x-gradio-user") == "app"


def save_pil_to_cache_atomically(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
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


def install_atomic_image_cache() -> None:
    """Make gradio write every output image through :func:`save_pil_to_cache_atomically`."""
    from gradio import processing_utils

    processing_utils.save_pil_to_cache = save_pil_to_cache_atomically


def _own_images(block_fn, predictions, state) -> list[tuple[int, Any, Any]]:
    """(output index, image component, PIL image) for each ``gr.Image`` output that gradio would
    encode itself: a PIL value on a component without a watermark."""
    import gradio as gr
    from PIL import Image

    if not block_fn.postprocess or not isinstance(predictions, (list, tuple)) \
            or len(predictions) != len(block_fn.outputs):
        return []
    found = []
    for index, (block, value) in enumerate(zip(block_fn.outputs, predictions)):
        if state is not None and block._id in state:
            block = state[block._id]  # the session's copy of the component, as gradio uses it
        watermark = getattr(block, "watermark", None)
        if isinstance(block, gr.Image) and isinstance(value, Image.Image) \
                and getattr(watermark, "watermark", None) is None:
            found.append((index, block, value))
    return found


def install_concurrent_image_encoding() -> None:
    """A job's output images are encoded at the same time, not one after another.

    gradio 6.31 postprocesses a job's outputs in turn; the glasses app's three PNGs took 9 + 9 + 15
    ms that way (bench/RESULTS.md, "Round trip"). Pillow releases the GIL while it encodes, so
    each image is written into the cache in its own thread first (as gradio would write it, through
    ``processing_utils.save_pil_to_cache``) and gradio then ships the cached file as it is."""
    import anyio
    from gradio import image_utils
    from gradio.blocks import Blocks

    original = Blocks.postprocess_data
    if getattr(original, "encodes_concurrently", False):
        return

    async def postprocess_data(self, block_fn, predictions, state):
        images = _own_images(block_fn, predictions, state)
        if len(images) > 1:
            paths = [None] * len(images)

            async def encode(slot, block, image):
                paths[slot] = await anyio.to_thread.run_sync(
                    image_utils.save_image, image, block.GRADIO_CACHE, block.format)

            try:
                async with anyio.create_task_group() as group:
                    for slot, (_, block, image) in enumerate(images):
                        group.start_soon(encode, slot, block, image)
            except Exception:  # e.g. a mode PNG cannot hold: gradio's own path reports it as it always does
                return await original(self, block_fn, predictions, state)
            predictions = list(predictions)
            for (index, _, _), path in zip(images, paths):
                predictions[index] = path
        return await original(self, block_fn, predictions, state)

    postprocess_data.encodes_concurrently = True
    Blocks.postprocess_data = postprocess_data
