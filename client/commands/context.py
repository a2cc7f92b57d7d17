"""What every command shares: resolved settings, output mode, the signing account and connections."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from web3 import Web3

from client.accounts import PASSWORD_ENV, find_account, load_account
from client.commands.hints import explain
from client.settings import Settings
from marketplace.chain.anvil import DEV_CHAIN_ID, dev_accounts
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.chain.session import ChainSession, connect
from marketplace.errors import FedmarketError
from marketplace.ipfs import IpfsClient
from marketplace.task_files import TaskFiles
from marketplace.text import DUST_WEI

console = Console()
err_console = Console(stderr=True)
GIVE_UP_HELP = ("Stop (exit status 2) once the chain or the IPFS node has not answered for this many seconds in a "
                "row (default: wait for it, however long).")  # fmt: skip
P = ParamSpec("P")
R = TypeVar("R")


class State:
    """What the global options resolved to, handed to every command through `ctx.obj`."""

    def __init__(self, settings: Settings, as_json: bool, dev_account: int | None = None) -> None:
        self.settings = settings
        self.as_json = as_json
        self.dev_account = dev_account
        self._w3: Web3 | None = None
        self._files: TaskFiles | None = None

    def emit(self, data: Any, human: Any) -> None:
        """Print `data` as JSON with --json, else the human rendering (a string or a rich renderable)."""
        if self.as_json:
            typer.echo(json.dumps(data, default=str))
        else:
            console.print(human)

    def note(self, text: str) -> None:
        """Progress chatter: shown to people, kept out of --json output."""
        if not self.as_json:
            console.print(text)

    @contextlib.contextmanager
    def working(self, text: str) -> Iterator[None]:
        """A spinner with the time so far while long work runs (gone when it ends; none with --json)."""
        if self.as_json:
            yield
            return
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            progress.add_task(text, total=None)
            yield

    # --- connections ----------------------------------------------------------------------------

    def w3(self) -> Web3:
        if self._w3 is None:
            self._w3 = connect(self.settings.rpc_url, expected_chain_id=self.settings.chain_id)
        return self._w3

    def signer(self) -> LocalAccount:
        """The signing key: a dev account (local chains only), else --account's keystore file and password."""
        if self.dev_account is not None:
            if self.w3().eth.chain_id != DEV_CHAIN_ID:
                raise FedmarketError(
                    "--dev-account keys are public and only for the local dev chain (chain id 31337)",
                    hint="use --account with a keystore file on any other chain",
                )
            return dev_accounts(self.dev_account + 1)[self.dev_account]
        if not self.settings.account:
            raise FedmarketError(
                "no account to sign with",
                hint="pass --account ADDRESS (see `fedmarket account list`), or --dev-account N on a local dev chain",
            )
        path = find_account(self.settings.keystore, self.settings.account)
        return load_account(path, password(confirm=False))

    def session(self) -> ChainSession:
        return ChainSession(self.w3(), self.signer(), gas_limit=self.settings.gas_limit)

    def read_session(self) -> ChainSession:
        """A session for views only: a throwaway key, so reading never needs a password."""
        return ChainSession(self.w3(), Account.create())

    def marketplace(self, signed: bool = True) -> MarketplaceContract:
        address = self.settings.marketplace
        if not address:
            raise FedmarketError(
                "no Marketplace contract address",
                hint="pass --marketplace ADDRESS, set FEDMARKET_MARKETPLACE, or start one with `fedmarket dev up`",
            )
        return MarketplaceContract(self.session() if signed else self.read_session(), address)

    def files(self) -> TaskFiles:
        if self._files is None:
            self._files = TaskFiles(IpfsClient(self.settings.ipfs_api))
        return self._files


def password(confirm: bool) -> str:
    """The password from FEDMARKET_PASSWORD, else a hidden prompt."""
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))


def state_of(ctx: typer.Context) -> State:
    state = ctx.obj
    assert isinstance(state, State), "global options were not parsed"
    return state


def shown(value: object) -> str:
    """Text from outside (an error, a path, a log entry) printed as it is: rich reads "[...]" as a style tag,
    so "[Errno 111]" vanished and a "[/ip4/...]" raised a markup error instead of printing."""
    return escape(str(value))


def fail(message: str, as_json: bool = False, code: int = 1) -> typer.Exit:
    """Print one error line (JSON on stdout with --json) and return the exit to raise."""
    if as_json:
        typer.echo(json.dumps({"error": message}))
    else:
        err_console.print(f"[red]error:[/red] {shown(message)}")
    return typer.Exit(code)


def _as_json(kwargs: dict[str, Any]) -> bool:
    ctx = kwargs.get("ctx")
    return isinstance(ctx, typer.Context) and isinstance(ctx.obj, State) and ctx.obj.as_json


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn fedmarket errors into one line with the next step and exit status 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except FedmarketError as exc:
            raise fail(explain(exc), _as_json(kwargs)) from None
        except OSError as exc:  # a file named on the command line (or its folder) is missing or not ours
            text = f"cannot use {exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc)
            raise fail(text, _as_json(kwargs)) from None

    return wrapper


def eth(wei: int) -> str:
    return f"{wei / 10**18:.6f}"


def paid_text(wei: int, token: str) -> str:
    """A payment as people read it: six decimals and its unit, and dust that six decimals would print as
    0.000000 (an owner's refund of a payout split's rounding) in wei or base units."""
    native = int(token, 16) == 0
    if 0 < wei < DUST_WEI:
        return f"{wei} wei" if native else f"{wei} base units of token {token}"
    return f"{eth(wei)} ETH" if native else f"{eth(wei)} of token {token}"
