"""What the service needs to know: where the chain, the contract, the database and the IPFS node are."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_DB_URL = "sqlite:///fedmarket-index.db"


@dataclass(frozen=True)
class ServiceSettings:
    """One place for every knob, so `serve()`, the tests and the benchmark build the same app."""

    rpc_url: str
    marketplace: str  # the Marketplace contract's address
    db_url: str = DEFAULT_DB_URL
    ipfs_api: str | None = None  # no node: specs, accuracy and CID links are unavailable
    start_block: int = 0  # usually the contract's deployment block
    reorg_depth: int = 0  # blocks newer than head - depth are not final and wait
    recheck_window: int = 12  # blocks behind the cursor whose hashes are re-checked for a reorg
    batch_blocks: int = 2_000  # eth_getLogs range per request while backfilling
    poll_interval: float = 1.0  # seconds between polls of the chain head
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    live_refresh_ms: int = 3_000  # how often the dashboard re-reads a task while it runs
    ipfs_timeout: float = 2.0  # lookups of a CID fail fast: CIDs come from anyone
