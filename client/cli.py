"""The `fedmarket` command."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from client.accounts import create_account, create_x25519_key, import_account, list_accounts
from client.commands import audit as audit_commands
from client.commands import participate
from client.commands.aggregate import aggregate_app
from client.commands.context import State, console, password, shown
from client.commands.demo import register as register_demo
from client.commands.dev import dev_app
from client.commands.dispute import dispute_app
from client.commands.serve import register as register_serve
from client.commands.task import task_app
from client.settings import Settings, resolve_settings
from marketplace.errors import FedmarketError

app = typer.Typer(
    help="fedmarket: a blockchain-anchored federated-learning marketplace.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
account_app = typer.Typer(help="Ethereum accounts and X25519 keys, stored encrypted.", no_args_is_help=True)
config_app = typer.Typer(help="Where settings come from.", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(config_app, name="config")
app.add_typer(task_app, name="task")
app.add_typer(aggregate_app, name="aggregate")
app.add_typer(dev_app, name="dev")
app.add_typer(dispute_app, name="dispute")
participate.register(app)
audit_commands.register(app)
register_demo(app)
register_serve(app)


@app.callback()
def main(
    ctx: typer.Context,
    rpc_url: str | None = typer.Option(None, help="JSON-RPC URL of the chain (env FEDMARKET_RPC_URL)."),
    ipfs_api: str | None = typer.Option(None, help="Kubo-compatible IPFS RPC API URL (env FEDMARKET_IPFS_API)."),
    chain_id: int | None = typer.Option(None, help="Refuse to talk to a chain with another id."),
    marketplace: str | None = typer.Option(None, help="Marketplace contract address."),
    account: str | None = typer.Option(None, help="Address (or keystore file) to sign with."),
    keystore: Path | None = typer.Option(None, help="Folder of key files (default ~/.fedmarket/keystore)."),
    gas_limit: int | None = typer.Option(None, "--gas", help="Gas limit for every transaction (default: estimate)."),
    config: Path | None = typer.Option(None, help="TOML config file (default ~/.fedmarket/config.toml)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    dev_account: int | None = typer.Option(
        None, min=0, help="DEV ONLY: sign with the local dev chain's well-known account N (public keys)."
    ),
) -> None:
    """Publish training tasks, train on private data for rewards, aggregate with proofs, audit everything.

    Settings are taken from a flag, else an environment variable FEDMARKET_<NAME>, else the
    [fedmarket] table of the config file, else the default.
    """
    flags = {
        "rpc_url": rpc_url, "ipfs_api": ipfs_api, "chain_id": chain_id, "marketplace": marketplace,
        "account": account, "keystore": keystore, "gas_limit": gas_limit,
    }  # fmt: skip
    try:
        settings = resolve_settings(flags, config)
    except FedmarketError as exc:
        console.print(f"[red]error:[/red] {shown(exc)}")
        raise typer.Exit(1) from None
    ctx.obj = State(settings, as_json, dev_account)


def _fail(exc: FedmarketError) -> typer.Exit:
    console.print(f"[red]error:[/red] {shown(exc)}")
    return typer.Exit(1)


@account_app.command("new")
def account_new(ctx: typer.Context) -> None:
    """Create a new Ethereum account, stored as an encrypted keystore v3 file.

    Example: FEDMARKET_PASSWORD=... fedmarket account new
    """
    state: State = ctx.obj
    try:
        stored = create_account(state.settings.keystore, password(confirm=True))
    except FedmarketError as exc:
        raise _fail(exc) from None
    created = f"created {stored.address} in {shown(stored.path)}"
    state.emit({"address": stored.address, "path": str(stored.path)}, created)


@account_app.command("import")
def account_import(ctx: typer.Context) -> None:
    """Import a private key (read from a hidden prompt, never echoed) into an encrypted key file.

    Example: fedmarket account import
    """
    state: State = ctx.obj
    private_key = str(typer.prompt("Private key (hex)", hide_input=True))
    try:
        stored = import_account(state.settings.keystore, private_key, password(confirm=True))
    except FedmarketError as exc:
        raise _fail(exc) from None
    state.emit({"address": stored.address, "path": str(stored.path)}, f"imported {stored.address}")


@account_app.command("list")
def account_list(ctx: typer.Context) -> None:
    """List the accounts in the keystore folder.

    Example: fedmarket account list --json
    """
    state: State = ctx.obj
    accounts = list_accounts(state.settings.keystore)
    if state.as_json:
        typer.echo(json.dumps([{"address": a.address, "path": str(a.path)} for a in accounts]))
        return
    table = Table("address", "key file")
    for stored in accounts:
        table.add_row(stored.address, shown(stored.path))
    console.print(table if accounts else f"no accounts in {shown(state.settings.keystore)}")


@account_app.command("x25519-new")
def account_x25519_new(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Where to write the encrypted key file."),
) -> None:
    """Create the X25519 key an aggregator receives sealed updates with; prints only the public key.

    Example: fedmarket account x25519-new ~/.fedmarket/aggregator.x25519.json
    """
    state: State = ctx.obj
    try:
        public_hex = create_x25519_key(path, password(confirm=True))
    except FedmarketError as exc:
        raise _fail(exc) from None
    state.emit({"public_key": public_hex, "path": str(path)}, f"public key {public_hex} (private key in {shown(path)})")


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Show every setting and where its value came from.

    Example: FEDMARKET_RPC_URL=http://127.0.0.1:8545 fedmarket config show
    """
    state: State = ctx.obj
    settings = state.settings
    rows = {name: (getattr(settings, name), settings.sources.get(name, "default")) for name in Settings.names()}
    if state.as_json:
        typer.echo(json.dumps({k: {"value": v, "source": s} for k, (v, s) in rows.items()}, default=str))
        return
    table = Table("setting", "value", "from")
    for name, (value, source) in rows.items():
        table.add_row(name, "" if value is None else shown(value), shown(source))
    console.print(table)


if __name__ == "__main__":
    app()
