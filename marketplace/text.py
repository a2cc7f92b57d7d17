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
    from marketplace.task_spec import ProtocolSpec, published_protocol

    rules = ProtocolSpec.from_dict(published_protocol(protocol))
    parts = [rules.proof + (f" {rules.rule_version}" if rules.rule_version else "")]
    if rules.linked or rules.fixed_filters:
        threshold = rules.filter_threshold
        parts.append("cosine filter off" if Fraction(threshold) == -1 else f"cosine filter τ {threshold}")
    if rules.capped:
        parts.append(f"norm filter k {rules.norm_ratio}" if Fraction(rules.norm_ratio) else "norm filter off")
        unproven = " (filters unproven)" if rules.fixed_filters else ""
        parts.append(f"dropped updates score ≤ {rules.missing_score}{unproven}")
    if Fraction(rules.missing_score) != 0:
        parts.append(f"missing updates score {rules.missing_score}")
    for entry in rules.filters:
        options = ", ".join(f"{k} {v}" for k, v in entry.items() if k != "name")
        parts.append(f"{entry.get('name')}" + (f" ({options})" if options else ""))
    window = rules.removal_rounds
    parts.append("removal in every round" if window is None else f"removal in rounds 1–{window}")
    return " · ".join(parts)
