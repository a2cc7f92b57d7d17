"""Runs the service: the indexer thread plus uvicorn, in the foreground (`serve`) or in a background thread
(`running_service`, for the demo, the tests and the benchmark)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from marketplace.errors import FedmarketError
from marketplace.net import free_loopback_port
from marketplace.service.app import Service
from marketplace.service.settings import ServiceSettings

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class RunningService:
    url: str
    service: Service


def _server(service: Service, host: str, port: int, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(service.app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off")
    return uvicorn.Server(config)


@contextmanager
def running_service(
    settings: ServiceSettings, port: int = 0, index: bool = True, log_level: str = "warning"
) -> Iterator[RunningService]:
    """Start the indexer and the web server on 127.0.0.1 (a free port unless given); stop both on exit."""
    service = Service.build(settings)
    port = port or free_loopback_port()
    server = _server(service, LOOPBACK, port, log_level)
    thread = threading.Thread(target=server.run, name="fedmarket-web", daemon=True)
    if index:
        service.start_indexer()
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise FedmarketError(f"the web server did not start on {LOOPBACK}:{port}")
            time.sleep(0.02)
        yield RunningService(f"http://{LOOPBACK}:{port}", service)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        service.stop()


def serve_forever(settings: ServiceSettings, host: str = LOOPBACK, port: int = 8000, log_level: str = "info") -> None:
    """Index and serve until interrupted (Ctrl-C)."""
    service = Service.build(settings)
    service.start_indexer()
    try:
        _server(service, host, port, log_level).run()
    finally:
        service.stop()
