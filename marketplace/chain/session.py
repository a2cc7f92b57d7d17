"""A connection to an EVM chain plus a signing account: sends transactions, checks receipts, decodes reverts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.types import RPCEndpoint, RPCResponse, TxReceipt

from marketplace.chain.revert import decode_revert
from marketplace.errors import ChainError, ContractRevert, ServiceUnavailableError

DEFAULT_TIMEOUT_S = 120.0
CHECK_BEFORE_RESENDING = "see whether the chain has it (its receipt, or the task's state) before sending it again"


class ChainUnavailableError(ChainError, ServiceUnavailableError):
    """The chain's RPC endpoint failed us (refused the connection, timed out, broke off), as opposed to answering
    or reverting: nothing is known about the call's effect, so long-running roles wait and try again."""


class ChainRpcProvider(HTTPProvider):
    """web3's HTTP provider (with its short retries of a failed read), whose transport failures surface as
    ChainUnavailableError naming the endpoint and the call, instead of a `requests` exception from deep in web3."""

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return super().make_request(method, params)
        except (requests.exceptions.RequestException, OSError) as exc:
            raise ChainUnavailableError(
                f"the chain at {self.endpoint_uri} did not answer {method} ({exc.__class__.__name__})",
                hint="check that the chain node is running and --rpc-url points at it",
            ) from exc


def connect(rpc_url: str, expected_chain_id: int | None = None, timeout: float = 30.0) -> Web3:
    """Open an HTTP connection and check the chain answers (and is the one expected)."""
    w3 = Web3(ChainRpcProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        chain_id = w3.eth.chain_id
    except ChainUnavailableError as exc:
        raise ChainUnavailableError(
            f"cannot reach the chain at {rpc_url}: {exc.__cause__.__class__.__name__}",
            hint="check --rpc-url, or run `fedmarket demo` to start a local chain",
        ) from exc
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainError(
            f"the chain at {rpc_url} has chain id {chain_id}, expected {expected_chain_id}",
            hint="pass the right --rpc-url or --chain-id",
        )
    return w3


def revert_error(exc: ContractLogicError, abi: list[dict[str, Any]]) -> ContractRevert:
    """The decoded custom error behind a web3 revert exception."""
    data = exc.data
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return decode_revert(bytes.fromhex(data[2:]), abi)
    return ContractRevert("Error", {"reason": str(exc)}, f"contract reverted: {exc}")


@dataclass(frozen=True)
class TxResult:
    """What a mined transaction cost and emitted."""

    tx_hash: str
    block_number: int
    gas_used: int
    receipt: TxReceipt


class ChainSession:
    """Signs with a local key; every send is simulated first, so a revert surfaces as a decoded error."""

    def __init__(self, w3: Web3, account: LocalAccount, gas_limit: int | None = None) -> None:
        self.w3 = w3
        self.account = account
        self.gas_limit = gas_limit
        self.chain_id = w3.eth.chain_id

    @property
    def address(self) -> str:
        return str(self.account.address)

    def balance(self, address: str | None = None) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address or self.address)))

    def transact(self, call: ContractFunction, value: int = 0, gas: int | None = None) -> TxResult:
        """Simulate, sign, send and wait for `call`; raises ContractRevert with the decoded custom error."""
        abi = call.contract_abi
        tx_params: dict[str, Any] = {"from": self.address, "value": value, "chainId": self.chain_id}
        try:
            estimated = call.estimate_gas(tx_params)
        except ContractLogicError as exc:
            raise revert_error(exc, abi) from None
        gas_limit = gas or self.gas_limit or int(estimated * 1.25) + 10_000
        tx_params |= {"gas": gas_limit, "nonce": self.w3.eth.get_transaction_count(self.address, "pending")}
        tx_params |= self._fees()
        tx = call.build_transaction(tx_params)
        tx_hash, receipt = self._send_signed(self.account.sign_transaction(tx), call.fn_name)
        if receipt["status"] != 1:
            raise self._replay_failure(call, tx_params, receipt, abi)
        return TxResult(HexBytes(tx_hash).to_0x_hex(), receipt["blockNumber"], receipt["gasUsed"], receipt)

    def deploy(self, abi: list[dict[str, Any]], bytecode: str, *args: Any) -> tuple[str, TxResult]:
        """Deploy a contract; returns its address and the deployment's receipt."""
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        constructor = factory.constructor(*args)
        tx_params: dict[str, Any] = {"from": self.address, "chainId": self.chain_id}
        tx_params["gas"] = int(constructor.estimate_gas(tx_params) * 1.2) + 50_000
        tx_params |= {"nonce": self.w3.eth.get_transaction_count(self.address, "pending")} | self._fees()
        signed = self.account.sign_transaction(constructor.build_transaction(tx_params))
        tx_hash, receipt = self._send_signed(signed, "the deployment")
        if receipt["status"] != 1 or not receipt["contractAddress"]:
            raise ChainError(f"deployment failed in transaction {HexBytes(tx_hash).to_0x_hex()}")
        result = TxResult(HexBytes(tx_hash).to_0x_hex(), receipt["blockNumber"], receipt["gasUsed"], receipt)
        return str(receipt["contractAddress"]), result

    def _send_signed(self, signed: SignedTransaction, what: str) -> tuple[HexBytes, TxReceipt]:
        """Send and wait for the receipt. When the chain stops answering or mining on the way, the error names the
        transaction's hash: it may have been (or be about to be) mined, and sending the same call again could, for
        a call the contract does not refuse twice (publishing a task), do it twice."""
        tx_hash = HexBytes(signed.hash)
        sent = False
        try:
            self.w3.eth.send_raw_transaction(signed.raw_transaction)
            sent = True
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=DEFAULT_TIMEOUT_S, poll_latency=0.05)
        except ChainUnavailableError as exc:
            fate = "was sent" if sent else "may have reached the chain"
            raise ChainUnavailableError(f"{what}: transaction {tx_hash.to_0x_hex()} {fate}, but {exc.args[0]}",
                                        hint=CHECK_BEFORE_RESENDING) from exc  # fmt: skip
        except TimeExhausted as exc:
            raise ChainError(f"{what}: transaction {tx_hash.to_0x_hex()} was sent, but the chain did not mine it "
                             f"within {DEFAULT_TIMEOUT_S:.0f} s", hint=CHECK_BEFORE_RESENDING) from exc  # fmt: skip
        return tx_hash, receipt

    def _fees(self) -> dict[str, int]:
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        priority = 1_000_000_000 if base_fee else 0
        if not base_fee:
            return {"gasPrice": int(self.w3.eth.gas_price)}
        return {"maxFeePerGas": 2 * base_fee + priority, "maxPriorityFeePerGas": priority}

    def _replay_failure(
        self, call: ContractFunction, tx_params: dict[str, Any], receipt: TxReceipt, abi: list[dict[str, Any]]
    ) -> ChainError:
        """A mined transaction failed after a passing simulation: replay it at its block for the reason."""
        try:
            call.call({k: v for k, v in tx_params.items() if k in ("from", "value", "gas")}, receipt["blockNumber"])
        except ContractLogicError as exc:
            return revert_error(exc, abi)
        return ChainError(f"transaction {receipt['transactionHash'].hex()} failed (out of gas?)")
