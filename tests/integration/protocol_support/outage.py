"""Services that fail: an IPFS node that hangs (it accepts connections on loopback and never answers, as a stuck
node does) or garbles its answers, a chain connection that can be cut and restored, and a chain that mines only
when told."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import URI
from web3 import Web3
from web3.types import RPCEndpoint, RPCResponse

from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.chain.session import ChainRpcProvider, ChainSession
from marketplace.ipfs import IpfsClient
from marketplace.net import free_loopback_port


@contextmanager
def garbling_node() -> Iterator[IpfsClient]:
    """A client of a broken node on loopback: it answers block/stat like a node holding the CID, and every other
    command with a line of text that is not the JSON the RPC API speaks."""

    class Garbling(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b'{"Key": "k", "Size": 1}\n' if self.path.startswith("/api/v0/block/stat") else b"<html>oops\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = IpfsClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=5.0, lookup_timeout=0.5)
    try:
        yield client
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def silent_node() -> Iterator[IpfsClient]:
    """A client of such a node, with short timeouts (0.5 s of silence, 0.1 s lookups) so tests see it fail fast."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        client = IpfsClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5, lookup_timeout=0.1)
        try:
            yield client
        finally:
            client.close()


class FlakyChain(ChainRpcProvider):
    """A real chain's RPC endpoint that can go away: `cut` points the connection at a loopback port where nothing
    listens (refused connections), or with `silent` at one that accepts and never answers (0.5 s timeout), as an
    RPC node that stopped or hangs; `restore` brings the chain back. `cut_after` names a method whose first
    successful call cuts the link, e.g. a transaction the node received whose receipt never comes back."""

    def __init__(self, rpc_url: str, cut_after: str | None = None) -> None:
        super().__init__(rpc_url, request_kwargs={"timeout": 30.0})
        self.live = rpc_url
        self.cut_after = cut_after
        self._silent: socket.socket | None = None

    def cut(self, silent: bool = False) -> None:
        if silent:
            self._silent = socket.create_server(("127.0.0.1", 0))
            port = self._silent.getsockname()[1]
        else:
            port = free_loopback_port()
        self.endpoint_uri = URI(f"http://127.0.0.1:{port}")
        self._request_kwargs = {"timeout": 0.5}

    def restore(self, cut_after: str | None = None) -> None:
        self.endpoint_uri, self._request_kwargs, self.cut_after = URI(self.live), {"timeout": 30.0}, cut_after
        if self._silent is not None:
            self._silent.close()
            self._silent = None

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        response = super().make_request(method, params)
        if method == self.cut_after:
            self.cut_after = None
            self.cut()
        return response


def flaky_contract(
    rpc_url: str, account: LocalAccount, address: str, cut_after: str | None = None
) -> MarketplaceContract:
    """`address`'s Marketplace signing as `account` over its own FlakyChain connection (the tests' shared one
    stays up)."""
    return MarketplaceContract(ChainSession(Web3(FlakyChain(rpc_url, cut_after)), account), address)


@contextmanager
def mining_on_demand(provider: Any) -> Iterator[Callable[[], int]]:
    """Anvil (through `provider`) keeps transactions pending until `mine_pending`, as a chain with block times
    does between blocks; yields the count of pending transactions. Automine is back on afterwards."""
    provider.make_request("evm_setAutomine", [False])
    try:
        yield lambda: int(provider.make_request("txpool_status", [])["result"]["pending"], 16)
    finally:
        provider.make_request("evm_setAutomine", [True])


def mine_pending(provider: Any) -> None:
    """Mine every pending transaction in one block (in nonce order) and mine on each transaction again."""
    provider.make_request("evm_setAutomine", [True])
    provider.make_request("evm_mine", [])


def link_of(contract: MarketplaceContract) -> FlakyChain:
    provider = contract.session.w3.provider
    assert isinstance(provider, FlakyChain)
    return provider
