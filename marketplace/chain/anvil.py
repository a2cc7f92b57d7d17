"""Starts and stops a local Anvil chain on a free loopback port, for the demo and the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from marketplace.errors import ToolchainError
from marketplace.net import free_loopback_port
from marketplace.paths import ANVIL_BIN

# Anvil's well-known development mnemonic: its accounts are funded at genesis, never use them elsewhere.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 31337

Account.enable_unaudited_hdwallet_features()


def dev_accounts(count: int, mnemonic: str = DEV_MNEMONIC) -> list[LocalAccount]:
    """The first `count` accounts of a mnemonic (BIP-44 path m/44'/60'/0'/0/i)."""
    return [Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)]


class LocalAnvil:
    """An Anvil process bound to 127.0.0.1; `rpc_url` is ready once `start()` returns."""

    def __init__(self, accounts: int = 20, balance_eth: int = 10_000, block_time: float | None = None) -> None:
        self.accounts = accounts
        self.balance_eth = balance_eth
        self.block_time = block_time
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self._log_dir is not None
        return Path(self._log_dir.name) / "anvil.log"

    def start(self, timeout: float = 20.0) -> LocalAnvil:
        if not ANVIL_BIN.exists():
            raise ToolchainError(f"Anvil not found at {ANVIL_BIN}", hint="run `make setup` to install the Node tools")
        self.port = free_loopback_port()
        self._log_dir = tempfile.TemporaryDirectory(prefix="fedmarket-anvil-")
        command = [
            str(ANVIL_BIN),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(DEV_CHAIN_ID),
            "--accounts", str(self.accounts),
            "--balance", str(self.balance_eth),
            "--mnemonic", DEV_MNEMONIC,
        ]  # fmt: skip
        if self.block_time:
            command += ["--block-time", str(self.block_time)]
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy()
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ToolchainError(f"Anvil exited with code {self._process.returncode}: {self._log_tail()}")
            try:
                if httpx.post(self.rpc_url, json=request, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise ToolchainError(f"Anvil did not answer on {self.rpc_url} within {timeout:.0f} s")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """End the Anvil process this object started (by its PID) and remove its log folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None

    def __enter__(self) -> LocalAnvil:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def advance_time(w3: Web3, seconds: int) -> None:
    """Move a development chain's clock forward and mine a block (Anvil/Hardhat RPC)."""
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
