"""What a user reads when a handler fails: ``core.ui.errors``."""

import gradio as gr
import pytest

from core import ui
from core.weights import WeightsUnavailableError


def test_value_errors_become_gradio_errors():
    @ui.user_errors
    def handler(x):
        raise ValueError(f"bad value {x}")

    with pytest.raises(gr.Error) as err:
        handler(3)
    assert "bad value 3" in str(err.value)


def test_generator_handlers_are_wrapped_too():
    @ui.user_errors
    def stream():
        yield 1
        raise WeightsUnavailableError("x.y", "Weights for x.y are not available here.")

    gen = stream()
    assert next(gen) == 1
    with pytest.raises(gr.Error, match="not available here"):
        next(gen)


def test_a_stopped_model_worker_is_a_clear_message():
    from core.model_worker import WorkerStoppedError

    @ui.user_errors
    def handler():
        raise WorkerStoppedError("The model worker (process 7) was killed by SIGKILL while running this job; try again.")

    with pytest.raises(gr.Error, match="killed by SIGKILL while running this job; try again") as err:
        handler()
    assert err.value.title == "Model worker stopped"


def test_other_exceptions_are_not_hidden():
    @ui.user_errors
    def broken():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        broken()


def test_gpu_out_of_memory_becomes_a_clear_message_and_frees_the_cache(monkeypatch):
    import torch

    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3 * 2**30, 24 * 2**30))

    @ui.user_errors
    def handler():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    @ui.user_errors
    def stream():
        yield 1
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    for call in (handler, lambda: list(stream())):
        with pytest.raises(gr.Error) as err:
            call()
        assert err.value.title == "Out of GPU memory"
        assert str(err.value.message).startswith("The GPU ran out of memory for this job (3.0 GiB free now). "
                                                 "Try a smaller image")
    assert emptied == [True, True]


def test_mps_out_of_memory_is_recognised_and_other_runtime_errors_are_not_hidden():
    @ui.user_errors
    def mps():
        raise RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.00 GB)")

    @ui.user_errors
    def bug():
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(gr.Error, match="The GPU ran out of memory for this job"):
        mps()
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied") as err:
        bug()
    assert not isinstance(err.value, gr.Error)


def test_client_reads_the_out_of_memory_message():
    import torch
    from gradio_client.exceptions import AppError

    from tests.support.live import live_client

    @ui.user_errors
    def generate(text):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with gr.Blocks() as demo:
        box = gr.Textbox()
        gr.Button().click(generate, box, box, api_name="generate")
    with live_client(demo) as client:
        with pytest.raises(AppError) as err:
            client.predict("a cat", api_name="/generate")
    assert "The GPU ran out of memory for this job" in str(err.value)
    assert "Try a smaller image" in str(err.value)
