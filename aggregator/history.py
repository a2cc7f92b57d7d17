"""Each sender's last update, kept across rounds for rules that compare a sender with itself.

Saved beside the reputation state (one .npz, replaced atomically) so a restarted aggregator
filters its next round exactly as an uninterrupted one would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aggregator.rules import passes


def history_path(state_path: Path | str | None) -> Path | None:
    """Where the history of the reputation state at `state_path` lives (None: in memory only)."""
    if state_path is None:
        return None
    state_path = Path(state_path)
    return state_path.with_name(state_path.name + ".history.npz")


class UpdateHistory:
    """sender → its most recent finite raw update (a copy), optionally persisted to `path`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.updates: dict[str, np.ndarray] = {}
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as stored:
                self.updates = {name: stored[name] for name in stored.files}

    def record(
        self,
        senders: Sequence[str],
        updates: np.ndarray,
        active: np.ndarray,
        squared_norms: np.ndarray | None = None,
    ) -> None:
        """Remember the round's rows of active senders; a non-finite row leaves the sender's last one.

        `squared_norms` (the rows' Σx² in float64, if a pass computed them) tells the finite rows of a float32
        matrix without another pass: such a sum is finite exactly when every entry is. A sender's last row is
        overwritten in place when the shapes and dtypes agree, which spares a fresh buffer's page faults."""
        if squared_norms is None or updates.dtype != np.float32:
            finite = [bool(np.all(np.isfinite(row))) for row in updates]
        else:
            finite = np.isfinite(np.asarray(squared_norms)).tolist()
        sources, targets = [], []
        for sender, row, live, ok in zip(senders, updates, active, finite, strict=True):
            if not (live and ok):
                continue
            last = self.updates.get(sender)
            if last is None or last.shape != row.shape or last.dtype != row.dtype or not last.flags.writeable:
                self.updates[sender] = np.array(row, copy=True)
            else:
                sources.append(row)
                targets.append(last)
        passes.copy_rows(sources, targets)
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        temporary = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(temporary, **self.updates)
        os.replace(temporary, self.path)
