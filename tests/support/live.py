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
                            quiet=True, app_kwargs=ui.app_kwargs(demo), **ui.LAUNCH_KWARGS)  # as ui.launch does
    with tempfile.TemporaryDirectory() as downloads:
        client = Client(url, verbose=False, download_files=downloads, analytics_enabled=False)
        try:
            yield client
        finally:
            client.close()
            demo.close()


@contextlib.contextmanager
def live_hub(modules: dict[str, str]):
    """Serve ``apps.hub.create_app(modules)`` on a free loopback port (uvicorn in a thread); yield its URL."""
    import threading
    import time

    import uvicorn

    from apps.hub import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(modules), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the hub did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        import sys

        for module_name in modules.values():  # a mounted demo stays "running": a later launch() would refuse
            demo = getattr(sys.modules.get(module_name), "demo", None)
            if demo is not None:
                demo.is_running = False


def mcp_session(url: str, work):
    """``await work(session)`` in a real MCP client session over streamable HTTP to ``url``; its result."""
    import asyncio

    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def main():
        async with httpx.AsyncClient(timeout=httpx.Timeout(300)) as http, \
                streamable_http_client(url, http_client=http) as (read, write, _), \
                ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)

    return asyncio.run(main())
