"""schemathesis against the service's OpenAPI document: generated input never makes the API fail with a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from browser.world import World, build_world
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from web3 import Web3

from marketplace.ipfs import LocalIpfsNode
from marketplace.service.app import Service

pytestmark = pytest.mark.integration
EXAMPLES = 30


@pytest.fixture(scope="module")
def indexed_app(w3: Web3, accounts: list[LocalAccount], ipfs_node: LocalIpfsNode,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:  # fmt: skip
    world: World = build_world(w3, accounts, ipfs_node.api_url)
    db: Path = tmp_path_factory.mktemp("schema") / "index.db"
    service = Service.build(world.settings(f"sqlite:///{db}"))
    service.indexer.sync()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def api_schema(indexed_app: Service) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", indexed_app.app)


def test_no_server_errors(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation, a bounded number of generated cases each (schemathesis' pytest plugin is driven by hand:
    its fixture loader does not run under this pytest)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)  # fmt: skip
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        check()
