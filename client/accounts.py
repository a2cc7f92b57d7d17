"""Keys on disk: Ethereum accounts as keystore v3 files, X25519 keys for receiving sealed updates.

Private keys are only ever written encrypted with the user's password and never printed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from marketplace.errors import FedmarketError
from marketplace.updates import generate_keypair, key_to_hex, public_key_from_private

PASSWORD_ENV = "FEDMARKET_PASSWORD"
X25519_FORMAT = "fedmarket-x25519-v1"


class KeystoreError(FedmarketError):
    """A key file is missing, malformed, or the password does not open it."""


@dataclass(frozen=True)
class StoredAccount:
    address: str
    path: Path


def default_keystore_dir() -> Path:
    return Path(os.environ.get("FEDMARKET_HOME", Path.home() / ".fedmarket")) / "keystore"


def _write_private(path: Path, document: dict[str, object]) -> None:
    """Write a key file readable by its owner only; never overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(f"{path} already exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle)


def _account_path(keystore: Path, address: str) -> Path:
    return keystore / f"{address.lower().removeprefix('0x')}.json"


def create_account(keystore: Path, password: str) -> StoredAccount:
    """Generate a new Ethereum key and store it encrypted (keystore v3, scrypt)."""
    return import_account(keystore, Account.create().key.hex(), password)


def import_account(keystore: Path, private_key: str, password: str) -> StoredAccount:
    """Store an existing private key (hex) encrypted; the key is validated first."""
    if not password:
        raise KeystoreError("an empty password would leave the key unprotected")
    try:
        account = Account.from_key(private_key.strip())
    except (ValueError, TypeError) as exc:
        raise KeystoreError("that is not a valid secp256k1 private key (64 hex digits)") from exc
    path = _account_path(keystore, account.address)
    _write_private(path, Account.encrypt(account.key, password))
    return StoredAccount(account.address, path)


def list_accounts(keystore: Path) -> list[StoredAccount]:
    found = []
    for path in sorted(keystore.glob("*.json")) if keystore.exists() else []:
        try:
            address = json.loads(path.read_text())["address"]
        except (OSError, ValueError, KeyError):
            continue
        found.append(StoredAccount(to_checksum_address("0x" + address.lower().removeprefix("0x")), path))
    return found


def find_account(keystore: Path, address_or_path: str) -> Path:
    """A keystore file by address, or by path."""
    candidate = Path(address_or_path)
    if candidate.suffix == ".json" and candidate.exists():
        return candidate
    path = _account_path(keystore, address_or_path)
    if not path.exists():
        raise KeystoreError(f"no key for {address_or_path} in {keystore}", hint="see `fedmarket account list`")
    return path


def load_account(path: Path, password: str) -> LocalAccount:
    """Decrypt a keystore v3 file."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"cannot read key file {path}: {exc}") from exc
    try:
        return Account.from_key(Account.decrypt(document, password))
    except ValueError as exc:
        raise KeystoreError(f"wrong password for {path}") from exc


def create_x25519_key(path: Path, password: str) -> str:
    """Generate an X25519 key pair, store the private half sealed with the password; returns the public key (hex)."""
    if not password:
        raise KeystoreError("an empty password would leave the key unprotected")
    private, public = generate_keypair()
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(password, salt))
    _write_private(
        path,
        {
            "format": X25519_FORMAT,
            "public_key": key_to_hex(public),
            "salt": salt.hex(),
            "ciphertext": box.encrypt(private).hex(),
        },
    )
    return key_to_hex(public)


def load_x25519_key(path: Path, password: str) -> bytes:
    """The private X25519 key stored at `path`."""
    try:
        document = json.loads(path.read_text())
        if document.get("format") != X25519_FORMAT:
            raise KeystoreError(f"{path} is not a fedmarket X25519 key file")
        box = nacl.secret.SecretBox(_derive(password, bytes.fromhex(document["salt"])))
        private = box.decrypt(bytes.fromhex(document["ciphertext"]))
    except nacl.exceptions.CryptoError as exc:
        raise KeystoreError(f"wrong password for {path}") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise KeystoreError(f"cannot read X25519 key file {path}: {exc}") from exc
    if key_to_hex(public_key_from_private(private)) != document["public_key"]:
        raise KeystoreError(f"{path} is corrupt: its public key does not match the private key")
    return private


def _derive(password: str, salt: bytes) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        password.encode(),
        salt,
        opslimit=nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        memlimit=nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    )
