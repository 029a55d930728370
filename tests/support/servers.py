"""Start the hub or one app as a user does (a subprocess on a free loopback port) and wait for it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.live import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def serve(command: list[str], path: str = "/", timeout: float = 120, env: dict | None = None):
    """Run ``command`` (it gets ``--port``), yield its base URL once ``path`` answers, then stop it."""
    port = free_port()
    log = open(os.devnull, "wb")
    process = subprocess.Popen([sys.executable, *command, "--port", str(port)], cwd=REPO_ROOT,
                               env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})},
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    try:
        while True:
            try:
                urllib.request.urlopen(url + path, timeout=2)
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"{' '.join(command)} exited with code {process.returncode}")
                if time.time() > deadline:
                    raise TimeoutError(f"{' '.join(command)} did not answer within {timeout} s")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def serve_hub(**kwargs):
    return serve(["-m", "apps.hub"], **kwargs)


def serve_app(name: str, **kwargs):
    return serve([f"apps/{name}/app.py"], **kwargs)
