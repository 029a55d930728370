"""Run a Gradio app on a free loopback port and talk to it with gradio_client (one per test module)."""

from __future__ import annotations

import contextlib
import shutil
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
def page_client(client):
    """Another client of ``client``'s app that calls as the app's page does (``x-gradio-user: app``,
    which gradio's frontend sends): streaming handlers then send it their previews."""
    from gradio_client import Client

    with tempfile.TemporaryDirectory() as downloads:
        page = Client(client.src, verbose=False, download_files=downloads, analytics_enabled=False,
                      headers={"x-gradio-user": "app"})
        try:
            yield page
        finally:
            page.close()


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


@contextlib.contextmanager
def isolated_app_world(root, keep: tuple[str, ...], overrides: tuple[str, ...] | None = None, **extra_env):
    """A local Hub plus an environment whose caches, manifest (``root/manifest.json``), overrides and
    gradio files all live under ``root``. The test manifest keeps the real entries ``keep``; those of
    ``overrides`` (default: all of ``keep``) are served as overrides when their weights are on this machine. Yields ``(hub, real_entries, face_layouts)``; one torch thread meanwhile
    (small models on a shared CPU)."""
    import json

    import huggingface_hub.constants as hf_constants
    import pytest
    import torch

    from core import weights
    from tests.support.local_servers import LocalHub

    (root / "override").mkdir(exist_ok=True)
    for model_id in keep if overrides is None else overrides:
        if weights.availability(model_id)[0]:
            shutil.copy(weights.resolve(model_id, download=False), root / "override" / f"{model_id}.safetensors")
    manifest = json.loads(weights.manifest_path().read_text())
    real = {k: v for k, v in manifest["models"].items() if k in keep}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp, LocalHub() as hub:
            env = {"HF_HOME": root / "hf", "HF_HUB_CACHE": root / "hf" / "hub", "GANHUB_CACHE": root / "c",
                   "HF_ENDPOINT": hub.url, "GANHUB_MANIFEST": root / "manifest.json",
                   "GANHUB_WEIGHTS_DIR": root / "override", "GRADIO_TEMP_DIR": root / "gradio", **extra_env}
            for name, value in env.items():
                mp.setenv(name, str(value))
            for name in ("HF_HUB_OFFLINE", "GANHUB_OFFLINE"):
                mp.delenv(name, raising=False)
            mp.setattr(hf_constants, "HF_HUB_CACHE", str(root / "hf" / "hub"))
            mp.setattr(hf_constants, "HF_HUB_OFFLINE", False)
            yield hub, real, manifest["face_layouts"]
    finally:
        torch.set_num_threads(threads)


def upload_tiny_stylegan2(hub, config: dict, repo: str = "tests/tiny-stylegan2") -> str:
    """A tiny StyleGAN2 (seed 0) as the official ``g_ema`` pickle on the local Hub; returns its revision."""
    import io

    import torch

    import core.models

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save({"g_ema": core.models.build("stylegan2", **config).state_dict()}, buffer)
    return hub.add_file(repo, "g.pt", buffer.getvalue())
