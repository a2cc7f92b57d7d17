"""Reading and writing a task's files on IPFS: the spec, global models, the validation set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from marketplace.data import Dataset, decode_npz, encode_npz
from marketplace.ipfs import IpfsClient
from marketplace.task_spec import MAX_SPEC_BYTES, TaskSpec
from marketplace.updates import pack_model, unpack_model

MAX_VALIDATION_BYTES = 256 << 20


@dataclass
class Traffic:
    """Bytes a role sent to and fetched from IPFS, for the demo's per-round table."""

    uploaded: int = 0
    downloaded: int = 0

    @property
    def total(self) -> int:
        return self.uploaded + self.downloaded


class TaskFiles:
    """One IPFS client plus the byte counts of what went through it."""

    def __init__(self, ipfs: IpfsClient) -> None:
        self.ipfs = ipfs
        self.traffic = Traffic()

    def put(self, data: bytes) -> str:
        cid = self.ipfs.add(data)
        self.traffic.uploaded += len(data)
        return cid

    def get(self, cid: str, max_bytes: int) -> bytes:
        data = self.ipfs.cat(cid, max_bytes)
        self.traffic.downloaded += len(data)
        return data

    def spec(self, cid: str) -> TaskSpec:
        return TaskSpec.from_json(self.get(cid, MAX_SPEC_BYTES))

    def put_spec(self, spec: TaskSpec) -> str:
        return self.put(spec.to_json())

    def model(self, cid: str, spec: TaskSpec) -> dict[str, np.ndarray]:
        arrays, _ = unpack_model(self.get(cid, spec.max_model_bytes), spec.shapes, spec.max_model_bytes)
        return arrays

    def put_model(self, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
        return self.put(pack_model(arrays, metadata))

    def validation_set(self, spec: TaskSpec) -> Dataset:
        return decode_npz(self.get(spec.validation_cid, MAX_VALIDATION_BYTES), spec.data_schema)

    def put_dataset(self, ds: Dataset) -> str:
        return self.put(encode_npz(ds))
