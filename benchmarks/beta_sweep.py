"""RFFL removal settings against issue 3's targets: one robustness grid per setting (threshold β,
optionally a removal window or a clipping bound Γ), then a count of the cells that miss each target.

β sets who is removed for good (r_i < β/|R|): a higher β removes free-riders and attackers
sooner but also honest owners whose label-skewed updates point away from the crowd. A removal
window W (`removal_rounds`) lets removal act in rounds 1..W only: the attackers RFFL can remove
fall below β/|R| early, while honest owners drift below it late, as the model converges. This
runs `benchmarks/robustness.py` once per setting (fedmarket's pipeline and the FedAvg baseline
only; no Flower peers and no Shapley-accuracy study, which these settings do not change), keeps
each grid's JSON under --work, and prints per setting how many cells miss "attackers removed ≥
95%", "honest removed ≤ 5%" and "accuracy ≥ 0.97× attack-free FedAvg", with the cells that
changed against the first setting. Writes benchmarks/results/beta_sweep.json (the summaries
only; the runs stay in --work). Γ (`--gammas`, with `--datasets` to sweep one data set) bounds every
update's norm before RFFL scores it against the aggregate, and so how far the model moves per round;
a server step size η (`--server-lrs`) scales the aggregate after scoring, which tells the two apart.

    python benchmarks/beta_sweep.py                                  # β = 1/3, 2/7, 1/4 (≈ 10 min each on 2 cores)
    python benchmarks/beta_sweep.py --betas 1/3 --windows all 12 10  # β = 1/3: no window, W = 12, W = 10
    python benchmarks/beta_sweep.py --reuse --work DIR               # summarise grids already in DIR
    python benchmarks/beta_sweep.py --betas 1/3 --datasets breast_cancer --gammas 0.5 0.2 0.1 \
        --output benchmarks/results/gamma_sweep_breast_cancer.json     # Γ on breast cancer (≈ 2 min each)
    python benchmarks/beta_sweep.py --betas 1/3 --datasets breast_cancer --gammas 0.1 --server-lrs 1 3 5 \
        --output benchmarks/results/server_lr_sweep_breast_cancer.json  # Γ = 0.1 with a server step size η
    python benchmarks/beta_sweep.py --quick                          # smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "beta_sweep.json"
TARGETS = {"attackers_removed": 0.95, "honest_removed": 0.05, "ratio_to_fedavg": 0.97}


def grid_path(
    work: Path, beta: str, window: int | None, gamma: str | None = None, extra: list[str] | None = None
) -> Path:
    """Where a setting's grid goes; `extra` is the robustness.py arguments every grid of the sweep shares."""
    suffix = "" if window is None else f"_w{window}"
    suffix += "" if gamma is None else f"_g{gamma}"
    suffix += "".join(f"_{part.lstrip('-')}" for part in extra or [])
    return work / f"robustness_beta_{beta.replace('/', '-')}{suffix}.json"


def setting_label(beta: str, window: int | None, gamma: str | None = None) -> str:
    label = beta if window is None else f"{beta}, W = {window}"
    return label if gamma is None else f"{label}, Γ = {gamma}"


