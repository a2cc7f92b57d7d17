"""Local training on a data owner's machine: plain SGD with cross-entropy, reproducible from a seed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from marketplace.data import Dataset
from marketplace.errors import DataSchemaError, UpdateFormatError

EVAL_BATCH_SIZE = 1024


@dataclass
class TrainConfig:
    """Local training settings a task publishes (the seed may be per data owner and round)."""

    epochs: int = 5
    lr: float = 0.1
    batch_size: int = 32
    momentum: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not isinstance(self.lr, int | float) or not self.lr > 0:
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not isinstance(self.momentum, int | float) or not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s): {', '.join(unknown)}")
        return cls(**dict(data))


def train_local(
    model: nn.Module,
    ds: Dataset,
    config: TrainConfig,
    progress: Callable[[int, int], None] | None = None,
) -> float:
    """Train `model` in place for `config.epochs` epochs; return the last epoch's mean loss.

    Batch order comes from a torch generator seeded with `config.seed`, so the same model,
    data and config give the same result (on the same machine and thread count).
    """
    if len(ds) == 0:
        raise DataSchemaError("no training samples", hint="check the data file for this task")
    features = torch.from_numpy(np.ascontiguousarray(ds.X, dtype=np.float32))
    labels = torch.from_numpy(np.ascontiguousarray(ds.y, dtype=np.int64))
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    epoch_loss = 0.0
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(ds), generator=generator)
        total = 0.0
        for start in range(0, len(ds), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(features[batch]), labels[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.numel()
        epoch_loss = total / len(ds)
        if progress is not None:
            progress(epoch, config.epochs)
    return epoch_loss


def evaluate(model: nn.Module, ds: Dataset) -> dict[str, float]:
    """Accuracy and mean cross-entropy of `model` on `ds`, without touching gradients."""
    if len(ds) == 0:
        raise DataSchemaError("cannot evaluate on an empty data set")
    was_training = model.training
    model.eval()
    correct = 0
    loss_sum = 0.0
    try:
        with torch.no_grad():
            for start in range(0, len(ds), EVAL_BATCH_SIZE):
                features = torch.from_numpy(np.ascontiguousarray(ds.X[start : start + EVAL_BATCH_SIZE]))
                labels = torch.from_numpy(np.ascontiguousarray(ds.y[start : start + EVAL_BATCH_SIZE]))
                logits = model(features)
                loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
                correct += int((logits.argmax(dim=1) == labels).sum().item())
    finally:
        model.train(was_training)
    return {"accuracy": correct / len(ds), "loss": loss_sum / len(ds)}


def model_delta(local: Mapping[str, np.ndarray], global_: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The update a data owner sends: local weights minus the round's global weights, float32."""
    if set(local) != set(global_):
        missing = sorted(set(global_) - set(local))
        extra = sorted(set(local) - set(global_))
        raise UpdateFormatError(f"tensor names differ: missing {missing}, unexpected {extra}")
    delta: dict[str, np.ndarray] = {}
    for name, base in global_.items():
        mine = np.asarray(local[name])
        if mine.shape != np.shape(base):
            raise UpdateFormatError(f"tensor {name} has shape {mine.shape}; expected {np.shape(base)}")
        delta[name] = (mine.astype(np.float32) - np.asarray(base, dtype=np.float32)).astype(np.float32)
    return delta
