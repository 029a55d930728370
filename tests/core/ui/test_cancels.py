"""core.ui.cancels: the one registry of running streaming jobs."""

from core import ui


def test_cancels_end_only_their_own_sessions_job_and_forget_finished_ones():
    from types import SimpleNamespace

    cancels = ui.Cancels()
    alice, bob = SimpleNamespace(session_hash="a"), SimpleNamespace(session_hash="b")
    with cancels.running(alice) as a, cancels.running(bob) as b:
        assert len(cancels) == 2 and not a.is_set()
        cancels.cancel(alice)
        assert a.is_set() and not b.is_set()
    assert len(cancels) == 0 and b.is_set(), "a closed job's flag is set, so its work stops too"
    cancels.cancel(alice)  # nothing runs: nothing happens
    with cancels.running(alice) as first:
        with cancels.running(alice) as second:  # a new job of the same session replaces the first
            cancels.cancel(alice)
            assert second.is_set() and not first.is_set()
        assert len(cancels) == 0
