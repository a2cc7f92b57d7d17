"""Saved model updates (`train --out` → `submit --update`): provenance and shape checks before anything is sent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from client.update_file import META_KEY, load_update, save_update
from marketplace.errors import FedmarketError

SHAPES = {"w": (3, 2), "b": (2,)}
CID = "bafkreimodel"


def _delta(value: float = 0.5) -> dict[str, np.ndarray]:
    return {name: np.full(shape, value, dtype=np.float32) for name, shape in SHAPES.items()}


def test_round_trip_keeps_values_and_provenance(tmp_path: Path) -> None:
    path = tmp_path / "update"
    save_update(path, 7, 3, CID, 0.25, _delta())
    assert path.exists()  # no ".npz" appended
    saved = load_update(path, 7, 3, CID, SHAPES)
    assert saved.loss == 0.25 and set(saved.delta) == set(SHAPES)
    assert all(np.array_equal(saved.delta[n], _delta()[n]) for n in SHAPES)


@pytest.mark.parametrize(
    ("task_id", "round_", "cid", "message"),
    [(8, 3, CID, "trained for task 7"), (7, 4, CID, "trained in round 3"), (7, 3, "bafkreiother", "from model")],
)
def test_another_task_round_or_model_is_refused(
    tmp_path: Path, task_id: int, round_: int, cid: str, message: str
) -> None:
    path = tmp_path / "update.npz"
    save_update(path, 7, 3, CID, 0.1, _delta())
    with pytest.raises(FedmarketError, match=message):
        load_update(path, task_id, round_, cid, SHAPES)


def test_bad_contents_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "u.npz"
    save_update(path, 1, 1, CID, 0.1, {"w": np.zeros((2, 3), np.float32), "b": np.zeros(2, np.float32)})
    with pytest.raises(FedmarketError, match="shape"):
        load_update(path, 1, 1, CID, SHAPES)
    save_update(path, 1, 1, CID, 0.1, {"w": np.zeros((3, 2), np.float32)})
    with pytest.raises(FedmarketError, match="missing"):
        load_update(path, 1, 1, CID, SHAPES)
    save_update(path, 1, 1, CID, 0.1, _delta(float("nan")))
    with pytest.raises(FedmarketError, match="finite"):
        load_update(path, 1, 1, CID, SHAPES)
    with path.open("wb") as handle:
        np.savez(handle, **_delta())
    with pytest.raises(FedmarketError, match="metadata"):
        load_update(path, 1, 1, CID, SHAPES)
    path.write_bytes(b"not a zip")
    with pytest.raises(FedmarketError, match="not a saved model update"):
        load_update(path, 1, 1, CID, SHAPES)
    assert META_KEY.startswith("__")
