"""Small networking helpers shared by the local services fedmarket starts."""

from __future__ import annotations

import socket


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


RETRY_MAX_SECONDS = 30.0  # longest wait between tries at work an unavailable chain or IPFS node stopped


def next_retry_delay(previous: float) -> float:
    """The wait before trying again what an unavailable chain or IPFS node stopped: twice the last wait, at most
    RETRY_MAX_SECONDS (the aggregator's rounds and a data owner's submissions back off alike)."""
    return min(RETRY_MAX_SECONDS, 2 * previous)
