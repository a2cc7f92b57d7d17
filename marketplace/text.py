"""How the CLI and the dashboard write block times, periods and on-chain rule values for people."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

PPM = 1_000_000  # the contract's unit for α and β (Rules.alphaPpm, betaPpm) and for shares
DUST_WEI = 10**12  # an amount under 10^-6 ether reads 0 at six decimals: such dust is written in wei


def utc_text(timestamp: int) -> str:
    """A block timestamp (Unix seconds) as a UTC date and time."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_text(seconds: int) -> str:
    """Seconds as a spec file writes them ("1h", "7d", "1h 30m"); 0 stays "0s"."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


def rules_text(rules: dict[str, Any], scale_bits: int | None) -> str:
    """The contract's Rules record as the spec wrote it: Γ in model units (when the task's fixed-point scale is
    known), α and β as fractions, the slash as a percentage."""
    clip = int(rules["clip_norm"])
    gamma = f"Γ {clip / 2**scale_bits:g}" if scale_bits is not None else f"Γ {clip} (fixed point)"
    return (f"{gamma}, α {int(rules['alpha_ppm']) / PPM:g}, β {int(rules['beta_ppm']) / PPM:g}, "
            f"slash {int(rules['slash_bps']) / 100:g}%, payout {rules['payout_policy']}")  # fmt: skip


def protocol_text(protocol: dict[str, Any] | None) -> str:
    """A published spec's [protocol] table in one line: the proof, the rule version and the filters it runs, and
    when RFFL may remove owners, so a reader of the dashboard sees which rules a task's rounds follow."""
    if not protocol:
        return "none: FedAvg rounds without commitments, filters or reputation"
    from marketplace.task_spec import published_protocol

    protocol = published_protocol(protocol)
    version = str(protocol.get("rule_version") or "")
    parts = [str(protocol.get("proof", "pedersen")) + (f" {version}" if version else "")]
    threshold, ratio = str(protocol.get("filter_threshold", "-1")), str(protocol.get("norm_ratio", "0"))
    unproven = not version and (Fraction(threshold) != -1 or Fraction(ratio) != 0)  # ProtocolSpec.fixed_filters
    if version in ("rffl-v2", "rffl-v3") or unproven:
        parts.append("cosine filter off" if Fraction(threshold) == -1 else f"cosine filter τ {threshold}")
    if version == "rffl-v3" or unproven:
        parts.append(f"norm filter k {ratio}" if Fraction(ratio) else "norm filter off")
        parts.append("dropped updates score ≤ 0" + (" (filters unproven)" if unproven else ""))
    for entry in protocol.get("filters") or []:
        options = ", ".join(f"{k} {v}" for k, v in entry.items() if k != "name")
        parts.append(f"{entry.get('name')}" + (f" ({options})" if options else ""))
    window = protocol.get("removal_rounds")
    parts.append("removal in every round" if window is None else f"removal in rounds 1–{window}")
    return " · ".join(parts)
