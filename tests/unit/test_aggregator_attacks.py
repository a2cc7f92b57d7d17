"""Each attack changes the update (or data) exactly as specified."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator import attacks


@pytest.fixture
def update() -> np.ndarray:
    return np.random.default_rng(0).normal(size=64).astype(np.float32)


def test_free_riders(update: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    random = attacks.free_rider_random(1000, rng)
    assert random.min() >= -1 and random.max() <= 1 and abs(random.mean()) < 0.1
    assert not attacks.free_rider_zero(10).any()
    stale = attacks.free_rider_stale(update)
    np.testing.assert_array_equal(stale, update)
    assert stale is not update


def test_sign_flip_scaling_and_noise(update: np.ndarray) -> None:
    np.testing.assert_allclose(attacks.sign_flip(update), -update)
    np.testing.assert_allclose(attacks.scaling(update, 10.0), 10 * update, rtol=1e-6)
    noisy = attacks.gaussian_noise(update, 0.5, np.random.default_rng(2))
    residual = noisy - update
    assert 0.35 < residual.std() < 0.65


def test_sybil_copies_are_near_identical(update: np.ndarray) -> None:
    group = attacks.sybil_group(update, 4, np.random.default_rng(3), jitter=1e-3)
    assert group.shape == (4, 64)
    cosines = group @ update / (np.linalg.norm(group, axis=1) * np.linalg.norm(update))
    assert np.all(cosines > 0.999) and not np.allclose(group[0], group[1], rtol=0, atol=0)


def test_little_is_enough_is_mean_minus_z_std() -> None:
    honest = np.random.default_rng(4).normal(size=(7, 20))
    z = attacks.alie_z(10, 3)
    assert z > 0
    np.testing.assert_allclose(attacks.little_is_enough(honest, z), honest.mean(0) - z * honest.std(0), rtol=1e-5)


def test_label_flip_and_backdoor() -> None:
    labels = np.array([0, 1, 7, 9])
    np.testing.assert_array_equal(attacks.label_flip(labels, 10), [9, 8, 2, 0])
    np.testing.assert_array_equal(attacks.label_flip(labels, 10, source=1, target=7), [0, 7, 7, 9])
    features = np.zeros((10, 5), dtype=np.float32)
    trigger = attacks.BackdoorTrigger(features=(3, 4), value=1.0, target=2)
    x, y = attacks.add_backdoor(features, np.zeros(10, dtype=np.int64), trigger, 0.5, np.random.default_rng(5))
    stamped = np.all(x[:, [3, 4]] == 1.0, axis=1)
    assert stamped.sum() == 5 and np.all(y[stamped] == 2) and np.all(y[~stamped] == 0)
    assert np.all(attacks.stamp_trigger(features, trigger)[:, 3:] == 1.0)


@pytest.mark.parametrize("dataset", ["digits", "breast_cancer"])
def test_the_simulated_backdoor_is_learnt_only_from_poisoned_data(dataset: str) -> None:
    """The trigger is an attack, not a feature of the task: a model trained on clean data sends (almost) no stamped
    row of another class to the target, one trained with 30% poisoned rows sends most of them (real training)."""
    import torch

    from aggregator.simulation import backdoor_trigger
    from client.training import TrainConfig, train_local
    from marketplace.data import Dataset, load_builtin, split_holdout
    from marketplace.models import ModelSpec, build_model

    torch.set_num_threads(1)
    data, schema = load_builtin(dataset)
    train, _, test = split_holdout(data, 0.2, 0.2, seed=0)
    trigger = backdoor_trigger(dataset)
    stamped = torch.as_tensor(attacks.stamp_trigger(test.X[test.y != trigger.target], trigger))
    spec = ModelSpec("mlp", schema.num_features, schema.num_classes, (16,))

    def success(ds: Dataset) -> float:
        model = build_model(spec, seed=0)
        train_local(model, ds, TrainConfig(epochs=20, lr=0.1, batch_size=32, momentum=0.9, seed=0))
        with torch.no_grad():
            return float((model(stamped).argmax(1).numpy() == trigger.target).mean())

    poisoned = Dataset(*attacks.add_backdoor(train.X, train.y, trigger, 0.3, np.random.default_rng(0)))
    clean_success, poisoned_success = success(train), success(poisoned)
    assert clean_success < 0.05 and poisoned_success > 0.9, (clean_success, poisoned_success)
