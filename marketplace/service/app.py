"""Builds the FastAPI app (API + dashboard) and the service around it: database, indexer thread, IPFS store."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from marketplace.chain.session import connect
from marketplace.service import api, dashboard
from marketplace.service.content import ContentStore
from marketplace.service.db import open_database
from marketplace.service.indexer import Indexer, start_in_thread
from marketplace.service.settings import ServiceSettings
from marketplace.service.state import ServiceState

STATIC_DIR = dashboard.HERE / "static"


def create_app(state: ServiceState, cors_origins: tuple[str, ...] = ()) -> FastAPI:
    """The web app over an existing state; the indexer runs elsewhere (or not at all, e.g. in tests)."""
    app = FastAPI(
        title="fedmarket marketplace service",
        version="0.1.0",
        description="Tasks, rounds, contributions, payouts and proofs of the fedmarket Marketplace contract, "
        "indexed from its events.",
    )
    app.state.service = state
    if cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET"], allow_headers=["*"]
        )
    app.include_router(api.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


@dataclass
class Service:
    """A running index of one contract: the app to serve, and the indexer thread that feeds it."""

    settings: ServiceSettings
    app: FastAPI
    indexer: Indexer
    engine: Engine
    _thread: threading.Thread | None = None
    _stop: threading.Event | None = None
    _warmer: threading.Thread | None = None

    @classmethod
    def build(cls, settings: ServiceSettings) -> Service:
        engine, sessions = open_database(settings.db_url)
        w3 = connect(settings.rpc_url)
        indexer = Indexer(
            w3, settings.marketplace, sessions, start_block=settings.start_block, reorg_depth=settings.reorg_depth,
            recheck_window=settings.recheck_window, batch_blocks=settings.batch_blocks,
        )  # fmt: skip
        content = ContentStore(settings.ipfs_api, timeout=settings.ipfs_timeout)
        state = ServiceState(indexer.address, sessions, content, indexer.status, settings.live_refresh_ms)
        return cls(settings, create_app(state, settings.cors_origins), indexer, engine)

    def start_indexer(self) -> None:
        """Catch up once in the foreground is not needed: the thread backfills, then follows the head. A second
        thread caches each new task's spec from IPFS (ContentStore.warm_specs)."""
        self._thread, self._stop = start_in_thread(self.indexer, self.settings.poll_interval)
        state: ServiceState = self.app.state.service
        self._warmer = threading.Thread(
            target=state.content.warm_specs, args=(state.sessions, self._stop, self.settings.poll_interval),
            name="fedmarket-specs", daemon=True,
        )  # fmt: skip
        self._warmer.start()

    def stop(self) -> None:
        if self._stop is not None and self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=30)
        if self._warmer is not None:
            self._warmer.join(timeout=30)
        self.engine.dispose()
