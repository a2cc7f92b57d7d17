"""The demo's report: a Markdown page with PNG plots (accuracy per round, reputation per owner, payout vs.
contribution), written to a folder so it can be read, diffed and attached."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt


@dataclass
class OwnerLine:
    """One data owner in the report."""

    label: str  # e.g. "#3 sign_flip"
    address: str
    kind: str  # honest or an attack name
    samples: int
    reputations: list[float] = field(default_factory=list)  # per round, 0..1
    contribution: int = 0  # sum over rounds of max(contribution, 0)
    payout: int = 0  # wei withdrawn (reward + stake back)
    reward: int = 0  # wei credited as reward
    removed_round: int | None = None
    slashed: int = 0  # wei of stake slashed


@dataclass
class ReportData:
    title: str
    settings: dict[str, object]
    rounds: list[dict[str, object]]  # round, accuracy, loss, kept, left_out, gas, seconds
    owners: list[OwnerLine]
    audit: list[tuple[int, str, bool, str]]
    summary: list[str]


def _plot_accuracy(data: ReportData, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["round"] for r in data.rounds], [r["accuracy"] for r in data.rounds], marker="o")
    ax.set(xlabel="round", ylabel="test accuracy", title="global model accuracy per round", ylim=(0, 1))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_reputation(data: ReportData, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for owner in data.owners:
        style = "-" if owner.kind == "honest" else "--"
        ax.plot(range(1, len(owner.reputations) + 1), owner.reputations, style, marker=".", label=owner.label)
    ax.set(xlabel="round", ylabel="reputation (share)", title="reputation per data owner (dashed: attackers)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_payout(data: ReportData, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    total_c = sum(o.contribution for o in data.owners) or 1
    total_r = sum(o.reward for o in data.owners) or 1
    for owner in data.owners:
        colour = "tab:blue" if owner.kind == "honest" else "tab:red"
        ax.scatter(owner.contribution / total_c, owner.reward / total_r, color=colour)
        ax.annotate(owner.label, (owner.contribution / total_c, owner.reward / total_r), fontsize=7)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    top = max([o.contribution / total_c for o in data.owners] + [o.reward / total_r for o in data.owners] + [0.05])
    ax.set(xlim=(0, top * 1.15), ylim=(0, top * 1.15), xlabel="share of contributions",
           ylabel="share of rewards", title="payout vs. contribution (red: attackers)")  # fmt: skip
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(data: ReportData, folder: Path) -> Path:
    """Write report.md and its plots into `folder`; returns the Markdown file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    _plot_accuracy(data, folder / "accuracy.png")
    _plot_reputation(data, folder / "reputation.png")
    _plot_payout(data, folder / "payout_vs_contribution.png")
    lines = [f"# {data.title}", "", *data.summary, "", "## Settings", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in data.settings.items()]
    lines += ["", "## Rounds", "", "![accuracy](accuracy.png)", "",
              "| round | accuracy | loss | kept | left out | gas | seconds |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in data.rounds:
        lines.append(f"| {r['round']} | {r['accuracy']:.3f} | {r['loss']:.3f} | {r['kept']} | {r['left_out']} "
                     f"| {r['gas']:,} | {r['seconds']:.1f} |")  # fmt: skip
    lines += ["", "## Data owners", "", "![reputation](reputation.png)", "",
              "![payout vs contribution](payout_vs_contribution.png)", "",
              "| owner | kind | samples | final reputation | removed in round | slashed (ETH) | reward (ETH) "
              "| withdrawn (ETH) |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for o in data.owners:
        final = f"{o.reputations[-1]:.3f}" if o.reputations else "-"
        lines.append(f"| {o.label} `{o.address}` | {o.kind} | {o.samples} | {final} | {o.removed_round or '-'} "
                     f"| {o.slashed / 1e18:.6f} | {o.reward / 1e18:.6f} | {o.payout / 1e18:.6f} |")  # fmt: skip
    lines += ["", "## Audit", "", "| round | check | result | detail |", "|---|---|---|---|"]
    lines += [f"| {r} | {name} | {'pass' if ok else '**FAIL**'} | {detail} |" for r, name, ok, detail in data.audit]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
