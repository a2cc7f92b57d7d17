"""The indexer on a real PostgreSQL server (started here, on a loopback port) instead of SQLite."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketplace.net import free_loopback_port
from marketplace.paths import PROJECT_ROOT
from marketplace.service.db import EventRow, MemberRow, TaskRow, open_database
from marketplace.service.indexer import Indexer
from tests.integration.test_service_indexer import STAKE, _terms, chain  # noqa: F401 - the private-chain fixture

pytestmark = pytest.mark.integration


def _server_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not found:
        subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "setup_postgres.sh")], check=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return Path(found[-1])


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` system user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = _server_bin()
    home = Path(tempfile.mkdtemp(prefix="fedmarket-pg-"))
    data = home / "data"
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    subprocess.run(
        _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "fedmarket"]),
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_loopback_port()
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-o", options, "-w"]
    subprocess.run(_as_server_user([*ctl, "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://fedmarket@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([*ctl, "-m", "fast", "stop"]), check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def _count(db_url: str, table: type) -> int:
    _, sessions = open_database(db_url)
    with sessions() as db:
        return int(db.scalar(select(func.count()).select_from(table)) or 0)


def test_indexer_on_postgres_is_idempotent_and_resumes(chain: tuple, postgres_url: str) -> None:  # noqa: F811
    w3, sessions, market, start = chain
    task_id, _ = market.create_task(_terms(sessions[1].address), "bafkspec", "bafkmodel")
    for s in sessions[2:6]:
        market.with_session(s).join(task_id, STAKE)
    _, db = open_database(postgres_url)

    held_back = Indexer(w3, market.address, db, start_block=start, reorg_depth=2, batch_blocks=1)
    assert held_back.sync() == 3 and _count(postgres_url, EventRow) == 3
    restarted = Indexer(w3, market.address, db, start_block=start, batch_blocks=1)
    assert restarted.sync() == 2 and restarted.sync() == 0
    assert _count(postgres_url, EventRow) == 5 and _count(postgres_url, MemberRow) == 4
    with db() as session:
        assert session.get(TaskRow, task_id).data_owners == 4  # type: ignore[union-attr]
