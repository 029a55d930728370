"""Gradio round trip next to the direct call, for every app's main endpoint (used by bench/run.py).

Direct: the app's handler called in this process on the decoded inputs (what gradio hands it).
Round trip: the same arguments through gradio_client against the app on a loopback server; the
difference is upload, queue, pre/post-processing (image encoding) and download. Also: what an
image costs to encode (the PNG compress level and the preview format are chosen from it) and
gradio's own floor around handlers that do no work.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
APPS = REPO_ROOT / "apps"


def _median(fn, repeats):
    fn()  # warm-up (model load, first-shape costs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _interleaved_medians(*calls, repeats, short_repeats: int = 9):
    """Medians of calls timed alternately, so that load on this small machine hits them alike. When
    the first call takes 0.4-1.5 s (the shortest jobs the 1.15x target counts), all are timed
    ``short_repeats`` times: such ratios moved by +-0.1 between runs of 3 pairs on this shared
    machine, and 9 pairs of them cost little."""
    for call in calls:  # warm-up (model load, first-shape costs)
        call()
    times = [[] for _ in calls]
    rounds = max(repeats, 3)
    while len(times[0]) < rounds:
        for call, bucket in zip(calls, times):
            start = time.perf_counter()
            call()
            bucket.append(time.perf_counter() - start)
        if len(times[0]) == 1 and 0.4 <= times[0][0] < 1.5:
            rounds = max(rounds, short_repeats)
    return [statistics.median(bucket) for bucket in times]


@contextlib.contextmanager
def one_context_client(url: str):
    """A gradio_client ``Client`` that reuses one TLS context (certifi's CA bundle, as httpx's default) for
    all its requests: by default it builds a new one for every upload, download and queue request, and
    reading the CA bundle is most of what each of those costs (the README's tip for scripts)."""
    import certifi
    from gradio_client import Client

    context = ssl.create_default_context(cafile=certifi.where())
    with tempfile.TemporaryDirectory() as downloads:
        client = Client(url, verbose=False, download_files=downloads, analytics_enabled=False, ssl_verify=context)
        try:
            yield client
        finally:
            client.close()


class KeepAliveClient:
    """The gradio HTTP API on one keep-alive connection, as the app's page uses it: upload the files in
    one request, join the queue, read the event stream, download the result's files. No client-side
    work beyond that (gradio_client's own cost is the difference between the two columns); like a
    script, it does not send the page's ``x-gradio-user: app``, so streaming handlers send no previews.
    Its calls share one session, as a page's and a gradio_client ``Client``'s do: gradio builds a
    session's state from every component's config on its first call (4 ms for the glasses app, 16 ms
    for the latent lab's 78 components)."""

    def __init__(self, url: str):
        import uuid

        import httpx

        self.url, self.http, self.session = url.rstrip("/"), httpx.Client(timeout=600), uuid.uuid4().hex
        config = self.http.get(f"{self.url}/config").json()
        self.fn_index = {d.get("api_name"): d["id"] for d in config["dependencies"]}
        self.parameters = {name: [p["parameter_name"] for p in endpoint["parameters"]] for name, endpoint in
                           self.http.get(f"{self.url}/gradio_api/info").json()["named_endpoints"].items()}

    def predict(self, api_name: str, arguments: dict) -> list:
        """The endpoint's outputs (a file output as its downloaded bytes); ``Path`` arguments are uploaded."""
        import json

        names = self.parameters[api_name]
        paths = [k for k in names if isinstance(arguments.get(k), Path)]
        uploaded = {}
        if paths:
            response = self.http.post(f"{self.url}/gradio_api/upload",
                                      files=[("files", arguments[k].open("rb")) for k in paths])
            response.raise_for_status()
            uploaded = {k: {"path": p, "meta": {"_type": "gradio.FileData"}} for k, p in zip(paths, response.json())}
        self.http.post(f"{self.url}/gradio_api/queue/join", json={
            "data": [uploaded.get(k, arguments.get(k)) for k in names], "fn_index": self.fn_index[api_name.lstrip("/")],
            "session_hash": self.session}).raise_for_status()
        message = {}
        with self.http.stream("GET", f"{self.url}/gradio_api/queue/data", params={"session_hash": self.session}) as events:
            for line in events.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        break
        if not message.get("success"):
            raise RuntimeError(f"{api_name} failed: {message}")
        return [self._download(value) for value in message["output"]["data"]]

    def _download(self, value):
        if isinstance(value, list):
            return [self._download(v) for v in value]
        if isinstance(value, dict) and value.get("url"):
            response = self.http.get(value["url"])
            response.raise_for_status()
            return response.content
        if isinstance(value, dict):
            return {k: self._download(v) for k, v in value.items()}
        return value

    def close(self) -> None:
        self.http.close()


def _drain(result):
    """A streaming handler's last yield (what a client's predict() returns), or a plain result."""
    if hasattr(result, "__next__"):
        last = None
        for last in result:
            pass
        return last
    return result


def cases():
    """(label, app, api name, {argument: value}, names of the image arguments, model needed) per main endpoint."""
    inpaint, season = APPS / "inpaint" / "examples", APPS / "season" / "examples"
    return [
        ("inpaint, Telea, 512x512 photo", "inpaint", "/inpaint",
         {"image": inpaint / "astronaut.jpg", "mask": inpaint / "astronaut_mask.png", "method": "telea"}, None),
        ("inpaint, LaMa, 512x512 photo", "inpaint", "/inpaint",
         {"image": inpaint / "astronaut.jpg", "mask": inpaint / "astronaut_mask.png", "method": "lama"},
         "lama.big_lama"),
        ("sketch2photo, edges -> faces, 4 variations", "sketch2photo", "/sketch_to_photo",
         {"sketch": APPS / "sketch2photo" / "examples" / "face_sketch_1.png"}, "pix2pix.edges2faces64"),
        ("season, vintage, fast mode, 451x300 photo", "season", "/translate",
         {"image": season / "chelsea.jpg", "model_id": "cyclegan.vintage", "mode": "resize"}, "cyclegan.vintage"),
        ("season, vintage, full resolution, 451x300 photo", "season", "/translate",
         {"image": season / "chelsea.jpg", "model_id": "cyclegan.vintage", "mode": "tiled"}, "cyclegan.vintage"),
        ("season, vintage, full resolution, 640x427 photo", "season", "/translate",
         {"image": season / "rocket.jpg", "model_id": "cyclegan.vintage", "mode": "tiled"}, "cyclegan.vintage"),
        ("pulse, DCGAN, 16 px face, 100 steps x 4", "pulse", "/upsample",
         {"image": APPS / "pulse" / "examples" / "dcgan_face_16.png", "size": 16, "seed": 1}, "dcgan.faces64"),
        ("glasses, two photos", "glasses", "/swap",
         {"image_a": APPS / "glasses" / "examples" / "a_photo_glasses.jpg",
          "image_b": APPS / "glasses" / "examples" / "b_photo.jpg"}, "genegan.eyeglasses64"),
        ("latent, 8 DCGAN samples", "latent", "/sample", {"generator": "dcgan.faces64", "seed": 1}, "dcgan.faces64"),
        ("latent, edit a photo through its latent (hybrid inversion, 100 steps)", "latent", "/edit",
         {"photo": APPS / "latent" / "examples" / "photo.jpg", "generator": "dcgan.faces64"}, "latent.encoder_dcgan64"),
        ("text2image, SD-Turbo, 1 step, 512x512", "text2image", "/generate",
         {"model": "diffusers.sd_turbo", "prompt": "a lighthouse on a cliff at sunset", "steps": 1, "guidance": 0,
          "seed": 1}, "diffusers.sd_turbo"),
    ]


def _arguments(demo, api_name, given):
    """Every parameter of the endpoint in order: the given values, else the UI's defaults."""
    parameters = demo.get_api_info()["named_endpoints"][api_name]["parameters"]
    return {p["parameter_name"]: given.get(p["parameter_name"], p.get("parameter_default")) for p in parameters}


def _handler(demo, api_name):
    return next(f.fn for f in demo.fns.values() if f.api_name == api_name.lstrip("/"))


CLIENTS = ("gradio_client", "one TLS context", "keep-alive HTTP")


def rows(repeats: int = 5, results: list | None = None, only: tuple[str, ...] = (),
         clients: tuple[str, ...] = CLIENTS) -> list[str]:
    """Markdown rows; ``results`` (if given) receives one dict per call: its label, the direct call's
    seconds ("direct") and the round trip's seconds through each of ``clients`` (of :data:`CLIENTS`:
    gradio_client, the same with one TLS context, gradio's HTTP API on one keep-alive connection);
    ``only``: run just the cases whose label contains one of these strings."""
    from gradio_client import handle_file

    from core.images import load_image
    from core.weights import availability
    from tests.support.live import live_client

    described = {
        "gradio_client": "through `gradio_client` on 127.0.0.1 (upload, queue, encoding of every output, download)",
        "one TLS context": "the same with `Client(..., ssl_verify=<one SSL context>)` (the README's tip for scripts)",
        "keep-alive HTTP": "gradio's HTTP API on one connection, as the app's page calls it (`KeepAliveClient`)"}
    out = ["## Gradio round trip vs direct call (every app's main endpoint)", "",
           "Direct: the app's handler in this process on the decoded inputs; round trip: "
           + "; ".join(f"{c}: {described[c]}" for c in clients) + f". Medians of {max(repeats, 3)} calls each "
           f"({max(repeats, 9)} for calls of 0.4-1.5 s), timed alternately.", "",
           "| call | direct (handler) | " + " | ".join(f"{c} | ratio" for c in clients) + " |",
           "|---|---|" + "---|---|" * len(clients)]
    by_app: dict[str, list] = {}
    for case in cases():
        if not only or any(o in case[0] for o in only):
            by_app.setdefault(case[1], []).append(case)
    for app, app_cases in by_app.items():
        demo = importlib.import_module(f"apps.{app}.app").demo
        with live_client(demo) as client, (one_context_client(client.src) if "one TLS context" in clients else
                                           contextlib.nullcontext()) as quick_client, \
                contextlib.closing(KeepAliveClient(client.src)) as http_client:
            for label, _, api_name, given, model_id in app_cases:
                if model_id and not availability(model_id)[0]:
                    out.append(f"| {label} | weights absent (`python -m core.weights fetch {model_id}`) |"
                               + " |" * (2 * len(clients)))
                    continue
                arguments = _arguments(demo, api_name, given)
                files = [k for k, v in arguments.items() if isinstance(v, Path)]
                handler = _handler(demo, api_name)

                def direct(arguments=arguments, files=files, handler=handler):
                    decoded = {k: load_image(v, keep_alpha=(k == "mask")) if k in files else v
                               for k, v in arguments.items()}
                    return _drain(handler(**decoded))

                def api(gradio_client, arguments=arguments, files=files, api_name=api_name):
                    sent = {k: handle_file(str(v)) if k in files else v for k, v in arguments.items()}
                    return gradio_client.predict(**sent, api_name=api_name)

                calls = {"gradio_client": lambda api=api: api(client),
                         "one TLS context": lambda api=api: api(quick_client),
                         "keep-alive HTTP": lambda a=arguments, name=api_name: http_client.predict(name, a)}
                direct_s, *trip_s = _interleaved_medians(direct, *(calls[c] for c in clients), repeats=repeats)
                out.append(f"| {label} | {direct_s:.2f} s | "
                           + " | ".join(f"{t:.2f} s | {t / direct_s:.2f}x" for t in trip_s) + " |")
                if results is not None:
                    results.append({"label": label, "direct": direct_s, **dict(zip(clients, trip_s))})
                print(out[-1], flush=True)
    return out + ["", *encode_rows(), "", *floor_rows(repeats), ""]


def encode_rows(repeats: int = 5) -> list[str]:
    """What an output image costs to encode: PNG per compress level, and the JPEG previews."""
    from PIL import Image

    from core import ui

    photo = Image.open(APPS / "season" / "examples" / "rocket.jpg").convert("RGB")
    out = [f"What an image costs to ship ({photo.width}x{photo.height} photo; the apps serve results as PNG at "
           f"level {ui.PNG_COMPRESS_LEVEL} and previews as JPEG q{ui.JPEG_QUALITY} 4:4:4):", "",
           "| encoding | encode | bytes |", "|---|---|---|"]
    for label, save in [(f"PNG level {level}" + (" (PIL's default)" if level == 6 else ""),
                         lambda b, level=level: photo.save(b, "png", compress_level=level)) for level in (0, 1, 3, 6)] + [
            (f"JPEG q{ui.JPEG_QUALITY} 4:4:4 (previews)", lambda b: b.write(ui.encode_image(photo, "jpeg")))]:
        def encode(save=save):
            buffer = io.BytesIO()
            save(buffer)
            return buffer

        seconds = _median(encode, repeats)
        out.append(f"| {label} | {seconds * 1000:.1f} ms | {len(encode().getvalue()) / 1000:.0f} KB |")
        print(out[-1], flush=True)
    return out


def floor_rows(repeats: int = 3) -> list[str]:
    """What each client costs around handlers that do no work: the round trip's floor."""
    import gradio as gr
    from gradio_client import handle_file
    from PIL import Image

    from tests.support.live import live_client

    photo = Image.open(APPS / "season" / "examples" / "chelsea.jpg").convert("RGB")
    with gr.Blocks() as demo:
        number, same = gr.Number(), gr.Number()
        number.change(lambda x: x, number, same, api_name="echo")
        image, other = gr.Image(type="pil"), gr.Image(type="pil")
        outputs = [gr.Image(type="pil", format="png") for _ in range(3)]
        image.change(lambda x: x, image, outputs[0], api_name="one_png")
        image.change(lambda x: (x, x, x), image, outputs, api_name="three_pngs")
        image.change(lambda x, y: (x, y, x), [image, other], outputs, api_name="two_in_three_out")
    path = Path(tempfile.mkdtemp()) / "photo.png"
    photo.save(path)
    out = [f"Floor: the same clients and server around handlers that do no work ({photo.width}x{photo.height} "
           "photo, PNG outputs encoded as the apps encode them).", "",
           "| handler | gradio_client | one TLS context | keep-alive HTTP |", "|---|---|---|---|"]
    with live_client(demo) as client, one_context_client(client.src) as quick_client, \
            contextlib.closing(KeepAliveClient(client.src)) as http_client:
        cases = [("a number in, the same number out", "/echo", {"x": 1}),
                 ("the photo in, one PNG out", "/one_png", {"x": path}),
                 ("the photo in, three PNGs out", "/three_pngs", {"x": path}),
                 ("two photos in, three PNGs out (the glasses app's shape)", "/two_in_three_out", {"x": path, "y": path})]
        for label, api_name, arguments in cases:
            sent = {k: handle_file(str(v)) if isinstance(v, Path) else v for k, v in arguments.items()}
            default, quick, http = _interleaved_medians(
                *(lambda c=c: c.predict(**sent, api_name=api_name) for c in (client, quick_client)),
                lambda: http_client.predict(api_name, arguments), repeats=max(repeats, 7))
            out.append(f"| {label} | {default:.3f} s | {quick:.3f} s | {http:.3f} s |")
            print(out[-1], flush=True)
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=(), help="run the cases whose label contains one of these")
    args = parser.parse_args()
    print("\n".join(rows(args.repeats, only=tuple(args.only))))
