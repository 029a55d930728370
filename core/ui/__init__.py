"""The Gradio kit every app is built with (``from core import ui``; ``ui.X`` for every name below).

- ``components``: inputs that refuse bad images and numbers with a clear message, before any work.
- ``errors``: ``user_errors``, what a user reads when a job fails (bad input, weights, GPU memory).
- ``cancels``: ``Cancels``, the one registry of running streaming jobs that Stop buttons cancel.
- ``jobs``: where a job runs (``in_lane`` / ``heavy`` / ``light``, ``JOB_EVENTS``), where its model work
  runs (``offload``: the model worker process on a CPU) and ``gpu`` on ZeroGPU.
- ``outputs``: how output images are encoded and shipped (``encode_image``, ``preview``; streamed
  previews: ``preview_file``, only where ``sees_previews``).
- ``page`` and ``weights_notice``: the model card and the one "weights missing" wording.
- ``reproduce``: the ``gradio_client`` call that reproduces a result, in its notes and PNGs.
- ``health``: ``GET /health`` and the hub's status page data; ``serving``: launch flags and defaults.

Importing the kit installs into gradio: race-free output files, a job's images encoded concurrently,
MCP multi-output results and quieter queue polling.
"""

from core.ui import health, reproduce
from core.ui.cancels import Cancels
from core.ui.components import (
    ImageEditor,
    ImageInput,
    MaskInput,
    Number,
    Radio,
    Sketchpad,
    Slider,
    seed_field,
)
from core.ui.errors import user_errors
from core.ui.health import app_kwargs
from core.ui.jobs import (
    GPU_SECONDS_MAX,
    HEAVY_EVENTS,
    HEAVY_PRIOR_SECONDS,
    JOB_EVENTS,
    gpu,
    heavy,
    in_lane,
    light,
    offload,
    offload_stream,
    preload_on_zero_gpu,
    uses_model_worker,
    start_warm_ups,
    warm_up,
)
from core.ui.outputs import (
    JPEG_QUALITY,
    PNG_COMPRESS_LEVEL,
    PREVIEW_FORMAT,
    contact_sheet,
    encode_image,
    install_atomic_image_cache,
    install_concurrent_image_encoding,
    preview,
    preview_file,
    sees_previews,
)
from core.ui.page import model_card, model_card_markdown
from core.ui.reproduce import reuse_settings, stamp_result
from core.ui.serving import (
    DELETE_CACHE,
    LAUNCH_KWARGS,
    QUEUE_MAX_SIZE,
    install_mcp_multiple_outputs_fix,
    install_queue_poll_intervals,
    launch,
    parse_launch_args,
)
from core.ui.weights_notice import (
    fetch_command,
    missing_models,
    missing_weights_message,
    weights_notice,
    weights_status,
)

install_atomic_image_cache()
install_concurrent_image_encoding()
install_mcp_multiple_outputs_fix()
install_queue_poll_intervals()

__all__ = [
    "Cancels", "DELETE_CACHE", "GPU_SECONDS_MAX", "HEAVY_EVENTS", "HEAVY_PRIOR_SECONDS", "JOB_EVENTS", "JPEG_QUALITY",
    "LAUNCH_KWARGS", "PNG_COMPRESS_LEVEL", "PREVIEW_FORMAT", "QUEUE_MAX_SIZE", "ImageEditor", "ImageInput",
    "MaskInput", "Number", "Radio", "Sketchpad", "Slider", "app_kwargs", "contact_sheet", "encode_image",
    "fetch_command", "gpu", "health", "heavy", "in_lane", "launch", "light", "missing_models",
    "missing_weights_message", "model_card",
    "model_card_markdown", "offload", "offload_stream", "parse_launch_args", "preload_on_zero_gpu", "preview",
    "preview_file", "reproduce", "reuse_settings", "seed_field", "sees_previews", "stamp_result", "user_errors",
    "start_warm_ups", "uses_model_worker", "warm_up", "weights_notice", "weights_status",
]
