"""Reachability, capped downloads and the PyPI index reader."""

from __future__ import annotations

import pytest

from core import weights
from core.weights import WeightsUnavailableError
from core.weights.network import find_wheel
from tests.support.tiny_weights import hf_entry, make_wheel, pickled, safetensors_bytes, tiny_state, url_entry


def test_unreachable_hub_fails_fast_and_says_why(isolated_cache, write_manifest, monkeypatch):
    import time

    from tests.support.live import free_port

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    write_manifest({"tiny.far": hf_entry("org/tiny", "g.safetensors", "d" * 40)})
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="Hub is unreachable: cannot reach 127.0.0.1"):
        weights.resolve("tiny.far")
    assert time.monotonic() - start < 5  # no retry storm


def test_downloads_stop_at_the_manifest_size(local_hub, write_manifest):
    data = safetensors_bytes(tiny_state()) + bytes(3 << 20)  # 3 MB more than the manifest says
    commit = local_hub.add_file("org/tiny", "g.safetensors", data)
    write_manifest({"tiny.big": url_entry(f"{local_hub.url}/org/tiny/resolve/{commit}/g.safetensors", size=1000)})
    with pytest.raises(WeightsUnavailableError, match="announces 3,[0-9,]+ bytes for .* at most 1,049,576 are expected"):
        weights.resolve("tiny.big")
    assert not list((weights.cache_dir() / "downloads").rglob("*g.safetensors*")), "nothing is left behind"


def test_the_index_reader_follows_only_http_links_on_the_index_host(local_pypi, write_manifest, tmp_path):
    payload = pickled({"netG_state_dict": tiny_state()})
    name, wheel = make_wheel("tiny-faces", "1.0.0", "tiny_faces/weights.tar", payload)
    (tmp_path / name).write_bytes(wheel)  # a wheel on the server's own disk, offered as file://
    local_pypi.extra_links = [f"file://{tmp_path / name}",
                              f"http://localhost:{local_pypi.httpd.server_address[1]}/files/{name}"]
    local_pypi.files[name] = wheel  # reachable on another host name only
    with pytest.raises(FileNotFoundError, match="no wheel for tiny-faces==1.0.0"):
        local_pypi.files.pop(name)
        find_wheel("tiny-faces", "1.0.0")
    local_pypi.add_wheel(name, wheel)
    url, _ = find_wheel("tiny-faces", "1.0.0")
    assert url == f"{local_pypi.url}/files/{name}"
