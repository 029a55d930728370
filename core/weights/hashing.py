"""File digests, and the checks of downloaded files against the manifest's."""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.weights.errors import ChecksumError


def _digest(path: str | Path, digest) -> str:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: str | Path) -> str:
    return _digest(path, hashlib.sha256())


def check_sha256(path: Path, expected: str | None, what: str) -> str:
    """``path``'s sha256; :class:`ChecksumError` when ``expected`` is given and differs."""
    actual = sha256_of(path)
    if expected and actual != expected:
        raise ChecksumError(f"sha256 mismatch for {what}: expected {expected[:16]}..., got {actual[:16]}...")
    return actual


def check_md5(path: Path, expected: str | None, what: str) -> None:
    """For sources whose publishers give only an md5 (checked in addition to any sha256)."""
    if not expected:
        return
    actual = _digest(path, hashlib.md5(usedforsecurity=False))
    if actual != expected:
        raise ChecksumError(f"md5 mismatch for {what}: expected {expected[:12]}..., got {actual[:12]}...")
