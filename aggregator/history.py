"""Each sender's last update, kept across rounds for rules that compare a sender with itself.

Saved beside the reputation state (one .npz, replaced atomically) so a restarted aggregator
filters its next round exactly as an uninterrupted one would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


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

    def record(self, senders: Sequence[str], updates: np.ndarray, active: np.ndarray) -> None:
        """Remember the round's rows of active senders; a non-finite row leaves the sender's last one."""
        for sender, row, live in zip(senders, updates, active, strict=True):
            if live and np.all(np.isfinite(row)):
                self.updates[sender] = np.array(row, copy=True)
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        temporary = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(temporary, **self.updates)
        os.replace(temporary, self.path)
