"""What the API handlers share: the database, the IPFS content store and the indexer's progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import sessionmaker

from marketplace.service.content import ContentStore
from marketplace.service.indexer import IndexerStatus


@dataclass
class ServiceState:
    contract: str
    sessions: sessionmaker[Any]
    content: ContentStore
    indexer_status: IndexerStatus = field(default_factory=IndexerStatus)
    live_refresh_ms: int = 3_000
