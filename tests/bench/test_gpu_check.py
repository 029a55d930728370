"""bench/gpu_check.py in its CPU mode (``--device cpu --tiny``): every check runs and reports."""

import math

import pytest
import torch

from bench import gpu_check
from core.models import ARCHITECTURES
from core.weights import get_entry, load_manifest


def table_rows(text: str, header_start: str) -> list[list[str]]:
    """The body rows of the markdown table whose header starts with ``header_start``, split into cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.fixture(scope="module")
def tiny_report():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread, no contention on a shared machine
    try:
        return gpu_check.report(torch.device("cpu"), tiny=True)
    finally:
        torch.set_num_threads(threads)


def test_every_generator_runs_in_each_dtype_against_cpu_fp32(tiny_report):
    assert "**No GPU was used**" in tiny_report
    rows = table_rows(tiny_report, "| model |")
    by_case: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        by_case.setdefault(row[0], {})[row[2]] = row
    archs = {entry.arch for entry in load_manifest().values()
             if entry.arch in ARCHITECTURES and entry.arch not in gpu_check.NOT_GENERATORS}
    assert {name.split()[0] for name in by_case} == archs
    assert any(name.startswith("lama 61x45, padded to a multiple of 8") for name in by_case)
    for name, dtypes in by_case.items():
        assert set(dtypes) == {"fp32", "fp16", "bf16"}, name
        for dtype, row in dtypes.items():
            max_err, mean_err, ms, rss = float(row[3]), float(row[4]), float(row[5]), float(row[7])
            assert all(math.isfinite(v) for v in (max_err, mean_err, ms, rss)), row
            assert 0 <= mean_err <= max_err < 255 and ms > 0 and rss > 0, row
            assert float(row[6]) == 0  # no VRAM on the CPU: RAM and VRAM are counted apart
        assert float(dtypes["fp32"][3]) == 0, name  # the CPU fp32 run is the reference itself
    cyclegan = next(d for n, d in by_case.items() if n.startswith("cyclegan_resnet"))
    assert float(cyclegan["bf16"][3]) > float(cyclegan["fp16"][3]) > 0  # 8 vs 11 mantissa bits
    for name, dtypes in by_case.items():
        ids = name[name.index("(") + 1:name.rindex(")")].split(", ") if "(" in name else []
        manifest = {get_entry(i).info.get("cuda_dtype", "float32 (absent)") for i in ids}
        if ids:
            assert dtypes["fp32"][8] == ", ".join(sorted(manifest)), name
        if name.split()[0] in ("dcgan", "stylegan2"):
            assert dtypes["fp32"][9] == "float32 (gradients)"


def test_pulse_unet_and_out_of_memory_rows(tiny_report):
    pulse = {row[0].split()[0]: row for row in table_rows(tiny_report, "| generator |")}
    assert set(pulse) == {"dcgan", "stylegan2"}
    for row in pulse.values():
        assert row[3] == "20" and row[6] == "True" and float(row[4]) > 0
    first, last = (float(v) for v in pulse["stylegan2"][5].split(" -> "))
    assert last < first  # the search makes progress (a random DCGAN's output is flat: no such check)
    (unet,) = table_rows(tiny_report, "| UNet |")
    assert unet[3] == "fp16" and unet[5] == "True" and float(unet[6]) < 1e-2
    (oom,) = table_rows(tiny_report, "| forced |")
    assert oom[2].startswith("The GPU ran out of memory for this job. Try a smaller image")
    assert oom[3] == "True"


def test_suggested_dtype_rule():
    case = gpu_check.Case("x", "random", "cyclegan_resnet", {}, 256, ())
    assert gpu_check.suggested_dtype(case, {"fp16": (1.0, 0.1), "bf16": (3.0, 0.4)}) == "float16"
    assert gpu_check.suggested_dtype(case, {"fp16": (math.inf, math.inf), "bf16": (3.0, 0.4)}) == "bfloat16"
    assert gpu_check.suggested_dtype(case, {"fp16": (9.0, 0.1), "bf16": (3.0, 0.9)}) == "float32"
    stylegan = gpu_check.Case("x", "random", "stylegan2", {}, "latent", ())
    assert gpu_check.suggested_dtype(stylegan, {"fp16": (0.0, 0.0)}) == "float32 (gradients)"


def test_gpu_md_is_written_only_from_a_cuda_run(capsys):
    before = (gpu_check.ROOT / "bench" / "GPU.md").exists()
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--device", "cpu", "--tiny", "--write"])
    assert exit_info.value.code == 2
    assert "CUDA GPU only" in capsys.readouterr().err
    assert (gpu_check.ROOT / "bench" / "GPU.md").exists() == before
