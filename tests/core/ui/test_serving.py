"""Launch flags and defaults: ``core.ui.serving``."""

from core import ui


def test_launch_flags():
    args = ui.parse_launch_args(["--host", "0.0.0.0", "--port", "9000", "--share", "--root-path", "/x"])
    assert (args.host, args.port, args.share, args.root_path) == ("0.0.0.0", 9000, True, "/x")
