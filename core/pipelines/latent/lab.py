"""The latent lab app's procedures, from request values to images, files and notes.

Models come from the manifest through the shared cache; latents come from a seed or an uploaded
file (:mod:`core.pipelines.latent_files`); the work is :mod:`core.pipelines.latent`,
:mod:`core.pipelines.latent_attributes` and :mod:`core.pipelines.latent_inversion`. Files handed
to the user are written under ``$TMPDIR/ganhub-latent`` and deleted after an hour.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.pipelines import latent as lab
from core.pipelines import latent_attributes as attrs
from core.pipelines import latent_files as files
from core.pipelines import latent_inversion as inv

GENERATORS = {"dcgan.faces64": "DCGAN 64 px faces (offline)", "stylegan2.ffhq1024": "StyleGAN2 FFHQ 1024 px"}
ENCODER_ID = "latent.encoder_dcgan64"
# The smallest of alpha = 1, 1.5, 2 that flips at least 75% of held-out faces without the attribute
# (all but eyeglasses flip 77-94% at 1-1.5; eyeglasses 42% / 63% / 75%): apps/latent/README.md.
DEFAULT_ALPHA = {"eyeglasses": 2.0, "yaw": 1.0, "mouth_width": 1.5, "hair_brightness": 1.0, "skin_brightness": 1.0}
ON_DEMAND_SAMPLES = 300  # faces measured to compute a generator's directions when none are shipped
OUT_DIR = Path(tempfile.gettempdir()) / "ganhub-latent"
MAX_AGE_S = 3600


def out_path(name: str) -> Path:
    """A fresh path for a file handed to the user (older files of this folder are removed)."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in OUT_DIR.glob("*/*"):
        if now - old.stat().st_mtime > MAX_AGE_S:
            old.unlink(missing_ok=True)
            try:
                old.parent.rmdir()
            except OSError:
                pass
    folder = OUT_DIR / uuid.uuid4().hex[:12]
    folder.mkdir()
    return folder / name


def load_float32(model_id: str):
    """A model as the lab runs it (float32 on the default device), e.g. to preload it."""
    from core.weights import load_model

    return load_model(model_id, dtype=torch.float32)


def generator(model_id: str) -> lab.LatentGenerator:
    from core.cache import MODEL_CACHE

    if model_id not in GENERATORS:
        raise ValueError(f"Unknown generator {model_id!r}; choose one of {', '.join(GENERATORS)}.")
    model = load_float32(model_id)
    key = (model_id, "latent_generator", id(model))
    return MODEL_CACHE.get_or_load(key, lambda: lab.LatentGenerator(model, model_id), size=lambda g: 0)


def latent_of(gen: lab.LatentGenerator, seed, upload, space: str = "z", psi: float = 1.0) -> tuple[torch.Tensor, str]:
    """The latent in ``space`` from an uploaded file (if any) or the seed, and a short description."""
    gen.check_space(space)
    if upload:
        loaded = files.load_latent(upload, gen, space if Path(upload).suffix.lower() == ".npy" else "z")
        name = Path(upload).name
        if loaded.space == space:
            return loaded.latent, f"{name} ({space})"
        if loaded.space == "w":
            raise ValueError(f"{name} is a W latent; it cannot be used in z (choose the W space).")
        return gen.to_w(loaded.latent[None], psi)[0], f"{name} (z, mapped to W at psi {psi:g})"
    if seed is None:
        raise ValueError("Give a seed or upload a latent file.")
    z = gen.z_from_seeds([int(seed)])
    return (gen.to_w(z, psi)[0] if space == "w" else z[0]), f"seed {int(seed)}"


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(a) for a in lab.to_uint8(images)]


def sample_grid(model_id: str, seed: int, count: int, psi: float = 1.0):
    """(gallery [(image, caption)], latent files, notes) for ``count`` samples with seeds seed, seed + 1, ..."""
    gen = generator(model_id)
    if not 1 <= count <= 64:
        raise ValueError(f"The number of samples must be between 1 and 64, got {count}.")
    seeds = list(range(int(seed), int(seed) + int(count)))
    z = gen.z_from_seeds(seeds)
    images = to_pil(gen.decode(z, "z", psi))
    paths = [str(files.save_latent(out_path(f"{model_id}_seed{s}.safetensors"), z[i], model_id, "z", s))
             for i, s in enumerate(seeds)]
    notes = f"Seeds {seeds[0]}-{seeds[-1]}" + (f", truncation psi {psi:g}" if gen.kind == "stylegan2" else "") + "."
    return [(im, f"seed {s}") for im, s in zip(images, seeds)], paths, notes


def walk(model_id: str, a, b, space: str, method: str, frames: int, psi: float = 1.0, fps: float = 12.0):
    """(animation path, strip image, smoothness markdown, details) of the walk from a to b."""
    if method not in lab.METHODS:
        raise ValueError(f"method must be one of {', '.join(lab.METHODS)}, not {method!r}.")
    gen = generator(model_id)
    (latent_a, what_a), (latent_b, what_b) = latent_of(gen, *a, space, psi), latent_of(gen, *b, space, psi)
    rows, chosen = {}, None
    for m in lab.METHODS:  # both, so the user sees lerp and slerp side by side
        path = lab.interpolate(latent_a, latent_b, int(frames), m)
        rendered = lab.to_uint8(gen.decode(path, space, psi))
        rows[m] = lab.smoothness(rendered)
        if m == method:
            chosen = rendered
    animation = files.animated_webp(chosen, out_path(f"walk_{method}_{space}.webp"), fps=fps)
    table = ["| method | mean step (0-255) | step CV (0 = even) | max step |", "|---|---|---|---|"]
    table += [f"| {m}{' (shown)' if m == method else ''} | {r['mean_step']:.2f} | {r['step_cv']:.3f} | "
              f"{r['max_step']:.2f} |" for m, r in rows.items()]
    notes = f"From {what_a} to {what_b} in {space}, {frames} frames.\n\n" + "\n".join(table)
    return str(animation), files.strip(chosen), notes, {"from": what_a, "to": what_b, "smoothness": rows}


def directions_for(gen: lab.LatentGenerator, shipped: dict[str, Path], space: str = "z", psi: float = 1.0):
    """(name -> direction, info): the shipped file of this generator, else computed once and cached."""
    from core.cache import MODEL_CACHE

    path = shipped.get(gen.model_id)
    if path is not None and space == "z" and Path(path).is_file():
        directions, info = attrs.load_directions(path, gen.model_id)
        if all(d.shape == (gen.nz,) for d in directions.values()):
            return directions, info
    classifier = load_float32(attrs.CLASSIFIER_ID)
    key = (gen.model_id, "latent_directions", id(gen.model), space, psi, ON_DEMAND_SAMPLES)
    return MODEL_CACHE.get_or_load(
        key, lambda: attrs.compute_directions(gen, classifier, ON_DEMAND_SAMPLES, 1_000_000, space, psi,
                                              log=lambda _: None), size=lambda _: 0)


def slide(model_id: str, latent, attribute: str, alpha: float, steps: int, shipped: dict[str, Path],
          space: str = "z", psi: float = 1.0):
    """(gallery of the face at alphas -alpha .. +alpha, notes with each frame's measurement)."""
    gen = generator(model_id)
    directions, info = directions_for(gen, shipped, space, psi)
    if attribute not in directions:
        raise ValueError(f"No {attribute!r} direction for this generator; choose one of {', '.join(directions)}.")
    start, what = latent_of(gen, *latent, space, psi)
    alphas = np.linspace(-alpha, alpha, int(steps)) if steps > 1 else np.array([alpha])
    images = lab.to_uint8(gen.decode(lab.along(start, directions[attribute], alphas), space, psi))
    classifier = load_float32(attrs.CLASSIFIER_ID)
    faces = images if gen.size == 64 else np.stack([np.asarray(Image.fromarray(i).resize((256, 256))) for i in images])
    scores = attrs.measure(faces, classifier)[attribute]
    unit = "P(glasses)" if attribute == "eyeglasses" else attribute
    gallery = [(Image.fromarray(im), f"alpha {a:+.2f}: {unit} " + ("no face" if np.isnan(s) else f"{s:.2f}"))
               for im, a, s in zip(images, alphas, scores)]
    about = info.get("attributes", {}).get(attribute, {})
    notes = (f"{what}, along **{attribute}** (mean latent of {about.get('with', '?')} faces with it minus that of "
             f"{about.get('without', '?')} without, over {info.get('samples', '?')} samples).")
    return gallery, notes


def mix(model_id: str, a, b, group: str, psi: float = 1.0):
    """(gallery [A, B, A with B's group layers], notes). StyleGAN2 only."""
    gen = generator(model_id)
    if gen.kind != "stylegan2":
        raise ValueError("Style mixing needs StyleGAN2 (the DCGAN has one latent for the whole image).")
    (w_a, what_a), (w_b, what_b) = latent_of(gen, *a, "w", psi), latent_of(gen, *b, "w", psi)
    mixed = lab.mix_styles(w_a, w_b, group, gen.model.n_latent)
    images = to_pil(gen.decode(torch.stack([lab.mix_styles(w_a, w_a, group, gen.model.n_latent),
                                            lab.mix_styles(w_b, w_b, group, gen.model.n_latent), mixed]), "w"))
    layers = lab.layer_indices(group, gen.model.n_latent)
    return ([(images[0], f"A: {what_a}"), (images[1], f"B: {what_b}"), (images[2], f"A with B's {group} layers")],
            f"W+ layers {layers[0]}-{layers[-1]} of A were replaced by B's.")


def invert_photo(model_id: str, photo: Image.Image, method: str, steps: int = 100):
    """(aligned face, reconstruction, latent file, notes, aligned, inversion) for one face photo."""
    gen = generator(model_id)
    aligned = inv.align_photo(photo, gen)
    encoder = load_float32(ENCODER_ID) if method != "optimise" else None
    result = inv.invert(gen, inv.target_from_crop(aligned), method, encoder=encoder, steps=int(steps))
    path = files.save_latent(out_path(f"{model_id}_inverted_{method}.safetensors"), result.latent[0], model_id, "z")
    notes = (f"{method}: mean pixel error {result.pixel_error[0]:.1f} of 255 in {result.seconds:.1f} s. "
             "The generator can only make faces like its training faces; a photo is matched approximately.")
    return aligned.image, to_pil(result.images)[0], str(path), notes, aligned, result


def edit(model_id: str, photo: Image.Image, upload, method: str, attribute: str, alpha: float, blend: str,
         shipped: dict[str, Path], steps: int = 100):
    """(edited photo, crops gallery, notes): the photo's face moved by alpha along ``attribute``."""
    gen = generator(model_id)
    aligned = inv.align_photo(photo, gen)
    if upload:
        z, what = latent_of(gen, None, upload)
    else:
        *_, notes, aligned, result = invert_photo(model_id, photo, method, steps)
        z, what = result.latent[0], notes
    directions, _ = directions_for(gen, shipped)
    if attribute not in directions:
        raise ValueError(f"No {attribute!r} direction for this generator; choose one of {', '.join(directions)}.")
    before, after = gen.decode(torch.stack([z, z + float(alpha) * directions[attribute]]))
    edited, crop = inv.edit_photo(photo.convert("RGB"), aligned, before, after, blend)
    recon, moved = to_pil(torch.stack([before, after]))
    gallery = [(aligned.image, "aligned face"), (recon, "G(z): its inversion"), (moved, f"G(z {alpha:+g} d)"),
               (crop, "edited face")]
    return edited, gallery, f"{what}\n\nEdited along {attribute} by alpha {alpha:+g} ({blend})."
