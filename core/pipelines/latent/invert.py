"""Back to z: the latent of a face photo by optimisation, the trained encoder, or both
(:func:`core.pipelines.latent.inversion.invert`), saved as a latent file the other tasks take."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from core.faces import AlignedFace
from core.pipelines.latent import files, lab
from core.pipelines.latent import inversion as inv


@dataclass(frozen=True)
class Settings:
    model_id: str = field(default_factory=lab.default_generator)
    method: str = "hybrid"  # one of inversion.INVERSION_METHODS
    steps: int = 100  # optimisation steps

    def __post_init__(self):
        lab.check_generator(self.model_id)
        inv.check_method(self.method)


@dataclass(frozen=True)
class Result:
    aligned: AlignedFace  # the photo's face as the generator frames it
    reconstruction: Image.Image  # G(z)
    latent_file: str
    notes: str
    inversion: inv.Inversion
    details: dict


def run(photo: Image.Image | None, settings: Settings | None = None, *, model=None, encoder=None) -> Result:
    """``encoder``: the latent encoder already built (default: the manifest's, for ``encoder`` / ``hybrid``)."""
    settings = settings or Settings()
    if photo is None:
        raise ValueError("Upload a photo with one face (or a 64x64 aligned face).")
    gen = lab.generator(settings.model_id, model)
    return invert_aligned(gen, photo, inv.align_photo(photo, gen), settings, encoder)


def invert_aligned(gen, photo: Image.Image, aligned: AlignedFace, settings: Settings, encoder=None) -> Result:
    """:func:`run` on a face already aligned to ``gen``'s framing."""
    if encoder is None and settings.method != "optimise":
        encoder = lab.load_float32(lab.role("encoder"))
    result = inv.invert(gen, inv.target_from_crop(aligned), settings.method, encoder=encoder, steps=int(settings.steps))
    path = files.save_latent(lab.out_path(f"{settings.model_id}_inverted_{settings.method}.safetensors"),
                             result.latent[0], settings.model_id, "z")
    notes = (f"{settings.method}: mean pixel error {result.pixel_error[0]:.1f} of 255 in {result.seconds:.1f} s. "
             "The generator can only make faces like its training faces; a photo is matched approximately.")
    details = {**vars(settings), "pixel_error": float(result.pixel_error[0]), "seconds": round(result.seconds, 2)}
    return Result(aligned, lab.to_pil(result.images)[0], str(path), notes, result, details)
