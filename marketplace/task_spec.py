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

    def __post_init__(self) -> None:
        if not self.name:
            raise TaskSpecError("task spec needs a name")
        if not self.validation_cid:
            raise TaskSpecError("task spec needs the validation set's CID")
        key_from_hex(self.aggregator_public_key)

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
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TaskSpecError(f"task spec is malformed: {exc!r}") from exc
