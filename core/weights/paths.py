"""Where the weights' files live, and how paths are checked and shown to users."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_PATH = REPO_ROOT / "weights_manifest.json"


def manifest_path() -> Path:
    """The manifest in use: ``$GANHUB_MANIFEST`` (a Space's or a test's copy), else the repository's."""
    return Path(os.environ.get("GANHUB_MANIFEST", MANIFEST_PATH))


def hf_home() -> Path:
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))


def cache_dir() -> Path:
    """Where converted weights and downloaded wheels/URLs live (``GANHUB_CACHE``)."""
    return Path(os.environ.get("GANHUB_CACHE", hf_home() / "ganhub"))


def override_path(model_id: str) -> Path | None:
    """``$GANHUB_WEIGHTS_DIR/<model_id>.safetensors``: a file the user provides, used before any source."""
    folder = os.environ.get("GANHUB_WEIGHTS_DIR")
    return Path(folder) / f"{model_id}.safetensors" if folder else None


def safe_relative(value: str, what: str) -> str:
    """``value`` if it is a plain relative path (no ``..``, not absolute), else ``ValueError``: a
    manifest's ``member`` or ``path`` may not reach outside the cache or the repository."""
    text = str(value)
    pure = Path(text.replace("\\", "/"))
    if not text or pure.is_absolute() or ".." in pure.parts or (len(text) > 1 and text[1] == ":"):
        raise ValueError(f"{what} {text!r} must be a relative path without '..'")
    return text


def display_path(path: str | Path) -> str:
    """A path as users may see it: relative to ``$GANHUB_CACHE``, ``$HF_HOME`` or the repository,
    never the server's absolute paths (its account's home, its layout)."""
    return display_paths(str(path))


def display_paths(text: str) -> str:
    """``text`` with every absolute cache, Hugging Face and repository path made relative."""
    prefixes = [(cache_dir(), "$GANHUB_CACHE"), (hf_home(), "$HF_HOME"), (REPO_ROOT, "."), (Path.home(), "~")]
    for prefix, name in sorted(prefixes, key=lambda item: -len(str(item[0]))):
        for form in {str(prefix), os.path.realpath(prefix)}:
            if len(form) > 1:
                text = text.replace(form, name)
    return text


def temporary_sibling(target: Path) -> Path:
    """A unique hidden name beside ``target``: written there, then renamed onto it, so neither a
    reader nor another writer (thread or process) ever sees a partial file."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
