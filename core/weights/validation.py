"""Checks of the manifest's schema: run by the test suite and by ``python -m core.weights verify``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.weights.manifest import SNAPSHOT_ARCHS, SOURCE_KINDS
from core.weights.paths import manifest_path, safe_relative

REQUIRED_MODEL_KEYS = ("arch", "title", "license", "paper", "training_data", "card", "apps", "sources", "input")
REQUIRED_SOURCE_KEYS = {"hf": ("repo_id", "revision"), "url": ("url",), "pypi": ("package", "version", "member"),
                        "local": ("path",)}
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def validate_manifest(path: str | Path | None = None) -> list[str]:
    """Return a list of problems in the manifest (empty when it is valid)."""
    data = json.loads(Path(path or manifest_path()).read_text())
    problems = [] if data.get("schema_version") == 1 else ["schema_version must be 1"]
    for name, raw in data.get("face_layouts", {}).items():
        problems += _layout_problems(name, raw)
    layouts = set(data.get("face_layouts", {}))
    for model_id, raw in data.get("models", {}).items():
        problems += _model_problems(model_id, raw)
        for side in ("input", "output"):
            layout = raw.get(side, {}).get("face_layout")
            if layout is not None and layout not in layouts:
                problems.append(f"{model_id}: {side}.face_layout {layout!r} is not one of the manifest's face_layouts")
        for i, src in enumerate(raw.get("sources", [])):
            problems += _source_problems(f"{model_id}: source {i} ({src.get('kind')})", src)
    return problems


def _layout_problems(name: str, raw: Any) -> list[str]:
    points = raw.get("points") if isinstance(raw, dict) else None
    problems = []
    if not (isinstance(points, list) and len(points) == 5 and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and 0 < v < 1 for v in p)
            for p in points)):
        problems.append(f"face layout {name}: 'points' must be five [x, y] fractions of the side, each in (0, 1)")
    if isinstance(raw, dict) and not raw.get("basis"):
        problems.append(f"face layout {name}: needs a 'basis' saying how it was measured")
    return problems


def _model_problems(model_id: str, raw: dict[str, Any]) -> list[str]:
    from core.cpu_backend import manifest_problems as cpu_backend_problems
    from core.device import CUDA_DTYPES  # local imports: both import torch
    from core.models import ARCHITECTURES

    where = f"{model_id}:"
    problems = [f"{where} missing {key!r}" for key in REQUIRED_MODEL_KEYS if key not in raw]
    if not re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", model_id):
        problems.append(f"{where} id must be written family.tag in lower case")
    if raw.get("arch") not in ARCHITECTURES and raw.get("arch") not in SNAPSHOT_ARCHS:
        problems.append(f"{where} unknown arch {raw.get('arch')!r}")
    roles = raw.get("roles", {})
    if not (isinstance(roles, dict) and all(app in raw.get("apps", ()) and isinstance(role, str)
                                            for app, role in roles.items())):
        problems.append(f"{where} roles must map apps it is listed under to a role name")
    if raw.get("cpu_autocast", "bfloat16") != "bfloat16":
        problems.append(f"{where} cpu_autocast must be 'bfloat16' (or absent for fp32)")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", str(raw.get("license_id", "other"))):
        problems.append(f"{where} license_id must be a Hugging Face Hub licence identifier such as 'mit' or 'other'")
    if raw.get("cuda_dtype", "float32") not in CUDA_DTYPES:
        problems.append(f"{where} cuda_dtype must be one of {', '.join(CUDA_DTYPES)} (or absent for float32)")
    if not isinstance(raw.get("cpu_channels_last", False), bool):
        problems.append(f"{where} cpu_channels_last must be true or false")
    if not isinstance(raw.get("choice_label", ""), str):
        problems.append(f"{where} choice_label must be text (what the app's model menu shows)")
    problems += cpu_backend_problems(where, raw.get("cpu_backend"))
    multiple = raw.get("input", {}).get("multiple_of", 1)
    if not (isinstance(multiple, int) and multiple >= 1):
        problems.append(f"{where} input.multiple_of must be a positive integer")
    return problems


def _source_problems(at: str, src: dict[str, Any]) -> list[str]:
    kind = src.get("kind")
    if kind not in SOURCE_KINDS:
        return [f"{at}: unknown kind"]
    problems = [f"{at}: missing {k!r}" for k in REQUIRED_SOURCE_KEYS[kind] if k not in src]
    if kind == "hf" and not _COMMIT_RE.match(str(src.get("revision", ""))):
        problems.append(f"{at}: revision must be a 40-character commit sha")
    if kind == "hf" and "filename" not in src and "allow_patterns" not in src:
        problems.append(f"{at}: needs 'filename' (or 'allow_patterns' for a snapshot)")
    for key in {"pypi": ("member",), "local": ("path",)}.get(kind, ()):
        try:
            safe_relative(src.get(key, ""), key)
        except ValueError as e:
            problems.append(f"{at}: {e}")
    sha = src.get("sha256")
    needs_sha = kind != "hf" or "filename" in src  # whole-repo snapshots have per-file hashes on the Hub
    if needs_sha and sha is None and not src.get("sha256_reason"):
        problems.append(f"{at}: needs 'sha256' or a 'sha256_reason' saying why it is unknown")
    if sha is not None and not _SHA256_RE.match(sha):
        problems.append(f"{at}: sha256 must be 64 lower-case hex digits")
    if "size" in src and not (isinstance(src["size"], int) and src["size"] > 0):
        problems.append(f"{at}: size must be a positive number of bytes")
    return problems
