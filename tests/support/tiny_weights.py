"""Tiny DCGAN weights in the file formats the sources serve, and manifest entries pointing at them,
for the tests of ``core.weights`` (run against the local Hub-compatible server and PyPI index)."""

from __future__ import annotations

import io
import zipfile

import torch

import core.models

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


def make_wheel(package, version, member, data) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    dist = f"{package.replace('-', '_')}-{version}"
    with zipfile.ZipFile(buffer, "w") as whl:
        whl.writestr(member, data)
        whl.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    return f"{dist}-py3-none-any.whl", buffer.getvalue()


def url_entry(url, **source):
    return {"arch": "dcgan", "config": TINY, "title": "tiny", "license": "MIT",
            "sources": [{"kind": "url", "url": url, "sha256": None, "sha256_reason": "test", **source}]}
