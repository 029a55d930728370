"""Input components that refuse bad input with a message naming the problem, before any work.

Images pass ``core.images``' admission check (not an image, truncated, empty, decompression bomb,
over the pixel cap) before gradio decodes them; numbers are checked against their field's bounds.
Each renders in the browser as the gradio component it extends.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr

MAX_SEED = 2**32 - 1  # what every generator's manual_seed takes on every device, and A1111's range


def invalid_image(message: str) -> gr.Error:
    return gr.Error(message, title="Invalid image", print_exception=False)


def _load_upload(component: gr.Image, payload, keep_alpha: bool):
    from core.images import load_image

    if payload is None or payload.path is None:
        return gr.Image.preprocess(component, payload)
    try:
        return load_image(payload.path, keep_alpha=keep_alpha)
    except ValueError as e:
        raise invalid_image(str(e)) from e


class ImageInput(gr.Image):
    """``gr.Image`` whose upload goes through ``core.images.load_image``.

    Every bad-input check then gives the user a clear message instead of gradio's generic error,
    and the handler always receives an upright RGB ``PIL.Image``.
    """

    is_template = True  # rendered by the frontend as a plain Image

    def preprocess(self, payload):
        return _load_upload(self, payload, keep_alpha=False)


class MaskInput(gr.Image):
    """Like :class:`ImageInput`, but the handler receives RGBA: a mask's transparency is kept."""

    is_template = True

    def preprocess(self, payload):
        return _load_upload(self, payload, keep_alpha=True)


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
    same message as in :class:`ImageInput`.
    """

    def preprocess(self, payload):
        from core.images import open_image

        if payload is not None:
            for part, source in _editor_parts(self, payload):
                try:
                    open_image(source).close()
                except ValueError as e:
                    raise invalid_image(f"The editor's {part}: {e}") from e
        try:
            return super().preprocess(payload)
        except (OSError, SyntaxError, ValueError) as e:
            raise invalid_image(f"The image file is corrupt or truncated ({e}).") from e

    def get_block_name(self) -> str:  # rendered by the frontend as gradio's own editor
        return "imageeditor"

    def get_block_class(self) -> str:
        return "imageeditor"


class ImageEditor(_AdmittedEditor, gr.ImageEditor):
    """``gr.ImageEditor`` whose every image passes the admission check before it is decoded."""


class Sketchpad(_AdmittedEditor, gr.Sketchpad):
    """``gr.Sketchpad`` whose every image passes the admission check before it is decoded."""


def _checked_number(component, payload):
    """A number inside the component's bounds, or ``gr.Error`` naming the field and the bounds."""
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
