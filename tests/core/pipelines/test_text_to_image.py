"""core.pipelines.text_to_image with a tiny random pipeline served by the local Hub and loaded by the resolver."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from tests.support import tiny_diffusers as tiny


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One local Hub and test manifest for the module: the tiny pipeline and TAESD, plus broken variants."""
    import torch

    from core.cache import MODEL_CACHE
    from core.pipelines import text_to_image as t2i
    from tests.support.local_servers import LocalHub, isolate_weights

    root = tmp_path_factory.mktemp("t2i")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and the CPU is shared
    with pytest.MonkeyPatch.context() as mp, LocalHub() as server:
        isolate_weights(mp, root, server.url)
        mp.setenv("GANHUB_MANIFEST", str(root / "manifest.json"))
        mp.setattr(t2i, "PREVIEW_MAX_SHARE", 1.0)  # a preview at every step, however fast the steps
        mp.setenv("GANHUB_T2I_CPU_DTYPE", "float32")  # the same numbers on every CPU
        revision = server.add_files(tiny.TINY_REPO, tiny.tiny_pipeline_files())
        taesd_revision = server.add_files(tiny.TINY_TAESD_REPO, tiny.tiny_taesd_files())
        models = {
            "diffusers.tiny": tiny.manifest_entry(tiny.TINY_REPO, revision),
            "diffusers.tiny_euler": tiny.manifest_entry(tiny.TINY_REPO, revision, scheduler="EulerDiscreteScheduler"),
            "diffusers.absent": tiny.manifest_entry("tests/not-on-the-hub", "1" * 40),
            "diffusers.taesd": tiny.taesd_manifest_entry(tiny.TINY_TAESD_REPO, taesd_revision),
            "diffusers.taesd_absent": tiny.taesd_manifest_entry("tests/no-taesd", "2" * 40),
            "diffusers.taesd_bad_sha": tiny.taesd_manifest_entry(
                tiny.TINY_TAESD_REPO, taesd_revision, {"diffusion_pytorch_model.safetensors": "0" * 64}),
        }
        (root / "manifest.json").write_text(json.dumps({"schema_version": 1, "models": models}))
        MODEL_CACHE.clear()
        server.revision = revision
        yield server
        MODEL_CACHE.clear()
    torch.set_num_threads(threads)


def request(**kwargs):
    from core.pipelines import text_to_image as t2i

    settings = dict(prompt="a red cat", negative_prompt="", steps=2, seed=7, width=64, height=64)
    settings.update(kwargs)
    return t2i.make_request("diffusers.tiny", **settings)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_make_request_fills_defaults_and_rejects_bad_settings(hub):
    from core.pipelines import text_to_image as t2i

    r = t2i.make_request("diffusers.tiny", "  ein Hund, 猫 et café  ")
    assert (r.prompt, r.steps, r.guidance_scale, r.width, r.height) == ("ein Hund, 猫 et café", 2, 5.0, 64, 64)
    assert 0 <= r.seed <= t2i.MAX_SEED and r.num_images == 1
    seeds = {t2i.make_request("diffusers.tiny", "x", seed=-1).seed for _ in range(5)}
    assert len(seeds) > 1, "a negative seed means a fresh random seed"
    assert t2i.make_request("diffusers.tiny", "x", seed=t2i.MAX_SEED, num_images=3).seeds == [t2i.MAX_SEED, 0, 1]
    bad = [
        (dict(prompt="   "), "prompt is empty"),
        (dict(prompt="x" * 5000), "limit is 4000"),
        (dict(width=60), "multiple of 8 between 32 and 128"),
        (dict(height=100000), "multiple of 8"),
        (dict(width=64.5), "whole number"),
        (dict(steps=0), "from 1 to 60"),
        (dict(guidance_scale=-1), "between 0 and 30"),
        (dict(num_images=5), "from 1 to 4"),
        (dict(seed=2**32), "from 0 to 4294967295"),
    ]
    for kwargs, message in bad:
        settings = {"prompt": "a cat", **kwargs}
        with pytest.raises(ValueError, match=message):
            t2i.make_request("diffusers.tiny", **settings)
    with pytest.raises(ValueError, match="not a text-to-image pipeline"):
        t2i.make_request("diffusers.taesd", "a cat")


