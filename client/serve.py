"""`fedmarket serve`: index a Marketplace contract into SQL and serve the REST API and the dashboard."""

from __future__ import annotations

from marketplace.service.server import LOOPBACK, serve_forever
from marketplace.service.settings import DEFAULT_DB_URL, ServiceSettings


def serve(
    rpc_url: str,
    marketplace: str,
    *,
    db_url: str = DEFAULT_DB_URL,
    ipfs_api: str | None = None,
    host: str = LOOPBACK,
    port: int = 8000,
    start_block: int = 0,
    reorg_depth: int = 0,
    batch_blocks: int = 2_000,
    poll_interval: float = 1.0,
    cors_origins: tuple[str, ...] = (),
    log_level: str = "info",
) -> None:
    """Run the indexer (background thread) and the web app on http://HOST:PORT until Ctrl-C.

    `db_url`: SQLAlchemy URL (SQLite file by default; `postgresql+psycopg://...` for PostgreSQL).
    `ipfs_api`: the IPFS node for specs, round accuracy and CID links; without it those show as unavailable.
    `reorg_depth`: only blocks at least this far below the head are indexed (0 for Anvil, ~12 on mainnets).
    """
    settings = ServiceSettings(
        rpc_url=rpc_url, marketplace=marketplace, db_url=db_url, ipfs_api=ipfs_api, start_block=start_block,
        reorg_depth=reorg_depth, batch_blocks=batch_blocks, poll_interval=poll_interval,
        cors_origins=tuple(cors_origins),
    )  # fmt: skip
    serve_forever(settings, host=host, port=port, log_level=log_level)
