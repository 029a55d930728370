"""Every app in one process: each app's ``demo`` mounted at ``/<name>/`` on one FastAPI server,
sharing one model cache (``core.cache.MODEL_CACHE``), plus a landing page at ``/``.

Run: python -m apps.hub   (or python apps/hub.py; same flags as a single app)
"""

from __future__ import annotations

import html
import importlib
import re
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from apps import APP_NAMES
from core import ui
from core.weights import availability, get_entry


FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
           b'fill="#4f46e5"/><text x="8" y="12" font-size="10" text-anchor="middle" fill="white">G</text></svg>')


def load_apps(names=APP_NAMES) -> dict:
    """Import each ``apps.<name>.app`` module (cheap: apps load their models lazily)."""
    return {name: importlib.import_module(f"apps.{name}.app") for name in names}


def _inline_markdown(text: str) -> str:
    """Escape ``text`` for HTML, keeping the **bold** and `code` of the apps' descriptions."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def landing_page(apps: dict) -> str:
    cards = []
    for name, module in apps.items():
        rows = []
        for model_id in getattr(module, "MODEL_IDS", []):
            entry = get_entry(model_id)
            available, _ = availability(model_id)
            state = "weights here" if available else f"weights missing: <code>python -m core.weights fetch {model_id}</code>"
            rows.append(f"<li><b>{html.escape(entry.title)}</b> &middot; {html.escape(entry.license)} &middot; {state}</li>")
        cards.append(
            f'<section><h2><a href="{name}/">{html.escape(module.TITLE)}</a></h2>'
            f"<p>{_inline_markdown(module.DESCRIPTION)}</p><ul>{''.join(rows)}</ul></section>"
        )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'><title>GAN Demo Hub</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;line-height:1.45}"
        "section{border:1px solid #ddd;border-radius:8px;padding:.5rem 1rem;margin:1rem 0}"
        "code{background:#f4f4f4;padding:0 .2rem}</style></head><body>"
        "<h1>GAN Demo Hub</h1><p>Classic GAN research, one narrow app each. Click a title to open the app.</p>"
        + "".join(cards)
        + "</body></html>"
    )


def create_app(names=APP_NAMES) -> FastAPI:
    apps = load_apps(names)
    server = FastAPI(title="GAN Demo Hub")

    @server.get("/", response_class=HTMLResponse)
    def index() -> str:
        return landing_page(apps)

    @server.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml")

    for name, module in apps.items():
        module.demo.queue(max_size=ui.QUEUE_MAX_SIZE)
        gr.mount_gradio_app(server, module.demo, path=f"/{name}", show_error=False, **ui.LAUNCH_KWARGS)
    return server


def main(argv=None) -> None:
    import uvicorn

    from core.device import tune_allocator

    args = ui.parse_launch_args(argv)
    tune_allocator()
    uvicorn.run(create_app(), host=args.host, port=args.port, root_path=args.root_path or "")


if __name__ == "__main__":
    main()
