"""Where a gradio round trip's time goes: one call of each main endpoint, split into its parts.

Server side: gradio's own profiling traces (``GRADIO_PROFILING=1``: preprocessing, the handler,
postprocessing, streaming diffs, summed over a streaming handler's yields), the images encoded
into gradio's cache (how many, their format, the seconds spent encoding, hashing and writing them)
and the SSE messages sent, by kind. Client side (``gradio_client``, in this process): the uploads,
the downloads (count, bytes, seconds) and the streamed outputs it processed. Usage:
``python bench/round_trip_breakdown.py [--only pulse glasses] [--as-page] [--one-context]`` (the cases
of bench/round_trip.py; ``--as-page`` calls as the app's page does, which streaming handlers send previews).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_PROFILING", "1")  # read when gradio is imported

import collections  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.round_trip import _arguments, _drain, _handler, cases, one_context_client  # noqa: E402


class Meter:
    """Calls, seconds and bytes of one kind of work, by label."""

    def __init__(self):
        self.calls, self.seconds, self.bytes = collections.Counter(), collections.Counter(), collections.Counter()

    def wrap(self, owner, name, label=lambda *a, **k: "", size=lambda result: 0):
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            result = original(*args, **kwargs)
            key = label(*args, **kwargs)
            self.calls[key] += 1
            self.seconds[key] += time.perf_counter() - start
            self.bytes[key] += size(result)
            return result

        setattr(owner, name, timed)

    def reset(self):
        for counter in (self.calls, self.seconds, self.bytes):
            counter.clear()

    def text(self, with_bytes=False) -> str:
        if not self.calls:
            return "none"
        return ", ".join(f"{n} {key}".strip() + f" {self.seconds[key] * 1000:.0f} ms"
                         + (f" {self.bytes[key] / 1000:.0f} KB" if with_bytes else "")
                         for key, n in sorted(self.calls.items()))


def instrument() -> dict[str, Meter]:
    """Meters on the client's uploads, downloads and streamed outputs, and on the server's image writes."""
    from gradio import processing_utils, queueing
    from gradio_client import client

    from core.ui import outputs

    meters = {name: Meter() for name in ("uploads", "downloads", "client outputs", "encodes", "cache writes",
                                         "file hashes", "messages")}
    meters["uploads"].wrap(client.Endpoint, "_upload_file")
    meters["downloads"].wrap(client.Endpoint, "_download_file", size=lambda path: os.path.getsize(path))
    meters["client outputs"].wrap(client.Endpoint, "process_predictions")
    meters["encodes"].wrap(outputs, "encode_image", label=lambda img, format="png": f"{format} {img.width}x{img.height}"
                           if img.width * img.height >= 256 * 256 else f"{format} small")
    meters["cache writes"].wrap(processing_utils, "save_pil_to_cache")
    meters["file hashes"].wrap(processing_utils, "hash_file")
    meters["messages"].wrap(queueing.Queue, "send_message", label=lambda self, event, message: str(message.msg))
    return meters


def server_phases(fn_name: str) -> str:
    from gradio.profiling import collector

    traces = [t for t in collector._traces if t.fn_name == fn_name]
    uploads = [t.upload_ms for t in collector._traces if t.fn_name == "gradio_file_upload"]
    if not traces:
        return "no trace"
    t = traces[-1].to_dict()
    return (f"upload {sum(uploads):.0f} ms ({len(uploads)}), queue {t['queue_wait_ms']:.0f}, "
            f"preprocess {t['preprocess_ms']:.0f}, handler {t['fn_call_ms']:.0f}, postprocess "
            f"{t['postprocess_ms']:.0f}, streaming diff {t['streaming_diff_ms']:.0f} ms, {t['n_iterations']} yields")


def breakdown(only: tuple[str, ...] = (), headers: dict | None = None, one_context: bool = False,
              preview_interval: float | None = None) -> list[str]:
    from gradio.profiling import collector
    from gradio_client import handle_file

    from core.images import load_image
    from core.weights import availability
    from tests.support.live import live_client

    meters = instrument()
    out = []
    for label, app, api_name, given, model_id in cases():
        if (only and not any(o in label for o in only)) or (model_id and not availability(model_id)[0]):
            continue
        module = importlib.import_module(f"apps.{app}.app")
        if preview_interval is not None and hasattr(module, "PREVIEW_INTERVAL"):
            module.PREVIEW_INTERVAL = preview_interval
        demo = module.demo
        arguments = _arguments(demo, api_name, given)
        files = [k for k, v in arguments.items() if isinstance(v, Path)]
        handler = _handler(demo, api_name)
        with live_client(demo) as default_client, one_context_client(default_client.src) as quick_client:
            client = quick_client if one_context else default_client
            client.headers.update(headers or {})
            sent = {k: handle_file(str(v)) if k in files else v for k, v in arguments.items()}
            decoded = {k: load_image(v, keep_alpha=(k == "mask")) if k in files else v for k, v in arguments.items()}
            client.predict(**sent, api_name=api_name)  # warm-up
            _drain(handler(**decoded))
            start = time.perf_counter()
            _drain(handler(**decoded))
            direct = time.perf_counter() - start
            for meter in meters.values():
                meter.reset()
            collector._traces.clear()
            start = time.perf_counter()
            client.predict(**sent, api_name=api_name)
            api = time.perf_counter() - start
            time.sleep(0.2)  # the upload traces are added by a background task
            out += [f"### {label}: direct {direct:.2f} s, round trip {api:.2f} s (+{api - direct:.2f} s)",
                    f"- server: {server_phases(api_name.lstrip('/'))}",
                    f"- server image writes: {meters['cache writes'].text()}; encodes: {meters['encodes'].text()}; "
                    f"file hashes: {meters['file hashes'].text()}",
                    f"- SSE messages: {', '.join(f'{n} {k}' for k, n in sorted(meters['messages'].calls.items()))}",
                    f"- client: uploads {meters['uploads'].text()}; downloads {meters['downloads'].text(True)}; "
                    f"outputs processed {meters['client outputs'].text()}", ""]
            print("\n".join(out[-6:]), flush=True)
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=(), help="run the cases whose label contains one of these")
    parser.add_argument("--as-page", action="store_true", help="call as the app's page does (x-gradio-user: app)")
    parser.add_argument("--one-context", action="store_true", help="a client with one TLS context (the README's tip)")
    parser.add_argument("--preview-interval", type=float, help="seconds between PULSE's previews")
    args = parser.parse_args()
    breakdown(tuple(args.only), {"x-gradio-user": "app"} if args.as_page else None, args.one_context,
              args.preview_interval)
