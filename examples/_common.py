"""Shared bits of the example client scripts: the server URL and the repository's example files."""

import sys
from pathlib import Path

APPS = Path(__file__).resolve().parent.parent / "apps"


def server_url(default: str = "http://127.0.0.1:7860/") -> str:
    """First command-line argument, else the default of ``python apps/<name>/app.py``.

    Against the hub, pass e.g. http://127.0.0.1:7860/season/ ; against a Space, pass USER/SPACE.
    """
    return sys.argv[1] if len(sys.argv) > 1 else default
