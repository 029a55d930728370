"""Load test: concurrent gradio_client users against the hub (loopback only, bounded in time and count).

    python bench/stress.py [--users 16] [--seconds 60] [--max-requests 2000]

Starts the hub on a free 127.0.0.1 port (or uses --url), sends one warm-up request per endpoint
(not counted: a server that has just started pays its first loads once, whoever calls), then each
user, a process of its own, loops over the apps that work offline (season swap, photo -> sketch,
sketch -> photo, inpainting, PULSE), sending real requests through gradio_client until the time or
the request budget runs out. Reports failures (documented queue-full rejections counted apart),
p50/p95 latency per endpoint, the peak memory of the hub process and of its model workers (RSS,
sampled every 0.25 s) and, from the hub's ``/health``, where its jobs' model work ran
(``GANHUB_MODEL_WORKER``) and how many jobs each worker finished.
Appends a section to bench/RESULTS.md with --write.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import ssl
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import certifi

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

APPS = REPO_ROOT / "apps"


def requests_for(handle_file):
    """(app path, api_name, args, kwargs) of the mixed workload: all offline models."""
    return [
        ("season", "/translate", [handle_file(str(APPS / "season/examples/chelsea.jpg"))],
         {"model_id": "cyclegan.vintage", "mode": "resize"}),
        ("sketch2photo", "/photo_to_sketch", [handle_file(str(APPS / "sketch2photo/examples/astronaut.jpg"))], {}),
        ("sketch2photo", "/sketch_to_photo", [handle_file(str(APPS / "sketch2photo/examples/face_sketch_1.png"))],
         {"model_id": "pix2pix.edges2faces64", "variations": 2, "seed": 0}),
        ("inpaint", "/inpaint", [handle_file(str(APPS / "inpaint/examples/coffee.jpg")),
                                 handle_file(str(APPS / "inpaint/examples/coffee_mask.png"))], {"method": "telea"}),
        ("pulse", "/upsample", [handle_file(str(APPS / "pulse/examples/dcgan_face_16.png"))],
         {"generator": "dcgan.faces64", "size": 16, "steps": 20, "samples": 2, "seed": 1}),
    ]


class Sampler(threading.Thread):
    """Peak RSS of a process, of its children (the model workers) and of all together, and the CPU
    seconds each used, sampled until stopped."""

    def __init__(self, pid: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.interval = interval
        import psutil

        self.process = psutil.Process(pid)
        self.peak = self.peak_process = self.peak_children = 0
        self.cpu_start = sum(self.process.cpu_times()[:2])
        self.cpu_process, self.cpu_children = 0.0, {}  # child pid -> CPU seconds seen last
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                own = self.process.memory_info().rss
                children = 0
                for child in self.process.children(True):
                    children += child.memory_info().rss
                    self.cpu_children[child.pid] = sum(child.cpu_times()[:2])
                self.peak_process, self.peak_children = max(self.peak_process, own), max(self.peak_children, children)
                self.peak = max(self.peak, own + children)
                self.cpu_process = sum(self.process.cpu_times()[:2]) - self.cpu_start
            except Exception:
                pass
            self.stop.wait(self.interval)


def _client(url: str, app: str, ssl_context):
    from gradio_client import Client

    return Client(f"{url}/{app}/", verbose=False, analytics_enabled=False,
                  **({"ssl_verify": ssl_context} if ssl_context is not None else {}))


def user(url: str, seconds: float, budget, ready, offset: int, default_client: bool, results) -> None:
    """One user, in a process of its own (as real users are: 16 gradio_clients in one process would
    spend the seconds measured waiting for each other's GIL, not for the server): connects to each app,
    waits for the others, then sends the workload from its ``offset`` until ``seconds`` have passed or
    the shared ``budget`` of requests is spent. Puts ``(endpoint, outcome, seconds)`` on ``results``,
    then None."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    context = None if default_client else ssl.create_default_context(cafile=certifi.where())
    workload = requests_for(handle_file)
    clients = {}
    try:
        for app in {app for app, *_ in workload}:
            clients[app] = _client(url, app, context)
        ready.wait()
        deadline, i = time.time() + seconds, offset
        while time.time() < deadline:
            with budget.get_lock():
                if budget.value <= 0:
                    return
                budget.value -= 1
            app, api_name, args, kwargs = workload[i % len(workload)]
            i += 1
            start = time.perf_counter()
            try:
                clients[app].predict(*args, **kwargs, api_name=api_name)
                outcome = "ok"
            except AppError as e:
                outcome = "queue_full" if "queue is full" in str(e).lower() else f"error: {str(e)[:120]}"
            except Exception as e:  # connection problems etc. count as failures
                outcome = "queue_full" if "queue" in str(e).lower() and "full" in str(e).lower() else \
                    f"error: {type(e).__name__}: {str(e)[:120]}"
            results.put((f"{app}{api_name}", outcome, time.perf_counter() - start))
    finally:
        for client in clients.values():
            client.close()
        results.put(None)


def warm_up(url: str, ssl_context=None) -> float:
    """One request per endpoint of the workload, one after another; returns the seconds they took."""
    from gradio_client import handle_file

    start, clients = time.perf_counter(), {}
    for app, api_name, args, kwargs in requests_for(handle_file):
        client = clients.get(app) or clients.setdefault(app, _client(url, app, ssl_context))
        client.predict(*args, **kwargs, api_name=api_name)
    for client in clients.values():
        client.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-requests", type=int, default=2000)
    parser.add_argument("--url", help="an already running hub (loopback); default: start one")
    parser.add_argument("--write", action="store_true", help="append the report to bench/RESULTS.md")
    parser.add_argument("--default-client", action="store_true",
                        help="gradio_client's default TLS setup (a new context per request) instead of one "
                             "context per client, the README's advice for scripts")
    args = parser.parse_args()

    from tests.support.servers import serve_hub

    def run(url: str, pid: int | None):
        sampler = Sampler(pid) if pid else None
        if sampler:
            sampler.start()
        context = None if args.default_client else ssl.create_default_context(cafile=certifi.where())
        warm_seconds = warm_up(url, context)
        spawn = multiprocessing.get_context("spawn")
        budget, ready, queue = spawn.Value("i", args.max_requests), spawn.Barrier(args.users + 1), spawn.Queue()
        users = [spawn.Process(target=user, args=(url, args.seconds, budget, ready, k, args.default_client, queue),
                               daemon=True) for k in range(args.users)]
        for process in users:
            process.start()
        ready.wait(300)  # every user connected to every app
        start, results, running = time.time(), [], args.users
        while running:
            item = queue.get(timeout=args.seconds + 600)
            if item is None:
                running -= 1
            else:
                results.append(item)
        elapsed = time.time() - start
        for process in users:
            process.join(30)
        if sampler:
            sampler.stop.set()
        return results, elapsed, sampler, warm_seconds

    def worker_state(url: str) -> str:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{url}/health", timeout=30) as response:
            state = json.load(response).get("model_worker", {})
        workers = state.get("workers", {})
        done = ", ".join(f"{d}: {w['jobs_done']} jobs" for d, w in workers.items()) or "none started"
        return f"model work ran {'in the model workers' if state.get('mode') == 'process' else 'in the hub'} ({done})"

    if args.url:
        results, elapsed, sampler, warm_seconds = run(args.url.rstrip("/"), None)
        where = worker_state(args.url.rstrip("/"))
    else:
        import psutil

        with serve_hub() as url:
            port = int(url.rsplit(":", 1)[1])
            pid = next(c.pid for c in psutil.net_connections("tcp")
                       if c.laddr and c.laddr.port == port and c.status == "LISTEN")
            results, elapsed, sampler, warm_seconds = run(url, pid)
            where = worker_state(url)

    by_endpoint = defaultdict(list)
    failures = []
    for endpoint, outcome, seconds in results:
        if outcome == "ok":
            by_endpoint[endpoint].append(seconds)
        elif outcome != "queue_full":
            failures.append((endpoint, outcome))
    queue_full = sum(1 for _, o, _ in results if o == "queue_full")
    memory = "" if sampler is None else (
        f"; peak RSS: hub {sampler.peak_process / 2**20:.0f} MB, model workers {sampler.peak_children / 2**20:.0f} MB, "
        f"both together {sampler.peak / 2**20:.0f} MB; CPU time: hub {sampler.cpu_process:.0f} s, model workers "
        f"{sum(sampler.cpu_children.values()):.0f} s")
    lines = [
        "## Load test", "",
        f"`python bench/stress.py --users {args.users} --seconds {args.seconds:g}"
        f"{' --default-client' if args.default_client else ''}` (each user a "
        f"process with its gradio_clients, {'a new TLS context per request' if args.default_client else 'one TLS context each'}), after one warm-up "
        f"request per endpoint ({warm_seconds:.1f} s in all): {len(results)} requests in "
        f"{elapsed:.0f} s against the hub on 127.0.0.1; {len(failures)} failed, {queue_full} rejected as queue full "
        f"(documented back-pressure); {where}{memory}.", "",
        "| endpoint | ok | p50 | p95 |", "|---|---|---|---|",
    ]
    for endpoint, seconds in sorted(by_endpoint.items()):
        ordered = sorted(seconds)
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        lines.append(f"| {endpoint} | {len(seconds)} | {statistics.median(seconds):.2f} s | {p95:.2f} s |")
    lines += [""] + [f"- failure: {e}: {o}" for e, o in failures[:20]] + [""]
    report = "\n".join(lines)
    print(report)
    if args.write:
        with open(Path(__file__).with_name("RESULTS.md"), "a") as out:
            out.write("\n" + report)


if __name__ == "__main__":
    main()
