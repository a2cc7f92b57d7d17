"""The task spec a project owner publishes on IPFS: everything a data owner and an auditor need to know."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from marketplace.data import DataSchema
from marketplace.errors import FedmarketError
from marketplace.models import ModelSpec, expected_shapes
from marketplace.updates import key_from_hex, max_model_bytes, max_sealed_update_bytes, max_update_bytes

SPEC_FORMAT = "fedmarket-task-spec"
SPEC_VERSION = 1
MAX_SPEC_BYTES = 1 << 20


class TaskSpecError(FedmarketError):
    """A task spec is malformed or names a setting this version does not know."""


@dataclass(frozen=True)
class TaskSpec:
    """Model, data schema, validation set, fixed-point scale, aggregator key and training hints of a task."""

    name: str
    model: ModelSpec
    data_schema: DataSchema
    validation_cid: str
    aggregator_public_key: str  # X25519, hex; data owners seal their updates to it
    scale_bits: int = 16
    bound: int = 2**31 - 1
    training: dict[str, Any] = field(default_factory=dict)  # suggested TrainConfig fields
    aggregation: dict[str, Any] = field(default_factory=lambda: {"rule": "fedavg"})
    description: str = ""
    protocol: dict[str, Any] = field(default_factory=dict)  # ProtocolSpec.to_dict(); empty = legacy FedAvg round

    def __post_init__(self) -> None:
        if not self.name:
            raise TaskSpecError("task spec needs a name")
        if not self.validation_cid:
            raise TaskSpecError("task spec needs the validation set's CID")
        key_from_hex(self.aggregator_public_key)
        if self.protocol:
            ProtocolSpec.from_dict(self.protocol)

    @property
    def rules(self) -> ProtocolSpec | None:
        """The protocol round's rules, or None for a legacy (FedAvg, placeholder commitments) task."""
        return ProtocolSpec.from_dict(self.protocol) if self.protocol else None

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return expected_shapes(self.model)

    @property
    def max_update_bytes(self) -> int:
        return max_update_bytes(self.shapes)

    @property
    def max_sealed_update_bytes(self) -> int:
        return max_sealed_update_bytes(self.shapes)

    @property
    def max_model_bytes(self) -> int:
        return max_model_bytes(self.shapes)

    def to_json(self) -> bytes:
        document = {
            "format": SPEC_FORMAT,
            "version": SPEC_VERSION,
            "name": self.name,
            "description": self.description,
            "model": self.model.to_dict(),
            "data_schema": self.data_schema.to_dict(),
            "validation_cid": self.validation_cid,
            "aggregator_public_key": self.aggregator_public_key,
            "scale_bits": self.scale_bits,
            "bound": self.bound,
            "training": self.training,
            "aggregation": self.aggregation,
        }
        if self.protocol:
            document["protocol"] = self.protocol
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TaskSpec:
        if len(data) > MAX_SPEC_BYTES:
            raise TaskSpecError(f"task spec is {len(data)} bytes, more than the {MAX_SPEC_BYTES} allowed")
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TaskSpecError(f"task spec is not JSON: {exc}") from exc
        if not isinstance(document, dict) or document.get("format") != SPEC_FORMAT:
            raise TaskSpecError("not a fedmarket task spec")
        if document.get("version") != SPEC_VERSION:
            version = document.get("version")
            raise TaskSpecError(f"task spec version {version} is not supported", hint="upgrade fedmarket")
        try:
            return cls(
                name=document["name"],
                description=document.get("description", ""),
                model=ModelSpec.from_dict(document["model"]),
                data_schema=DataSchema.from_dict(document["data_schema"]),
                validation_cid=document["validation_cid"],
                aggregator_public_key=document["aggregator_public_key"],
                scale_bits=int(document["scale_bits"]),
                bound=int(document["bound"]),
                training=dict(document.get("training", {})),
                aggregation=dict(document.get("aggregation", {"rule": "fedavg"})),
                protocol=dict(document.get("protocol", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TaskSpecError(f"task spec is malformed: {exc!r}") from exc


PROOF_MODES = ("groth16", "pedersen", "none")


@dataclass(frozen=True)
class ProtocolSpec:
    """The rules of a protocol round, published so data owners and auditors know what the aggregator must do.

    proof: "groth16" (Pedersen layer 1 + Groth16 rules proof), "pedersen" (layer 1 only) or "none" (unverified).
    gamma: RFFL clip norm Γ in model units; alpha, beta: RFFL (β as an exact fraction "1/3").
    value_bits: every quantized coordinate lies in [-(2^value_bits - 1), 2^value_bits - 1] (the circuit's range).
    filters: robust rules run before RFFL (aggregator.pipeline rule entries; clip is RFFL's own).
    shapley: options of aggregator.shapley.round_shapley; contributions use the validation set.
    verifying_key_cid: the Groth16 verifying key (snarkjs JSON) on IPFS, for auditors.
    """

    proof: str = "pedersen"
    generator_tag: str = "fedmarket/pedersen/bn254/v1"
    value_bits: int = 16
    gamma: float = 1.0
    alpha: str = "0.95"
    beta: str = "1/3"
    filters: tuple[dict[str, Any], ...] = ()
    shapley: dict[str, Any] = field(default_factory=dict)
    verifying_key_cid: str = ""

    def __post_init__(self) -> None:
        if self.proof not in PROOF_MODES:
            raise TaskSpecError(f"protocol proof must be one of {', '.join(PROOF_MODES)}, got {self.proof!r}")
        if not 1 <= int(self.value_bits) <= 39:
            raise TaskSpecError(f"protocol value_bits must be in 1..39, got {self.value_bits!r}")
        if not float(self.gamma) > 0:
            raise TaskSpecError(f"protocol gamma must be positive, got {self.gamma!r}")

    @property
    def bound(self) -> int:
        """The largest quantized magnitude a data owner may send."""
        return (1 << self.value_bits) - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "proof": self.proof,
            "generator_tag": self.generator_tag,
            "value_bits": self.value_bits,
            "gamma": self.gamma,
            "alpha": self.alpha,
            "beta": self.beta,
            "filters": [dict(f) for f in self.filters],
            "shapley": dict(self.shapley),
            "verifying_key_cid": self.verifying_key_cid,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProtocolSpec:
        known = {"proof", "generator_tag", "value_bits", "gamma", "alpha", "beta", "filters", "shapley",
                 "verifying_key_cid"}  # fmt: skip
        unknown = sorted(set(data) - known)
        if unknown:
            raise TaskSpecError(f"unknown protocol field(s): {', '.join(unknown)}")
        values = dict(data)
        if "filters" in values:
            values["filters"] = tuple(dict(f) for f in values["filters"])
        return cls(**values)
