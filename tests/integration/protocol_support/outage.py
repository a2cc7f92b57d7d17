"""An IPFS node that hangs: it accepts connections on loopback and never answers, as a stuck node does."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from marketplace.ipfs import IpfsClient


@contextmanager
def silent_node() -> Iterator[IpfsClient]:
    """A client of such a node, with short timeouts (0.5 s of silence, 0.1 s lookups) so tests see it fail fast."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        client = IpfsClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5, lookup_timeout=0.1)
        try:
            yield client
        finally:
            client.close()
