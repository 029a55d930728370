"""PULSE face upsampling as a task: the checks, the face step, the seed, the search and its report.

:func:`upsample` takes what a user sends (a tiny square face, or a photo whose face it finds,
aligns to the generator's layout and downscales), :func:`stream` / :func:`run` take a
low-resolution face as it is. Both follow :mod:`core.pipelines.streaming`: they yield a
:class:`~core.pipelines.streaming.Progress` (with a preview of the leading restart) as the search
goes and a :class:`Result` last; ``cancel`` or the request's time budget end the search with the
best faces so far. The search itself is :mod:`core.pipelines.pulse_search`, the generators are
:mod:`core.pipelines.pulse_adapters`.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PIL import Image

from core import images
from core.pipelines.pulse_adapters import as_adapter, load_adapter
from core.pipelines.pulse_search import EPS_DEFAULT, PulseProgress, PulseSample, downscale, search_iter
from core.pipelines.streaming import Progress, Stop, drain

UNIT = (0.0, 1.0)  # the search works on images in [0, 1]
# StyleGAN2 search resolution: (search px, fraction of the steps refined at full resolution)
SEARCH_MODES = {"256+1024": (256, 0.1), "256": (256, 0.0), "1024": (None, 0.0)}
PULSE_ARCHS = ("dcgan", "stylegan2")


def _whole(name: str, value) -> int:
    if value is None or isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number (got {value!r}).")
    return int(value)


@dataclass(frozen=True)
class Settings:
    """The knobs of one search. ``seed`` None or negative: a random seed, drawn once per search."""

    model_id: str | None = None  # None: the first PULSE generator of the manifest
    size: int = 16  # the low-resolution side the face is downscaled to
    steps: int = 100
    eps: float = EPS_DEFAULT  # success when L2 <= eps
    samples: int = 4  # restarts, run as one batch
    seed: int | None = None
    face: int = 0  # in a group photo: 0 = there must be one face, k = the k-th most confident
    stylegan2_search: str = "256+1024"  # a key of SEARCH_MODES

    def __post_init__(self):
        from core.device import get_device
        from core.limits import max_search_work

        for name in ("size", "steps", "samples", "face"):
            object.__setattr__(self, name, _whole(name, getattr(self, name)))
        if self.seed is not None:
            object.__setattr__(self, "seed", _whole("seed", self.seed))
        object.__setattr__(self, "eps", float(self.eps))
        if self.steps < 1 or self.samples < 1:
            raise ValueError("steps and samples must be at least 1.")
        if not 0 < self.eps < 1:
            raise ValueError(f"eps must be between 0 and 1 (got {self.eps}).")
        if self.size < 1 or self.face < 0:
            raise ValueError(f"size must be positive and face at least 0 (got {self.size} and {self.face}).")
        if self.stylegan2_search not in SEARCH_MODES:
            raise ValueError(f"stylegan2_search must be one of {', '.join(SEARCH_MODES)}, "
                             f"not {self.stylegan2_search!r}.")
        device, work = get_device().type, self.steps * self.samples
        if work > (cap := max_search_work(device)):
            raise ValueError(f"{self.steps} steps x {self.samples} samples = {work} is more than this server allows "
                             f"in one request ({cap} on {device}, GANHUB_MAX_STEP_SAMPLES): ask for fewer steps or "
                             "samples.")


@dataclass(frozen=True)
class LowResInput:
    tensor: torch.Tensor  # [1, 3, size, size] in [0, 1]
    image: Image.Image  # the same, as PIL
    aligned: Image.Image | None  # the aligned high-resolution crop (photos only)
    note: str  # what was done to the input


@dataclass(frozen=True)
class Result:
    faces: list[PulseSample]  # successes first, then by L2
    input: LowResInput
    summary: str  # what was done to the input and an honest account of the search
    cancelled: bool  # ``cancel`` ended the search (the faces are the best so far)
    details: dict = field(default_factory=dict)  # every setting used (resolved seed, model id) and per-face L2

    @property
    def success(self) -> bool:
        return any(f.success for f in self.faces)


def generators() -> list[str]:
    """The generators PULSE searches, from the manifest (the pulse app's dcgan and stylegan2 models)."""
    from core.weights import get_entry, models_for_app

    return [m for m in models_for_app("pulse") if get_entry(m).arch in PULSE_ARCHS]


def _model_id(settings: Settings) -> str:
    choices = generators()
    model_id = settings.model_id or choices[0]
    if model_id not in choices:
        raise ValueError(f"Unknown generator {model_id!r}; choose one of {', '.join(choices)}.")
    return model_id


def face_template(model_id: str) -> str | np.ndarray:
    """How photos are aligned for ``model_id``: to the manifest layout of the faces it generates
    (``output.face_layout``), else with the FFHQ recipe (``core.faces.align_face``)."""
    from core.weights import face_layout, get_entry

    name = get_entry(model_id).output_face_layout
    return face_layout(name) if name else "ffhq"


def _adapter(settings: Settings, model, model_id: str):
    """The search's adapter: ``model`` (an adapter or a built generator) or ``model_id`` loaded."""
    search_px, _ = SEARCH_MODES[settings.stylegan2_search]
    if model is None:
        adapter = load_adapter(model_id, search_resolution=search_px)
    else:
        adapter = model if hasattr(model, "render") else as_adapter(model, None, search_px)
    if settings.size >= adapter.search_size or adapter.search_size % settings.size:
        from core.weights import get_entry

        raise ValueError(f"{get_entry(model_id).title} needs an input size below {adapter.search_size} that "
                         "divides it.")
    return adapter


TINY_MAX_SIDE = 64  # square inputs up to this size are taken as already-cropped low-resolution faces


def low_res_input(image: Image.Image, size: int, hr_size: int, template: str | np.ndarray = "ffhq",
                  face_index: int | None = None) -> LowResInput:
    """The low-resolution face to search for.

    A square image of at most 64 px is used as is (downscaled to ``size`` with
    :class:`BicubicDownsample` when its side is a multiple of ``size``, else resized). A larger
    photo is searched for faces (MTCNN), the face is aligned (``template``) to ``hr_size`` and
    downscaled to ``size`` with :class:`BicubicDownsample`, PULSE's "downscale, then recover" demo.
    No face, or several faces without ``face_index``, raises ``ValueError`` with a clear message.
    """
    from core.faces import align_face, detect_faces

    width, height = image.size
    if width == height and width <= TINY_MAX_SIDE:
        note = f"The input is a {width}x{width} face, used as is"
        tensor = images.to_tensor(image, UNIT)
        if width > size and width % size == 0:
            tensor = downscale(tensor, size).clamp(0, 1)
            note += f" after downscaling it to {size}x{size} (PULSE's bicubic)"
        elif width != size:
            tensor = images.to_tensor(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC), UNIT)
            note += f" after resizing it to {size}x{size}"
        return LowResInput(tensor, images.to_pil(tensor, UNIT), None, note + ".")
    if min(width, height) <= TINY_MAX_SIDE:
        raise ValueError(f"A {width}x{height} image is too small to find a face in and not square; crop it to a "
                         f"square face (8 to {TINY_MAX_SIDE} px) or send a larger photo.")
    faces = detect_faces(image)
    if not faces:
        raise ValueError("No face was found in the photo. Use a photo with a clear frontal face, "
                         f"or a square face crop of at most {TINY_MAX_SIDE} px.")
    if len(faces) > 1 and face_index is None:
        raise ValueError(f"{len(faces)} faces were found in the photo; choose one by its number, 1 to {len(faces)} "
                         "(1 is the most confident).")
    index = face_index or 0
    if not 0 <= index < len(faces):
        raise ValueError(f"Face {index + 1} does not exist: the photo has {len(faces)} face(s).")
    aligned = align_face(image, faces[index], hr_size, template=template)
    tensor = downscale(images.to_tensor(aligned.image, UNIT), size).clamp(0, 1)
    note = (f"Found {len(faces)} face(s); face {index + 1} was aligned to {hr_size}x{hr_size} and downscaled "
            f"to {size}x{size}.")
    return LowResInput(tensor, images.to_pil(tensor, UNIT), aligned.image, note)




