import json

import pytest
import torch

from core import cpu_backend, weights

FIELD = {"avx2": {"channels_last": True, "attention": "default", "unet": "openvino"},
         "avx512": {"channels_last": True, "attention": "flash", "unet": "torch"},
         "avx512_bf16": {"channels_last": False, "attention": "math", "unet": "torch"}}


@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu sse2 avx avx2 fma f16c", "avx2"),
    ("avx2 avx512f avx512bw avx512vl avx512_vnni", "avx512"),
    ("avx2 avx512f avx512_bf16", "avx512_bf16"),
    ("avx2 avx512f amx_tile amx_bf16 amx_int8", "avx512_bf16"),
    ("fp asimd sve", "avx2"),  # no AVX-512 (here an ARM CPU): the baseline row
    ("avx512fp16", "avx2"),  # whole flags only: avx512fp16 alone is not avx512f
])
def test_feature_set_from_cpu_flags(flags, expected):
    assert cpu_backend.feature_set(f"processor : 0\nflags : {flags}\n") == expected


def test_the_manifest_row_of_the_cpu_is_chosen():
    assert cpu_backend.chosen_levers(FIELD, "flags : avx2") == FIELD["avx2"]
    assert cpu_backend.chosen_levers(FIELD, "flags : avx512f") == FIELD["avx512"]
    assert cpu_backend.chosen_levers(FIELD, "flags : avx512f amx_bf16") == FIELD["avx512_bf16"]
    assert cpu_backend.chosen_levers(None, "flags : avx2") == {"channels_last": False, "attention": "default",
                                                               "unet": "torch"}


def test_every_text_to_image_entry_records_its_cpu_choice():
    entries = [e for e in weights.load_manifest().values() if e.info.get("task") == "text-to-image"]
    assert entries
    for entry in entries:
        assert set(entry.info["cpu_backend"]) == set(cpu_backend.FEATURE_SETS), entry.id


@pytest.mark.parametrize(("field", "problem"), [
    ({"avx2": FIELD["avx2"]}, "cpu_backend must map each of avx2, avx512, avx512_bf16 to its levers"),
    ({**FIELD, "avx2": {**FIELD["avx2"], "channels_last": "yes"}},
     "cpu_backend.avx2.channels_last must be true or false"),
    ({**FIELD, "avx512": {**FIELD["avx512"], "attention": "xformers"}},
     "cpu_backend.avx512.attention must be one of default, flash, math"),
    ({**FIELD, "avx2": {"channels_last": True}}, "cpu_backend.avx2 must set exactly channels_last, attention, unet"),
    ({**FIELD, "avx2": {**FIELD["avx2"], "unet": "onnx"}}, "cpu_backend.avx2.unet must be one of torch, openvino"),
])
def test_validator_refuses_a_bad_cpu_backend(tmp_path, field, problem):
    data = json.loads(weights.MANIFEST_PATH.read_text())
    data["models"]["diffusers.sd_turbo"]["cpu_backend"] = field
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    assert weights.validate_manifest(path) == [f"diffusers.sd_turbo: {problem}"]


def test_configure_applies_the_levers_on_cpu_only(monkeypatch):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16),
                                layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=8,
                                attention_head_dim=2, norm_num_groups=4).eval()
    pipe = type("Pipe", (), {"unet": unet})()
    x, ctx = torch.randn(1, 4, 8, 8), torch.randn(1, 3, 8)
    with torch.inference_mode():
        reference = unet(x, 10, encoder_hidden_states=ctx).sample
    monkeypatch.setattr(cpu_backend, "feature_set", lambda flags=None: "avx512")
    assert cpu_backend.configure(pipe, FIELD, torch.device("cuda")) is pipe
    assert unet.conv_in.weight.is_contiguous()  # untouched off the CPU
    cpu_backend.configure(pipe, FIELD, torch.device("cpu"))
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert {type(p).__name__ for p in unet.attn_processors.values()} == {"_FixedBackendProcessor"}
    with torch.inference_mode():
        torch.testing.assert_close(unet(x, 10, encoder_hidden_states=ctx).sample, reference, rtol=1e-4, atol=1e-5)


def test_the_unet_backend_is_the_manifest_row_on_float32_cpus_unless_overridden(monkeypatch):
    monkeypatch.delenv(cpu_backend.BACKEND_VARIABLE, raising=False)
    cpu, f32 = torch.device("cpu"), torch.float32
    monkeypatch.setattr(cpu_backend, "feature_set", lambda flags=None: "avx2")
    monkeypatch.setattr(cpu_backend.platform, "machine", lambda: "aarch64")
    assert cpu_backend.unet_backend(FIELD, cpu, f32) == "torch"  # the rows are x86 measurements
    monkeypatch.setattr(cpu_backend.platform, "machine", lambda: "x86_64")
    assert cpu_backend.unet_backend(FIELD, cpu, f32) == "openvino"
    assert cpu_backend.unet_backend(FIELD, cpu, torch.bfloat16) == "torch"  # OpenVINO is measured in float32
    assert cpu_backend.unet_backend(FIELD, torch.device("cuda"), f32) == "torch"
    monkeypatch.setattr(cpu_backend, "feature_set", lambda flags=None: "avx512")
    assert cpu_backend.unet_backend(FIELD, cpu, f32) == "torch"
    monkeypatch.setenv(cpu_backend.BACKEND_VARIABLE, "openvino")
    assert cpu_backend.unet_backend(FIELD, cpu, f32) == "openvino"
    assert cpu_backend.unet_backend(FIELD, torch.device("cuda"), f32) == "torch"  # never on a GPU
    monkeypatch.setattr(cpu_backend, "feature_set", lambda flags=None: "avx2")
    monkeypatch.setenv(cpu_backend.BACKEND_VARIABLE, "torch")
    assert cpu_backend.unet_backend(FIELD, cpu, f32) == "torch"
    monkeypatch.setenv(cpu_backend.BACKEND_VARIABLE, "onnx")
    with pytest.raises(ValueError, match="GANHUB_T2I_BACKEND must be torch, openvino or auto"):
        cpu_backend.unet_backend(FIELD, cpu, f32)
