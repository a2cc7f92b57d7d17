"""A thin typed wrapper for ERC-20 tokens that pay for tasks (approve before createTask, join, postBond)."""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.contract import Contract

from marketplace.chain.artifacts import load_artifact
from marketplace.chain.session import ChainSession, TxResult

# The standard ERC-20 surface; the test tokens' artifacts add `mint`.
_ERC20_ABI = load_artifact("TestToken")["abi"]


class Erc20:
    """One token contract, used through one signing session."""

    def __init__(self, session: ChainSession, address: str, abi: list[dict[str, Any]] | None = None) -> None:
        self.session = session
        self.address = Web3.to_checksum_address(address)
        self.contract: Contract = session.w3.eth.contract(address=self.address, abi=abi or _ERC20_ABI)

    @classmethod
    def deploy(cls, session: ChainSession, artifact: str = "TestToken") -> Erc20:
        """Deploy one of the project's test tokens (TestToken, FalseReturnToken, FeeOnTransferToken)."""
        data = load_artifact(artifact)
        address, _ = session.deploy(data["abi"], data["bytecode"])
        return cls(session, address, data["abi"])

    def with_session(self, session: ChainSession) -> Erc20:
        return Erc20(session, self.address, self.contract.abi)

    def approve(self, spender: str, amount: int) -> TxResult:
        return self.session.transact(self.contract.functions.approve(Web3.to_checksum_address(spender), amount))

    def transfer(self, to: str, amount: int) -> TxResult:
        return self.session.transact(self.contract.functions.transfer(Web3.to_checksum_address(to), amount))

    def mint(self, to: str, amount: int) -> TxResult:
        return self.session.transact(self.contract.functions.mint(Web3.to_checksum_address(to), amount))

    def balance_of(self, account: str) -> int:
        return int(self.contract.functions.balanceOf(Web3.to_checksum_address(account)).call())
