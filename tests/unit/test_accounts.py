"""Key files: encrypted at rest, opened only with the right password, never overwritten."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account

from client.accounts import (
    KeystoreError,
    create_x25519_key,
    find_account,
    import_account,
    list_accounts,
    load_account,
    load_x25519_key,
)
from marketplace.updates import key_from_hex, open_sealed, seal

KEY = "0x" + "11" * 32


def test_import_then_load_round_trips_and_hides_the_key(tmp_path: Path) -> None:
    stored = import_account(tmp_path, KEY, "correct horse")
    assert stored.address == Account.from_key(KEY).address
    text = stored.path.read_text()
    assert "11" * 32 not in text and json.loads(text)["crypto"]["kdf"] == "scrypt"
    assert stat.S_IMODE(stored.path.stat().st_mode) == 0o600
    assert load_account(find_account(tmp_path, stored.address), "correct horse").key.hex() == KEY[2:]
    assert [a.address.lower() for a in list_accounts(tmp_path)] == [stored.address.lower()]


def test_wrong_password_empty_password_and_overwrite_are_refused(tmp_path: Path) -> None:
    stored = import_account(tmp_path, KEY, "pw")
    with pytest.raises(KeystoreError, match="wrong password"):
        load_account(stored.path, "not it")
    with pytest.raises(KeystoreError, match="already exists"):
        import_account(tmp_path, KEY, "pw")
    with pytest.raises(KeystoreError, match="empty password"):
        import_account(tmp_path / "other", KEY, "")
    with pytest.raises(KeystoreError, match="not a valid"):
        import_account(tmp_path / "other", "0x1234", "pw")
    with pytest.raises(KeystoreError, match="no key"):
        find_account(tmp_path, "0x" + "22" * 20)


def test_x25519_key_opens_sealed_updates(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.x25519.json"
    public_hex = create_x25519_key(path, "pw")
    private = load_x25519_key(path, "pw")
    assert open_sealed(seal(b"update", key_from_hex(public_hex)), private) == b"update"
    with pytest.raises(KeystoreError, match="wrong password"):
        load_x25519_key(path, "nope")
    assert private.hex() not in path.read_text()