def test_pipeline_loads_through_the_resolver_from_the_pinned_snapshot(hub, monkeypatch):
    from core.pipelines import text_to_image as t2i

    pipe = t2i.load_pipeline("diffusers.tiny")
    assert type(pipe).__name__ == "StableDiffusionPipeline" and type(pipe.scheduler).__name__ == "PNDMScheduler"
    assert pipe.safety_checker is None
    assert t2i.load_pipeline("diffusers.tiny") is pipe, "one pipeline per process (shared MODEL_CACHE)"
    paths = [p for _, p in hub.requests]
    assert any(p.startswith(f"/api/models/{tiny.TINY_REPO}/tree/{hub.revision}") for p in paths)
    downloaded = {p.split(f"/resolve/{hub.revision}/", 1)[1] for p in paths if "/resolve/" in p}
    assert "unet/diffusion_pytorch_model.safetensors" in downloaded
    assert not any(p.endswith((".bin", "README.md")) for p in downloaded), "only configs and safetensors"

    # Offline, from the Hugging Face cache alone, with another scheduler named in the manifest.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    requests_before = len(hub.requests)
    euler = t2i.load_pipeline("diffusers.tiny_euler")
    assert euler is not pipe and type(euler.scheduler).__name__ == "EulerDiscreteScheduler"
    assert len(hub.requests) == requests_before


def test_missing_weights_say_what_to_download(hub):
    from core.pipelines import text_to_image as t2i
    from core.weights import WeightsUnavailableError

    with pytest.raises(WeightsUnavailableError, match="python -m core.weights fetch diffusers.absent"):
        t2i.start(t2i.make_request("diffusers.absent", "a cat"))
    message = t2i.missing_message("diffusers.absent")
    assert "tests/not-on-the-hub" in message and "1" * 40 in message and "Apache-2.0" in message
    assert "hf download tests/not-on-the-hub --revision" in message and "models--tests--not-on-the-hub" in message


def test_same_seed_same_images_other_seed_or_negative_prompt_changes_them(hub):
    from core.pipelines import text_to_image as t2i

    first = t2i.generate(request(seed=7, num_images=2))
    again = t2i.generate(request(seed=7, num_images=2))
    assert first.seeds == [7, 8] and not first.cancelled and first.steps_done == first.total_steps
    assert [im.size for im in first.images] == [(64, 64), (64, 64)]
    for a, b in zip(first.images, again.images):
        assert np.array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(first.images[0]), pixels(first.images[1])), "seed + 1 for the second image"
    other_seed = t2i.generate(request(seed=9))
    assert np.abs(pixels(other_seed.images[0]) - pixels(first.images[0])).mean() > 1
    negative = t2i.generate(request(seed=7, negative_prompt="a blue dog"))
    assert np.abs(pixels(negative.images[0]) - pixels(first.images[0])).mean() > 0.5
    no_guidance = t2i.generate(request(seed=7, negative_prompt="a blue dog", guidance_scale=0))
    assert any("negative prompt has no effect" in n for n in no_guidance.notes)


def test_previews_every_step_then_result(hub):
    from core.pipelines import text_to_image as t2i

    events = list(t2i.start(request(steps=3, width=48, height=64)))
    previews, result = events[:-1], events[-1]
    assert isinstance(result, t2i.Result) and result.images[0].size == (48, 64)
    total = result.total_steps  # PNDM (PLMS) runs one extra model evaluation
    assert [p.step for p in previews] == list(range(1, total + 1))
    assert all(p.total == total for p in previews)
    assert all(p.images is not None and p.images[0].size == (48, 64) for p in previews[:-1])
    assert previews[-1].images is None, "no preview for the last step: the final image follows"


