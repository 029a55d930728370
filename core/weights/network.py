"""Networking for the sources: reachability, capped downloads that follow redirects only on the
same host, and the PyPI simple-index reader (PEP 503) that finds a pinned wheel."""

from __future__ import annotations

import html.parser
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from core.weights.paths import temporary_sibling

# Where an index's wheels may live besides the index host itself: pypi.org serves its files there.
INDEX_FILE_HOSTS = {"pypi.org": {"files.pythonhosted.org"}}
MAX_INDEX_PAGE_BYTES = 8 << 20
REACHABILITY_TTL_S = 60
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")

_reachability: dict[tuple[str, int], tuple[float, str | None]] = {}


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (read now, not only at import) or ``GANHUB_OFFLINE`` is set."""
    from huggingface_hub import constants

    env = any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in ("HF_HUB_OFFLINE", "GANHUB_OFFLINE"))
    return env or constants.HF_HUB_OFFLINE


def unreachable_reason(url: str) -> str | None:
    """Why ``url``'s host cannot be reached right now (None when it can), from a quick TCP connect.

    Checked once a minute per host, so a machine without network fails in milliseconds instead of
    sitting through every client's retries. Skipped when a proxy is configured.
    """
    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return None
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    cached = _reachability.get((host, port))
    if cached and time.monotonic() - cached[0] < REACHABILITY_TTL_S:
        return cached[1]
    try:
        socket.create_connection((host, port), timeout=float(os.environ.get("GANHUB_CONNECT_TIMEOUT", "3"))).close()
        reason = None
    except OSError as e:
        reason = f"cannot reach {host}:{port} ({e.strerror or e})"
    _reachability[(host, port)] = (time.monotonic(), reason)
    return reason


class SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same scheme and host: a source's URL is the only server trusted."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old = urllib.parse.urlparse(req.full_url)
        new = urllib.parse.urlparse(urllib.parse.urljoin(req.full_url, newurl))
        if (new.scheme, new.hostname, new.port) != (old.scheme, old.hostname, old.port):
            raise urllib.error.HTTPError(req.full_url, code, f"refused a redirect to another host ({new.hostname})",
                                         headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


OPENER = urllib.request.build_opener(SameHostRedirects)


def copy_capped(source, out, limit: int, what: str) -> int:
    """Copy a stream into ``out``, refusing more than ``limit`` bytes (``core.limits``)."""
    done = 0
    while block := source.read(1 << 20):
        done += len(block)
        if done > limit:
            raise ValueError(f"{what} is larger than the {limit:,} bytes expected; refused")
        out.write(block)
    return done


def download(url: str, target: Path, timeout: float = 60.0, expected_size: int | None = None) -> None:
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
        with OPENER.open(request, timeout=timeout) as response, open(tmp, "wb") as out:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise ValueError(f"the server announces {int(declared):,} bytes for {url}; at most {limit:,} "
                                 "are expected; refused")
            copy_capped(response, out, limit, f"the download of {url}")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


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
    index = os.environ.get("GANHUB_PYPI_INDEX") or os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"
    return index.rstrip("/")


def _index_links(index: str) -> list[str]:
    request = urllib.request.Request(index, headers={"User-Agent": "gan-demo-hub"})
    with OPENER.open(request, timeout=30) as r:
        parser = _LinkParser()
        parser.feed(r.read(MAX_INDEX_PAGE_BYTES).decode("utf-8", "replace"))
    return parser.links


def find_wheel(package: str, version: str) -> tuple[str, str | None]:
    """URL and sha256 of the wheel ``package==version`` on the simple index (PEP 503). Only
    http(s) links on the index's host (and pypi.org's file host) are followed: never ``file://``."""
    normalized = re.sub(r"[-_.]+", "-", package).lower()
    index = f"{pypi_index_url()}/{normalized}/"
    index_host = urllib.parse.urlparse(index).hostname
    if urllib.parse.urlparse(index).scheme not in ("http", "https"):
        raise ValueError(f"the package index must be an http(s) URL, not {pypi_index_url()!r}")
    stem = re.sub(r"[-_.]+", "_", package).lower()
    hosts = {index_host} | INDEX_FILE_HOSTS.get(index_host, set())
    wheels = []
    for href in _index_links(index):
        url = urllib.parse.urljoin(index, href)
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or parsed.hostname not in hosts:
            continue
        filename = urllib.parse.unquote(Path(parsed.path).name)
        parts = filename[:-4].split("-") if filename.endswith(".whl") else []
        if len(parts) >= 5 and parts[0].lower() == stem and parts[1] == version:
            sha = parsed.fragment.split("=", 1)[1] if parsed.fragment.startswith("sha256=") else None
            wheels.append((0 if filename.endswith("-py3-none-any.whl") else 1, url.split("#")[0], sha))
    if not wheels:
        raise FileNotFoundError(f"no wheel for {package}=={version} on {pypi_index_url()}")
    _, url, sha = sorted(wheels)[0]
    return url, sha
