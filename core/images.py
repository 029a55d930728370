"""Image I/O and THE tensor convention of the hub.

Every image that enters ``core`` goes through :func:`load_image`, which returns an RGB
``PIL.Image`` the right way up, whatever the user sent (EXIF-rotated phone photos, RGBA,
palette, grayscale, 16-bit, CMYK). Models take float NCHW tensors, by default in [-1, 1]
(:func:`to_tensor` / :func:`to_pil`). Bad input raises ``ValueError`` with a message fit to
show a user.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from core.limits import DEFAULT_MAX_PIXELS, max_pixels, max_upload_bytes

# PIL's own bomb check, kept as a second line of defence for direct PIL use elsewhere.
Image.MAX_IMAGE_PIXELS = 4 * DEFAULT_MAX_PIXELS


def _check_size(width: int, height: int, limit: int) -> None:
    if width < 1 or height < 1:
        raise ValueError(f"The image is empty ({width}x{height} pixels).")
    if width * height > limit:
        raise ValueError(
            f"The image is too large: {width}x{height} = {width * height / 1e6:.1f} MP; "
            f"the limit is {limit / 1e6:.0f} MP. Please downscale it first."
        )


def _check_bytes(size: int, name: str) -> None:
    if size == 0:
        raise ValueError(f"The file {name} is empty (0 bytes).")
    if size > max_upload_bytes():
        raise ValueError(f"The file {name} is too large: {size / 2**20:.1f} MB; the limit is "
                         f"{max_upload_bytes() / 2**20:.0f} MB.")


def open_image(source: str | os.PathLike | bytes | io.IOBase, limit: int | None = None) -> Image.Image:
    """THE admission check of every uploaded image: a lazily opened ``PIL.Image`` whose pixels
    are not decoded yet, or ``ValueError``.

    Only the file's size and the image header are read: an empty, oversized or non-image file,
    and an image over the pixel cap (a decompression bomb: a few KB of PNG declaring gigapixels),
    are refused before any memory is spent on pixels.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"No image file named {path.name} was received.")
        _check_bytes(path.stat().st_size, path.name)
        fp: Any = path
    elif isinstance(source, (bytes, bytearray, memoryview)):
        _check_bytes(len(source), "sent")
        fp = io.BytesIO(source)
    else:
        fp = source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp)
    except UnidentifiedImageError as e:
        raise ValueError("This file is not an image that can be read (PNG, JPEG, WebP, BMP, TIFF...).") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"The image is too large to open safely: {e}") from e
    except (OSError, SyntaxError, ValueError) as e:  # a header cut short
        raise ValueError(f"The image file is corrupt or truncated ({e}).") from e
    _check_size(*image.size, limit or max_pixels())
    return image


def _array_to_pil(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"Expected an image array of shape HxW, HxWx3 or HxWx4, got {array.shape}.")
    if array.dtype == np.uint8:
        pass
    elif array.dtype == np.uint16:
        array = (array.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("The image array contains NaN or infinite values.")
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    else:
        raise ValueError(f"Unsupported image array dtype {array.dtype}.")
    return Image.fromarray(np.ascontiguousarray(array))


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB. Transparency is composited over ``background``."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        array = np.clip(array / top * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(array, "L").convert("RGB")
    if mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def load_image(source: Any, *, limit: int | None = None, keep_alpha: bool = False) -> Image.Image:
    """Return an upright RGB ``PIL.Image`` from a path, bytes, file object, PIL image or array.

    Raises ``ValueError`` for unreadable, empty, truncated or oversized images (the cap is
    checked from the header, before the pixels are decoded). With ``keep_alpha`` the result is
    RGBA (opaque where the source had no alpha), for masks whose transparency means something.
    """
    if source is None:
        raise ValueError("No image was given.")
    limit = limit or max_pixels()
    if isinstance(source, np.ndarray):
        image = _array_to_pil(source)
    elif isinstance(source, Image.Image):
        image = source
    else:
        image = open_image(source, limit)
    _check_size(*image.size, limit)
    try:
        image.load()
        image = ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"The image file is corrupt or truncated ({e}).") from e
    if keep_alpha and (image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        rgba = to_rgb(image.convert("RGBA"), background=(0, 0, 0)).convert("RGBA")
        rgba.putalpha(alpha)
        return rgba
    rgb = to_rgb(image)
    return rgb.convert("RGBA") if keep_alpha else rgb


def to_tensor(image: Image.Image, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """RGB PIL image -> float32 tensor [1, 3, H, W] scaled to ``value_range``."""
    array = np.asarray(to_rgb(image), dtype=np.float32) / 255.0
    low, high = value_range
    tensor = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
    return tensor * (high - low) + low


def to_pil(tensor: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> Image.Image:
    """Tensor [1, 3, H, W] or [3, H, W] in ``value_range`` -> RGB PIL image.

    Values are clamped and rounded to the nearest integer (the reference scripts truncate,
    which darkens every pixel by half a level on average).
    """
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of {tensor.shape[0]}.")
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise ValueError(f"Expected a [3, H, W] image tensor, got shape {tuple(tensor.shape)}.")
    low, high = value_range
    unit = ((tensor.detach().float().cpu() - low) / (high - low)).clamp(0, 1)
    array = (unit * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def pad_to_multiple(tensor: torch.Tensor, multiple: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom/right of an NCHW (or CHW) tensor so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) for :func:`unpad`. ``mode`` is a
    ``torch.nn.functional.pad`` mode (reflect falls back to replicate when the image is smaller
    than the padding) or ``symmetric``: the mirror that repeats the edge row, as
    ``numpy.pad(mode="symmetric")`` and LaMa's ``pad_img_to_modulo`` (``[1, 2, 3] -> [1, 2, 3, 3, 2]``),
    for any dtype and any amount of padding.
    """
    height, width = tensor.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return tensor, (height, width)
    if mode == "symmetric":
        rows, cols = _symmetric_index(height, pad_h), _symmetric_index(width, pad_w)
        return tensor.index_select(-2, rows.to(tensor.device)).index_select(-1, cols.to(tensor.device)), (height, width)
    if mode == "reflect" and (pad_h >= height or pad_w >= width):
        mode = "replicate"
    return F.pad(tensor, (0, pad_w, 0, pad_h), mode=mode), (height, width)


def _symmetric_index(length: int, pad: int) -> torch.Tensor:
    """Source indices of a symmetric mirror of ``length`` items extended by ``pad`` (period 2 x length)."""
    position = torch.arange(length + pad) % (2 * length)
    return torch.where(position < length, position, 2 * length - 1 - position)


def unpad(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`."""
    height, width = size
    return tensor[..., :height, :width]


def resize_max_side(image: Image.Image, max_side: int, resample: int = Image.Resampling.LANCZOS) -> Image.Image:
    """Downscale so the longer side is at most ``max_side`` (never upscales)."""
    width, height = image.size
    scale = max_side / max(width, height)
    if scale >= 1:
        return image
    return image.resize((max(1, round(width * scale)), max(1, round(height * scale))), resample)
