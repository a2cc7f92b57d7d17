"""The task spec a project owner publishes on IPFS: everything a data owner and an auditor need to know."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from marketplace.data import DataSchema
from marketplace.errors import FedmarketError
from marketplace.models import ModelSpec, expected_shapes
from marketplace.text import PPM
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
                protocol=published_protocol(document.get("protocol", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TaskSpecError(f"task spec is malformed: {exc!r}") from exc


PROOF_MODES = ("groth16", "pedersen", "none")
#: How RFFL scores a row the filters dropped, in a Pedersen or unverified task (ProtocolSpec.dropped_score).
DROPPED_SCORES = ("cosine", "capped")
#: Groth16 rule versions (zk/groth16): rffl-v1 (rules over Poseidon commitments, unproven `kept` flags),
#: rffl-v2 (rffl-v1 + the proven cosine filter + the Poseidon <-> Pedersen link, LinkedRulesRoundVerifier) and
#: rffl-v3 (rffl-v2 + the proven norm-ratio filter + capped scores for dropped rows, the same adapter) and
#: rffl-v4 (rffl-v3 + the missing score, which rffl-v3 proves at 0).
RULE_VERSIONS = ("rffl-v1", "rffl-v2", "rffl-v3", "rffl-v4")
DEFAULT_RULE_VERSION = "rffl-v2"
#: Rule versions whose circuit proves the `kept` flags and is linked to the Pedersen commitments.
LINKED_VERSIONS = ("rffl-v2", "rffl-v3", "rffl-v4")
#: Rule versions that prove the norm-ratio filter and cap the scores of the rows the filters drop.
CAPPED_VERSIONS = ("rffl-v3", "rffl-v4")
#: The only entry of `filters` the linked versions allow: RFFL's own clip (their filters are proven).
V2_FILTERS = ("clip",)


def published_protocol(protocol: dict[str, Any]) -> dict[str, Any]:
    """A published spec's protocol table; one written before rule versions existed (a Groth16 task without
    `rule_version`) was proven with rffl-v1, so it is read as such."""
    protocol = dict(protocol)
    if protocol.get("proof") == "groth16" and "rule_version" not in protocol:
        protocol["rule_version"] = "rffl-v1"
    return protocol


def _exact_number(raw: object, name: str, expected: str) -> Fraction:
    """A protocol parameter given as an exact decimal or fraction ("0.5", "1/3") or a number."""
    try:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Fraction)):
            raise ValueError(raw)
        return Fraction(str(raw))
    except (ValueError, ZeroDivisionError):
        raise TaskSpecError(f"protocol {name} must be {expected}, got {raw!r}") from None


@dataclass(frozen=True)
class ProtocolSpec:
    """The rules of a protocol round, published so data owners and auditors know what the aggregator must do.

    proof: "groth16" (Pedersen layer 1 + Groth16 rules proof), "pedersen" (layer 1 only) or "none" (unverified).
    gamma: RFFL clip norm Γ in model units; alpha, beta: RFFL (β as an exact fraction "1/3").
    removal_rounds: RFFL removes owners (and the contract slashes them) in rounds 1..removal_rounds only; later
        rounds apply β = 0 and reputations only weight the aggregate. None (the default): every round.
    value_bits: every quantized coordinate lies in [-(2^value_bits - 1), 2^value_bits - 1] (the circuit's range).
    filters: robust rules run before RFFL (aggregator.pipeline rule entries; clip is RFFL's own). `consistency`
        compares each owner's update with its latest earlier one, read back from the chain and IPFS; `overshoot`
        tries each update on the validation set from the model the chain names (a boosted update does far worse
        at its full step than at a shorter one); `feature_outlier` reads the model's first weight matrix (its
        `units × inputs` must be that matrix's shape) for input features an update alone trains (a backdoor).
    shapley: options of aggregator.shapley.round_shapley; contributions use the validation set.
    verifying_key_cid: the Groth16 verifying key (snarkjs JSON) on IPFS, for auditors.
    rule_version: the Groth16 circuit and verifier (proof "groth16" only): "rffl-v2" (default: rules, proven
        cosine filter and the Poseidon <-> Pedersen link), "rffl-v3" (+ the proven norm filter, capped scores),
        "rffl-v4" (+ a proven missing_score) or "rffl-v1" (older tasks); empty for other proofs.
    filter_threshold: the cosine filter τ in [-1, 1] (exact decimal or fraction, like alpha): row i is kept
        iff trunc(ONE·cos(q_i, ref)) ≥ ⌊τ·ONE⌋, ref the base-weighted mean of the live rows
        (aggregator.fixedpoint.cosine_filter); "-1" keeps every live row. rffl-v2 to rffl-v4 prove it and allow
        no other filter; a Pedersen or unverified task runs it unproven.
    norm_ratio: the norm filter k (0, the default, is off; else ≥ 1, exact like alpha): a live row is dropped
        when ‖q_i‖ > k × the lower median norm of the round's live rows (aggregator.fixedpoint.norm_ratio_filter);
        rffl-v3 and rffl-v4 prove it, a Pedersen or unverified task runs it unproven. Under them, and in a Pedersen or
        unverified task that sets τ or k, every dropped row scores min(cos, missing_score) (fixedpoint.rffl_round
        capped).
    dropped_score: how RFFL scores a row the filters dropped, in a Pedersen or unverified task: "cosine" (the
        default) by its cosine to the aggregate it was left out of, or "capped", min(cos, missing_score), like a
        sender of nothing (what τ or k imply, and rffl-v3 proves with a score of 0): a noisy update left out still
        carries an honest part that keeps its cosine positive. Groth16 tasks take it from their rule version.
    missing_score: what a live owner that sent nothing valid scores, and, with capped scores, the most a row
        the filters dropped scores: min(cos, missing_score). In [-1, 0], exact like alpha; "0" (the default) is
        a sender of nothing. A negative value lowers a dropped owner's reputation every round it is dropped,
        so at a slow α it leaves within a removal window (the research path's specs v10 and v11 use -0.25). Pedersen
        or unverified tasks, and Groth16 rule version rffl-v4 (which proves it; the others prove 0).
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
    rule_version: str = ""
    filter_threshold: str = "-1"
    removal_rounds: int | None = None
    norm_ratio: str = "0"
    dropped_score: str = "cosine"
    missing_score: str = "0"

    def __post_init__(self) -> None:
        if self.proof not in PROOF_MODES:
            raise TaskSpecError(f"protocol proof must be one of {', '.join(PROOF_MODES)}, got {self.proof!r}")
        window = self.removal_rounds
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 0):
            raise TaskSpecError(f"protocol removal_rounds must be a non-negative integer, got {window!r}",
                                hint="leave it out to let RFFL remove owners in every round")  # fmt: skip
        self._check_rule_version()
        if self.dropped_score not in DROPPED_SCORES:
            raise TaskSpecError(f"protocol dropped_score must be one of {', '.join(DROPPED_SCORES)}, "
                                f"got {self.dropped_score!r}")  # fmt: skip
        if self.dropped_score != "cosine" and self.proof == "groth16":
            raise TaskSpecError("protocol dropped_score applies to proof pedersen or none only: a Groth16 task's "
                                "rule version fixes it (rffl-v3 and rffl-v4 cap dropped rows)",
                                hint='drop dropped_score, or choose rule_version "rffl-v3" or "rffl-v4"')  # fmt: skip
        self._check_missing_score()
        if not 1 <= int(self.value_bits) <= 39:
            raise TaskSpecError(f"protocol value_bits must be in 1..39, got {self.value_bits!r}")
        if not float(self.gamma) > 0:
            raise TaskSpecError(f"protocol gamma must be positive, got {self.gamma!r}")

    def _check_rule_version(self) -> None:
        version = self.rule_version or (DEFAULT_RULE_VERSION if self.proof == "groth16" else "")
        if self.proof != "groth16" and version:
            raise TaskSpecError(f"protocol rule_version {version!r} needs proof \"groth16\" (proof is {self.proof!r})",
                                hint="drop rule_version, or set proof = \"groth16\"")  # fmt: skip
        if self.proof == "groth16" and version not in RULE_VERSIONS:
            raise TaskSpecError(f"protocol rule_version must be one of {', '.join(RULE_VERSIONS)}, got {version!r}")
        object.__setattr__(self, "rule_version", version)
        raw = self.filter_threshold
        threshold = _exact_number(raw, "filter_threshold", "a number in [-1, 1]")
        if not -1 <= threshold <= 1:
            raise TaskSpecError(f"protocol filter_threshold must lie in [-1, 1], got {raw!r}")
        object.__setattr__(self, "filter_threshold", str(raw))
        capped = [str(f.get("name")) for f in self.filters if "capped" in (f.get("twin_score"), f.get("outlier_score"))]
        if capped:
            raise TaskSpecError(
                f"protocol filter(s) {', '.join(capped)} ask for capped reputation scores filter by filter, which "
                f"the protocol's fixed-point RFFL does not apply (a research-path option of aggregator.pipeline; "
                f"rule version rffl-v3 caps every row its proven filters drop)",
                hint='drop twin_score/outlier_score; a Pedersen or unverified task may set dropped_score = "capped" '
                'for every filter, a Groth16 task may choose rule_version "rffl-v3"',
            )
        if version in LINKED_VERSIONS:
            unproven = [str(f.get("name")) for f in self.filters if f.get("name") not in V2_FILTERS]
            if unproven:
                raise TaskSpecError(
                    f"rule_version {version} proves its own filters (filter_threshold"
                    f"{', norm_ratio' if version in CAPPED_VERSIONS else ''}) and cannot prove filter(s) "
                    f"{', '.join(unproven)}",
                    hint='drop them and set filter_threshold, or choose rule_version "rffl-v1"',
                )
        elif threshold != -1 and version:
            raise TaskSpecError(
                f"protocol filter_threshold applies to rule versions rffl-v2 to rffl-v4 and to proof pedersen or "
                f"none only (this task: {version})",
                hint="use `filters` for the robust rules of rffl-v1",
            )
        self._check_norm_ratio(version)

    def _check_norm_ratio(self, version: str) -> None:
        raw = self.norm_ratio
        ratio = _exact_number(raw, "norm_ratio", "0 or a number ≥ 1")
        if ratio != 0 and (ratio < 1 or ratio > 64):
            raise TaskSpecError(f"protocol norm_ratio must be 0 (off) or in [1, 64], got {raw!r}",
                                hint="3 drops updates over 3 × the round's median norm")  # fmt: skip
        if ratio != 0 and version not in (*CAPPED_VERSIONS, ""):
            raise TaskSpecError(
                f"protocol norm_ratio applies to rule versions rffl-v3 and rffl-v4 and to proof pedersen or none only "
                f"(this task: {version})",
                hint='set rule_version = "rffl-v3", or use the norm_outlier filter of rffl-v1',
            )
        object.__setattr__(self, "norm_ratio", str(raw))

    def _check_missing_score(self) -> None:
        raw = self.missing_score
        score = _exact_number(raw, "missing_score", "a number in [-1, 0]")
        if not -1 <= score <= 0:
            raise TaskSpecError(f"protocol missing_score must lie in [-1, 0], got {raw!r}",
                                hint='"-1/4": a dropped or missing update lowers its owner\'s reputation')  # fmt: skip
        if score != 0 and self.proof == "groth16" and self.rule_version != "rffl-v4":
            raise TaskSpecError(f"protocol missing_score applies to proof pedersen or none and to rule version "
                                f"rffl-v4 only: {self.rule_version} proves a score of 0",
                                hint='drop missing_score, or choose rule_version "rffl-v4"')  # fmt: skip
        object.__setattr__(self, "missing_score", str(raw))

    @property
    def missing_score_fp(self) -> int:
        """missing_score in the fixed point of aggregator.fixedpoint: ⌊s·ONE⌋ (0 for Groth16 tasks before rffl-v4)."""
        from aggregator.fixedpoint import to_fixed

        return to_fixed(Fraction(self.missing_score))

    @property
    def linked(self) -> bool:
        """True for rffl-v2 to rffl-v4: the Groth16 proof decides `kept` and is bound to the Pedersen
        commitments (zk/groth16/linked.py)."""
        return self.proof == "groth16" and self.rule_version in LINKED_VERSIONS

    @property
    def fixed_filters(self) -> bool:
        """A Pedersen or unverified task that runs the protocol's own filters (filter_threshold, norm_ratio:
        aggregator.fixedpoint.filtered_rows), unproven; rffl-v2 to rffl-v4 prove the same integers."""
        return self.proof != "groth16" and (Fraction(self.filter_threshold) != -1 or Fraction(self.norm_ratio) != 0)

    @property
    def capped(self) -> bool:
        """Rows the filters drop score min(cos, missing_score) (aggregator.fixedpoint.rffl_round): rffl-v3 and
        rffl-v4, tasks with fixed_filters, and Pedersen or unverified tasks that ask for it (dropped_score)."""
        proven = self.proof == "groth16" and self.rule_version in CAPPED_VERSIONS
        return proven or self.fixed_filters or self.dropped_score == "capped"

    @property
    def norm_ratio_sq_fp(self) -> int:
        """⌊k²·ONE⌋, the norm filter's bound on ‖q‖²/median (0: off)."""
        from aggregator.fixedpoint import to_fixed

        return to_fixed(Fraction(self.norm_ratio) ** 2)

    @property
    def filter_threshold_fp(self) -> int:
        """τ in the fixed point of aggregator.fixedpoint: ⌊τ·ONE⌋ (−ONE keeps every live row)."""
        from aggregator.fixedpoint import to_fixed

        return to_fixed(Fraction(self.filter_threshold))

    def beta_in_round(self, round_number: int) -> Fraction:
        """The removal threshold β round `round_number` applies (0 past the removal window)."""
        from aggregator.reputation import removal_beta

        return removal_beta(Fraction(self.beta), self.removal_rounds, round_number)

    @property
    def bound(self) -> int:
        """The largest quantized magnitude a data owner may send."""
        return (1 << self.value_bits) - 1

    def chain_record(self, scale_bits: int) -> dict[str, int]:
        """The contract's Rules fields for Γ, α and β (Γ at the task's fixed-point scale, α and β in parts per
        million): the values the aggregator runs and the proofs bind, so a reader of the chain sees those."""
        return {
            "clip_norm": round(self.gamma * 2**scale_bits),
            "alpha_ppm": round(Fraction(self.alpha) * PPM),
            "beta_ppm": round(Fraction(self.beta) * PPM),
        }

    def to_dict(self) -> dict[str, Any]:
        return (
            {
                "proof": self.proof,
                "generator_tag": self.generator_tag,
                "value_bits": self.value_bits,
                "gamma": self.gamma,
                "alpha": self.alpha,
                "beta": self.beta,
                "filters": [dict(f) for f in self.filters],
                "shapley": dict(self.shapley),
                "verifying_key_cid": self.verifying_key_cid,
                "rule_version": self.rule_version,
                "filter_threshold": self.filter_threshold,
            }
            | ({} if self.removal_rounds is None else {"removal_rounds": self.removal_rounds})
            | ({"norm_ratio": self.norm_ratio} if self.rule_version in CAPPED_VERSIONS or self.fixed_filters else {})
            | ({} if self.dropped_score == "cosine" else {"dropped_score": self.dropped_score})
            | ({} if Fraction(self.missing_score) == 0 else {"missing_score": self.missing_score})
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProtocolSpec:
        known = {"proof", "generator_tag", "value_bits", "gamma", "alpha", "beta", "filters", "shapley",
                 "verifying_key_cid", "rule_version", "filter_threshold", "removal_rounds", "norm_ratio",
                 "dropped_score", "missing_score"}  # fmt: skip
        unknown = sorted(set(data) - known)
        if unknown:
            raise TaskSpecError(f"unknown protocol field(s): {', '.join(unknown)}")
        values = dict(data)
        if "filters" in values:
            values["filters"] = tuple(dict(f) for f in values["filters"])
        return cls(**values)
