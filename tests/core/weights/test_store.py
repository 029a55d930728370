"""The converted store: sidecars, corrupt files rebuilt, locks across processes, read-only caches."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch

import core.models
from core import weights
from core.weights import WeightsUnavailableError, network, sources, store
from core.weights.__main__ import main as cli
from tests.support.tiny_weights import TINY, hf_entry, safetensors_bytes, tiny_state


def test_cache_is_reused_without_network(local_hub, write_manifest):
    commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(tiny_state()))
    write_manifest({"tiny.a": hf_entry("org/tiny", "g.safetensors", commit)})
    first = weights.resolve("tiny.a")
    count = len(local_hub.requests)
    assert weights.resolve("tiny.a") == first
    assert len(local_hub.requests) == count  # second resolve: converted cache, no HTTP at all


def test_corrupt_converted_cache_is_rebuilt(local_hub, write_manifest):
    commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(tiny_state()))
    write_manifest({"tiny.a": hf_entry("org/tiny", "g.safetensors", commit)})
    path = weights.resolve("tiny.a")
    path.write_bytes(path.read_bytes()[:100])
    rebuilt = weights.resolve("tiny.a")
    record = json.loads(path.with_suffix(".sha256").read_text())
    assert rebuilt == path and weights.sha256_of(path) == record["sha256"]
    assert record["size"] == path.stat().st_size and record["mtime_ns"] == path.stat().st_mtime_ns
    assert set(weights.load_state_dict("tiny.a")) == set(tiny_state())


def _same_state(a, b) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def _flip_last_byte(path, keep_mtime: bool):
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_same_size_change_soon_after_conversion_is_caught(local_hub, write_manifest):
    # Written within the file system's clock tick of the conversion, the mtime may not move;
    # a file hashed that soon after its mtime is hashed again on the next load.
    commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(tiny_state()))
    write_manifest({"tiny.m": hf_entry("org/tiny", "g.safetensors", commit)})
    path = weights.resolve("tiny.m")
    _flip_last_byte(path, keep_mtime=False)
    assert weights.resolve("tiny.m") == path
    assert _same_state(weights.read_safetensors(path), tiny_state())  # rebuilt from the source


def test_unchanged_stat_skips_the_hash_but_verify_rehashes(local_hub, write_manifest):
    # A change that keeps size and mtime is trusted by a normal load (no hash per cold load) ...
    commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(tiny_state()))
    write_manifest({"tiny.v": hf_entry("org/tiny", "g.safetensors", commit)})
    path = weights.resolve("tiny.v")
    good = weights.sha256_of(path)
    hour_ago = path.stat().st_mtime_ns - 3600 * 10**9
    os.utime(path, ns=(hour_ago, hour_ago))  # an old file: hashed once more, then trusted by its stat
    weights.resolve("tiny.v")
    _flip_last_byte(path, keep_mtime=True)
    weights.resolve("tiny.v")
    assert weights.sha256_of(path) != good
    # ... and caught by the full check behind `python -m core.weights verify`.
    assert weights.resolve("tiny.v", rehash=True) == path
    assert _same_state(weights.read_safetensors(path), tiny_state())


def test_sidecar_of_the_old_format_is_checked_and_upgraded(local_hub, write_manifest):
    commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(tiny_state()))
    write_manifest({"tiny.o": hf_entry("org/tiny", "g.safetensors", commit)})
    path = weights.resolve("tiny.o")
    sidecar = path.with_suffix(".sha256")
    sidecar.write_text(weights.sha256_of(path) + "\n")  # hash only, as written before
    assert weights.resolve("tiny.o") == path
    assert json.loads(sidecar.read_text())["size"] == path.stat().st_size
    sidecar.write_text("0" * 64 + "\n")  # a wrong old-format hash means a corrupt file: rebuilt
    assert weights.resolve("tiny.o") == path and json.loads(sidecar.read_text())["sha256"] == weights.sha256_of(path)


@pytest.mark.parametrize("kind", ["hf", "url"])
def test_two_processes_resolving_at_once_download_and_convert_once(local_hub, write_manifest, kind):
    data = safetensors_bytes(tiny_state())
    commit = local_hub.add_file("org/tiny", "g.safetensors", data)
    sha = hashlib.sha256(data).hexdigest()
    entry = hf_entry("org/tiny", "g.safetensors", commit, sha=sha)
    if kind == "url":
        entry["sources"] = [{"kind": "url", "url": f"{local_hub.url}/org/tiny/resolve/{commit}/g.safetensors", "sha256": sha}]
    write_manifest({"tiny.shared": entry})
    local_hub.delay_s = 1.5  # both processes are inside resolve() while the first transfer runs
    code = (
        "import core.models, torch; from core import weights\n"
        "entry = weights.get_entry('tiny.shared')\n"
        "model = core.models.load(entry.arch, weights.load_state_dict('tiny.shared'), **entry.config)\n"
        "print(float(sum(p.sum() for p in model.parameters())))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=weights.REPO_ROOT, env=dict(os.environ),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    expected = float(sum(p.sum() for p in core.models.load("dcgan", tiny_state(), **TINY).parameters()))
    assert [float(out) for out, _ in outputs] == pytest.approx([expected, expected])
    downloads = [path for method, path in local_hub.requests if method == "GET" and "/resolve/" in path]
    assert len(downloads) == 1, downloads
    converted = list((weights.cache_dir() / "converted" / "tiny.shared").iterdir())
    assert sorted(p.suffix for p in converted) == [".safetensors", ".sha256"], "no temporary file is left behind"
    assert cli(["verify", "tiny.shared"]) == 0


def test_a_copied_read_only_cache_is_used_or_reported_clearly(local_hub, write_manifest, monkeypatch):
    data = safetensors_bytes(tiny_state())
    commit = local_hub.add_file("org/tiny", "g.safetensors", data)
    write_manifest({"tiny.ro": hf_entry("org/tiny", "g.safetensors", commit, sha=hashlib.sha256(data).hexdigest())})
    converted = weights.resolve("tiny.ro")
    os.utime(converted, ns=(converted.stat().st_atime_ns, converted.stat().st_mtime_ns + 10**9))  # as a copy does

    def read_only(target):  # every file the cache would write starts here: a read-only mount refuses it
        raise PermissionError(13, "Read-only file system", str(target))

    for module in (network, sources, store):
        monkeypatch.setattr(module, "temporary_sibling", read_only)
    assert weights.resolve("tiny.ro") == converted  # intact: used, though its new mtime cannot be recorded
    converted.unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="Weights for tiny.ro .* not available here") as err:
        weights.resolve("tiny.ro")
    assert "Read-only file system" in str(err.value)
