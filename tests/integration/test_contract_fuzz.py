"""Random sequences of every Marketplace call on Anvil, with money conservation checked after every step."""

from __future__ import annotations

import time

import pytest
from contracts.fuzz import MarketMachine, World
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from web3 import Web3

pytestmark = pytest.mark.integration

CI_EXAMPLES, CI_STEPS_PER_EXAMPLE, CI_MIN_STEPS = 24, 60, 1000


def run_fuzz(world: World, examples: int, steps_per_example: int) -> None:
    """Run the state machine; shared with benchmarks/contracts_soak.py."""
    MarketMachine.world = world
    run_state_machine_as_test(
        MarketMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps_per_example,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_random_call_sequences_conserve_money(w3: Web3, accounts: list[LocalAccount]) -> None:
    world = World.build(w3, accounts)
    started = time.perf_counter()
    run_fuzz(world, CI_EXAMPLES, CI_STEPS_PER_EXAMPLE)
    stats = world.stats
    print(
        f"\nfuzz: {stats.steps} steps in {stats.examples} examples, {stats.calls} transactions, "
        f"{time.perf_counter() - started:.1f} s; successes {dict(sorted(stats.successes.items()))}; "
        f"reverts {dict(sorted(stats.reverts.items()))}"
    )
    assert stats.steps >= CI_MIN_STEPS
    # the sequences reached every part of the life cycle
    for call in ("createTask", "join", "startTask", "submitUpdate", "finalizeRound", "settleRound", "withdraw"):
        assert stats.successes.get(call, 0) > 0, f"no successful {call}"
