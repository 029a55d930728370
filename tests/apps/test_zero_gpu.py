"""ZeroGPU: every model-running handler is wrapped with the real ``spaces.GPU``, the wrapped function
is the one the Blocks call, the lane's slot (core.lanes) is taken outside the GPU window, and the windows asked
for grow with the work. Runs in a fresh process: ``spaces`` must be imported before the apps."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GPU_ENDPOINTS = {
    "inpaint": {"inpaint", "inpaint_editor", "select_mask", "remove_object", "compare_methods", "extend_canvas",
                "add_selection"},  # add_selection: the UI's "add it to the brush mask" (private), runs select_mask
    "sketch2photo": {"sketch_to_photo", "sketch_to_photo_pad"},
    "season": {"translate"}, "pulse": {"upsample"}, "glasses": {"swap"}, "text2image": {"generate"},
    "latent": {"sample", "interpolate", "direction", "mix", "invert", "edit"},
}

# The real ``spaces`` package, with its GPU decorator observed: each window it returns records
# whether a lane slot (light or heavy) was already held when the GPU window opened.
PROBE = r'''
import functools, importlib, inspect, json, sys
import spaces

real_gpu, windows, durations = spaces.GPU, [], {}

def observed_gpu(task=None, *, duration=None, size=None):
    def decorate(fn):
        inner = real_gpu(duration=duration)(fn)  # outside ZeroGPU: the handler itself
        def record():
            from core.lanes import lane
            windows.append({"fn": fn.__name__, "slot_held": lane("light").running() + lane("heavy").running() > 0})
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def window(*args, **kwargs):
                record()
                yield from inner(*args, **kwargs)
        else:
            @functools.wraps(fn)
            def window(*args, **kwargs):
                record()
                return inner(*args, **kwargs)
        window.gpu_window = True
        durations[fn.__name__] = duration
        return window
    return decorate

spaces.GPU = observed_gpu
report = {"unchanged_outside_zero_gpu": real_gpu(duration=10)(len) is len, "apps": {}}
for name in sys.argv[1:]:
    demo = importlib.import_module(f"apps.{name}.app").demo
    wrapped = {}
    for block_fn in demo.fns.values():
        fn, chain = block_fn.fn, []
        while fn is not None:
            chain.append(getattr(fn, "gpu_window", False))
            fn = getattr(fn, "__wrapped__", None)
        wrapped[str(block_fn.api_name)] = any(chain)
    report["apps"][name] = wrapped

if "sketch2photo" in sys.argv:
    from PIL import Image
    sketch2photo = importlib.import_module("apps.sketch2photo.app")
    call = next(f.fn for f in sketch2photo.demo.fns.values() if f.api_name == "sketch_to_photo")
    call(Image.open("apps/sketch2photo/examples/face_sketch_1.png"), "pix2pix.edges2faces64", True, 1, 0)
    report["windows"] = windows
if "upsample" in durations:
    report["pulse_seconds"] = [durations["upsample"](None, g, 16, steps, 0.001, samples) for g, steps, samples in
                               [("dcgan.faces64", 100, 4), ("stylegan2.ffhq1024", 100, 4),
                                ("stylegan2.ffhq1024", 500, 8), ("dcgan.faces64", "x", 4)]]
if "generate" in durations:
    report["t2i_seconds"] = [durations["generate"]("diffusers.sd_turbo", "p", "", steps, 0.0, 512, 512, -1, n)
                             for steps, n in [(1, 1), (4, 4)]]
print("REPORT" + json.dumps(report))
'''


def probe(folder: Path, *apps: str) -> dict:
    """Import ``apps`` from ``folder`` (the repository, or a built Space) under the observed decorator."""
    out = subprocess.run([sys.executable, "-c", PROBE, *apps], cwd=folder, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.split("REPORT", 1)[1])


@pytest.fixture(scope="module")
def report():
    return probe(REPO_ROOT, *GPU_ENDPOINTS)


def test_spaces_does_nothing_outside_zero_gpu(report):
    assert report["unchanged_outside_zero_gpu"]


@pytest.mark.parametrize("app", sorted(GPU_ENDPOINTS))
def test_the_blocks_call_the_gpu_wrapped_handlers(report, app):
    wrapped = report["apps"][app]
    assert {name for name, on_gpu in wrapped.items() if on_gpu} == GPU_ENDPOINTS[app]


def test_the_lane_slot_is_taken_before_the_gpu_window_opens(report):
    assert report["windows"] == [{"fn": "sketch_to_photo", "slot_held": True}]


def test_gpu_windows_grow_with_steps_and_samples(report):
    dcgan, stylegan, long_stylegan, unreadable = report["pulse_seconds"]
    assert dcgan < stylegan < long_stylegan
    assert long_stylegan == 180  # clamped to ui.GPU_SECONDS_MAX
    assert unreadable == 60
    one, sixteen = report["t2i_seconds"]
    assert 5 <= one < sixteen
