"""Settings precedence: flag over environment over config file over default."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.settings import Settings, SettingsError, resolve_settings


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return path


def test_precedence(tmp_path: Path) -> None:
    body = '[fedmarket]\nrpc_url = "http://file:1"\nipfs_api = "http://file:2"\nchain_id = 5\n'
    config = write_config(tmp_path, body)
    env = {"FEDMARKET_IPFS_API": "http://env:2", "FEDMARKET_CHAIN_ID": "7"}
    settings = resolve_settings({"chain_id": 9}, config, env)
    assert (settings.rpc_url, settings.ipfs_api, settings.chain_id) == ("http://file:1", "http://env:2", 9)
    assert settings.sources["rpc_url"] == f"config file {config}"  # names which one
    assert settings.sources["ipfs_api"] == "env FEDMARKET_IPFS_API"
    assert settings.sources["chain_id"] == "flag"
    assert settings.sources["marketplace"] == "default" and settings.marketplace is None


def test_defaults_without_any_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDMARKET_HOME", str(tmp_path))
    monkeypatch.delenv("FEDMARKET_CONFIG", raising=False)
    settings = resolve_settings({}, None, {})
    assert settings.rpc_url == Settings().rpc_url and settings.keystore == tmp_path / "keystore"


def test_bad_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown setting"):
        resolve_settings({}, write_config(tmp_path, '[fedmarket]\nrpc = "x"\n'), {})
    with pytest.raises(SettingsError, match="must be an integer"):
        resolve_settings({}, write_config(tmp_path, '[fedmarket]\nchain_id = "x"\n'), {})
    with pytest.raises(SettingsError, match="cannot read"):
        resolve_settings({}, write_config(tmp_path, "[fedmarket\n"), {})
    with pytest.raises(SettingsError, match="does not exist"):
        resolve_settings({}, tmp_path / "missing.toml", {})
