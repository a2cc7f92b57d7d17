"""`fedmarket dev up/down`: a local chain and IPFS node with a deployed Marketplace, for trying commands by hand.

`dev up` stays in the foreground (Ctrl-C or `fedmarket dev down` stops it) and writes a config file the other
commands read with `--config` or FEDMARKET_CONFIG. Dev accounts (`--dev-account N`) are public keys: local only.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import typer

from client.commands.context import reports_errors, state_of
from client.settings import default_home
from marketplace.chain.anvil import DEV_CHAIN_ID, LocalAnvil, dev_accounts
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.chain.session import ChainSession, connect
from marketplace.errors import FedmarketError
from marketplace.ipfs import LocalIpfsNode

dev_app = typer.Typer(help="A local dev chain + IPFS node with the Marketplace deployed (dev only).",
                      no_args_is_help=True)  # fmt: skip


def _pid_file() -> Path:
    return default_home() / "dev.pid"


def write_dev_config(path: Path, rpc_url: str, ipfs_api: str, marketplace: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# written by `fedmarket dev up`: a local dev chain; its accounts are public, never send real money\n"
        f'[fedmarket]\nrpc_url = "{rpc_url}"\nipfs_api = "{ipfs_api}"\nchain_id = {DEV_CHAIN_ID}\n'
        f'marketplace = "{marketplace}"\n'
    )


@dev_app.command("up")
@reports_errors
def up(
    ctx: typer.Context,
    config_out: Path | None = typer.Option(
        None, "--write-config", help="Config to write (default ~/.fedmarket/dev.toml)."
    ),
    accounts: int = typer.Option(20, min=2, help="Funded dev accounts."),
) -> None:
    """Start Anvil and an IPFS node, deploy the Marketplace, print the URLs; runs until Ctrl-C.

    Example: fedmarket dev up   (then, in another terminal: FEDMARKET_CONFIG=~/.fedmarket/dev.toml fedmarket task list)
    """
    state = state_of(ctx)
    config_path = config_out or default_home() / "dev.toml"
    pid_file = _pid_file()
    pid_file.parent.mkdir(parents=True, exist_ok=True)  # `dev down` finds this process here, config or not
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalAnvil(accounts=accounts) as chain, LocalIpfsNode() as ipfs:
        session = ChainSession(connect(chain.rpc_url, DEV_CHAIN_ID), dev_accounts(1)[0])
        contract, _ = MarketplaceContract.deploy(session)
        write_dev_config(config_path, chain.rpc_url, ipfs.api_url, contract.address)
        pid_file.write_text(str(os.getpid()))
        state.emit(
            {"rpc_url": chain.rpc_url, "ipfs_api": ipfs.api_url, "marketplace": contract.address,
             "chain_id": DEV_CHAIN_ID, "config": str(config_path), "pid": os.getpid()},
            f"chain {chain.rpc_url} (id {DEV_CHAIN_ID}), IPFS API {ipfs.api_url}, Marketplace {contract.address}\n"
            f"config written to {config_path}: export FEDMARKET_CONFIG={config_path}\n"
            "[yellow]dev accounts (--dev-account N) have public keys: local use only[/yellow]; Ctrl-C stops",
        )  # fmt: skip
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            pid_file.unlink(missing_ok=True)


@dev_app.command("down")
@reports_errors
def down(ctx: typer.Context) -> None:
    """Stop the dev services that `fedmarket dev up` started (by the process id it recorded).

    Example: fedmarket dev down
    """
    state = state_of(ctx)
    if not _pid_file().exists():
        raise FedmarketError("no `fedmarket dev up` is running", hint="start one with `fedmarket dev up`")
    pid = int(_pid_file().read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _pid_file().unlink(missing_ok=True)
        raise FedmarketError(f"process {pid} is gone; removed its stale record") from None
    state.emit({"stopped": pid}, f"asked process {pid} to stop the dev chain and IPFS node")