def _details(model_id: str, settings: Settings, seed: int, low: LowResInput, search) -> dict:
    return {"success": search.success, "seed": seed, "eps": search.eps, "steps": search.steps,
            "seconds": round(search.seconds, 2), "generator": model_id, "size": low.tensor.shape[-1],
            "stylegan2_search": settings.stylegan2_search, "face": settings.face, "input": low.note,
            "samples": [{"restart": s.restart, "l2": s.l2, "success": s.success, "start_l2": s.start_l2,
                         "first_success_step": s.first_success_step} for s in search.samples]}


def _search(adapter, low: LowResInput, settings: Settings, model_id: str,
            stop: Stop) -> Iterator[Progress | Result]:
    """The search on a prepared low-resolution face, as a stream; the seed is drawn here, once."""
    from core.limits import JOB_CLOCK

    seed = settings.seed if settings.seed is not None and settings.seed >= 0 else secrets.randbelow(2**31)
    _, refine = SEARCH_MODES[settings.stylegan2_search]
    events = search_iter(adapter, low.tensor, steps=settings.steps, eps=settings.eps, restarts=settings.samples,
                         seed=seed, preview_every=1 if adapter.search_size > 64 else 5, stop=stop,
                         refine_steps=round(refine * settings.steps))
    for event in events:
        if isinstance(event, PulseProgress):
            note = f"Step {event.step} of {event.steps}: best L2 {min(event.best_l2):.2e} (eps {settings.eps:g})."
            yield Progress(event.step, event.steps, images.to_pil(event.preview, UNIT), f"{low.note} {note}".strip())
    search = event
    JOB_CLOCK.record(clock_kind(model_id, settings.stylegan2_search), max(1, search.steps) * settings.samples,
                     search.seconds)
    yield Result(search.samples, low, f"{low.note} {search.message}".strip(), stop.cancelled,
                 _details(model_id, settings, seed, low, search))


