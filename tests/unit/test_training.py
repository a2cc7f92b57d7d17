"""Local training: it learns, it is reproducible, and evaluation leaves the model alone."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from client.training import TrainConfig, evaluate, model_delta, train_local
from marketplace.data import Dataset, load_builtin, split_holdout
from marketplace.errors import DataSchemaError, UpdateFormatError
from marketplace.models import ModelSpec, build_model, load_arrays, model_to_arrays

SPEC = ModelSpec("mlp", 64, 10, (32,))


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Small models train fastest, and reproducibly, on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def digits() -> tuple[Dataset, Dataset, Dataset]:
    ds, _ = load_builtin("digits")
    return split_holdout(ds, 0.0, 0.25, seed=0)


def test_config_round_trips_and_validates() -> None:
    config = TrainConfig(epochs=3, lr=0.05, batch_size=16, momentum=0.9, seed=4)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"unknown training setting"):
        TrainConfig.from_dict({"epochs": 1, "optimizer": "adam"})
    for bad in ({"epochs": 0}, {"lr": 0}, {"batch_size": 0}, {"momentum": 1.0}, {"seed": -1}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_training_on_digits_reaches_high_accuracy(digits: tuple[Dataset, Dataset, Dataset]) -> None:
    train, _, test = digits
    model = build_model(SPEC, seed=0)
    before = evaluate(model, test)
    seen: list[tuple[int, int]] = []
    loss = train_local(model, train, TrainConfig(epochs=5, lr=0.1, momentum=0.9), lambda e, n: seen.append((e, n)))
    after = evaluate(model, test)
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert before["accuracy"] < 0.3
    assert after["accuracy"] > 0.85
    assert after["loss"] < before["loss"]
    assert 0 < loss < before["loss"]


def test_training_is_deterministic_given_the_seed(digits: tuple[Dataset, Dataset, Dataset]) -> None:
    train = digits[0].subset(np.arange(200))

    def trained(seed: int) -> dict[str, np.ndarray]:
        model = build_model(SPEC, seed=1)
        train_local(model, train, TrainConfig(epochs=2, seed=seed))
        return model_to_arrays(model)

    first, again, other = trained(5), trained(5), trained(6)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["layers.0.weight"], other["layers.0.weight"])


def test_evaluate_restores_mode_and_does_not_change_weights(digits: tuple[Dataset, Dataset, Dataset]) -> None:
    model = build_model(SPEC, seed=0)
    model.train()
    before = model_to_arrays(model)
    result = evaluate(model, digits[2])
    assert set(result) == {"accuracy", "loss"}
    assert model.training
    assert all(np.array_equal(before[k], v) for k, v in model_to_arrays(model).items())


def test_evaluate_matches_a_direct_computation() -> None:
    model = build_model(ModelSpec("logreg", 2, 2), seed=0)
    load_arrays(
        model, {"layers.0.weight": np.array([[1, 0], [0, 1]], np.float32), "layers.0.bias": np.zeros(2, np.float32)}
    )
    ds = Dataset(np.array([[2, 0], [0, 2], [2, 0]], np.float32), np.array([0, 1, 1]))
    result = evaluate(model, ds)
    assert result["accuracy"] == pytest.approx(2 / 3)
    right, wrong = np.log1p(np.exp(-2.0)), np.log1p(np.exp(2.0))
    assert result["loss"] == pytest.approx((2 * right + wrong) / 3, rel=1e-5)


def test_empty_data_is_refused() -> None:
    empty = Dataset(np.zeros((0, 64), np.float32), np.zeros(0, np.int64))
    with pytest.raises(DataSchemaError):
        train_local(build_model(SPEC, 0), empty, TrainConfig())
    with pytest.raises(DataSchemaError):
        evaluate(build_model(SPEC, 0), empty)


def test_model_delta_is_local_minus_global() -> None:
    global_ = {"w": np.array([1.0, 2.0], np.float32)}
    local = {"w": np.array([1.5, 1.0], np.float64)}
    delta = model_delta(local, global_)
    assert delta["w"].dtype == np.float32
    assert delta["w"].tolist() == [0.5, -1.0]
    with pytest.raises(UpdateFormatError, match=r"names differ"):
        model_delta({"v": local["w"]}, global_)
    with pytest.raises(UpdateFormatError, match=r"shape"):
        model_delta({"w": np.zeros(3)}, global_)
