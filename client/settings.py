"""Where the CLI's settings come from: flag, then environment variable, then config file, then default."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from marketplace.errors import FedmarketError

ENV_PREFIX = "FEDMARKET_"
CONFIG_ENV = "FEDMARKET_CONFIG"


class SettingsError(FedmarketError):
    """The config file is unreadable or holds an unknown or mistyped setting."""


def default_home() -> Path:
    return Path(os.environ.get("FEDMARKET_HOME", Path.home() / ".fedmarket"))


@dataclass(frozen=True)
class Settings:
    """Connection and identity settings shared by every command."""

    rpc_url: str = "http://127.0.0.1:8545"
    ipfs_api: str = "http://127.0.0.1:5001"
    chain_id: int | None = None
    marketplace: str | None = None
    account: str | None = None
    keystore: Path = field(default_factory=lambda: default_home() / "keystore")
    gas_limit: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @staticmethod
    def names() -> list[str]:
        return [f.name for f in fields(Settings) if f.name != "sources"]


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in ("chain_id", "gas_limit"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SettingsError(f"setting {name} must be an integer, got {value!r}") from None
    if name == "keystore":
        return Path(value).expanduser()
    return str(value)


def config_file_path(path: Path | None) -> Path:
    """The config file in use: --config, else FEDMARKET_CONFIG, else ~/.fedmarket/config.toml."""
    return path or Path(os.environ.get(CONFIG_ENV, default_home() / "config.toml"))


def read_config_file(path: Path | None) -> dict[str, Any]:
    """The `[fedmarket]` table of a TOML config file; a missing default file is fine, a missing named one is not."""
    named = path is not None or CONFIG_ENV in os.environ
    path = config_file_path(path)
    if not path.exists():
        if named:
            raise SettingsError(f"config file {path} does not exist")
        return {}
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from exc
    table = document.get("fedmarket", {})
    unknown = sorted(set(table) - set(Settings.names()))
    if unknown:
        raise SettingsError(f"unknown setting(s) in {path}: {', '.join(unknown)}", hint=f"known: {Settings.names()}")
    return {k.replace("-", "_"): v for k, v in table.items()}


def resolve_settings(
    flags: Mapping[str, Any], config_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Merge the four sources; `sources` records where each value came from (for `config show`)."""
    environ = os.environ if environ is None else environ
    from_file = read_config_file(config_path)
    file_source = f"config file {config_file_path(config_path)}"
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in Settings.names():
        env_name = ENV_PREFIX + name.upper()
        if flags.get(name) is not None:
            values[name], sources[name] = _coerce(name, flags[name]), "flag"
        elif environ.get(env_name):
            values[name], sources[name] = _coerce(name, environ[env_name]), f"env {env_name}"
        elif name in from_file:
            values[name], sources[name] = _coerce(name, from_file[name]), file_source
        else:
            sources[name] = "default"
    return Settings(**values, sources=sources)
