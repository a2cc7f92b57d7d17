"""The aggregator daemon's progress file, one per task: which stage each round reached, written atomically.

It is a log, not the source of truth: on restart the daemon asks the chain whether a round is already
finalized (then it never posts again) and recomputes anything unfinished, because every stage is a
deterministic function of chain + IPFS data. Reputations come from the chain too (aggregator.protocol).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from aggregator.reputation import write_json_atomically

STAGES = ("fetched", "planned", "proving", "posted", "settled")


class TaskProgress:
    def __init__(self, directory: Path | str, task_id: int) -> None:
        self.path = Path(directory) / f"task-{task_id}.json"
        self.task_id = task_id
        self.data: dict[str, Any] = {"task_id": task_id, "rounds": {}, "restarts": 0}
        if self.path.exists():
            self.data = json.loads(self.path.read_text(encoding="utf-8"))

    def stage(self, round_: int) -> str:
        return str(self.data["rounds"].get(str(round_), {}).get("stage", ""))

    def mark(self, round_: int, stage: str, **details: Any) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        entry = self.data["rounds"].setdefault(str(round_), {})
        entry.update(details)
        entry["stage"] = stage
        entry.setdefault("history", []).append([stage, time.time()])
        write_json_atomically(self.path, self.data)

    def note_restart(self) -> None:
        self.data["restarts"] = int(self.data.get("restarts", 0)) + 1
        write_json_atomically(self.path, self.data)
