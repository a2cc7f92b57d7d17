"""A trained model update saved to disk (`fedmarket train --out`) and sent later (`fedmarket submit --update`).

The file is an .npz of float32 deltas, one array per model tensor, plus one metadata entry naming
the task, the round and the global model the update was trained from. An update only makes sense
against that model, so `load_update` refuses a file from another task, round or model, and any
tensor whose name, shape or values the task's model does not accept, before anything is sent.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from marketplace.errors import FedmarketError

META_KEY = "__fedmarket_update__"


@dataclass(frozen=True)
class SavedUpdate:
    task_id: int
    round: int
    model_cid: str
    loss: float
    delta: dict[str, np.ndarray]


def save_update(
    path: Path, task_id: int, round_: int, model_cid: str, loss: float, delta: dict[str, np.ndarray]
) -> None:
    """Write the deltas and their provenance (task, round, base model CID, training loss)."""
    meta = json.dumps({"task_id": task_id, "round": round_, "model_cid": model_cid, "loss": loss})
    arrays = {name: np.asarray(array, dtype=np.float32) for name, array in delta.items()}
    with path.open("wb") as handle:  # a file object keeps numpy from appending ".npz" to the name
        np.savez(handle, **arrays, **{META_KEY: np.array(meta)})


def load_update(
    path: Path, task_id: int, round_: int, model_cid: str, shapes: dict[str, tuple[int, ...]]
) -> SavedUpdate:
    """Read a saved update and check it belongs to this task, round and model and fits its shapes."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        hint = "make one with `fedmarket train TASK --data FILE --out update.npz`"
        raise FedmarketError(f"{path} is not a saved model update: {exc}", hint=hint) from None
    if META_KEY not in arrays:
        raise FedmarketError(f"{path} has no fedmarket metadata (task, round, base model)",
                             hint="save updates with `fedmarket train --out`")  # fmt: skip
    meta = json.loads(str(arrays.pop(META_KEY)))
    if meta.get("task_id") != task_id:
        raise FedmarketError(f"{path} was trained for task {meta.get('task_id')}, not task {task_id}")
    if meta.get("round") != round_ or meta.get("model_cid") != model_cid:
        raise FedmarketError(
            f"{path} was trained in round {meta.get('round')} from model {meta.get('model_cid')}; round {round_} "
            f"is open with model {model_cid}",
            hint=f"train again for this round: `fedmarket train {task_id} --data FILE --out {path}`",
        )
    if set(arrays) != set(shapes):
        missing, extra = sorted(set(shapes) - set(arrays)), sorted(set(arrays) - set(shapes))
        raise FedmarketError(f"{path} does not match the task's model: missing {missing}, unexpected {extra}")
    for name, shape in shapes.items():
        array = arrays[name]
        if tuple(array.shape) != tuple(shape):
            raise FedmarketError(
                f"{path}: tensor {name} has shape {tuple(array.shape)}, the model needs {tuple(shape)}"
            )
        if array.dtype.kind != "f" or not np.all(np.isfinite(array)):
            raise FedmarketError(f"{path}: tensor {name} must hold finite floating-point values")
    return SavedUpdate(task_id, round_, model_cid, float(meta.get("loss", float("nan"))), arrays)
