"""Small networking helpers shared by the local services fedmarket starts."""

from __future__ import annotations

import socket
import time

from marketplace.errors import OutageTooLongError, ServiceUnavailableError


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


RETRY_MAX_SECONDS = 30.0  # longest wait between tries at work an unavailable chain or IPFS node stopped


class Backoff:
    """When to try again what an unavailable chain or IPFS node stopped: `first` seconds after the first failure,
    then twice the last wait, at most RETRY_MAX_SECONDS (the aggregator's rounds and passes and a data owner's
    submissions back off alike); `clear` after a success starts over."""

    def __init__(self, first: float, give_up_after: float | None = None) -> None:
        self.first = first
        self.give_up_after = give_up_after  # seconds of failures in a row after which `failed` gives up
        self.delay = 0.0  # the current wait; 0 while nothing has failed
        self._until = 0.0
        self._since: float | None = None  # when the current run of failures began

    def failed(self, cause: ServiceUnavailableError | None = None) -> float:
        """Note a failure; returns the wait before the next try. Raises OutageTooLongError (from `cause`) once
        the failures have lasted `give_up_after` seconds."""
        now = time.monotonic()
        self._since = now if self._since is None else self._since
        if self.give_up_after is not None and cause is not None and now - self._since >= self.give_up_after:
            raise OutageTooLongError(now - self._since, cause) from cause
        self.delay = min(RETRY_MAX_SECONDS, 2 * self.delay) if self.delay else self.first
        self._until = now + self.delay
        return self.delay

    def waiting(self) -> bool:
        """True until the wait after the last failure is over."""
        return time.monotonic() < self._until

    def clear(self) -> None:
        self.delay, self._until, self._since = 0.0, 0.0, None
