"""The demo's live view written to a file or pipe: events are plain text (a path or `[…]` is not markup) and the
report that follows starts on a line of its own."""

from __future__ import annotations

import io

from rich.console import Console
from rich.live import Live

from client.demo import Display, _note
from client.training_cli import FollowEvent


def test_events_render_as_text_and_end_their_line() -> None:
    display = Display(["#1", "#2"], ["honest", "sign_flip"], ["0x1", "0x2"])
    _note(display, "#2", FollowEvent("removed", 2, "by the aggregation rules; no more submissions"))
    _note(display, "#1", FollowEvent("retrying", 3, "[Errno 111] Connection refused; next try in 1.0 s"))
    _note(display, "#1", FollowEvent("submitted", 3, "bafy"))  # not an event the view lists
    out = io.StringIO()
    console = Console(file=out, width=100)
    with Live(display.render(), console=console, transient=False):
        pass
    console.print("task 1: rounds")
    lines = out.getvalue().splitlines()
    assert "round 2: #2 removed by the aggregation rules; no more submissions" in lines
    assert "round 3: #1 retrying [Errno 111] Connection refused; next try in 1.0 s" in lines
    assert lines[-1] == "task 1: rounds" and not any("bafy" in line for line in lines)