def test_previews_are_skipped_when_they_would_take_too_much_of_the_time(hub, monkeypatch):
    import time

    from core.pipelines import text_to_image as t2i

    decode = t2i.decode_preview

    def slow_decode(*args, **kwargs):
        time.sleep(0.2)  # a preview far slower than a (tiny) denoising step
        return decode(*args, **kwargs)

    monkeypatch.setattr(t2i, "decode_preview", slow_decode)
    monkeypatch.setattr(t2i, "PREVIEW_MAX_SHARE", 0.2)
    previews = [e for e in t2i.start(request(steps=12)) if isinstance(e, t2i.Preview)]
    shown = [p.step for p in previews if p.images]
    assert len(previews) == 13 and shown[0] == 1, "every step reports progress; the first preview is shown"
    assert len(shown) <= 3, f"previews kept to about 20% of the time, shown at steps {shown}"


def test_cancel_stops_after_the_running_step_without_decoding(hub):
    from core.pipelines import text_to_image as t2i

    r = request(steps=20)
    pipe = t2i.load_pipeline("diffusers.tiny")
    job = t2i.Generation(r, pipe)
    calls = {"unet": 0, "vae": 0}

    def count_unet(module, args, output):
        calls["unet"] += 1
        job.cancel()  # asked while the first step is running

    hooks = [pipe.unet.register_forward_hook(count_unet),
             pipe.vae.decoder.register_forward_hook(lambda *a: calls.__setitem__("vae", calls["vae"] + 1))]
    try:
        result = job.start().result()
    finally:
        for h in hooks:
            h.remove()
    assert result.cancelled and result.images == [] and result.steps_done == 1
    assert calls == {"unet": 1, "vae": 0}
    assert any("Stopped after step 1 of 21" in n for n in result.notes)
    assert not pipe._interrupt or t2i.generate(request()).images, "the next run starts normally"


