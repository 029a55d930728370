"""The worker's end without a process: how an exception raised there is sent back."""

from __future__ import annotations

import pickle
import threading

from core.model_worker_process import _sendable_error


def _received(error: BaseException) -> BaseException:
    sent = pickle.loads(pickle.dumps(_sendable_error(error)))
    return sent[0](*sent[1:]) if isinstance(sent, tuple) else sent


def test_an_error_whose_init_takes_other_arguments_keeps_its_type_message_and_attributes():
    from core.weights import WeightsUnavailableError

    error = WeightsUnavailableError("lama.big_lama", "No source of lama.big_lama could be used.")
    with_init = _received(ValueError("steps must be at least 1."))
    rebuilt = _received(error)
    assert type(with_init) is ValueError and str(with_init) == "steps must be at least 1."
    assert type(rebuilt) is WeightsUnavailableError and str(rebuilt) == str(error)
    assert rebuilt.model_id == "lama.big_lama"


class HoldsALock(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()  # cannot be pickled


def test_an_error_that_cannot_be_pickled_becomes_a_runtime_error_that_names_it():
    received = _received(HoldsALock("the lock was held"))
    assert type(received) is RuntimeError and str(received) == "HoldsALock: the lock was held"


def test_a_warm_up_target_is_named_not_sent_and_a_generator_runs_to_its_end(tmp_path):
    import os

    from core.model_worker_process import for_effect

    assert for_effect("tests.support.worker_jobs:write_pid_at_the_end", tmp_path / "pid") is None
    assert (tmp_path / "pid").read_text() == str(os.getpid())