def run_grid(
    beta: str,
    window: int | None,
    output: Path,
    quick: bool,
    workers: int,
    gamma: str | None = None,
    extra: list[str] | None = None,
) -> None:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "robustness.py"),
        "--beta",
        beta,
        *([] if window is None else ["--removal-rounds", str(window)]),
        *([] if gamma is None else ["--gamma", gamma]),
        *(extra or []),
        "--peers",
        "fedavg",
        "--peer-seeds",
        "1",
        "--skip-shapley-accuracy",
        "--coalition",
        "weighted",
        "--workers",
        str(workers),
        "--output",
        str(output),
    ]
    if quick:
        command.append("--quick")
    print(f"{setting_label(beta, window, gamma)}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def misses(cell: dict[str, Any]) -> list[str]:
    """The targets this pipeline cell misses (attack-free cells have no attackers to remove)."""
    missed = []
    if cell["attackers_removed"] is not None and cell["attackers_removed"] < TARGETS["attackers_removed"]:
        missed.append("attackers_removed")
    if cell["honest_removed"] is not None and cell["honest_removed"] > TARGETS["honest_removed"]:
        missed.append("honest_removed")
    if cell["ratio_to_fedavg"] is not None and cell["ratio_to_fedavg"] < TARGETS["ratio_to_fedavg"]:
        missed.append("ratio_to_fedavg")
    return missed


def cell_name(cell: dict[str, Any]) -> str:
    return f"{cell['dataset']} α={cell['alpha']:g} {cell['attack']} {cell['fraction']:.0%}"


def summarise(grid: Path) -> dict[str, Any]:
    cells = [c for c in json.loads(grid.read_text())["summary"]["cells"] if c["server"] == "pipeline"]
    rows = [
        {
            "cell": cell_name(c),
            "attackers_removed": c["attackers_removed"],
            "honest_removed": c["honest_removed"],
            "ratio_to_fedavg": c["ratio_to_fedavg"],
            "misses": misses(c),
        }
        for c in cells
    ]
    counts = {target: sum(target in row["misses"] for row in rows) for target in TARGETS}
    return {"cells": len(rows), "misses": counts, "rows": rows}


def parse_window(text: str) -> int | None:
    """`all` (removal in every round) or a number of rounds W ≥ 0."""
    if text == "all":
        return None
    window = int(text)
    if window < 0:
        raise argparse.ArgumentTypeError(f"a removal window is a number of rounds ≥ 0 or 'all', got {text}")
    return window


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--betas", nargs="+", default=["1/3", "2/7", "1/4"], help="values of β as fractions")
    parser.add_argument(
        "--windows",
        nargs="+",
        type=parse_window,
        default=[None],
        help="removal windows to try with each β: 'all' (every round, the default) or a number of rounds",
    )
    parser.add_argument("--gammas", nargs="+", help="clipping bounds Γ to try (default: each data set's own)")
    parser.add_argument("--datasets", nargs="+", help="data sets to run (default: robustness.py's)")
    parser.add_argument(
        "--server-lrs", nargs="+", help="server step sizes η to try (robustness.py --server-lr; default 1)"
    )
    parser.add_argument("--work", type=Path, help="where the grids' JSON files go (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="summarise a grid already in --work instead of rerunning")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny grids for a smoke run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for beta in args.betas:
        value = Fraction(beta)
        if not 0 < value < 1:
            parser.error(f"β must be a fraction in (0, 1), got {beta}")
    for gamma in args.gammas or []:
        if not float(gamma) > 0:
            parser.error(f"Γ must be positive, got {gamma}")
    if args.reuse and args.work is None:
        parser.error("--reuse needs --work")
    work = args.work or Path(tempfile.mkdtemp(prefix="fedmarket-beta-"))
    work.mkdir(parents=True, exist_ok=True)
    sweep: dict[str, Any] = {}
    shared = ["--datasets", *args.datasets] if args.datasets else []
    for server_lr in args.server_lrs or [None]:
        extra = shared + ([] if server_lr is None else ["--server-lr", server_lr])
        for gamma in args.gammas or [None]:
            for beta in args.betas:
                for window in args.windows:
                    grid = grid_path(work, beta, window, gamma, extra)
                    if not (args.reuse and grid.exists()):
                        run_grid(beta, window, grid, args.quick, args.workers, gamma, extra)
                    label = setting_label(beta, window, gamma) + ("" if server_lr is None else f", η = {server_lr}")
                    sweep[label] = summarise(grid) | {
                        "beta": beta, "removal_rounds": window, "gamma": gamma, "datasets": args.datasets,
                        "server_lr": server_lr,
                    }  # fmt: skip
    print(f"{'setting':>12} | cells | attackers removed < 95% | honest removed > 5% | accuracy < 0.97×")
    for label, summary in sweep.items():
        m = summary["misses"]
        print(
            f"{label:>12} | {summary['cells']:>5} | {m['attackers_removed']:>23} | {m['honest_removed']:>19} | "
            f"{m['ratio_to_fedavg']:>16}"
        )
    first, *others = sweep
    before = {row["cell"]: row for row in sweep[first]["rows"]}
    for label in others:
        for row in sweep[label]["rows"]:
            old = before.get(row["cell"])
            if old is not None and old["misses"] != row["misses"]:
                print(f"  {first} → {label}: {row['cell']}: {old['misses'] or 'none'} → {row['misses'] or 'none'}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"benchmark": "beta_sweep", "targets": TARGETS, "settings": sweep}, indent=1))
    print(f"wrote {args.output} (grids in {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
