"""What the service reads from IPFS: task specs (cached in SQL) and round accuracies computed on the owner's
validation set from the round's model CID (computed once, lazily, and cached on the round's row).

CIDs come from the chain, i.e. from anyone, so every fetch is size-capped and fails fast; failures are cached
as well, so a missing CID costs one lookup, not one per page view. An unreachable node is not the CID's
failure: nothing is cached then, and the next page view asks again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from marketplace.data import Dataset, decode_npz
from marketplace.errors import FedmarketError, ServiceUnavailableError
from marketplace.ipfs import IpfsClient
from marketplace.models import build_model, load_arrays
from marketplace.service.db import RoundRow, SpecCache, TaskRow
from marketplace.task_files import MAX_VALIDATION_BYTES
from marketplace.task_spec import MAX_SPEC_BYTES, TaskSpec
from marketplace.updates import unpack_model

log = logging.getLogger(__name__)

MAX_MODEL_BYTES = 64 << 20


class ContentStore:
    """Fetches from one IPFS node; keeps a few validation sets in memory because they are the large part."""

    def __init__(self, api_url: str | None, timeout: float = 2.0, cached_datasets: int = 4) -> None:
        self.api_url = api_url
        self.timeout = timeout
        self._datasets: OrderedDict[str, Dataset] = OrderedDict()
        self._cached_datasets = cached_datasets
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.api_url is not None

    def _client(self) -> IpfsClient:
        assert self.api_url is not None
        return IpfsClient(self.api_url, timeout=max(self.timeout * 5, 10.0), lookup_timeout=self.timeout)

    def fetch(self, cid: str, max_bytes: int) -> bytes:
        """Raw bytes of a CID, bounded; raises FedmarketError when the node cannot serve it."""
        if not self.enabled:
            raise FedmarketError("no IPFS node configured")
        with self._client() as client:
            return client.cat(cid, max_bytes)

    # --- specs -----------------------------------------------------------------------------

    def spec_document(self, db: Session, cid: str) -> tuple[dict[str, Any] | None, str | None]:
        """The spec as JSON and an error text (one of the two is None); cached in the database."""
        try:
            return self._spec_document(db, cid)
        except ServiceUnavailableError as exc:
            return None, f"the IPFS node did not answer (asked again on the next view): {exc}"

    def _spec_document(self, db: Session, cid: str) -> tuple[dict[str, Any] | None, str | None]:
        """spec_document, raising ServiceUnavailableError (uncached) when the node cannot be reached."""
        cached = db.get(SpecCache, cid)
        if cached is not None:
            return cached.document, cached.error
        if not self.enabled:
            return None, "no IPFS node configured"
        document: dict[str, Any] | None = None
        error: str | None = None
        try:
            raw = self.fetch(cid, MAX_SPEC_BYTES)
            TaskSpec.from_json(raw)  # refuse what is not a valid spec, but keep the document as published
            document = json.loads(raw)
        except ServiceUnavailableError:
            raise
        except FedmarketError as exc:
            error = str(exc)
        db.merge(SpecCache(cid=cid, document=document, error=error))
        try:
            db.commit()
        except IntegrityError:  # the spec thread and a page view fetched it at once; the other stored it first
            db.rollback()
        return document, error

    def warm_specs(
        self, sessions: sessionmaker[Any], stop: threading.Event, interval: float, retry_missing: float = 300.0
    ) -> None:
        """Fetch every indexed task's spec not yet cached, until `stop`: task lists then show names without
        a fetch per view, and a node that did not answer is asked again next time. A spec the node could not
        find is looked up again every `retry_missing` seconds: content published elsewhere can take a while
        to reach the network, and one failed lookup should not hide a task's spec for good."""
        forgotten_at = time.monotonic()
        while not stop.wait(interval):
            if not self.enabled:
                return
            try:
                with sessions() as db:
                    if time.monotonic() - forgotten_at >= retry_missing:
                        db.execute(delete(SpecCache).where(SpecCache.error.is_not(None)))
                        db.commit()
                        forgotten_at = time.monotonic()
                    cached = select(SpecCache.cid)
                    for cid in db.scalars(select(TaskRow.spec_cid).where(TaskRow.spec_cid.not_in(cached))).all():
                        if stop.is_set():
                            return
                        self.spec_document(db, cid)
            except Exception as exc:  # a background cache: one failed pass must not end the thread for good
                log.warning("spec cache pass failed (tried again in %.0f s): %s", interval, exc)

    # --- accuracy --------------------------------------------------------------------------

    def round_accuracy(self, db: Session, row: RoundRow, spec_cid: str) -> None:
        """Fill `row.accuracy` (or `row.accuracy_error`) once; later calls return at once."""
        if row.model_cid is None or row.accuracy is not None or row.accuracy_error is not None:
            return
        try:
            document, error = self._spec_document(db, spec_cid)
            if document is None:
                row.accuracy_error = f"spec unavailable: {error}"
            else:
                row.accuracy = self._accuracy(TaskSpec.from_json(json.dumps(document).encode()), row.model_cid)
        except ServiceUnavailableError:
            return  # left unset: the next view tries again
        except (FedmarketError, ValueError, RuntimeError) as exc:
            row.accuracy_error = str(exc)[:500]
        db.commit()

    def _accuracy(self, spec: TaskSpec, model_cid: str) -> float:
        validation = self._validation_set(spec)
        arrays, _ = unpack_model(
            self.fetch(model_cid, min(spec.max_model_bytes, MAX_MODEL_BYTES)), spec.shapes, spec.max_model_bytes
        )
        model = build_model(spec.model, seed=0)
        load_arrays(model, arrays)
        model.eval()
        with torch.no_grad():
            logits = model(torch.from_numpy(np.ascontiguousarray(validation.X)))
            predicted = logits.argmax(dim=1).numpy()
        return float((predicted == validation.y).mean())

    def _validation_set(self, spec: TaskSpec) -> Dataset:
        with self._lock:
            if spec.validation_cid in self._datasets:
                self._datasets.move_to_end(spec.validation_cid)
                return self._datasets[spec.validation_cid]
        dataset = decode_npz(self.fetch(spec.validation_cid, MAX_VALIDATION_BYTES), spec.data_schema)
        if len(dataset) == 0:
            raise FedmarketError("the validation set is empty")
        with self._lock:
            self._datasets[spec.validation_cid] = dataset
            while len(self._datasets) > self._cached_datasets:
                self._datasets.popitem(last=False)
        return dataset
