"""Issue 20: cold load of the real-size SD-Turbo pipeline against reading the same bytes.

    python bench/t2i_load.py [--folder /tmp/sd_turbo_hub] [--runs 2] > out.jsonl

Writes random weights of the real size once, in the layout the app reads: a Hugging Face cache
(``<folder>/hub/models--stabilityai--sd-turbo/snapshots/<pinned commit>/``, diffusers components
as safetensors). Then, in fresh processes with the files evicted from the page cache
(``posix_fadvise(DONTNEED)`` on every file, no root needed): the raw read of every file, and the
app's load (``core.pipelines.text_to_image.load_pipeline`` on CPU, fp32, offline) with its peak
RSS (``ru_maxrss``) and its RSS after the load. Raw read and load alternate, ``--runs`` times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL_ID = "diffusers.sd_turbo"


def snapshot_folder(root: Path) -> Path:
    from core.weights import get_entry

    spec = next(s for s in get_entry(MODEL_ID).sources if s.kind == "hf").spec
    return root / "hub" / f"models--{spec['repo_id'].replace('/', '--')}" / "snapshots" / spec["revision"]


def write_snapshot(folder: Path) -> None:
    import torch

    from bench.text_to_image import build_pipeline

    with torch.no_grad():
        pipe = build_pipeline("turbo", torch.float32)
    pipe.save_pretrained(folder, safe_serialization=True)


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def evict(files: list[Path]) -> None:
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def rss_now_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def case_read(folder: Path) -> dict:
    files = weight_files(folder)
    buffer = bytearray(64 << 20)
    start = time.perf_counter()
    total = 0
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buffer):
                total += n
    return {"case": "raw_read", "seconds": round(time.perf_counter() - start, 2), "GB": round(total / 1e9, 2)}


def case_load(folder: Path, prefetch: bool = False) -> dict:
    import torch

    from core.device import tune_allocator

    tune_allocator()
    start, cpu_start = time.perf_counter(), time.process_time()
    if prefetch:  # ask the kernel to read every file ahead, in large sequential requests
        for path in weight_files(folder):
            fd = os.open(path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            os.close(fd)
    from core.pipelines import text_to_image_loading as t2i

    imported = time.perf_counter() - start
    pipe = t2i.load_pipeline(MODEL_ID, torch.device("cpu"), torch.float32, download=False)
    seconds = time.perf_counter() - start
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in pipe.components.items()
              if isinstance(m, torch.nn.Module)}
    return {"case": "app_load" + ("_willneed" if prefetch else ""), "seconds": round(seconds, 2),
            "cpu_s": round(time.process_time() - cpu_start, 2), "of_which_imports_s": round(imported, 2),
            "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_after_MB": round(rss_now_mb()), "params_M": {k: round(v / 1e6, 1) for k, v in params.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/sd_turbo_hub"))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--case", choices=("read", "load", "load_willneed"))
    args = parser.parse_args()
    folder = snapshot_folder(args.folder)
    if args.case:
        evict(weight_files(folder))
        result = case_read(folder) if args.case == "read" else case_load(folder, args.case == "load_willneed")
        print(json.dumps(result), flush=True)
        return
    if not (folder / "model_index.json").exists():
        start = time.perf_counter()
        write_snapshot(folder)
        print(json.dumps({"case": "write_snapshot", "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    sizes = {str(p.relative_to(folder)): round(p.stat().st_size / 1e6, 1) for p in weight_files(folder)
             if p.stat().st_size > 1e6}
    print(json.dumps({"case": "files_MB", **sizes, "load_avg": os.getloadavg()}), flush=True)
    env = {**os.environ, "HF_HOME": str(args.folder), "HF_HUB_OFFLINE": "1", "GANHUB_DEVICE": "cpu"}
    for _ in range(args.runs):
        for case in ("read", "load", "load_willneed"):
            proc = subprocess.run([sys.executable, __file__, "--folder", str(args.folder), "--case", case],
                                  capture_output=True, text=True, env=env)
            sys.stdout.write(proc.stdout or json.dumps({"case": case, "error": proc.stderr[-1500:]}) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
