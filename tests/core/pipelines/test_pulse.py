"""core.pipelines.pulse: the task's checks, face step, seed and stream, on a tiny DCGAN passed in as ``model``."""

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from core import images
from core.limits import Budget
from core.pipelines import pulse as P
from core.pipelines.pulse_search import downscale
from core.pipelines.streaming import Progress, drain
from core.weights import face_layout
from tests.support import tiny_pulse
from tests.support.tiny_pulse import one_thread  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def generator():
    return tiny_pulse.tiny_dcgan()


@pytest.fixture(scope="module")
def face_16(generator):
    from core.pipelines.pulse_adapters import DCGANAdapter

    return images.to_pil(tiny_pulse.in_distribution_target(DCGANAdapter(generator), 16), (0, 1))


@pytest.mark.parametrize("knobs, message", [
    (dict(steps=0), "steps and samples must be at least 1"),
    (dict(steps=2.5), "steps must be a whole number"),
    (dict(eps=-1.0), "eps must be between 0 and 1"),
    (dict(stylegan2_search="512"), "stylegan2_search must be one of 256+1024, 256, 1024, not '512'"),
    (dict(steps=500, samples=8), "500 steps x 8 samples = 4000 is more than this server allows in one request"),
])
def test_settings_check_themselves(knobs, message, monkeypatch):
    monkeypatch.setenv("GANHUB_DEVICE", "cpu")
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        P.Settings(**knobs)
    assert P.Settings(steps=10.0, samples=2).steps == 10  # whole floats from the UI are taken


def test_upsample_streams_previews_then_the_result_with_every_setting_used(generator, face_16):
    settings = P.Settings(size=8, steps=10, samples=2, seed=5)
    events = list(P.upsample(face_16, settings, model=generator))
    progress, result = events[:-1], events[-1]
    assert [e.step for e in progress] == [5, 10] and all(isinstance(e, Progress) for e in progress)
    assert progress[0].preview.size == (64, 64) and progress[0].total == 10
    assert progress[0].note.startswith("The input is a 16x16 face, used as is after downscaling it to 8x8")
    assert "Step 5 of 10: best L2" in progress[0].note
    assert isinstance(result, P.Result) and not result.cancelled and len(result.faces) == 2
    d = result.details
    assert (d["seed"], d["steps"], d["size"], d["generator"]) == (5, 10, 8, "dcgan.faces64")
    assert [s["l2"] for s in d["samples"]] == sorted(s["l2"] for s in d["samples"])
    assert result.input.tensor.shape == (1, 3, 8, 8) and result.summary.startswith("The input is a 16x16 face")
    again = drain(P.upsample(face_16, settings, model=generator))
    assert again.details["samples"] == d["samples"], "same seed, same faces"


def test_a_random_seed_is_drawn_once_and_reported(generator, face_16):
    drawn = P.run(images.to_tensor(face_16, (0, 1)), P.Settings(steps=3, samples=1, seed=-1), model=generator)
    seed = drawn.details["seed"]
    assert isinstance(seed, int) and seed >= 0
    again = P.run(face_16, P.Settings(steps=3, samples=1, seed=seed), model=generator)
    assert again.details["samples"] == drawn.details["samples"]


def test_cancel_ends_the_stream_after_the_running_step_with_the_best_faces(generator, face_16):
    cancel = threading.Event()
    events = P.stream(face_16, P.Settings(steps=200, samples=2, seed=0), model=generator, cancel=cancel)
    first = next(events)
    assert first.step == 5
    cancel.set()
    *rest, result = events
    assert rest == [] and result.cancelled and result.details["steps"] == 5 and len(result.faces) == 2
    assert "stopped after 5 of 200 steps" in result.summary


def test_the_time_budget_ends_the_stream_with_a_clear_note(generator, face_16):
    result = P.run(face_16, P.Settings(steps=200, samples=1, seed=0), model=generator, budget=Budget(seconds=1e-9))
    assert not result.cancelled and result.details["steps"] == 0 and len(result.faces) == 1
    assert "(GANHUB_JOB_SECONDS): the job was stopped after 0 of 200 steps" in result.summary


def test_bad_requests_are_refused_before_any_search(generator, face_16):
    with pytest.raises(ValueError, match="Upload a face"):
        next(P.upsample(None, P.Settings(), model=generator))
    with pytest.raises(ValueError, match="Unknown generator 'dcgan.nope'"):
        next(P.upsample(face_16, P.Settings(model_id="dcgan.nope"), model=generator))
    with pytest.raises(ValueError, match="needs an input size below 64 that divides it"):
        next(P.upsample(face_16, P.Settings(size=64), model=generator))
    with pytest.raises(ValueError, match="needs an input size below 64"):
        next(P.stream(Image.new("RGB", (12, 12)), P.Settings(), model=generator))


def test_tiny_faces_are_used_as_is_and_photos_are_detected_and_aligned():
    import skimage.data

    face = Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    low = P.low_res_input(face, 16, 64)
    assert low.aligned is None and low.tensor.shape == (1, 3, 16, 16) and "used as is" in low.note
    np.testing.assert_array_equal(np.asarray(low.image), np.asarray(face))
    halved = P.low_res_input(face, 8, 64)
    assert "after downscaling it to 8x8 (PULSE's bicubic)" in halved.note
    torch.testing.assert_close(halved.tensor, downscale(images.to_tensor(face, (0, 1)), 8).clamp(0, 1))
    assert "after resizing it to 12x12" in P.low_res_input(face, 12, 48).note
    with pytest.raises(ValueError, match="not square"):
        P.low_res_input(Image.new("RGB", (40, 200)), 16, 64)

    astronaut = Image.fromarray(skimage.data.astronaut())
    low = P.low_res_input(astronaut, 16, 64, template=face_layout("dcgan_faces64"))
    assert low.aligned.size == (64, 64) and low.tensor.shape == (1, 3, 16, 16)
    assert "Found 1 face(s)" in low.note
    with pytest.raises(ValueError, match="No face was found"):
        P.low_res_input(Image.fromarray(skimage.data.chelsea()), 16, 64)
    pair = Image.new("RGB", (1024, 512))
    pair.paste(astronaut, (0, 0))
    pair.paste(astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    with pytest.raises(ValueError, match="2 faces were found"):
        P.low_res_input(pair, 16, 64)
    assert P.low_res_input(pair, 16, 64, face_index=1).aligned.size == (64, 64)
    with pytest.raises(ValueError, match="Face 3 does not exist"):
        P.low_res_input(pair, 16, 64, face_index=2)


def test_photos_are_aligned_to_the_layout_the_manifest_gives_the_generator():
    dcgan = P.face_template("dcgan.faces64")
    np.testing.assert_array_equal(dcgan, face_layout("dcgan_faces64"))  # its output.face_layout
    assert P.face_template("stylegan2.ffhq1024") == "ffhq"  # none given: the FFHQ recipe
