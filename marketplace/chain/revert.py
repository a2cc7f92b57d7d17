"""Turns raw revert data into a named custom error with decoded arguments."""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from marketplace.errors import ContractRevert

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


def error_selectors(abi: list[dict[str, Any]]) -> dict[bytes, dict[str, Any]]:
    """Map each custom error's 4-byte selector to its ABI entry."""
    table = {}
    for entry in abi:
        if entry.get("type") == "error":
            signature = f"{entry['name']}({','.join(_abi_type(p) for p in entry['inputs'])})"
            table[function_signature_to_4byte_selector(signature)] = entry
    return table


def decode_revert(data: bytes, abi: list[dict[str, Any]]) -> ContractRevert:
    """Decode revert data against the contract's ABI; unknown data still yields a readable error."""
    selector, body = data[:4], data[4:]
    if selector == _ERROR_STRING:
        (reason,) = decode(["string"], body)
        return ContractRevert("Error", {"reason": reason}, f"contract reverted: {reason}")
    if selector == _PANIC:
        (code,) = decode(["uint256"], body)
        return ContractRevert("Panic", {"code": hex(code)}, f"contract panicked with code {code:#x}")
    entry = error_selectors(abi).get(selector)
    if entry is None:
        return ContractRevert("Unknown", {"data": "0x" + data.hex()}, f"contract reverted with data 0x{data.hex()}")
    values = decode([_abi_type(p) for p in entry["inputs"]], body)
    inputs = entry["inputs"]
    args = {p["name"] or f"arg{i}": _plain(v, p["type"]) for i, (p, v) in enumerate(zip(inputs, values, strict=True))}
    return ContractRevert(entry["name"], args)


def _plain(value: Any, abi_type: str) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value
