"""Files the latent lab writes and reads: latents (.safetensors or .npy), animations and strips.

A latent file holds one tensor ``latent``: z [nz], w [d] or W+ [n_latent, d]. The .safetensors
form records the generator, the space and the seed in its metadata; a .npy file is a plain float
array (read with ``allow_pickle=False``: never code) whose space the caller says. Uploads are
checked strictly (:func:`load_latent`) and every problem is a ``ValueError`` that says what is wrong.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

MAX_LATENT_BYTES = 1 << 20
MAX_ABS_VALUE = 1e3
LATENT_SUFFIXES = (".safetensors", ".npy")


@dataclass
class LatentFile:
    latent: torch.Tensor  # float32
    space: str  # "z" or "w"
    seed: int | None
    model: str | None  # the generator recorded in the file (.safetensors only)


def save_latent(path: str | Path, latent: torch.Tensor, model_id: str, space: str, seed: int | None = None) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"model": model_id, "space": space, "seed": "" if seed is None else str(int(seed)),
            "about": "GAN Demo Hub latent lab: upload this file to the latent app again"}
    if path.suffix == ".npy":
        np.save(path, latent.detach().float().cpu().numpy())
    else:
        save_file({"latent": latent.detach().float().cpu().contiguous()}, str(path), metadata=meta)
    return path


def expected_shapes(gen, space: str) -> list[tuple[int, ...]]:
    if space == "w" and gen.kind == "stylegan2":
        return [(gen.nz,), (gen.model.n_latent, gen.nz)]
    return [(gen.nz,)]


def load_latent(path: str | Path, gen, space: str = "z") -> LatentFile:
    """Read and check an uploaded latent for generator ``gen`` (``space``: the space of a .npy file)."""
    path = Path(path)
    name = path.name
    if path.suffix.lower() not in LATENT_SUFFIXES:
        raise ValueError(f"{name}: a latent file must be .safetensors or .npy (as downloaded from this app).")
    if not path.is_file():
        raise ValueError(f"{name}: the file was not received.")
    if path.stat().st_size > MAX_LATENT_BYTES:
        raise ValueError(f"{name} is {path.stat().st_size / 2**20:.1f} MB; a latent file is at most 1 MB.")
    seed = model = None
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{name} is not a plain numeric .npy array ({e}).") from None
        except Exception:
            raise ValueError(f"{name} is not a valid .npy file.") from None
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{name} holds {array.dtype} values; a latent is an array of floats.")
        tensor = torch.from_numpy(array.astype(np.float32))
    else:
        tensor, meta = _read_safetensors_latent(path)
        model, space = meta.get("model") or None, meta.get("space") or space
        seed = int(meta["seed"]) if meta.get("seed", "").lstrip("-").isdigit() else None
        if model is not None and gen.model_id and model != gen.model_id:
            raise ValueError(f"{name} is a latent of {model}; choose that generator to use it (not {gen.model_id}).")
    if space not in gen.spaces:
        raise ValueError(f"{name} is a {space}-space latent, which the {gen.kind.upper()} generator does not have.")
    if tensor.ndim == 2 and tensor.shape[0] == 1:
        tensor = tensor[0]
    shapes = expected_shapes(gen, space)
    if tuple(tensor.shape) not in shapes:
        wanted = " or ".join(str(list(s)) for s in shapes)
        raise ValueError(f"{name} has shape {list(tensor.shape)}; a {space} latent of this generator is {wanted}.")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    if tensor.abs().max() > MAX_ABS_VALUE:
        raise ValueError(f"{name} has values up to {float(tensor.abs().max()):.3g}; latents stay well within "
                         f"+-{MAX_ABS_VALUE:g}.")
    return LatentFile(tensor.float(), space, seed, model)


def _read_safetensors_latent(path: Path) -> tuple[torch.Tensor, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            keys, meta = list(f.keys()), f.metadata() or {}
            if keys != ["latent"]:
                raise ValueError(f"{path.name} must hold exactly one tensor named 'latent', found {keys or 'none'}.")
            tensor = f.get_tensor("latent")
    except ValueError:
        raise
    except Exception:
        raise ValueError(f"{path.name} is not a valid .safetensors file.") from None
    if not tensor.is_floating_point():
        raise ValueError(f"{path.name} holds {tensor.dtype} values; a latent is a float tensor.")
    return tensor.float(), meta


# --- animations and strips ------------------------------------------------------------------------
def animated_webp(frames: np.ndarray, path: str | Path, fps: float = 12.0, max_side: int = 256) -> Path:
    """Write uint8 frames [T, H, W, 3] as a looping animated WebP (downscaled to ``max_side``)."""
    images = [_fit(Image.fromarray(f), max_side) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="WEBP", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                   loop=0, quality=90, method=4)
    Path(path).write_bytes(buffer.getvalue())
    return Path(path)


def strip(frames: np.ndarray, cell: int = 96) -> Image.Image:
    """The frames side by side, each ``cell`` px high."""
    images = [_fit(Image.fromarray(f), cell, upscale=True) for f in frames]
    out = Image.new("RGB", (sum(i.width for i in images), images[0].height))
    x = 0
    for image in images:
        out.paste(image, (x, 0))
        x += image.width
    return out


def _fit(image: Image.Image, side: int, upscale: bool = False) -> Image.Image:
    if image.height == side or (image.height < side and not upscale):
        return image
    resample = Image.Resampling.NEAREST if image.height < side else Image.Resampling.LANCZOS
    return image.resize((round(image.width * side / image.height), side), resample)
