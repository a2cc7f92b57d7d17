"""The deployed PedersenAggregationVerifier: deploy it, ask it about a round, measure its gas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from marketplace.chain.artifacts import load_artifact
from marketplace.chain.session import ChainSession, revert_error
from zk.curve import Point, to_words

ARTIFACT = "PedersenAggregationVerifier"
TX_BASE_GAS = 21_000


@dataclass(frozen=True)
class RoundCall:
    """verifyRound's answer and what a transaction calling it would cost."""

    valid: bool
    gas: int  # eth_estimateGas: 21k intrinsic + calldata + execution

    @property
    def execution_gas(self) -> int:
        return self.gas - TX_BASE_GAS


class PedersenVerifier:
    """One deployed verifier; calls are free `eth_call`s, reverts surface as ContractRevert."""

    def __init__(self, w3: Web3, address: str) -> None:
        artifact = load_artifact(ARTIFACT)
        self.address = Web3.to_checksum_address(address)
        self.contract: Contract = w3.eth.contract(address=self.address, abi=artifact["abi"])

    @classmethod
    def deploy(cls, session: ChainSession) -> tuple[PedersenVerifier, int]:
        """Deploy a fresh verifier; returns it and the deployment's gas."""
        artifact = load_artifact(ARTIFACT)
        address, receipt = session.deploy(artifact["abi"], artifact["bytecode"])
        return cls(session.w3, address), receipt.gas_used

    def _args(
        self, commitments: Sequence[Point], weights: Sequence[int], model: Point, proof: bytes
    ) -> tuple[list[list[int]], list[int], list[int], bytes]:
        return [to_words(c) for c in commitments], [int(w) for w in weights], to_words(model), bytes(proof)

    def verify_round(
        self, commitments: Sequence[Point], weights: Sequence[int], model: Point, proof: bytes = b""
    ) -> bool:
        """True iff model == Σ weights[i]·commitments[i]; raises ContractRevert on malformed input."""
        call = self.contract.functions.verifyRound(*self._args(commitments, weights, model, proof))
        try:
            return bool(call.call())
        except ContractLogicError as exc:
            raise revert_error(exc, self.contract.abi) from None

    def measure(
        self, commitments: Sequence[Point], weights: Sequence[int], model: Point, proof: bytes = b""
    ) -> RoundCall:
        """verify_round plus the gas a transaction making the same call uses (estimateGas)."""
        call = self.contract.functions.verifyRound(*self._args(commitments, weights, model, proof))
        try:
            valid = bool(call.call())
            gas = int(call.estimate_gas())
        except ContractLogicError as exc:
            raise revert_error(exc, self.contract.abi) from None
        return RoundCall(valid, gas)

    def aggregate_commitment(self, commitments: Sequence[Point], weights: Sequence[int]) -> Point:
        """Σ weights[i]·commitments[i] as the chain computes it."""
        call = self.contract.functions.aggregateCommitment(
            [to_words(c) for c in commitments], [int(w) for w in weights]
        )
        try:
            x, y = call.call()
        except ContractLogicError as exc:
            raise revert_error(exc, self.contract.abi) from None
        return (int(x), int(y))
