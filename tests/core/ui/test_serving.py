"""Launch flags and defaults: ``core.ui.serving``."""

from core import ui


def test_launch_flags():
    args = ui.parse_launch_args(["--host", "0.0.0.0", "--port", "9000", "--share", "--root-path", "/x"])
    assert (args.host, args.port, args.share, args.root_path) == ("0.0.0.0", 9000, True, "/x")


def test_gradio_queues_poll_at_the_hubs_intervals_not_every_millisecond():
    # gradio 6.31 checks for jobs every 1 ms and for progress every 10 ms even when idle; on a
    # 2-core machine that idle polling slowed the model worker's searches (bench/RESULTS.md).
    import gradio as gr

    from core.ui import serving

    with gr.Blocks() as demo:
        gr.Number()
    demo.queue()
    queue = demo._queue
    assert queue.sleep_when_free == serving.QUEUE_POLL_SECONDS == 0.01
    assert queue.progress_update_sleep_when_free == serving.PROGRESS_POLL_SECONDS == 0.05
    from gradio import queueing

    installed = queueing.Queue.__init__
    serving.install_queue_poll_intervals()  # installing twice does not wrap twice
    assert queueing.Queue.__init__ is installed and installed.sets_poll_intervals
