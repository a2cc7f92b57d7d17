"""The task's model, described by plain data so a task spec on IPFS can name it.

Every role rebuilds the same architecture from a `ModelSpec`, and every tensor has a fixed
canonical position (layer order, then weight before bias), so aggregators, commitments and
proofs can work on one flat vector and agree on what each coordinate means.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import skip_init

from marketplace.errors import UpdateFormatError

MODEL_KINDS = ("mlp", "logreg")


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of a task's model: a logistic regression or a ReLU multilayer perceptron."""

    kind: str
    input_dim: int
    num_classes: int
    hidden: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; expected one of {', '.join(MODEL_KINDS)}")
        if not _is_int(self.input_dim) or self.input_dim < 1:
            raise ValueError(f"input_dim must be a positive integer, got {self.input_dim!r}")
        if not _is_int(self.num_classes) or self.num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {self.num_classes!r}")
        hidden = tuple(self.hidden)
        if any(not _is_int(width) or width < 1 for width in hidden):
            raise ValueError(f"hidden layer widths must be positive integers, got {self.hidden!r}")
        if self.kind == "logreg" and hidden:
            raise ValueError("a 'logreg' model has no hidden layers; use kind 'mlp' for hidden layers")
        if self.kind == "mlp" and not hidden:
            raise ValueError("an 'mlp' model needs at least one hidden layer; use kind 'logreg' otherwise")
        object.__setattr__(self, "hidden", hidden)

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """Input width, hidden widths, output width, in order."""
        return (self.input_dim, *self.hidden, self.num_classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "input_dim": self.input_dim,
            "num_classes": self.num_classes,
            "hidden": list(self.hidden),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Build a spec from parsed JSON, refusing unknown or missing fields with a clear message."""
        if not isinstance(data, Mapping):
            raise ValueError(f"model spec must be a JSON object, got {type(data).__name__}")
        allowed = {"kind", "input_dim", "num_classes", "hidden"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown model spec field(s): {', '.join(unknown)}")
        missing = sorted({"kind", "input_dim", "num_classes"} - set(data))
        if missing:
            raise ValueError(f"model spec is missing field(s): {', '.join(missing)}")
        hidden = data.get("hidden", ())
        if not isinstance(hidden, list | tuple):
            raise ValueError(f"model spec field 'hidden' must be a list of widths, got {hidden!r}")
        return cls(
            kind=data["kind"],
            input_dim=data["input_dim"],
            num_classes=data["num_classes"],
            hidden=tuple(hidden),
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class SpecModel(nn.Module):
    """Linear layers with ReLU between them; named `layers.<i>` so tensor names are stable.

    Construct it with `build_model`: the layers are allocated without initialisation (which
    would consume torch's global RNG) and filled from the seed there.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        widths = spec.layer_widths
        self.spec = spec
        self.layers = nn.ModuleList(skip_init(nn.Linear, a, b) for a, b in itertools.pairwise(widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < last:
                x = torch.relu(x)
        return x


def expected_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes in canonical order (layer order, weight before bias)."""
    widths = spec.layer_widths
    shapes: dict[str, tuple[int, ...]] = {}
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        shapes[f"layers.{index}.weight"] = (fan_out, fan_in)
        shapes[f"layers.{index}.bias"] = (fan_out,)
    return shapes


def num_parameters(spec: ModelSpec) -> int:
    """Length of the flat parameter vector."""
    return sum(math.prod(shape) for shape in expected_shapes(spec).values())


def build_model(spec: ModelSpec, seed: int) -> SpecModel:
    """A freshly initialised model; the same (spec, seed) gives the same weights on every machine.

    Weights are drawn with numpy's PCG64 rather than torch's global RNG, so initialisation is
    reproducible across torch versions and never disturbs other code's random state. The
    distribution is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the usual default for linear layers.
    """
    model = SpecModel(spec)
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes(spec).items():
        fan_in = spec.layer_widths[int(name.split(".")[1])]
        limit = 1.0 / math.sqrt(fan_in)
        arrays[name] = rng.uniform(-limit, limit, size=shape).astype(np.float32)
    load_arrays(model, arrays)
    return model


def model_to_arrays(model: nn.Module) -> dict[str, np.ndarray]:
    """Float32 copies of the model's tensors, detached from torch."""
    return {
        name: tensor.detach().cpu().numpy().astype(np.float32, copy=True) for name, tensor in model.state_dict().items()
    }


def load_arrays(model: nn.Module, arrays: Mapping[str, np.ndarray]) -> None:
    """Copy arrays into the model after checking names, shapes and finiteness."""
    state = model.state_dict()
    _check_names(set(arrays), set(state))
    new_state = {}
    for name, current in state.items():
        array = np.asarray(arrays[name])
        if tuple(array.shape) != tuple(current.shape):
            raise UpdateFormatError(f"tensor {name} has shape {tuple(array.shape)}; expected {tuple(current.shape)}")
        if array.dtype.kind not in "fiu":
            raise UpdateFormatError(f"tensor {name} has non-numeric dtype {array.dtype}")
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise UpdateFormatError(f"non-finite values in tensor {name}")
        new_state[name] = torch.from_numpy(np.ascontiguousarray(values))
    model.load_state_dict(new_state)


def flatten(arrays: Mapping[str, np.ndarray], spec: ModelSpec) -> np.ndarray:
    """Concatenate tensors in canonical order into one 1-D vector (dtype kept)."""
    shapes = expected_shapes(spec)
    _check_names(set(arrays), set(shapes))
    parts = []
    for name, shape in shapes.items():
        array = np.asarray(arrays[name])
        if tuple(array.shape) != shape:
            raise UpdateFormatError(f"tensor {name} has shape {tuple(array.shape)}; expected {shape}")
        parts.append(array.reshape(-1))
    return np.concatenate(parts)


def unflatten(vector: np.ndarray, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Split a flat vector back into named tensors (copies, dtype kept)."""
    vector = np.asarray(vector)
    total = num_parameters(spec)
    if vector.ndim != 1 or vector.size != total:
        raise UpdateFormatError(f"flat vector has shape {vector.shape}; expected ({total},)")
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for name, shape in expected_shapes(spec).items():
        size = math.prod(shape)
        arrays[name] = vector[offset : offset + size].reshape(shape).copy()
        offset += size
    return arrays


def _check_names(got: set[str], expected: set[str]) -> None:
    missing = sorted(expected - got)
    extra = sorted(got - expected)
    if missing:
        raise UpdateFormatError(f"missing tensor(s): {', '.join(missing)}")
    if extra:
        raise UpdateFormatError(f"unexpected tensor(s): {', '.join(extra)}")
