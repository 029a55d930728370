"""The inpainting app's endpoints without gradio: each function returns its outputs' values.

Outputs: the full-resolution result, a (before, after) pair of previews (at most
``PREVIEW_SIDE`` px), the mask used as a PNG-ready image of the photo's size (white = hole),
and Markdown notes. ``apps/inpaint/app.py`` only wires these to components. ``notify`` (the app
passes ``gr.Warning``) is called with each notice, such as a fallback to OpenCV. Torch and the
models are imported on first use, so importing this module (and the app) stays light.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from core.images import resize_max_side

PREVIEW_SIDE = 1536
SELECTOR_TITLES = {"grabcut": "OpenCV GrabCut", "sam": "Segment Anything ViT-B"}


# Seconds of work on a 2-core CPU (the app's README): OpenCV methods use no model and take a fraction
# of a second, so they run in the light lane; the GAN methods in the device's heavy lane.
METHOD_SECONDS = {"telea": 0.2, "ns": 0.2, "migan": 5.0, "lama": 10.0}
UNMEASURED_SECONDS = 30.0


def job_cost(method: str) -> tuple[str, float]:
    """(job kind, expected seconds) of an inpainting with ``method``, for the lanes (``core.ui.in_lane``)."""
    from core.weights import availability

    if method == "auto":
        method = next((m for m, model_id in (("migan", "migan.places2_512"), ("lama", "lama.big_lama"))
                       if availability(model_id)[0]), "telea")
    return f"inpaint:{method}", METHOD_SECONDS.get(method, UNMEASURED_SECONDS)


def _photo(image: Image.Image | None) -> Image.Image:
    if image is None:
        raise ValueError("Upload a photo first.")
    return image


def _whole_numbers(settings: dict) -> dict:
    """Slider values as ints (gradio may send 4.0 for 4)."""
    return {k: int(v) if k in ("dilation", "working_size", "margin") else v for k, v in settings.items()}


def inpaint_outputs(photo: Image.Image, mask: Any, extra_note: str = "", notify: Callable | None = None,
                    **settings) -> tuple:
    """(result, (before, after), mask PNG, notes) for ``mask`` on ``photo``; ``settings`` go to ``inpaint``."""
    from core.pipelines import inpaint as ip

    start = time.perf_counter()
    result = ip.inpaint(_photo(photo), mask, **_whole_numbers(settings))
    seconds = time.perf_counter() - start
    if notify and result.notice:
        notify(result.notice)
    preview = (resize_max_side(photo, PREVIEW_SIDE), resize_max_side(result.image, PREVIEW_SIDE))
    notes = "\n\n".join(filter(None, [extra_note, ip.summary(result, seconds, photo.size)]))
    return result.image, preview, ip.mask_image(result.mask), notes


def select_outputs(photo: Image.Image, prompts: Any, selector: str = "auto", dilation: int = 0) -> tuple:
    """(overlay preview, mask PNG, notes) of the object under ``prompts``, dilated."""
    from core.pipelines import inpaint as ip
    from core.pipelines.select import select_object

    selection = select_object(_photo(photo), prompts, method=selector)
    hole = ip.dilate(selection.mask, int(dilation))
    notes = [selection.notice, f"Selected {int(hole.sum()):,} pixels with **{SELECTOR_TITLES[selection.method]}**."]
    preview = resize_max_side(ip.overlay_mask(photo, hole), PREVIEW_SIDE)
    return preview, ip.mask_image(hole), "\n\n".join(filter(None, notes))


def remove_outputs(photo: Image.Image, prompts: Any, selector: str = "auto", mask: Any = None,
                   notify: Callable | None = None, **settings) -> tuple:
    """Select under ``prompts``, union with ``mask`` (if any), then dilate and inpaint: :func:`inpaint_outputs`."""
    from core.pipelines.inpaint import combine_masks
    from core.pipelines.select import select_object

    selection = select_object(_photo(photo), prompts, method=selector)
    hole = combine_masks(photo.size, selection.mask, mask)
    return inpaint_outputs(photo, hole, selection.notice, notify, **settings)


def compare_outputs(photo: Image.Image, mask: Any, methods: list[str], **settings) -> tuple:
    """(gallery [(preview, caption)], (first, second) previews, mask PNG, notes) of each method on one mask."""
    from core.pipelines import inpaint as ip

    runs = ip.compare_methods(_photo(photo), mask, list(methods or []), **_whole_numbers(settings))
    previews = [(resize_max_side(r.image, PREVIEW_SIDE), f"{ip.METHOD_TITLES.get(r.method, r.method)}: {s:.1f} s")
                for r, s in runs]
    pair = (previews[0][0], previews[min(1, len(previews) - 1)][0])
    notes = "\n\n".join(dict.fromkeys(r.notice for r, _ in runs if r.notice))
    return previews, pair, ip.mask_image(runs[0][0].mask), notes


def extend_outputs(photo: Image.Image, left: int, top: int, right: int, bottom: int, method: str = "auto") -> tuple:
    """(extended image, mask PNG of the new area, notes)."""
    from core.pipelines import inpaint as ip
    from core.pipelines.canvas import extend_canvas

    start = time.perf_counter()
    result = extend_canvas(_photo(photo), int(left), int(top), int(right), int(bottom), method=method)
    return result.image, ip.mask_image(result.mask), ip.summary(result, time.perf_counter() - start, result.image.size)


def load_selector(model_id: str, device) -> Any:
    """Load Segment Anything ``model_id`` on ``device`` into the shared cache (ZeroGPU start-up)."""
    from core.pipelines.select import load_sam

    return load_sam(model_id, device)


def editor_with_mask(photo: Image.Image, mask: Any, editor: dict | None = None) -> dict:
    """An editor value: ``photo`` with ``mask`` painted, plus what ``editor`` holds when it shows the same photo."""
    from core.pipelines import inpaint as ip

    hole = ip.to_mask(mask, _photo(photo).size)
    if editor and editor.get("background") is not None:
        current, painted = ip.mask_from_editor(editor)
        if current.size == photo.size:
            hole |= painted
    return ip.editor_value(photo, hole)


# The /inpaint tool's description (the app sets it as the handler's docstring; MCP reads it).
INPAINT_DOC = """Remove an object or fill a hole: the white pixels of the mask are replaced, every other pixel is kept.

    Args:
        image: the photo (an http(s) URL or a base64 data URL when called as a tool).
        mask: the "Mask (white = hole)" image, any size with the photo's proportions (nearest-neighbour).
        method: "Method": auto (MI-GAN, else LaMa if downloaded, else Telea), migan, lama, telea or ns (offline).
        dilation: "Mask dilation (px)": grow the hole to cover the object's edges and shadow (0-64).
        strategy: "High resolution" strategy: crop (a crop around the mask) or full (the whole image).
        working_size: "Working size (px)": larger crops are inpainted downscaled, then pasted back.
        margin: "Context margin around the mask (px)" given to the model.
"""
