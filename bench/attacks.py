"""The attacks of issue 14 against a live hub: time to a clear message, the server's peak memory
growth, and how fast a second user is answered while each attack runs.

    python bench/attacks.py [--url http://127.0.0.1:7860]

Starts the hub on a free loopback port (or uses --url, then memory is not measured). For each
attack: the attack is submitted, a second client asks for a photo -> sketch at once, and the
hub's RSS is sampled every 5 ms until both are answered.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.stress import Sampler  # noqa: E402


def attack_files(root: Path) -> dict[str, Path]:
    from PIL import Image, PngImagePlugin

    photo = REPO_ROOT / "apps/sketch2photo/examples/astronaut.jpg"
    files = {"photo": photo, "empty": root / "empty.png", "text": root / "notes.png",
             "truncated": root / "truncated.png", "bomb15k": root / "bomb15k.png", "bomb20k": root / "bomb20k.png",
             "parameters": root / "parameters.png"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("not a picture\n" * 40)
    Image.open(photo).save(root / "full.png")
    data = (root / "full.png").read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    Image.new("1", (15000, 15000)).save(files["bomb15k"])
    Image.new("1", (20000, 20000)).save(files["bomb20k"])
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a" * 200_000)
    Image.new("RGB", (8, 8)).save(files["parameters"], pnginfo=info)
    return files


def attacks(files: dict[str, Path], handle_file):
    def editor(key):
        return {"background": handle_file(str(files[key])), "layers": [], "composite": None}, "telea"

    def pad(key):
        return ({"background": None, "layers": [], "composite": handle_file(str(files[key]))},)

    cases = [("sketch2photo", "/photo_to_sketch", "none (control: a valid photo -> sketch)",
              (handle_file(str(files["photo"])),), {}),
             ("text2image", "/read_parameters", "200,000-character parameters",
              (handle_file(str(files["parameters"])),), {})]
    for key, label in (("bomb15k", "15000x15000 1-bit PNG"), ("bomb20k", "20000x20000 1-bit PNG"),
                       ("empty", "empty file"), ("truncated", "truncated PNG"), ("text", "text file named .png")):
        cases.append(("inpaint", "/inpaint_editor", f"{label} as the editor background", editor(key), {}))
        cases.append(("sketch2photo", "/sketch_to_photo_pad", f"{label} as the pad composite", pad(key),
                      {"variations": 1}))
    cases.append(("pulse", "/upsample", "PULSE StyleGAN2 500 steps x 8 samples",
                  (handle_file(str(files["photo"])),), {"generator": "stylegan2.ffhq1024", "steps": 500, "samples": 8}))
    cases.append(("pulse", "/upsample", "seed 2**40", (handle_file(str(files["photo"])),),
                  {"generator": "dcgan.faces64", "steps": 10, "samples": 1, "seed": 2**40}))
    return cases


def run(url: str, pid: int | None) -> list[str]:
    from gradio_client import Client, handle_file

    rows = ["| attack | endpoint | answer | time to answer | second user (connect + photo -> sketch) "
            "| hub RSS growth |",
            "|---|---|---|---|---|---|"]
    clients: dict[str, Client] = {}
    client = lambda app: clients.get(app) or clients.setdefault(  # noqa: E731
        app, Client(f"{url}/{app}/", verbose=False, analytics_enabled=False))
    with tempfile.TemporaryDirectory() as tmp:
        files = attack_files(Path(tmp))
        client("sketch2photo").predict(handle_file(str(files["photo"])), api_name="/photo_to_sketch")  # warm
        for app, api_name, label, args, kwargs in attacks(files, handle_file):
            sampler = Sampler(pid, interval=0.005) if pid else None
            base = sampler.process.memory_info().rss if sampler else 0
            if sampler:
                sampler.start()
            timings = {}

            def second_user():  # connects and asks while the attack is on the server
                t0 = time.perf_counter()
                other = Client(f"{url}/sketch2photo/", verbose=False, analytics_enabled=False)
                other.predict(handle_file(str(files["photo"])), api_name="/photo_to_sketch")
                timings["second"] = time.perf_counter() - t0
                other.close()

            start = time.perf_counter()
            job = client(app).submit(*args, **kwargs, api_name=api_name)
            helper = threading.Thread(target=second_user)
            helper.start()
            try:
                job.result(timeout=120)
                answer = "a result"
            except Exception as e:
                answer = str(e).split("\n")[0][:110].replace("|", "/")
            answered_s = time.perf_counter() - start
            helper.join(120)
            second_s = timings.get("second", float("nan"))
            growth = ""
            if sampler:
                sampler.stop.set()
                sampler.join()
                growth = f"{max(0, sampler.peak - base) / 2**20:.0f} MB"
            rows.append(f"| {label} | `{api_name}` | {answer} | {answered_s:.2f} s | {second_s:.2f} s | {growth} |")
            print(rows[-1], flush=True)
    for c in clients.values():
        c.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running hub (loopback); default: start one")
    args = parser.parse_args()
    if args.url:
        rows = run(args.url.rstrip("/"), None)
    else:
        import psutil

        from tests.support.servers import serve_hub

        with serve_hub() as url:
            port = int(url.rsplit(":", 1)[1])
            pid = next(c.pid for c in psutil.net_connections("tcp")
                       if c.laddr and c.laddr.port == port and c.status == "LISTEN")
            rows = run(url, pid)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
