"""The converted store: every source's file converted once to safetensors, at
``$GANHUB_CACHE/converted/<model_id>/<key>.safetensors``, with a sidecar ``<key>.sha256``.

The sidecar records the file's sha256 with the size and mtime it was hashed at. A file whose size
or mtime changed since is hashed again and, if corrupt, deleted so that it is rebuilt. Writers take
:func:`model_lock` and write beside the target, then rename, so readers never see a partial file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from core.weights.hashing import sha256_of
from core.weights.manifest import ModelEntry, Source
from core.weights.paths import cache_dir, temporary_sibling

# Part of every converted file's key, beside the source: the layout the converter writes (tensors in
# float32, the dtype the modules compute in). A converter writing another layout must change it, so
# that files in the old layout are not read as the new one.
CONVERTED_LAYOUT = 2
# A file changed within this long after its last recorded mtime can keep the same mtime (coarse
# file-system clocks), so a stat match counts only for files hashed at least this long after it.
MTIME_SLACK_NS = 2_000_000_000


def converted_path(entry: ModelEntry, src: Source) -> Path:
    key_data = [src.kind, src.spec, CONVERTED_LAYOUT]
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "converted" / entry.id / f"{key}.safetensors"


def _write_sidecar(path: Path) -> None:
    """Record ``path``'s sha256 with the size and mtime it was hashed at, and when."""
    hashed_at = time.time_ns()
    stat = path.stat()
    record = {"sha256": sha256_of(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "hashed_at_ns": hashed_at}
    sidecar = path.with_suffix(".sha256")
    partial = temporary_sibling(sidecar)
    partial.write_text(json.dumps(record) + "\n")
    partial.replace(sidecar)


def _read_sidecar(path: Path) -> dict[str, Any]:
    text = path.with_suffix(".sha256").read_text().strip()
    if text.startswith("{"):
        return json.loads(text)
    return {"sha256": text}  # a bare hash, with no size or mtime: the file is hashed, then the sidecar rewritten


def _stat_unchanged(record: dict[str, Any], stat: os.stat_result) -> bool:
    """Same size and mtime as when hashed, and hashed well after that mtime (so not 'racy')."""
    return (
        record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
        and stat.st_mtime_ns + MTIME_SLACK_NS < record.get("hashed_at_ns", 0)
    )


def valid_converted(path: Path, rehash: bool = False) -> bool:
    """Whether the converted file is intact. Unchanged size and mtime since it was hashed are
    enough; otherwise (or with ``rehash``) its sha256 is compared with the recorded one. A
    corrupt file is deleted so that it is rebuilt."""
    sidecar = path.with_suffix(".sha256")
    if not path.is_file() or not sidecar.is_file():
        return False
    try:
        record = _read_sidecar(path)
    except (ValueError, OSError):
        record = {}
    if not rehash and _stat_unchanged(record, path.stat()):
        return True
    if record.get("sha256") == sha256_of(path):
        try:
            _write_sidecar(path)  # hashed now: later loads can trust the size and mtime
        except OSError:  # a read-only or copied cache: still valid, hashed again next time
            pass
        return True
    path.unlink(missing_ok=True)  # corrupt cache: rebuild from the source
    sidecar.unlink(missing_ok=True)
    return False


def as_float32(state: dict) -> dict:
    """Half-precision tensors as float32: a cold load is then one read, with no cast."""
    import torch

    return {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in state.items()}


def convert_source(entry: ModelEntry, src: Source, raw: Path, target: Path) -> Path:
    """Convert ``src``'s raw file (its manifest ``format``) into the store at ``target``."""
    from core.weights.convert import read_state_dict

    state = as_float32(read_state_dict(raw, src.format))
    save_converted(state, target, {"model_id": entry.id, "source": src.describe()})
    return target


def save_converted(state: dict, target: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = temporary_sibling(target)
    try:
        save_file(state, str(partial), metadata=metadata)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    _write_sidecar(target)


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def model_lock(model_id: str):
    """Exclusive right to fetch and convert ``model_id``, across threads and processes.

    Threads of one process queue on a lock of their own; processes sharing the cache (the hub and a
    ``python -m core.weights fetch``, two containers on one volume) queue on a file lock beside it,
    so one of them downloads and converts while the others wait, then find the finished file. A
    cache that cannot be written needs no lock: nothing can be written there to corrupt."""
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(model_id, threading.Lock())
    with thread_lock:
        lock_dir = cache_dir() / "locks"
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
            file_lock = FileLock(str(lock_dir / f"{model_id}.lock"))
            file_lock.acquire()
        except OSError:
            file_lock = None
        try:
            yield
        finally:
            if file_lock is not None:
                file_lock.release()
