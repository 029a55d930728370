"""Shared bits of the example client scripts: the connection, the server URL and the repository's example files."""

import ssl
import sys
from pathlib import Path

import certifi
from gradio_client import Client

APPS = Path(__file__).resolve().parent.parent / "apps"


def server_url(default: str = "http://127.0.0.1:7860/") -> str:
    """First command-line argument, else the default of ``python apps/<name>/app.py``.

    Against the hub, pass e.g. http://127.0.0.1:7860/season/ ; against a Space, pass USER/SPACE.
    """
    return sys.argv[1] if len(sys.argv) > 1 else default


def connect() -> Client:
    """A client of the app at :func:`server_url` that reuses one TLS context for all its requests.

    By default gradio_client builds a new one, reading certifi's CA bundle, for every request: each
    upload, each downloaded result and the queue's own requests, which is most of what a call costs
    beyond the job itself (bench/RESULTS.md). This context verifies certificates exactly as that default.
    """
    return Client(server_url(), ssl_verify=ssl.create_default_context(cafile=certifi.where()))
