"""The inpainting app's endpoints without gradio: each function returns its outputs' values.

Outputs: the full-resolution result, a (before, after) pair of previews (at most
``PREVIEW_SIDE`` px), the mask used as a PNG-ready image of the photo's size (white = hole),
and Markdown notes. ``apps/inpaint/app.py`` only wires these to components and ends the notes
with the call that reproduces them. ``notify`` (the app passes ``gr.Warning``) is called with
each notice, such as a fallback to OpenCV. Torch and the models are imported on first use, so
importing this module (and the app) stays light.
"""

from __future__ import annotations

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
    from core.pipelines.inpaint import LEARNED
    from core.pipelines.inpaint_models import fill_model_id
    from core.weights import weights_present

    if method == "auto":
        method = next((m for m in LEARNED if weights_present(fill_model_id(m))), "telea")
    return f"inpaint:{method}", METHOD_SECONDS.get(method, UNMEASURED_SECONDS)


def _photo(image: Image.Image | None) -> Image.Image:
    if image is None:
        raise ValueError("Upload a photo first.")
    return image


def _compare_settings(methods: Any) -> list[str]:
    from core.pipelines.inpaint import METHODS

    chosen = list(dict.fromkeys(methods or []))
    if not chosen:
        raise ValueError(f"Choose at least one method to compare ({', '.join(m for m in METHODS if m != 'auto')}).")
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method {unknown[0]!r}; choose among {', '.join(METHODS)}.")
    return chosen


def inpaint_outputs(photo: Image.Image, mask: Any, extra_note: str = "", notify: Callable | None = None,
                    **settings) -> tuple:
    """(result, (before, after), mask PNG, notes) for ``mask`` on ``photo``; ``settings``: :class:`inpaint.Settings`."""
    from core.pipelines import inpaint
    from core.pipelines.inpaint_masks import mask_image

    result = inpaint.run(_photo(photo), mask, inpaint.Settings(**settings))
    if notify and result.notice:
        notify(result.notice)
    preview = (resize_max_side(photo, PREVIEW_SIDE), resize_max_side(result.image, PREVIEW_SIDE))
    notes = "\n\n".join(filter(None, [extra_note, inpaint.summary(result)]))
    return result.image, preview, mask_image(result.mask), notes


def editor_outputs(editor: dict | None, notify: Callable | None = None, **settings) -> tuple:
    """:func:`inpaint_outputs` for a ``gr.ImageEditor`` value: its photo, painted where its layers are."""
    from core.pipelines.inpaint_masks import mask_from_editor

    image, hole = mask_from_editor(editor)
    return inpaint_outputs(image, hole, notify=notify, **settings)


def select_outputs(photo: Image.Image, prompts: Any, selector: str = "auto", dilation: int = 0) -> tuple:
    """(overlay preview, mask PNG, notes) of the object under ``prompts``, dilated."""
    from core.pipelines import select
    from core.pipelines.inpaint_masks import dilate, mask_image, overlay_mask

    selection = select.run(_photo(photo), prompts, select.Settings(selector))
    hole = dilate(selection.mask, int(dilation))
    notes = [selection.notice, f"Selected {int(hole.sum()):,} pixels with **{SELECTOR_TITLES[selection.method]}**."]
    preview = resize_max_side(overlay_mask(photo, hole), PREVIEW_SIDE)
    return preview, mask_image(hole), "\n\n".join(filter(None, notes))


def remove_outputs(photo: Image.Image, prompts: Any, selector: str = "auto", mask: Any = None,
                   notify: Callable | None = None, **settings) -> tuple:
    """Select under ``prompts``, union with ``mask`` (if any), then dilate and inpaint: :func:`inpaint_outputs`."""
    from core.pipelines import select
    from core.pipelines.inpaint_masks import combine_masks

    selection = select.run(_photo(photo), prompts, select.Settings(selector))
    hole = combine_masks(photo.size, selection.mask, mask)
    return inpaint_outputs(photo, hole, selection.notice, notify, **settings)


def compare_outputs(photo: Image.Image, mask: Any, methods: list[str], **settings) -> tuple:
    """(gallery [(preview, caption)], (first, second) previews, mask PNG, notes) of each method on one mask."""
    from core.pipelines import inpaint
    from core.pipelines.inpaint_masks import mask_image

    chosen = _compare_settings(methods)
    runs = [inpaint.run(_photo(photo), mask, inpaint.Settings(method=method, **settings)) for method in chosen]
    previews = [(resize_max_side(r.image, PREVIEW_SIDE),
                 f"{inpaint.METHOD_TITLES.get(r.method, r.method)}: {r.details.get('seconds', 0.0):.1f} s")
                for r in runs]
    pair = (previews[0][0], previews[min(1, len(previews) - 1)][0])
    notes = "\n\n".join(dict.fromkeys(r.notice for r in runs if r.notice))
    return previews, pair, mask_image(runs[0].mask), notes


def extend_outputs(photo: Image.Image, left: int, top: int, right: int, bottom: int, method: str = "auto") -> tuple:
    """(extended image, mask PNG of the new area, notes)."""
    from core.pipelines import canvas, inpaint
    from core.pipelines.inpaint_masks import mask_image

    settings = canvas.Settings(left, top, right, bottom, fill=inpaint.Settings(method=method))
    result = canvas.run(_photo(photo), settings)
    return result.image, mask_image(result.mask), inpaint.summary(result)


def load_selector(model_id: str, device) -> Any:
    """Load Segment Anything ``model_id`` on ``device`` into the shared cache (ZeroGPU start-up)."""
    from core.pipelines.select import load_sam

    return load_sam(model_id, device)


def editor_with_mask(photo: Image.Image, mask: Any, editor: dict | None = None) -> dict:
    """An editor value: ``photo`` with ``mask`` painted, plus what ``editor`` holds when it shows the same photo."""
    from core.pipelines.inpaint_masks import editor_value, mask_from_editor, to_mask

    hole = to_mask(mask, _photo(photo).size)
    if editor and editor.get("background") is not None:
        current, painted = mask_from_editor(editor)
        if current.size == photo.size:
            hole |= painted
    return editor_value(photo, hole)


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
