"""Every app in one process: each app's ``demo`` mounted at ``/<name>/`` on one FastAPI server,
sharing one model cache (``core.cache.MODEL_CACHE``), plus a status page at ``/`` and ``GET /health``.
An app whose module fails to import is shown as failed; the others are served.

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
from core.ui import health
from core.weights import get_entry


FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
           b'fill="#4f46e5"/><text x="8" y="12" font-size="10" text-anchor="middle" fill="white">G</text></svg>')


def load_apps(modules: dict[str, str]) -> tuple[dict, dict]:
    """Import each app module (cheap: apps load their models lazily): (name -> module, name -> error).

    An app whose module fails to import is reported, not fatal: the hub serves the others."""
    loaded, failed = {}, {}
    for name, module_name in modules.items():
        try:
            loaded[name] = importlib.import_module(module_name)
        except Exception as e:  # any import-time error of one app must not take the hub down
            failed[name] = f"{type(e).__name__}: {e}"
            print(f"GAN Demo Hub: the {name} app failed to load ({failed[name]}); serving the others.",
                  file=sys.stderr, flush=True)
    return loaded, failed


def statuses(apps: dict, failed: dict) -> dict:
    """name -> ``core.ui.health.app_status``, in the hub's order."""
    out = {name: health.app_status(module) for name, module in apps.items()}
    out.update({name: health.app_status(error=error) for name, error in failed.items()})
    return out


def _inline_markdown(text: str) -> str:
    """Escape ``text`` for HTML, keeping the **bold** and `code` of the apps' descriptions."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


STATE_LABELS = {health.READY: "ready", health.WEIGHTS_MISSING: "weights missing", health.FAILED: "failed to load"}


def _model_rows(status: dict) -> str:
    rows = []
    for model_id, info in status["models"].items():
        entry = get_entry(model_id)
        state = "weights here" if info["weights_present"] else "weights missing"
        rows.append(f"<li><b>{html.escape(entry.title)}</b> (<code>{html.escape(model_id)}</code>) &middot; "
                    f"{html.escape(entry.license)} &middot; {state} &middot; {html.escape(info['precision'])}</li>")
    return "".join(rows)


def landing_page(apps: dict, failed: dict | None = None) -> str:
    """The status page: per app ready / weights missing (and the command that fetches them) / failed."""
    cards = []
    for name, status in statuses(apps, failed or {}).items():
        state = status["status"]
        badge = f'<span class="state {state.replace(" ", "-")}">{STATE_LABELS[state]}</span>'
        if state == health.FAILED:
            cards.append(f"<section><h2>{html.escape(name)} {badge}</h2>"
                         f"<p>This app did not load: <code>{html.escape(status['reason'])}</code>. "
                         "The other apps are served.</p></section>")
            continue
        module = apps[name]
        fetch = (f"<p>Fetch the missing weights (the models that are here work now): "
                 f"<code>{html.escape(status['fetch'])}</code></p>" if "fetch" in status else "")
        queue = status["queue"]
        cards.append(
            f'<section><h2><a href="{name}/">{html.escape(module.TITLE)}</a> {badge}</h2>'
            f"<p>{_inline_markdown(module.DESCRIPTION)}</p>{fetch}<ul>{_model_rows(status)}</ul>"
            f"<p class='meta'>Queue: {queue['waiting']} waiting, {queue['running']} running &middot; "
            f"MCP: <code>{name}/gradio_api/mcp/</code> &middot; <a href='{name}/health'>health</a></p></section>"
        )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'><title>GAN Demo Hub</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;line-height:1.45}"
        "section{border:1px solid #ddd;border-radius:8px;padding:.5rem 1rem;margin:1rem 0}"
        "code{background:#f4f4f4;padding:0 .2rem}.meta{color:#555;font-size:.9em}"
        ".state{font-size:.6em;padding:.1rem .5rem;border-radius:1rem;vertical-align:middle;color:#fff}"
        ".ready{background:#15803d}.weights-missing{background:#b45309}.failed{background:#b91c1c}</style></head><body>"
        "<h1>GAN Demo Hub</h1><p>Classic GAN research, one narrow app each. Click a title to open the app; "
        "<a href='health'>/health</a> has the same status as JSON.</p>"
        + "".join(cards)
        + "</body></html>"
    )


def create_app(modules: dict[str, str] | None = None) -> FastAPI:
    """The hub: ``modules`` (name -> module path; default every ``apps.<name>.app``) mounted at ``/<name>/``."""
    apps, failed = load_apps(modules or {name: f"apps.{name}.app" for name in APP_NAMES})
    server = FastAPI(title="GAN Demo Hub")

    @server.get("/", response_class=HTMLResponse)
    def index() -> str:
        return landing_page(apps, failed)

    @server.get("/health")
    def hub_health() -> dict:
        return health.report(statuses(apps, failed))

    @server.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml")

    for name, module in apps.items():
        module.demo.queue(max_size=ui.QUEUE_MAX_SIZE)
        gr.mount_gradio_app(server, module.demo, path=f"/{name}", show_error=False,
                            app_kwargs=ui.app_kwargs(module.demo), **ui.LAUNCH_KWARGS)
    return server


def main(argv=None) -> None:
    import uvicorn

    from core.device import tune_allocator

    args = ui.parse_launch_args(argv)
    tune_allocator()
    server = create_app()
    ui.start_warm_ups()
    uvicorn.run(server, host=args.host, port=args.port, root_path=args.root_path or "")


if __name__ == "__main__":
    main()
