"""How an app is served: launch flags and defaults, the queue, the cache clean-up, and the MCP server."""

from __future__ import annotations

import argparse
import os

import gradio as gr

from core.limits import max_upload_bytes
from core.ui.health import app_kwargs

# Every public endpoint is also an MCP tool (streamable HTTP at <app URL>/gradio_api/mcp/), unless
# GRADIO_MCP_SERVER=False; gradio's own variable, here on by default.
MCP_SERVER = os.environ.get("GRADIO_MCP_SERVER", "True").strip().lower() not in ("0", "false", "no", "off")
# Keyword arguments every app passes to launch() / gr.mount_gradio_app().
LAUNCH_KWARGS = dict(max_file_size=max_upload_bytes(), footer_links=["api", "gradio", "settings"], mcp_server=MCP_SERVER)
QUEUE_MAX_SIZE = int(os.environ.get("GANHUB_QUEUE_MAX_SIZE", "16"))
# Every app's gr.Blocks(delete_cache=...): each hour, files gradio cached for uploads and outputs
# that are more than an hour old are deleted, so a long-running server does not fill its disk.
DELETE_CACHE = (3600, 3600)


# gradio's queue checks for new jobs every 1 ms and for progress every 10 ms, even when idle: an idle hub
# (one queue per app) used 23 % of a core, and an idle app slowed a PULSE search in the model worker by
# 20 % on 2 cores (bench/RESULTS.md, "Round trip: fewer files and updates, quiet queues"). At 10 ms a job waits 5 ms on average to
# start; progress messages are coalesced 20 times a second.
QUEUE_POLL_SECONDS, PROGRESS_POLL_SECONDS = 0.01, 0.05


def install_queue_poll_intervals() -> None:
    """Every gradio queue made from now on polls at :data:`QUEUE_POLL_SECONDS` and
    :data:`PROGRESS_POLL_SECONDS` (installed when ``core.ui`` is imported)."""
    from gradio import queueing

    original = queueing.Queue.__init__
    if getattr(original, "sets_poll_intervals", False):
        return

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.sleep_when_free = max(self.sleep_when_free, QUEUE_POLL_SECONDS)
        self.progress_update_sleep_when_free = max(self.progress_update_sleep_when_free, PROGRESS_POLL_SECONDS)

    init.sets_poll_intervals = True
    queueing.Queue.__init__ = init


def install_mcp_multiple_outputs_fix() -> None:
    """gradio 6.31's MCP server, on a call without a progress token, wraps a multi-output endpoint's
    whole result tuple as one output: the client gets one text blob of server paths instead of the
    images (base64) and texts. Split the tuple into its outputs, as the progress path already does."""
    try:
        from gradio.mcp import GradioMCPServer
    except ImportError:  # gradio without the mcp extra
        return
    original = GradioMCPServer._execute_tool_without_progress
    if getattr(original, "splits_outputs", False):
        return

    async def execute_without_progress(self, job):
        outputs = await original(self, job)
        return list(outputs[0]) if len(outputs) == 1 and isinstance(outputs[0], tuple) else outputs

    execute_without_progress.splits_outputs = True
    GradioMCPServer._execute_tool_without_progress = execute_without_progress


def parse_launch_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a GAN Demo Hub app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to bind (0.0.0.0 to serve the network)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--root-path", default=os.environ.get("GRADIO_ROOT_PATH"), help="when behind a reverse proxy")
    return parser.parse_args(argv)


def launch(demo: gr.Blocks, argv: list[str] | None = None) -> None:
    """Launch one app with the hub's defaults and the command-line flags."""
    from core.device import tune_allocator

    from core.ui.jobs import start_warm_ups

    args = parse_launch_args(argv)
    tune_allocator()
    start_warm_ups()
    demo.queue(max_size=QUEUE_MAX_SIZE).launch(
        server_name=args.host, server_port=args.port, share=args.share, root_path=args.root_path,
        app_kwargs=app_kwargs(demo), **LAUNCH_KWARGS
    )
