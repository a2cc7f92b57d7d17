"""Waiting in tests for what another process or thread does on the chain, with a bound and a named reason."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from client.data_owner import DataOwner
from client.training_cli import FollowEvent, follow_task


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` every 0.2 s until it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def following(
    member: DataOwner, task_id: int, poll_seconds: float
) -> Iterator[tuple[list[FollowEvent], threading.Thread]]:
    """`member` following the task on a thread (`follow_task`, as `fedmarket run` does): yields the events it
    reports and the thread, which is stopped and joined on the way out."""
    events: list[FollowEvent] = []
    stop = threading.Event()
    thread = threading.Thread(target=follow_task, args=(member, task_id, events.append),
                              kwargs={"poll_seconds": poll_seconds, "stop": stop})  # fmt: skip
    thread.start()
    try:
        yield events, thread
    finally:
        stop.set()
        thread.join(timeout=30)
