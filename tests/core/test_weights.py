"""The resolver, run for real against a local Hub-compatible server and a local PyPI index."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch
from safetensors.torch import save_file

import core.models
from core import weights
from core.weights import WeightsUnavailableError

TINY = {"nz": 8, "ngf": 4, "nc": 3}


def tiny_state(seed=0):
    torch.manual_seed(seed)
    return core.models.build("dcgan", **TINY).state_dict()


def pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def safetensors_bytes(state) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in state.items()})


def hf_entry(repo, filename, revision, sha=None, fmt=None, **extra):
    src = {"kind": "hf", "repo_id": repo, "filename": filename, "revision": revision, "sha256": sha}
    if fmt:
        src["format"] = fmt
    return {"arch": "dcgan", "config": TINY, "title": "tiny", "license": "MIT", "sources": [src], **extra}


def test_pinned_revision_is_used(local_hub, write_manifest):
    old, new = tiny_state(0), tiny_state(1)
    old_commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(old))
    local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(new))  # main moves on
    write_manifest({"tiny.old": hf_entry("org/tiny", "g.safetensors", old_commit)})
    state = weights.load_state_dict("tiny.old")
    assert torch.equal(state["main.0.weight"], old["main.0.weight"])
    assert not torch.equal(state["main.0.weight"], new["main.0.weight"])
    assert any(old_commit in path for _, path in local_hub.requests)


def test_cache_is_reused_without_network(local_hub, write_manifest):
    commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(tiny_state()))
    write_manifest({"tiny.a": hf_entry("org/tiny", "g.safetensors", commit)})
    first = weights.resolve("tiny.a")
    count = len(local_hub.requests)
    assert weights.resolve("tiny.a") == first
    assert len(local_hub.requests) == count  # second resolve: converted cache, no HTTP at all


def test_offline_mode_uses_cache_and_explains_misses(local_hub, write_manifest, monkeypatch):
    commit = local_hub.add_file("org/tiny", "g.pth", pickled(tiny_state()))
    write_manifest({
        "tiny.cached": hf_entry("org/tiny", "g.pth", commit, fmt={"type": "torch_pickle"}),
        "tiny.uncached": hf_entry("org/other", "g.pth", "a" * 40, fmt={"type": "torch_pickle"}),
    })
    raw = weights._fetch_hf(weights.get_entry("tiny.cached").sources[0], download=True)  # into the HF cache only
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
    weights._fetch_hf(weights.get_entry("tiny.a").sources[0], download=True)
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


def test_read_safetensors_matches_the_library_and_owns_its_memory(tmp_path):
    from safetensors.torch import load_file

    state = {
        "half": torch.arange(3, dtype=torch.float16),  # 6 bytes: the next tensor may start unaligned
        "float": torch.randn(2, 3),
        "long": torch.tensor([1, -2, 3]),
        "bf16": torch.randn(5).to(torch.bfloat16),
        "byte": torch.tensor([7], dtype=torch.uint8),
        "empty": torch.zeros(0, 4),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(state, str(path), metadata={"note": "x"})
    ours, library = weights.read_safetensors(path), load_file(str(path))
    assert set(ours) == set(library) == set(state)
    for key in state:
        assert ours[key].dtype == library[key].dtype and ours[key].shape == library[key].shape
        assert torch.equal(ours[key], library[key])
    path.write_bytes(b"\0" * path.stat().st_size)  # the file changes under a loaded model
    assert torch.equal(ours["float"], state["float"])


@pytest.mark.parametrize("damage", ["truncated", "bad_header", "short"])
def test_read_safetensors_rejects_damaged_files(tmp_path, damage):
    path = tmp_path / "d.safetensors"
    save_file({"w": torch.randn(4, 4)}, str(path))
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:-10], "bad_header": (10**9).to_bytes(8, "little") + data[8:],
                      "short": data[:5]}[damage])
    with pytest.raises(ValueError, match="safetensors file|outside the file|bytes for shape"):
        weights.read_safetensors(path)


@pytest.mark.parametrize("damage", ["wrong_key", "wrong_shape", "missing_key"])
def test_strict_load_failures(local_hub, write_manifest, damage):
    state = tiny_state()
    if damage == "wrong_key":
        state["main.99.weight"] = state.pop("main.0.weight")
    elif damage == "wrong_shape":
        state["main.0.weight"] = torch.zeros(8, 16, 4, 4)
    else:
        del state["main.1.running_mean"]
    commit = local_hub.add_file("org/tiny", "g.safetensors", safetensors_bytes(state))
    write_manifest({"tiny.a": hf_entry("org/tiny", "g.safetensors", commit)})
    with pytest.raises(core.models.StateDictMismatchError) as err:
        weights.load_model("tiny.a", device="cpu")
    expected = {"wrong_key": "unexpected key(s): main.99.weight", "wrong_shape": "shape mismatch",
                "missing_key": "missing key(s): main.1.running_mean"}[damage]
    assert expected in str(err.value)


def test_unknown_model_id_lists_valid_ids():
    with pytest.raises(ValueError) as err:
        weights.get_entry("nope.nothing")
    assert "dcgan.faces64" in str(err.value) and "cyclegan.vintage" in str(err.value)


def make_wheel(package, version, member, data) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    dist = f"{package.replace('-', '_')}-{version}"
    with zipfile.ZipFile(buffer, "w") as whl:
        whl.writestr(member, data)
        whl.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    return f"{dist}-py3-none-any.whl", buffer.getvalue()


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


def test_local_override_wins(local_hub, write_manifest, tmp_path, monkeypatch):
    write_manifest({"tiny.a": hf_entry("org/none", "g.safetensors", "b" * 40)})
    override = tmp_path / "override"
    override.mkdir()
    save_file(tiny_state(3), str(override / "tiny.a.safetensors"))
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(override))
    state = weights.load_state_dict("tiny.a")
    assert torch.equal(state["main.0.weight"], tiny_state(3)["main.0.weight"])
    assert local_hub.requests == []


def test_error_lists_every_source_tried(local_hub, write_manifest, tmp_path):
    entry = hf_entry("org/missing", "g.safetensors", "c" * 40)
    entry["sources"].append({"kind": "local", "path": "absent.safetensors", "sha256": None})
    write_manifest({"tiny.gone": entry})
    with pytest.raises(WeightsUnavailableError) as err:
        weights.resolve("tiny.gone")
    message = str(err.value)
    assert "1. Hugging Face Hub org/missing/g.safetensors" in message
    assert "2. local file" in message and "absent.safetensors" in message
    assert "GANHUB_WEIGHTS_DIR" in message


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/ganhub_pwned",))


def test_malicious_pickle_is_rejected_without_running(local_hub, write_manifest, tmp_path):
    marker = "/tmp/ganhub_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    payload = pickled({"main.0.weight": torch.zeros(1), "evil": _Evil()})
    commit = local_hub.add_file("org/evil", "g.pth", payload)
    write_manifest({"tiny.evil": hf_entry("org/evil", "g.pth", commit, fmt={"type": "torch_pickle"})})
    with pytest.raises(WeightsUnavailableError, match="not a loadable tensor-only torch checkpoint"):
        weights.resolve("tiny.evil")
    assert not os.path.exists(marker)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(io.BytesIO(payload), weights_only=True)


def test_project_manifest_is_valid():
    assert weights.validate_manifest() == []


def test_validator_refuses_an_unknown_cuda_dtype(tmp_path):
    data = json.loads(weights.MANIFEST_PATH.read_text())
    data["models"]["cyclegan.vintage"]["cuda_dtype"] = "half"
    data["models"]["dcgan.faces64"]["cuda_dtype"] = "bfloat16"
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    assert weights.validate_manifest(path) == [
        "cyclegan.vintage: cuda_dtype must be one of float16, bfloat16, float32 (or absent for float32)"]


def test_cli_list_shows_every_entry():
    out = subprocess.run([sys.executable, "-m", "core.weights", "list"], capture_output=True, text=True,
                         cwd=weights.REPO_ROOT, env={**os.environ, "GANHUB_MANIFEST": str(weights.MANIFEST_PATH)})
    assert out.returncode == 0, out.stderr
    ids = json.loads(weights.MANIFEST_PATH.read_text())["models"]
    for model_id in ids:
        assert model_id in out.stdout
    assert "available" in out.stdout or "missing" in out.stdout


def test_unreachable_hub_fails_fast_and_says_why(isolated_cache, write_manifest, monkeypatch):
    import time

    from tests.support.live import free_port

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    write_manifest({"tiny.far": hf_entry("org/tiny", "g.safetensors", "d" * 40)})
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="Hub is unreachable: cannot reach 127.0.0.1"):
        weights.resolve("tiny.far")
    assert time.monotonic() - start < 5  # no retry storm


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
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=repo_root, env=dict(os.environ),
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
    assert weights._cli(["verify", "tiny.shared"]) == 0


def url_entry(url, **source):
    return {"arch": "dcgan", "config": TINY, "title": "tiny", "license": "MIT",
            "sources": [{"kind": "url", "url": url, "sha256": None, "sha256_reason": "test", **source}]}


def test_downloads_stop_at_the_manifest_size(local_hub, write_manifest):
    data = safetensors_bytes(tiny_state()) + bytes(3 << 20)  # 3 MB more than the manifest says
    commit = local_hub.add_file("org/tiny", "g.safetensors", data)
    write_manifest({"tiny.big": url_entry(f"{local_hub.url}/org/tiny/resolve/{commit}/g.safetensors", size=1000)})
    with pytest.raises(WeightsUnavailableError, match="announces 3,[0-9,]+ bytes for .* at most 1,049,576 are expected"):
        weights.resolve("tiny.big")
    assert not list((weights.cache_dir() / "downloads").rglob("*g.safetensors*")), "nothing is left behind"


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
    assert weights._cli(["fetch", "tiny.moved"]) == 0
    out = capsys.readouterr().out
    assert f"the hash of its first download, {hashlib.sha256(data).hexdigest()}, is recorded" in out
    # Later downloads must match it: the server now sends other bytes.
    local_hub.corrupt[("org/tiny", "g.safetensors")] = safetensors_bytes(tiny_state(seed=1))
    src = weights.get_entry("tiny.moved").sources[0]
    weights._url_target(src).unlink()
    with pytest.raises(weights.ChecksumError, match="recorded on first download"):
        weights._fetch_url(src, download=True)


def test_the_index_reader_follows_only_http_links_on_the_index_host(local_pypi, write_manifest, tmp_path):
    payload = pickled({"netG_state_dict": tiny_state()})
    name, wheel = make_wheel("tiny-faces", "1.0.0", "tiny_faces/weights.tar", payload)
    (tmp_path / name).write_bytes(wheel)  # a wheel on the server's own disk, offered as file://
    local_pypi.extra_links = [f"file://{tmp_path / name}",
                              f"http://localhost:{local_pypi.httpd.server_address[1]}/files/{name}"]
    local_pypi.files[name] = wheel  # reachable on another host name only
    with pytest.raises(FileNotFoundError, match="no wheel for tiny-faces==1.0.0"):
        local_pypi.files.pop(name)
        weights._find_wheel("tiny-faces", "1.0.0")
    local_pypi.add_wheel(name, wheel)
    url, _ = weights._find_wheel("tiny-faces", "1.0.0")
    assert url == f"{local_pypi.url}/files/{name}"


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


def test_a_copied_read_only_cache_is_used_or_reported_clearly(local_hub, write_manifest, monkeypatch):
    data = safetensors_bytes(tiny_state())
    commit = local_hub.add_file("org/tiny", "g.safetensors", data)
    write_manifest({"tiny.ro": hf_entry("org/tiny", "g.safetensors", commit, sha=hashlib.sha256(data).hexdigest())})
    converted = weights.resolve("tiny.ro")
    os.utime(converted, ns=(converted.stat().st_atime_ns, converted.stat().st_mtime_ns + 10**9))  # as a copy does

    def read_only(target):  # every file the cache would write starts here: a read-only mount refuses it
        raise PermissionError(13, "Read-only file system", str(target))

    monkeypatch.setattr(weights, "temporary_sibling", read_only)
    assert weights.resolve("tiny.ro") == converted  # intact: used, though its new mtime cannot be recorded
    converted.unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="Weights for tiny.ro .* not available here") as err:
        weights.resolve("tiny.ro")
    assert "Read-only file system" in str(err.value)


def test_user_facing_messages_show_no_absolute_server_paths(isolated_cache, write_manifest):
    write_manifest({"tiny.local": {"arch": "dcgan", "config": TINY, "title": "t", "license": "MIT",
                                   "sources": [{"kind": "local", "path": "no/such.safetensors", "sha256": "0" * 64}]}})
    with pytest.raises(WeightsUnavailableError) as err:
        weights.resolve("tiny.local")
    text = str(err.value) + weights.how_to_provide(weights.get_entry("tiny.local"))
    for absolute in (str(weights.cache_dir()), str(weights.REPO_ROOT), str(isolated_cache)):
        assert absolute not in text
    assert "$GANHUB_CACHE" in text and "no/such.safetensors does not exist beside the manifest or in the repository" in text
    assert weights.display_path(weights.cache_dir() / "converted" / "x") == "$GANHUB_CACHE/converted/x"


def test_face_layouts_come_from_the_manifest():
    from core.weights import face_layout

    layout = face_layout("dcgan_faces64_symmetric")
    assert layout.shape == (5, 2)
    assert layout[0, 0] + layout[1, 0] == pytest.approx(1.0)  # left-right symmetric
    with pytest.raises(ValueError, match="Unknown face layout 'nope'"):
        face_layout("nope")


def test_models_for_app_follows_the_manifest_apps_lists():
    from core.weights import load_manifest, models_for_app

    ids = models_for_app("season")
    assert ids and all("season" in load_manifest()[m].info["apps"] for m in ids)
    assert models_for_app("no-such-app") == []