def test_png_parameters_round_trip(hub, tmp_path):
    from core.pipelines import text_to_image as t2i

    revision = hub.revision
    r = request(prompt="a red cat, oil on canvas\nsecond line: café", negative_prompt="blurry, dark", seed=123)
    image = t2i.generate(r).images[0]
    png = tmp_path / "out.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", image.info["parameters"])
    image.save(png, pnginfo=info)
    params = t2i.read_parameters(png)
    assert params == {
        "prompt": r.prompt, "negative_prompt": "blurry, dark", "steps": 2, "guidance_scale": 5.0, "seed": 123,
        "width": 64, "height": 64, "sampler": "PNDMScheduler", "model_id": "diffusers.tiny",
        "model_revision": revision, "model": tiny.TINY_REPO, "decoder": "VAE", "precision": "float32",
    }
    again = t2i.generate(t2i.make_request(params["model_id"], params["prompt"], params["negative_prompt"],
                                          params["steps"], params["guidance_scale"], params["width"],
                                          params["height"], params["seed"]))
    assert np.array_equal(pixels(again.images[0]), pixels(image)), "reusing the parameters reproduces the image"
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="no generation parameters"):
        t2i.read_parameters(tmp_path / "plain.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="Could not read"):
        t2i.read_parameters(tmp_path / "bad.png")


def test_parse_infotext_reads_a1111_text():
    from core.pipelines.text_to_image import parse_infotext

    text = ('masterpiece, a castle\nNegative prompt: lowres, bad hands\n'
            'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: abc, '
            'Model: "sd, v1.5", Version: v1.9.0')
    assert parse_infotext(text) == {
        "prompt": "masterpiece, a castle", "negative_prompt": "lowres, bad hands", "steps": 20,
        "guidance_scale": 7.0, "seed": 1234, "sampler": "Euler a", "model": "sd, v1.5", "width": 512, "height": 768}
    assert parse_infotext("just a prompt") == {"prompt": "just a prompt", "negative_prompt": ""}


def test_long_prompt_is_reported_as_truncated_and_non_ascii_works(hub):
    from core.pipelines import text_to_image as t2i

    short = t2i.generate(request(prompt="un chat roux, 猫, Ünïcødé"))
    assert short.notes == [] and short.images
    words = " ".join(f"word{i}" for i in range(40))  # the tiny tokenizer spells unknown words letter by letter
    long = t2i.generate(request(prompt=words))
    [note] = long.notes
    # CLIP's tokenizer splits digits, so the ignored end decodes as "... word 3 9".
    assert "longer than the text encoder's 77 tokens" in note and note.endswith('word 3 9"') and "word 0 " not in note


def test_taesd_previews_and_fast_decode(hub, monkeypatch):
    from core.pipelines import text_to_image as t2i
    from core.weights import WeightsUnavailableError

    with monkeypatch.context() as m:
        m.setattr(t2i, "TAESD_ID", "diffusers.taesd_absent")
        no_taesd = t2i.generate(request(fast_decode=True))
    assert "Decoder: VAE" in no_taesd.infotexts[0]
    assert any("fast decoder (TAESD) is not available" in n for n in no_taesd.notes)

    taesd = t2i.load_taesd(download=True)
    calls = []
    hook = taesd.decoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        events = list(t2i.start(request(steps=3)))
        assert len(calls) == len(events) - 2, "TAESD decodes every preview (not the last step, not the final image)"
        fast = t2i.generate(request(fast_decode=True))
    finally:
        hook.remove()
    assert "Decoder: TAESD" in fast.infotexts[0] and fast.notes == []
    assert fast.images[0].size == (64, 64)

    monkeypatch.setattr(t2i, "TAESD_ID", "diffusers.taesd_bad_sha")
    with pytest.raises(WeightsUnavailableError, match="sha256 of diffusion_pytorch_model.safetensors"):
        t2i.load_taesd(download=True)
    assert t2i.try_load_taesd(download=True) is None


def test_cpu_dtype_policy_and_a_bfloat16_run(hub, monkeypatch):
    import torch

    from core.pipelines import text_to_image as t2i

    assert t2i.pipeline_dtype(torch.device("cuda")) == torch.float16
    cpu = torch.device("cpu")
    monkeypatch.delenv("GANHUB_T2I_CPU_DTYPE")
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(t2i, "cpu_has_native_bf16", lambda native=native: native)
        assert t2i.pipeline_dtype(cpu) == expected
    monkeypatch.setenv("GANHUB_T2I_CPU_DTYPE", "half")
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        t2i.pipeline_dtype(cpu)
    monkeypatch.setenv("GANHUB_T2I_CPU_DTYPE", "bfloat16")
    result = t2i.generate(request(seed=7))
    assert "Precision: bfloat16" in result.infotexts[0] and result.images[0].size == (64, 64)
    monkeypatch.setenv("GANHUB_T2I_CPU_DTYPE", "float32")
    reference = t2i.generate(request(seed=7)).images[0]
    assert np.abs(pixels(result.images[0]) - pixels(reference)).mean() < 3, "bfloat16 stays close to float32"


def test_parse_infotext_is_linear_and_capped():
    import time

    from core.pipelines.text_to_image import parse_infotext

    with pytest.raises(ValueError, match="30,000 characters; the limit is 20,000"):
        parse_infotext("a" * 30_000)
    for hostile in ("a" * 19_000, 'k: "' * 4_000, "k:" + '"a,' * 6_000, " :" * 9_000):
        started = time.perf_counter()
        parse_infotext(hostile)
        assert time.perf_counter() - started < 2, hostile[:20]  # the old regex: 14 s on the first (2 busy cores)
    text = 'p\nSteps: 2, Note: "say \\"hi\\", then go", Odd: "unclosed, Size: 8x16, tab:\tx'
    assert parse_infotext(text) == {"prompt": "p", "negative_prompt": "", "steps": 2, "width": 8, "height": 16}


def test_a_time_budget_decodes_the_steps_done_so_far(hub):
    from core.limits import Budget
    from core.pipelines import text_to_image as t2i

    class AfterOneStep(Budget):
        calls = 0

        def expired(self):
            self.calls += 1
            return self.calls >= 1

    budget = AfterOneStep(seconds=120)
    result = t2i.start(request(steps=4), previews=False, budget=budget).result()
    assert not result.cancelled and result.images and result.images[0].size == (64, 64)
    assert result.steps_done == 1 < result.total_steps  # (PNDM runs 5 timesteps for 4 steps)
    assert budget.notes and budget.notes[0] in result.notes
    assert f"stopped after 1 of {result.total_steps} denoising steps" in budget.notes[0]
