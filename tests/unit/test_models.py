"""Model specs, deterministic construction and the canonical flat layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketplace.errors import UpdateFormatError
from marketplace.models import (
    ModelSpec,
    build_model,
    expected_shapes,
    flatten,
    load_arrays,
    model_to_arrays,
    num_parameters,
    unflatten,
)

MLP = ModelSpec("mlp", 64, 10, (32, 16))
LOGREG = ModelSpec("logreg", 30, 2)


def test_spec_round_trips_through_dict() -> None:
    for spec in (MLP, LOGREG):
        assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_spec_hidden_list_becomes_tuple() -> None:
    spec = ModelSpec.from_dict({"kind": "mlp", "input_dim": 4, "num_classes": 3, "hidden": [5]})
    assert spec.hidden == (5,)
    assert spec == ModelSpec("mlp", 4, 3, (5,))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "cnn", "input_dim": 4, "num_classes": 3}, "unknown model kind"),
        ({"kind": "mlp", "input_dim": 0, "num_classes": 3, "hidden": [4]}, "input_dim"),
        ({"kind": "logreg", "input_dim": 4, "num_classes": 1}, "num_classes"),
        ({"kind": "logreg", "input_dim": 4, "num_classes": 3, "hidden": [4]}, "no hidden layers"),
        ({"kind": "mlp", "input_dim": 4, "num_classes": 3}, "at least one hidden layer"),
        ({"kind": "mlp", "input_dim": 4, "num_classes": 3, "hidden": [0]}, "hidden layer widths"),
        ({"kind": "mlp", "input_dim": "4", "num_classes": 3, "hidden": [2]}, "input_dim"),
        ({"kind": "logreg", "input_dim": 4}, "missing field"),
        ({"kind": "logreg", "input_dim": 4, "num_classes": 3, "depth": 2}, "unknown model spec field"),
        ({"kind": "mlp", "input_dim": 4, "num_classes": 3, "hidden": 8}, "list of widths"),
    ],
)
def test_invalid_specs_are_refused_clearly(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelSpec.from_dict(data)


def test_expected_shapes_are_in_layer_order() -> None:
    assert list(expected_shapes(MLP).items()) == [
        ("layers.0.weight", (32, 64)),
        ("layers.0.bias", (32,)),
        ("layers.1.weight", (16, 32)),
        ("layers.1.bias", (16,)),
        ("layers.2.weight", (10, 16)),
        ("layers.2.bias", (10,)),
    ]
    assert expected_shapes(LOGREG) == {"layers.0.weight": (2, 30), "layers.0.bias": (2,)}


def test_build_model_matches_expected_shapes_and_outputs_logits() -> None:
    for spec in (MLP, LOGREG):
        model = build_model(spec, seed=0)
        arrays = model_to_arrays(model)
        assert {name: a.shape for name, a in arrays.items()} == expected_shapes(spec)
        assert all(a.dtype == np.float32 for a in arrays.values())
        assert model(torch.zeros(3, spec.input_dim)).shape == (3, spec.num_classes)


def test_build_model_is_deterministic_in_the_seed() -> None:
    first = model_to_arrays(build_model(MLP, seed=7))
    again = model_to_arrays(build_model(MLP, seed=7))
    other = model_to_arrays(build_model(MLP, seed=8))
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["layers.0.weight"], other["layers.0.weight"])


def test_build_model_leaves_torch_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(MLP, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_model_to_arrays_returns_copies() -> None:
    model = build_model(LOGREG, seed=0)
    arrays = model_to_arrays(model)
    arrays["layers.0.bias"][:] = 99.0
    assert not np.any(model_to_arrays(model)["layers.0.bias"] == 99.0)


def test_load_arrays_round_trip() -> None:
    source = model_to_arrays(build_model(MLP, seed=1))
    target = build_model(MLP, seed=2)
    load_arrays(target, source)
    loaded = model_to_arrays(target)
    assert all(np.array_equal(loaded[k], source[k]) for k in source)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("layers.0.bias"), "missing tensor.*layers.0.bias"),
        (lambda a: a.update(extra=np.zeros(2, np.float32)), "unexpected tensor.*extra"),
        (lambda a: a.update({"layers.0.weight": np.zeros((30, 2), np.float32)}), "layers.0.weight has shape"),
        (lambda a: a.update({"layers.0.bias": np.array([np.nan, 0], np.float32)}), "non-finite.*layers.0.bias"),
    ],
)
def test_load_arrays_refuses_bad_arrays(change, message: str) -> None:
    arrays = model_to_arrays(build_model(LOGREG, seed=0))
    change(arrays)
    with pytest.raises(UpdateFormatError, match=message):
        load_arrays(build_model(LOGREG, seed=0), arrays)


def test_flatten_unflatten_round_trip_in_canonical_order() -> None:
    arrays = model_to_arrays(build_model(MLP, seed=3))
    vector = flatten(arrays, MLP)
    assert vector.shape == (num_parameters(MLP),) == (64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10,)
    assert np.array_equal(vector[: 32 * 64], arrays["layers.0.weight"].ravel())
    assert np.array_equal(vector[-10:], arrays["layers.2.bias"])
    back = unflatten(vector, MLP)
    assert list(back) == list(expected_shapes(MLP))
    assert all(np.array_equal(back[k], arrays[k]) for k in arrays)


def test_flatten_ignores_dict_insertion_order_and_keeps_dtype() -> None:
    arrays = {
        name: np.full(shape, i, dtype=np.int64) for i, (name, shape) in enumerate(expected_shapes(LOGREG).items())
    }
    reversed_arrays = dict(reversed(list(arrays.items())))
    assert np.array_equal(flatten(arrays, LOGREG), flatten(reversed_arrays, LOGREG))
    assert flatten(arrays, LOGREG).dtype == np.int64


def test_unflatten_refuses_wrong_length() -> None:
    with pytest.raises(UpdateFormatError, match=r"flat vector"):
        unflatten(np.zeros(num_parameters(LOGREG) + 1), LOGREG)