def stream(target: Image.Image | torch.Tensor, settings: Settings = Settings(), *, model=None,
           cancel: threading.Event | None = None, budget=None) -> Iterator[Progress | Result]:
    """Search for faces that downscale to ``target``, a low-resolution face as it is (a PIL image or a
    [1, 3, r, r] tensor in [0, 1]; r must divide the generator's search size). ``budget``: a
    :class:`core.limits.Budget` (default: this server's per-request budget)."""
    from core.limits import Budget

    model_id = _model_id(settings)
    if isinstance(target, Image.Image):
        target = images.to_tensor(target, UNIT)
    tensor = target.reshape(-1, *target.shape[-3:])
    adapter = _adapter(replace(settings, size=tensor.shape[-1]), model, model_id)
    low = LowResInput(tensor, images.to_pil(tensor, UNIT), None, "")
    yield from _search(adapter, low, settings, model_id, Stop(cancel, budget or Budget()))


def run(target: Image.Image | torch.Tensor, settings: Settings = Settings(), *, model=None,
        cancel: threading.Event | None = None, budget=None) -> Result:
    """:func:`stream` run to the end."""
    return drain(stream(target, settings, model=model, cancel=cancel, budget=budget))


def upsample(image, settings: Settings = Settings(), *, model=None, cancel: threading.Event | None = None,
             budget=None) -> Iterator[Progress | Result]:
    """What the app does with an upload (a tiny square face, or a photo with a face, anything
    :func:`core.images.load_image` reads): the checks, the face step (:func:`low_res_input` to
    ``settings.size``), then :func:`stream`'s search. Raises ``ValueError`` with a message for the user."""
    from core.limits import Budget

    if image is None:
        raise ValueError("Upload a face: a tiny square face (8-64 px) or a photo with a face.")
    budget = budget or Budget()  # the face step and the loading count against the request's time too
    model_id = _model_id(settings)
    adapter = _adapter(settings, model, model_id)
    low = low_res_input(images.load_image(image), settings.size, adapter.size, face_template(model_id),
                        face_index=settings.face - 1 if settings.face else None)
    yield from _search(adapter, low, settings, model_id, Stop(cancel, budget))


# Seconds per step and sample on a 2-core CPU by architecture (apps/pulse/README.md, bench/pulse_speed.py);
# refined by the durations measured on the server (core.limits.JOB_CLOCK).
SECONDS_PER_STEP_SAMPLE = {"dcgan": 0.014, "stylegan2": 0.6}
# The part of a search that does not grow with steps x samples (the face step, the first render), warm,
# on the same CPU: DCGAN 20 x 2 took 0.75-0.85 s and 100 x 4 5.9 s (2026-12-01).
SEARCH_OVERHEAD_SECONDS = {"dcgan": 0.25, "stylegan2": 2.0}


def clock_kind(generator: str, search: str) -> str:
    """The name under which a search's duration is measured (StyleGAN2's depends on its search size)."""
    from core.weights import get_entry

    return f"pulse:{generator}" + (f":{search}" if get_entry(generator).arch == "stylegan2" else "")


def work_seconds(generator: str, steps, samples) -> float:
    """What a search costs on a 2-core CPU whatever the server's load: it picks the job's lane
    (``core.lanes``), so a short search stays a quick job while the server is busy, when the measured
    durations of :func:`expected_seconds` grow. Raises ValueError on unreadable numbers."""
    from core.weights import get_entry

    arch = get_entry(generator).arch
    return SEARCH_OVERHEAD_SECONDS.get(arch, 2.0) + int(steps) * int(samples) * SECONDS_PER_STEP_SAMPLE.get(arch, 1.0)


def expected_seconds(generator: str, steps, samples, search: str = "256+1024") -> float:
    """How long a search of ``steps`` x ``samples`` should take here (raises ValueError on unreadable numbers)."""
    from core.limits import JOB_CLOCK
    from core.weights import get_entry

    prior = SECONDS_PER_STEP_SAMPLE.get(get_entry(generator).arch, 1.0)
    return JOB_CLOCK.estimate(clock_kind(generator, search), int(steps) * int(samples), prior)
