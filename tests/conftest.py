"""Fixtures that start the real local services once per test session and stop them after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from marketplace.chain.anvil import LocalAnvil, dev_accounts
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.chain.session import ChainSession, connect
from marketplace.ipfs import IpfsClient, LocalIpfsNode


@pytest.fixture(scope="session")
def anvil() -> Iterator[LocalAnvil]:
    with LocalAnvil(accounts=30) as node:
        yield node


@pytest.fixture(scope="session")
def w3(anvil: LocalAnvil) -> Web3:
    return connect(anvil.rpc_url, expected_chain_id=31337)


@pytest.fixture(scope="session")
def accounts() -> list[LocalAccount]:
    return dev_accounts(30)


@pytest.fixture
def session_for(w3: Web3, accounts: list[LocalAccount]):  # type: ignore[no-untyped-def]
    """A signing session for dev account i."""
    return lambda i: ChainSession(w3, accounts[i])


@pytest.fixture
def marketplace(session_for) -> MarketplaceContract:  # type: ignore[no-untyped-def]
    """A freshly deployed Marketplace, signing as account 0 (the task owner)."""
    contract, _ = MarketplaceContract.deploy(session_for(0))
    return contract


@pytest.fixture(scope="session")
def ipfs_node() -> Iterator[LocalIpfsNode]:
    with LocalIpfsNode() as node:
        yield node


@pytest.fixture
def ipfs(ipfs_node: LocalIpfsNode) -> Iterator[IpfsClient]:
    with IpfsClient(ipfs_node.api_url) as client:
        yield client
