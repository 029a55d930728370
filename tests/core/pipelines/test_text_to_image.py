"""core.pipelines.text_to_image with a tiny random pipeline served by the local Hub and loaded by the resolver."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from core.pipelines import text_to_image as t2i
from core.pipelines import text_to_image_loading as loading
from core.pipelines.streaming import Progress
from core.pipelines.text_to_image_params import read_parameters
from tests.support import tiny_diffusers as tiny


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    yield from tiny.served_test_models(tmp_path_factory)


def settings(**kwargs):
    knobs = dict(negative_prompt="", steps=2, seed=7, width=64, height=64)
    knobs.update(kwargs)
    return t2i.Settings("diffusers.tiny", **knobs)


def generate(prompt="a red cat", **kwargs):
    return t2i.run(prompt, settings(**kwargs))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_settings_fill_the_model_defaults_and_reject_bad_values(hub):
    s = t2i.Settings("diffusers.tiny", "  blurry  ")
    assert (s.negative_prompt, s.steps, s.guidance_scale, s.width, s.height, s.seed) == ("blurry", 2, 5.0, 64, 64,
                                                                                         None)
    assert t2i.Settings("diffusers.tiny", seed=-1).seed is None, "a negative seed means a fresh random seed"
    bad = [
        (dict(negative_prompt="x" * 5000), "limit is 4000"),
        (dict(width=60), "multiple of 8 between 32 and 128"),
        (dict(height=100000), "multiple of 8"),
        (dict(width=64.5), "whole number"),
        (dict(steps=0), "from 1 to 60"),
        (dict(steps="many"), "from 1 to 60"),
        (dict(guidance_scale=-1), "between 0 and 30"),
        (dict(num_images=5), "from 1 to 4"),
        (dict(seed=2**32), "from 0 to 4294967295"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            t2i.Settings("diffusers.tiny", **kwargs)
    with pytest.raises(ValueError, match="not a text-to-image pipeline"):
        t2i.Settings("diffusers.taesd")
    for prompt, message in (("   ", "prompt is empty"), ("x" * 5000, "limit is 4000")):
        with pytest.raises(ValueError, match=message):
            next(t2i.stream(prompt, settings()))
    assert t2i.generators() == ["diffusers.tiny", "diffusers.tiny_euler", "diffusers.absent"]


def test_same_seed_same_images_other_seed_or_negative_prompt_changes_them(hub):
    first = generate(prompt="  ein Hund, 猫 et café  ", seed=7, num_images=2)
    again = generate(prompt="ein Hund, 猫 et café", seed=7, num_images=2)
    assert first.seeds == [7, 8] and not first.cancelled and first.steps_done == first.total_steps
    assert first.details["prompt"] == "ein Hund, 猫 et café" and first.details["seed"] == 7
    assert [im.size for im in first.images] == [(64, 64), (64, 64)]
    for a, b in zip(first.images, again.images):
        assert np.array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(first.images[0]), pixels(first.images[1])), "seed + 1 for the second image"
    other_seed = generate(seed=9)
    assert np.abs(pixels(other_seed.images[0]) - pixels(generate().images[0])).mean() > 1
    negative = generate(negative_prompt="a blue dog")
    assert np.abs(pixels(negative.images[0]) - pixels(generate().images[0])).mean() > 0.5
    no_guidance = generate(negative_prompt="a blue dog", guidance_scale=0)
    assert any("negative prompt has no effect" in n for n in no_guidance.notes)
    edge = t2i.run("x", t2i.Settings("diffusers.tiny", steps=1, seed=t2i.MAX_SEED, num_images=3))
    assert edge.seeds == [t2i.MAX_SEED, 0, 1]
    drawn = t2i.run("x", t2i.Settings("diffusers.tiny", steps=1, seed=-1))
    assert 0 <= drawn.details["seed"] <= t2i.MAX_SEED and drawn.seeds == [drawn.details["seed"]]


def test_previews_every_step_then_result(hub):
    events = list(t2i.stream("a red cat", settings(steps=3, width=48, height=64)))
    previews, result = events[:-1], events[-1]
    assert isinstance(result, t2i.Result) and result.images[0].size == (48, 64)
    total = result.total_steps  # PNDM (PLMS) runs one extra model evaluation
    assert all(isinstance(p, Progress) for p in previews)
    assert [p.step for p in previews] == list(range(1, total + 1))
    assert all(p.total == total for p in previews) and previews[0].note == f"Step 1 of {total}..."
    assert all(p.preview is not None and p.preview[0].size == (48, 64) for p in previews[:-1])
    assert previews[-1].preview is None, "no preview for the last step: the final image follows"


def test_previews_are_skipped_when_they_would_take_too_much_of_the_time(hub, monkeypatch):
    decode = loading.decode_preview

    def slow_decode(*args, **kwargs):
        time.sleep(0.2)  # a preview far slower than a (tiny) denoising step
        return decode(*args, **kwargs)

    monkeypatch.setattr(loading, "decode_preview", slow_decode)
    monkeypatch.setattr(t2i, "PREVIEW_MAX_SHARE", 0.2)
    previews = [e for e in t2i.stream("a red cat", settings(steps=12)) if isinstance(e, Progress)]
    shown = [p.step for p in previews if p.preview]
    assert len(previews) == 13 and shown[0] == 1, "every step reports progress; the first preview is shown"
    assert len(shown) <= 3, f"previews kept to about 20% of the time, shown at steps {shown}"


def test_cancel_stops_after_the_running_step_without_decoding(hub):
    pipe = loading.load_pipeline("diffusers.tiny")
    cancel = threading.Event()
    calls = {"unet": 0, "vae": 0}

    def count_unet(module, args, output):
        calls["unet"] += 1
        cancel.set()  # asked while the first step is running

    hooks = [pipe.unet.register_forward_hook(count_unet),
             pipe.vae.decoder.register_forward_hook(lambda *a: calls.__setitem__("vae", calls["vae"] + 1))]
    try:
        result = t2i.run("a red cat", settings(steps=20), model=pipe, cancel=cancel)
    finally:
        for h in hooks:
            h.remove()
    assert result.cancelled and result.images == [] and result.steps_done == 1
    assert calls == {"unet": 1, "vae": 0}
    assert any("Stopped after step 1 of 21" in n for n in result.notes)
    assert generate().images, "the next run starts normally"


def test_closing_the_stream_stops_the_pipeline(hub):
    pipe = loading.load_pipeline("diffusers.tiny")
    calls = []
    hook = pipe.unet.register_forward_hook(lambda *a: calls.append(1))
    try:
        events = t2i.stream("a red cat", settings(steps=40), model=pipe)
        next(events)
        events.close()  # what gradio does when the user's event is cancelled
        done = len(calls)
        time.sleep(0.3)
        assert len(calls) == done < 10, f"the worker stopped after the running step ({done} of 41 UNet calls)"
    finally:
        hook.remove()
    assert pipe._ganhub_lock.acquire(blocking=False), "and released the pipeline"
    pipe._ganhub_lock.release()


def test_png_parameters_round_trip(hub, tmp_path):
    s = settings(negative_prompt="blurry, dark", seed=123)
    prompt = "a red cat, oil on canvas\nsecond line: café"
    image = t2i.run(prompt, s).images[0]
    png = tmp_path / "out.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", image.info["parameters"])
    image.save(png, pnginfo=info)
    params = read_parameters(png)
    assert params == {
        "prompt": prompt, "negative_prompt": "blurry, dark", "steps": 2, "guidance_scale": 5.0, "seed": 123,
        "width": 64, "height": 64, "sampler": "PNDMScheduler", "model_id": "diffusers.tiny",
        "model_revision": hub.revision, "model": tiny.TINY_REPO, "decoder": "VAE", "precision": "float32",
    }
    again = t2i.run(params["prompt"], t2i.Settings(params["model_id"], params["negative_prompt"], params["steps"],
                                                   params["guidance_scale"], params["width"], params["height"],
                                                   params["seed"]))
    assert np.array_equal(pixels(again.images[0]), pixels(image)), "reusing the parameters reproduces the image"


def test_long_prompt_is_reported_as_truncated_and_non_ascii_works(hub):
    short = generate(prompt="un chat roux, 猫, Ünïcødé")
    assert short.notes == [] and short.images
    words = " ".join(f"word{i}" for i in range(40))  # the tiny tokenizer spells unknown words letter by letter
    [note] = generate(prompt=words).notes
    # CLIP's tokenizer splits digits, so the ignored end decodes as "... word 3 9".
    assert "longer than the text encoder's 77 tokens" in note and note.endswith('word 3 9"') and "word 0 " not in note


def test_taesd_previews_and_fast_decode(hub, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(loading, "TAESD_ID", "diffusers.taesd_absent")
        no_taesd = generate(fast_decode=True)
    assert "Decoder: VAE" in no_taesd.infotexts[0]
    assert any("fast decoder (TAESD) is not available" in n for n in no_taesd.notes)

    taesd = loading.load_taesd(download=True)
    calls = []
    hook = taesd.decoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        events = list(t2i.stream("a red cat", settings(steps=3)))
        assert len(calls) == len(events) - 2, "TAESD decodes every preview (not the last step, not the final image)"
        fast = generate(fast_decode=True)
    finally:
        hook.remove()
    assert "Decoder: TAESD" in fast.infotexts[0] and fast.notes == [] and fast.details["decoder"] == "TAESD"
    assert fast.images[0].size == (64, 64)


def test_a_bfloat16_run_stays_close_to_float32(hub, monkeypatch):
    monkeypatch.setenv("GANHUB_CPU_BF16", "1")
    result = generate()
    assert "Precision: bfloat16" in result.infotexts[0] and result.images[0].size == (64, 64)
    monkeypatch.setenv("GANHUB_CPU_BF16", "0")
    reference = generate().images[0]
    assert np.abs(pixels(result.images[0]) - pixels(reference)).mean() < 3, "bfloat16 stays close to float32"


def test_a_time_budget_decodes_the_steps_done_so_far(hub):
    from core.limits import Budget

    class AfterOneStep(Budget):
        calls = 0

        def expired(self):
            self.calls += 1
            return self.calls >= 1

    budget = AfterOneStep(seconds=120)
    result = t2i.run("a red cat", settings(steps=4), budget=budget)
    assert not result.cancelled and result.images and result.images[0].size == (64, 64)
    assert result.steps_done == 1 < result.total_steps  # (PNDM runs 5 timesteps for 4 steps)
    assert budget.notes and budget.notes[0] in result.notes
    assert f"stopped after 1 of {result.total_steps} denoising steps" in budget.notes[0]
