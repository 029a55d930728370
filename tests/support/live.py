"""Run a Gradio app on a free loopback port and talk to it with gradio_client (one per test module)."""

from __future__ import annotations

import contextlib
import socket
import tempfile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_client(demo, max_size: int = 16):
    """Launch ``demo`` in this process (no thread lock) and yield a connected ``Client``."""
    from gradio_client import Client

    from core import ui

    demo.queue(max_size=max_size)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(),
                            quiet=True, **ui.LAUNCH_KWARGS)
    with tempfile.TemporaryDirectory() as downloads:
        client = Client(url, verbose=False, download_files=downloads, analytics_enabled=False)
        try:
            yield client
        finally:
            client.close()
            demo.close()
