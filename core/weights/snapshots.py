"""Whole Hub snapshots (diffusers pipelines, transformers models) at their pinned commits: loaded
by their own library from the folder, never converted."""

from __future__ import annotations

import os
from pathlib import Path

from core.weights.errors import WeightsUnavailableError, sources_tried
from core.weights.manifest import get_entry
from core.weights.network import offline, unreachable_reason


def resolve_snapshot(model_id: str, download: bool = True) -> Path:
    """Local folder of a whole-repository source (a diffusers pipeline) at its pinned commit."""
    from huggingface_hub import constants, snapshot_download

    entry = get_entry(model_id)
    endpoint = os.environ.get("HF_ENDPOINT") or None
    failures = []
    for src in entry.sources:
        if src.kind != "hf":
            failures.append(f"{src.describe()}: only Hub snapshots are supported for {entry.arch} models")
            continue
        s = src.spec
        reason = None if offline() or not download else unreachable_reason(endpoint or constants.ENDPOINT)
        try:
            return Path(snapshot_download(
                s["repo_id"], revision=s["revision"], allow_patterns=s.get("allow_patterns"),
                ignore_patterns=s.get("ignore_patterns"), endpoint=endpoint,
                local_files_only=offline() or not download or reason is not None,
            ))
        except Exception as e:
            why = f"the Hugging Face Hub is unreachable: {reason}" if reason else f"{type(e).__name__}: {e}"
            failures.append(f"Hugging Face Hub {s['repo_id']} @ {s['revision'][:12]}: {why}")
    raise WeightsUnavailableError(
        model_id, f"Weights for {model_id} ({entry.title}) are not available here.\nSources tried:\n"
        f"{sources_tried(failures)}\nTo provide them: run `python -m core.weights fetch {model_id}` where the Hub "
        f"is reachable and copy the Hugging Face cache ($HF_HOME/hub) here.")


def snapshot_present(src) -> bool:
    """Whether a whole-repository ``hf`` source is in the local Hugging Face cache (no download)."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(src.spec["repo_id"], revision=src.spec["revision"], local_files_only=True,
                          allow_patterns=src.spec.get("allow_patterns"))
        return True
    except Exception:
        return False
