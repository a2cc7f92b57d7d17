"""A Marketplace on a real chain with named actors, default terms and round builders, so tests say only what differs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from web3 import Web3

from marketplace.chain.artifacts import load_artifact
from marketplace.chain.erc20 import Erc20
from marketplace.chain.marketplace_contract import (
    ETH,
    ZERO_POINT,
    MarketplaceContract,
    RoundReport,
    Rules,
    TaskTerms,
)
from marketplace.chain.session import ChainSession
from marketplace.errors import ContractRevert

ZERO = "0x" + "00" * 20
G1 = (1, 2)  # BN254 generator
G1_DOUBLE = (
    0x030644E72E131A029B85045B68181585D97816A916871CA8D3C208C16D87CFD3,
    0x15ED738C0E0A7C92E7845F96B2AE9C0A68A6A449E3538FC7FF3EBF7A5A18A2C4,
)
OFF_CURVE = (1, 3)
REWARD = 10**18 + 7  # not divisible by the round count: dust must reach the owner
STAKE = 10**17
BOND = 3 * 10**17
CHALLENGE_BOND = 5 * 10**16
SUBMISSION, AGGREGATION, JOIN, DISPUTE, ARBITRATION = 600, 300, 3600, 200, 400

# every custom error a test saw, so that one test can check none is left untested
SEEN_ERRORS: set[str] = set()


def reverts(name: str, call: Callable[[], object]) -> ContractRevert:
    """Run `call`, expect the named custom error, and record it as tested."""
    try:
        call()
    except ContractRevert as exc:
        assert exc.error_name == name, f"expected {name}, got {exc}"
        SEEN_ERRORS.add(name)
        return exc
    raise AssertionError(f"expected {name}, the call succeeded")


def verifier_proof(weights: tuple[int, ...]) -> bytes:
    """What WeightSumVerifier accepts: the weights' sum, ABI-encoded."""
    return encode(["uint256"], [sum(weights)])


@dataclass
class Harness:
    """Deployed contracts and the accounts that play each role (indices into `accounts`)."""

    w3: Web3
    accounts: list[LocalAccount]
    market: MarketplaceContract
    verifier: str
    owner: int = 0
    aggregator: int = 1
    arbiter: int = 2
    stranger: int = 3
    data_owners: tuple[int, ...] = (4, 5, 6)
    sessions: dict[int, ChainSession] = field(default_factory=dict)

    @classmethod
    def deploy(cls, w3: Web3, accounts: list[LocalAccount], **roles: Any) -> Harness:
        session = ChainSession(w3, accounts[0])
        market, _ = MarketplaceContract.deploy(session)
        artifact = load_artifact("WeightSumVerifier")
        verifier, _ = session.deploy(artifact["abi"], artifact["bytecode"])
        return cls(w3, accounts, market, verifier, **roles)

    def session(self, i: int) -> ChainSession:
        if i not in self.sessions:
            self.sessions[i] = ChainSession(self.w3, self.accounts[i])
        return self.sessions[i]

    def address(self, i: int) -> str:
        return str(self.accounts[i].address)

    def as_(self, i: int) -> MarketplaceContract:
        return self.market.with_session(self.session(i))

    def terms(self, **overrides: Any) -> TaskTerms:
        base = TaskTerms(
            token=ETH,
            reward=REWARD,
            aggregator=self.address(self.aggregator),
            stake=STAKE,
            arbiter=self.address(self.arbiter),
            aggregator_bond=BOND,
            verifier=self.verifier,
            challenge_bond=CHALLENGE_BOND,
            unverified=False,
            rounds=2,
            min_data_owners=1,
            max_data_owners=len(self.data_owners),
            join_period=JOIN,
            submission_period=SUBMISSION,
            aggregation_period=AGGREGATION,
            dispute_window=DISPUTE,
            arbitration_period=ARBITRATION,
            rules=Rules(slash_bps=5_000),
        )
        return replace(base, **overrides)

    def create(self, terms: TaskTerms | None = None, **overrides: Any) -> int:
        terms = terms or self.terms(**overrides)
        task_id, _ = self.as_(self.owner).create_task(terms, "bafyspec", "bafymodel0")
        return task_id

    def fund(self, token: Erc20, i: int, amount: int) -> None:
        """Mint `amount` to account i and approve the Marketplace to take it."""
        token.mint(self.address(i), amount)
        token.with_session(self.session(i)).approve(self.market.address, amount)

    def started(self, joiners: tuple[int, ...] | None = None, **overrides: Any) -> int:
        """A task with every data owner joined, the bond posted and round 1 open (ETH)."""
        task_id = self.create(**overrides)
        terms = self.market.get_terms(task_id)
        for i in joiners or self.data_owners:
            self.as_(i).join(task_id, terms.stake)
        if terms.aggregator_bond:
            self.as_(self.aggregator).post_bond(task_id, terms.aggregator_bond)
        self.as_(self.owner).start_task(task_id)
        return task_id

    def submit(
        self, task_id: int, round_: int, i: int, point: tuple[int, int] = G1, poseidon: int | None = None
    ) -> None:
        poseidon = 1000 * round_ + i if poseidon is None else poseidon
        self.as_(i).submit_update(task_id, round_, f"bafyu{i}r{round_}", bytes([i]) * 32, point, poseidon)

    def report(
        self,
        task_id: int,
        round_: int,
        contributions: tuple[int, ...],
        weights: tuple[int, ...] | None = None,
        removals: int = 0,
        model_cid: str | None = None,
    ) -> RoundReport:
        """A report that matches the round's submissions and satisfies the test verifier."""
        n = len(self.market.get_participants(task_id))
        subs = self.market.submissions(task_id, round_)
        if weights is None:
            weights = tuple(1 if i in subs and not (removals >> i) & 1 else 0 for i in range(n))
        return RoundReport(
            model_cid=model_cid or f"bafymodel{round_}",
            commitments=tuple(subs[i].commitment if i in subs else ZERO_POINT for i in range(n)),
            poseidons=tuple(subs[i].poseidon if i in subs else 0 for i in range(n)),
            weights=weights,
            reputations=tuple(500_000 for _ in range(n)),
            contributions=contributions,
            removals=removals,
            model_commitment=G1,
            proof=verifier_proof(weights),
        )

    def finalize(self, task_id: int, round_: int, contributions: tuple[int, ...], **kwargs: Any) -> RoundReport:
        report = self.report(task_id, round_, contributions, **kwargs)
        self.as_(self.aggregator).finalize_round(task_id, round_, report)
        return report
