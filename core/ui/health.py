"""What a server can do right now: ``GET /health`` JSON (each app and the hub) and the hub's status page.

Per app: ``ready`` (every model's weights are here), ``weights missing`` (with the one command that
fetches them; models that are here still work) or ``failed`` (its module did not import, with the
reason). Per model: weights present and the precision it runs in on this machine. Per app's queue:
events waiting, running, and the queue's limit. Nothing here loads a model or downloads anything.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import core
from core.ui.weights_notice import fetch_command

READY, WEIGHTS_MISSING, FAILED = "ready", "weights missing", "failed"

def _precision(model_id: str, device) -> str:
    import torch

    from core.device import default_dtype
    from core.weights import autocast_for, get_entry

    if get_entry(model_id).arch == "diffusers":
        from core.pipelines.text_to_image_loading import pipeline_dtype

        return str(pipeline_dtype(model_id, device)).removeprefix("torch.")
    if isinstance(autocast_for(model_id, device), torch.autocast):
        return "bfloat16 autocast"
    return str(default_dtype(device)).removeprefix("torch.")


def queue_state(demo) -> dict[str, Any]:
    """Events waiting in ``demo``'s queue, running, and the queue's limit (None: no limit)."""
    queue = getattr(demo, "_queue", None)
    if queue is None:
        return {"waiting": 0, "running": 0, "max_size": None}
    return {"waiting": len(queue), "running": queue.get_active_worker_count(), "max_size": queue.max_size}


def app_status(module=None, error: str | None = None) -> dict[str, Any]:
    """The status of one app: its module (imported) or the error its import raised."""
    if error is not None:
        return {"status": FAILED, "reason": error}
    from core.device import get_device
    from core.weights import availability

    device = get_device()
    models = {m: {"weights_present": availability(m)[0], "precision": _precision(m, device)}
              for m in getattr(module, "MODEL_IDS", [])}
    missing = [m for m, info in models.items() if not info["weights_present"]]
    status = {"status": WEIGHTS_MISSING if missing else READY, "title": module.TITLE, "models": models,
              "queue": queue_state(module.demo)}
    if missing:
        status["fetch"] = fetch_command(missing)
    return status


def report(apps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``/health`` body: versions, device and dtype policy, and ``apps`` (name -> :func:`app_status`)."""
    import gradio
    import torch

    from core.device import cpu_has_native_bfloat16, default_dtype, get_device

    device = get_device()
    return {
        "status": "degraded" if any(a["status"] == FAILED for a in apps.values()) else "ok",
        "version": core.__version__,
        "gradio": gradio.__version__,
        "torch": torch.__version__,
        "device": str(device),
        "dtype_policy": {
            "default": str(default_dtype(device)).removeprefix("torch."),
            "cpu_native_bfloat16": cpu_has_native_bfloat16(),
            "cpu_bfloat16_autocast": os.environ.get("GANHUB_CPU_BF16", "auto"),
        },
        "model_worker": model_worker_state(device.type),
        "apps": apps,
    }


def model_worker_state(device_type: str) -> dict[str, Any]:
    """Where heavy jobs run (``process``: the model worker, ``inline``: the server) and the workers started."""
    from core import model_worker
    from core.ui.jobs import uses_model_worker

    return {"mode": "process" if uses_model_worker(device_type) else "inline", "workers": model_worker.status()}


def app_kwargs(demo) -> dict:
    """``app_kwargs`` for launch() / mount_gradio_app(): the app's own ``GET /health``.

    The app's module is the one whose ``demo`` is ``demo`` (it holds ``TITLE`` and ``MODEL_IDS``); any other
    Blocks gets no extra route."""
    from fastapi.routing import APIRoute

    module = next((m for m in list(sys.modules.values())
                   if getattr(m, "demo", None) is demo and hasattr(m, "MODEL_IDS") and hasattr(m, "TITLE")), None)
    if module is None:  # a Blocks that is not one of the apps: no health route
        return {}
    name = Path(module.__file__).parent.name  # apps/<name>/app.py, also when run as __main__

    def app_health() -> dict:
        return report({name: app_status(module)})

    return {"routes": [APIRoute("/health", app_health, methods=["GET"])]}
