""":func:`resolve` turns a model id into a local safetensors file, trying in order:

1. a user override: ``$GANHUB_WEIGHTS_DIR/<model_id>.safetensors``;
2. for each source in manifest order, its file in the converted store (:mod:`core.weights.store`),
   else the source itself (:mod:`core.weights.sources`): the raw file's sha256 (and md5, where
   published) is checked, then it is converted once to safetensors.

When nothing works, :class:`WeightsUnavailableError` names every source tried and why it failed,
and how to provide the file. There is no fallback to random weights.
"""

from __future__ import annotations

from pathlib import Path

from core.weights.errors import WeightsUnavailableError, sources_tried
from core.weights.hashing import check_md5, check_sha256
from core.weights.manifest import ModelEntry, get_entry
from core.weights.paths import override_path
from core.weights.snapshots import resolve_snapshot, snapshot_present
from core.weights.sources import FETCHERS
from core.weights.store import convert_source, converted_path, model_lock, valid_converted


def how_to_provide(entry: ModelEntry) -> str:
    if entry.is_snapshot:
        return (
            f"To provide it: run `python -m core.weights fetch {entry.id}` on a machine that can reach the "
            f"Hugging Face Hub, then copy its Hugging Face cache ($HF_HOME/hub) here (or share HF_HOME)."
        )
    return (
        f"To provide it: run `python -m core.weights fetch {entry.id}` on a machine that can reach the sources "
        f"(then copy its $GANHUB_CACHE folder, by default $HF_HOME/ganhub, here), or put a safetensors file at "
        f"$GANHUB_WEIGHTS_DIR/{entry.id}.safetensors, or download a source file yourself and run "
        f"`python -m core.weights convert {entry.id} --from FILE`."
    )


def resolve(model_id: str, download: bool = True, rehash: bool = False) -> Path:
    """Local safetensors path for ``model_id``; raises :class:`WeightsUnavailableError`.

    ``rehash`` hashes a cached converted file even when its size and mtime are unchanged."""
    entry = get_entry(model_id)
    if entry.is_snapshot:
        raise ValueError(f"{model_id} is a {entry.arch} model; use its own loader (resolve_snapshot).")
    override = override_path(model_id)
    if override is not None and override.is_file():
        return override
    with model_lock(model_id):
        failures = []
        for src in entry.sources:
            converted = converted_path(entry, src)
            if valid_converted(converted, rehash):
                return converted
            try:
                raw = FETCHERS[src.kind](src, download)
                check_sha256(raw, src.sha256, src.describe())
                check_md5(raw, src.spec.get("md5"), src.describe())
                return convert_source(entry, src, raw, converted)
            except Exception as e:  # each failure is reported, then the next source is tried
                failures.append(f"{src.describe()}: {type(e).__name__}: {e}")
        raise WeightsUnavailableError(
            model_id,
            f"Weights for {model_id} ({entry.title}) are not available here.\nSources tried:\n"
            f"{sources_tried(failures)}\n" + how_to_provide(entry),
        )


def availability(model_id: str) -> tuple[bool, str]:
    """(available, where) without downloading anything."""
    entry = get_entry(model_id)
    override = override_path(model_id)
    if override is not None and override.is_file():
        return True, f"override {override}"
    for src in entry.sources:
        if not entry.is_snapshot and converted_path(entry, src).is_file():
            return True, "converted cache"
        if src.kind == "hf" and "filename" not in src.spec:
            if snapshot_present(src):
                return True, f"Hugging Face cache ({src.spec['repo_id']})"
            continue
        try:
            FETCHERS[src.kind](src, download=False)
            return True, src.describe()
        except Exception:
            continue
    return False, "not downloaded"


def weights_present(model_id: str) -> bool:
    """Whether ``model_id``'s weights are on this machine without downloading (False for an id the
    manifest lacks), for choices such as "the best method whose weights are here"."""
    try:
        return availability(model_id)[0]
    except ValueError:
        return False


def fetch(model_id: str) -> Path:
    """Download (and convert) whatever ``model_id`` needs; return the local path."""
    if get_entry(model_id).is_snapshot:
        return resolve_snapshot(model_id)
    return resolve(model_id)
