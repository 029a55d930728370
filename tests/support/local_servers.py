"""Local stand-ins for the Hugging Face Hub and a PyPI simple index, on 127.0.0.1.

``LocalHub`` speaks the part of the Hub HTTP API that ``huggingface_hub`` uses to download
(``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag`` and
``Content-Length``; ``GET /api/models/{repo}/revision/{rev}`` and the file listing
``GET /api/models/{repo}/tree/{rev}[/{folder}]?recursive=...`` for snapshots). Tests point
``HF_ENDPOINT`` at it, so the real download code runs unchanged. ``LocalPyPI`` serves a PEP 503
simple index with wheels the tests build.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field


@dataclass
class _Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)


class _Server:
    def __init__(self):
        handler = self._handler_class()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.requests: list[tuple[str, str]] = []
        self.redirects: dict[str, str] = {}  # path -> Location answered with 302

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler_class(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                server.requests.append(("HEAD", self.path))
                server.handle(self, head=True)

            def do_GET(self):
                server.requests.append(("GET", self.path))
                if self.path in server.redirects:
                    return server.send(self, 302, b"", {"Location": server.redirects[self.path]})
                server.handle(self, head=False)

        return Handler

    @staticmethod
    def send(handler, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
        handler.send_response(status)
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)


class LocalHub(_Server):
    """A tiny Hub: ``add_file(repo, path, data)`` returns the new 40-character commit sha."""

    def __init__(self):
        super().__init__()
        self.repos: dict[str, _Repo] = {}
        self.delay_s = 0.0  # seconds each file download waits before its body: makes transfers overlap
        self.corrupt: dict[tuple[str, str], bytes] = {}  # (repo, path) -> bytes served instead (once)

    def add_files(self, repo_id: str, files: dict[str, bytes], ref: str = "main") -> str:
        repo = self.repos.setdefault(repo_id, _Repo())
        parent = repo.commits.get(repo.refs.get(ref, ""), {})
        tree = {**parent, **files}
        commit = hashlib.sha1(json.dumps([repo_id, sorted((p, hashlib.sha256(d).hexdigest()) for p, d in tree.items()),
                                          len(repo.commits)]).encode()).hexdigest()
        repo.commits[commit] = tree
        repo.refs[ref] = commit
        return commit

    def add_file(self, repo_id: str, path: str, data: bytes, ref: str = "main") -> str:
        return self.add_files(repo_id, {path: data}, ref)

    def _commit(self, repo: _Repo, revision: str) -> str | None:
        revision = urllib.parse.unquote(revision)
        if revision in repo.commits:
            return revision
        return repo.refs.get(revision)

    def handle(self, h, head: bool):
        path = urllib.parse.urlparse(h.path).path
        if path.startswith("/api/models/"):
            return self._api(h, path[len("/api/models/"):], head)
        if "/resolve/" not in path:
            return self.send(h, 404, b"not found", head=head)
        repo_id, rest = path.lstrip("/").split("/resolve/", 1)
        revision, _, filename = rest.partition("/")
        repo = self.repos.get(repo_id)
        if repo is None:
            return self.send(h, 404, b"Repository not found", {"X-Error-Code": "RepoNotFound"}, head)
        commit = self._commit(repo, revision)
        if commit is None:
            return self.send(h, 404, b"Revision not found", {"X-Error-Code": "RevisionNotFound"}, head)
        filename = urllib.parse.unquote(filename)
        tree = repo.commits[commit]
        if filename not in tree:
            return self.send(h, 404, b"Entry not found", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, head)
        data = tree[filename]
        etag = hashlib.sha256(data).hexdigest()
        if not head and self.delay_s:
            time.sleep(self.delay_s)
        if not head and (repo_id, filename) in self.corrupt:
            data = self.corrupt.pop((repo_id, filename))
        headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"}
        if head:
            headers["X-Linked-Size"] = str(len(tree[filename]))
        return self.send(h, 200, data, headers, head)

    def _api(self, h, rest: str, head: bool):
        if "/tree/" in rest:
            return self._tree(h, rest, head)
        if "/revision/" in rest:
            repo_id, revision = rest.split("/revision/", 1)
        else:
            repo_id, revision = rest, "main"
        repo = self.repos.get(repo_id)
        commit = self._commit(repo, revision) if repo else None
        if commit is None:
            return self.send(h, 404, b'{"error": "not found"}', {"X-Error-Code": "RepoNotFound"}, head)
        tree = repo.commits[commit]
        body = json.dumps({
            "id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
            "siblings": [{"rfilename": p, "size": len(d)} for p, d in sorted(tree.items())],
        }).encode()
        return self.send(h, 200, body, {"Content-Type": "application/json", "X-Repo-Commit": commit}, head)


    def _tree(self, h, rest: str, head: bool):
        """``list_repo_tree``: files (with their git blob id) and folders under a path, one page."""
        repo_id, tail = rest.split("/tree/", 1)
        revision, _, folder = tail.partition("/")
        folder = urllib.parse.unquote(folder).strip("/")
        query = urllib.parse.parse_qs(urllib.parse.urlparse(h.path).query)
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        repo = self.repos.get(repo_id)
        commit = self._commit(repo, revision) if repo else None
        if commit is None:
            code = "RepoNotFound" if repo is None else "RevisionNotFound"
            return self.send(h, 404, b'{"error": "not found"}', {"X-Error-Code": code}, head)
        prefix = f"{folder}/" if folder else ""
        files, folders = [], set()
        for path, data in sorted(repo.commits[commit].items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix):].split("/")
            for depth in range(1, len(parts)):  # the folders between ``folder`` and the file
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                files.append({"type": "file", "path": path, "size": len(data), "oid": blob_id})
        if folder and not files and not folders:
            return self.send(h, 404, b'{"error": "not found"}', {"X-Error-Code": "EntryNotFound"}, head)
        entries = [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()} for f in sorted(folders)]
        body = json.dumps(entries + files).encode()
        return self.send(h, 200, body, {"Content-Type": "application/json", "X-Repo-Commit": commit}, head)


class LocalPyPI(_Server):
    """A PEP 503 simple index: ``add_wheel(filename, data)``."""

    def __init__(self):
        super().__init__()
        self.files: dict[str, bytes] = {}
        self.extra_links: list[str] = []  # hrefs listed on every project page, as a hostile index would

    @property
    def index_url(self) -> str:
        return f"{self.url}/simple"

    def add_wheel(self, filename: str, data: bytes) -> str:
        self.files[filename] = data
        return hashlib.sha256(data).hexdigest()

    def handle(self, h, head: bool):
        path = urllib.parse.urlparse(h.path).path
        if path.startswith("/simple/"):
            project = path[len("/simple/"):].strip("/")
            links = [
                f'<a href="/files/{name}#sha256={hashlib.sha256(data).hexdigest()}">{name}</a><br/>'
                for name, data in sorted(self.files.items())
                if name.split("-")[0].replace("_", "-").lower() == project
            ]
            links += [f'<a href="{href}">{href.rsplit("/", 1)[-1]}</a><br/>' for href in self.extra_links]
            if not links:
                return self.send(h, 404, b"not found", head=head)
            return self.send(h, 200, ("<html><body>" + "\n".join(links) + "</body></html>").encode(),
                             {"Content-Type": "text/html"}, head)
        if path.startswith("/files/") and path[len("/files/"):] in self.files:
            return self.send(h, 200, self.files[path[len("/files/"):]], {"Content-Type": "application/octet-stream"}, head)
        return self.send(h, 404, b"not found", head=head)


def isolate_weights(mp, root, endpoint: str | None = None) -> None:
    """Point every weights cache at ``root`` (empty), drop overrides and offline flags, and aim the
    Hub client at ``endpoint`` (a ``LocalHub``), through the monkeypatch ``mp``."""
    import huggingface_hub.constants as hf_constants

    hub_cache = str(root / "hf_home" / "hub")
    mp.setenv("HF_HOME", str(root / "hf_home"))
    mp.setenv("HF_HUB_CACHE", hub_cache)
    mp.setenv("GANHUB_CACHE", str(root / "ganhub_cache"))
    if endpoint:
        mp.setenv("HF_ENDPOINT", endpoint)
    for name in ("GANHUB_WEIGHTS_DIR", "HF_HUB_OFFLINE", "GANHUB_OFFLINE"):
        mp.delenv(name, raising=False)
    mp.setattr(hf_constants, "HF_HUB_CACHE", hub_cache)
    mp.setattr(hf_constants, "HF_HUB_OFFLINE", False)
