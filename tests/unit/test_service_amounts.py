"""How the dashboard writes amounts: ether for ETH, never a nonzero amount shown as 0."""

from __future__ import annotations

from marketplace.service.dashboard import _amount


def test_ether_amounts_and_dust() -> None:
    assert _amount(3 * 10**18) == "3 ETH" and _amount(10**17) == "0.1 ETH"
    assert _amount(10**18 - 1) == "0.999999 ETH"  # truncated, not rounded up to what was not paid
    assert _amount(3) == "3 wei" and _amount(0) == "0 ETH" and _amount(None) == "–"
    assert _amount(12_345, token="0x" + "11" * 20) == "12,345"  # a token's base units
