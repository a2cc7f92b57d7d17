"""A task owner's TOML spec file, parsed and checked before anything is uploaded or spent.

Amounts are wei integers or strings such as "3 ether" / "0.1 eth" / "20 gwei"; durations are seconds or
strings such as "90s", "30m", "1h", "7d". Paths are relative to the spec file.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from eth_utils import is_address, to_checksum_address

from aggregator.protocol import filter_pipeline
from client.owner import ZERO_ADDRESS, TaskTerms, recorded_rules
from client.training import TrainConfig
from marketplace.chain.marketplace_contract import ETH, PayoutPolicy, Rules
from marketplace.data import DataSchema, Dataset, load_data_file
from marketplace.errors import FedmarketError
from marketplace.models import ModelSpec
from marketplace.task_spec import ProtocolSpec, TaskSpec
from marketplace.text import PPM
from marketplace.updates import key_from_hex

UNITS = {"wei": 1, "gwei": 10**9, "eth": 10**18, "ether": 10**18}
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SECTIONS = {"task", "model", "data", "aggregator", "training", "rules", "aggregation", "protocol"}
PROTOCOL_KEYS = {
    "proof",
    "rule_version",
    "generator_tag",
    "value_bits",
    "gamma",
    "alpha",
    "beta",
    "filter_threshold",
    "norm_ratio",
    "dropped_score",
    "missing_score",
    "removal_rounds",
    "filters",
    "shapley",
}


class SpecFileError(FedmarketError):
    """The spec file is unreadable or a value in it is missing, unknown or out of range."""


@dataclass(frozen=True)
class SpecFile:
    """Everything `task publish` needs: the terms for the chain, the spec for IPFS, the validation set."""

    path: Path
    name: str
    description: str
    model: ModelSpec
    schema: DataSchema
    validation: Dataset
    validation_path: Path
    aggregator_public_key: str
    terms: TaskTerms
    training: dict[str, Any] = field(default_factory=dict)
    aggregation: dict[str, Any] = field(default_factory=dict)
    scale_bits: int = 16
    model_seed: int = 0
    protocol: ProtocolSpec | None = None  # [protocol]: the protocol round's rules (None: legacy FedAvg round)

    def task_spec(self, validation_cid: str) -> TaskSpec:
        spec = TaskSpec(
            name=self.name, description=self.description, model=self.model, data_schema=self.schema,
            validation_cid=validation_cid, aggregator_public_key=self.aggregator_public_key,
            scale_bits=self.scale_bits, training=self.training, aggregation=self.aggregation or {"rule": "fedavg"},
        )  # fmt: skip
        if self.protocol is None:
            return spec
        return replace(spec, protocol=self.protocol.to_dict(), bound=self.protocol.bound)


def parse_amount(value: Any, what: str) -> int:
    """Wei from an integer or "<number> <unit>"."""
    if isinstance(value, int) and not isinstance(value, bool):
        amount = value
    elif isinstance(value, str):
        number, _, unit = value.strip().partition(" ")
        unit = unit.strip().lower() or "wei"
        if unit not in UNITS:
            raise SpecFileError(f"{what}: unknown unit {unit!r}", hint=f"use one of {', '.join(UNITS)}")
        try:
            amount = int(Decimal(number) * UNITS[unit])
        except InvalidOperation:
            raise SpecFileError(f"{what}: {value!r} is not an amount", hint='write e.g. "0.5 ether"') from None
    else:
        raise SpecFileError(f"{what}: {value!r} is not an amount", hint='write e.g. "0.5 ether" or wei')
    if amount < 0:
        raise SpecFileError(f"{what} must not be negative")
    return amount


def parse_duration(value: Any, what: str) -> int:
    """Seconds from an integer or "<number><s|m|h|d>"."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and value.strip()[-1:] in SECONDS:
        text = value.strip()
        try:
            seconds = int(Decimal(text[:-1]) * SECONDS[text[-1]])
        except InvalidOperation:
            raise SpecFileError(f"{what}: {value!r} is not a duration", hint='write e.g. "30m" or "1h"') from None
    else:
        raise SpecFileError(f"{what}: {value!r} is not a duration", hint='write e.g. "90s", "30m", "1h", "7d"')
    if seconds < 0:
        raise SpecFileError(f"{what} must not be negative")
    return seconds


def _section(document: dict[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    table = document.get(name)
    if table is None:
        if required:
            raise SpecFileError(f"spec file has no [{name}] section")
        return {}
    if not isinstance(table, dict):
        raise SpecFileError(f"[{name}] must be a table")
    return table


def _required(table: dict[str, Any], section: str, key: str) -> Any:
    if key not in table:
        raise SpecFileError(f"[{section}] needs `{key}`")
    return table[key]


def _check_keys(table: dict[str, Any], section: str, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpecFileError(f"[{section}] has unknown key(s) {', '.join(unknown)}", hint=f"known: {sorted(allowed)}")


def _training(table: dict[str, Any]) -> dict[str, Any]:
    try:
        TrainConfig.from_dict(table)
    except (TypeError, ValueError) as exc:
        raise SpecFileError(f"[training]: {exc}") from exc
    return dict(table)


def _rules(table: dict[str, Any]) -> Rules:
    _check_keys(table, "rules", {"clip_norm", "alpha", "beta", "slash", "payout"})
    payout = str(table.get("payout", "proportional")).upper()
    if payout not in PayoutPolicy.__members__:
        raise SpecFileError(f"[rules] payout {payout.lower()!r} is unknown", hint="proportional or equal")
    fractions = {k: float(table.get(k, d)) for k, d in (("alpha", 0.95), ("beta", 1 / 3), ("slash", 0.5))}
    for key, value in fractions.items():
        if not 0.0 <= value <= 1.0:
            raise SpecFileError(f"[rules] {key} must be between 0 and 1, got {value}")
    return Rules(
        clip_norm=int(table.get("clip_norm", 0)),
        alpha_ppm=round(fractions["alpha"] * PPM),
        beta_ppm=round(fractions["beta"] * PPM),
        slash_bps=round(fractions["slash"] * 10_000),
        payout_policy=PayoutPolicy[payout],
    )


def _protocol(table: dict[str, Any], terms: TaskTerms, model: ModelSpec) -> ProtocolSpec | None:
    """[protocol] → ProtocolSpec, checked against the terms (a Groth16 circuit is built for exactly n owners)."""
    if not table:
        return None
    _check_keys(table, "protocol", PROTOCOL_KEYS)
    values = dict(table)
    # exact fractions "0.5", "1/3"; numbers as written
    for key in ("alpha", "beta", "filter_threshold", "norm_ratio", "missing_score"):
        if key in values:
            values[key] = str(values[key])
    if "filters" in values:
        filters = values["filters"]
        if not isinstance(filters, list) or not all(isinstance(f, dict) and "name" in f for f in filters):
            raise SpecFileError("[protocol] filters must be a list of tables with a `name`",
                                hint='write e.g. filters = [{ name = "norm_outlier", k = 4.0 }]')  # fmt: skip
    try:
        rules = ProtocolSpec.from_dict(values)
    except (TypeError, ValueError) as exc:
        raise SpecFileError(f"[protocol]: {exc}") from exc
    except FedmarketError as exc:
        raise SpecFileError(f"[protocol]: {exc}") from None
    try:
        filter_pipeline(rules, model)
    except FedmarketError as exc:
        raise SpecFileError(f"[protocol] {exc.args[0]}", hint=exc.hint) from None
    if rules.proof == "groth16" and terms.min_participants != terms.max_participants:
        raise SpecFileError("[protocol] proof = \"groth16\" needs min_data_owners == max_data_owners",
                            hint="the rules circuit is built for exactly max_data_owners data owners")  # fmt: skip
    return rules


def _disputes(task: dict[str, Any], window: int) -> dict[str, Any]:
    """Who rules on a disputed round, the challenger's bond and the arbiter's time: all three are needed once
    the dispute `window` is above 0 (the contract refuses the task otherwise, after the spec was uploaded)."""
    arbiter = str(task.get("arbiter", ZERO_ADDRESS))
    if not is_address(arbiter):
        raise SpecFileError(f"[task] arbiter {arbiter!r} is not an Ethereum address")
    bond = parse_amount(task.get("challenge_bond", 0), "[task] challenge_bond")
    period = parse_duration(task.get("arbitration_period", window), "[task] arbitration_period")
    if window and (int(arbiter, 16) == 0 or bond == 0 or period == 0):
        raise SpecFileError("[task] dispute_window > 0 needs an arbiter, a challenge_bond and an arbitration_period",
                            hint='e.g. arbiter = "0x…", challenge_bond = "0.05 ether" (the period defaults to '
                                 "the dispute window)")  # fmt: skip
    return {"arbiter": to_checksum_address(arbiter), "challenge_bond": bond, "arbitration_period": period}


def _public_key_from_file(spec_path: Path, aggregator: dict[str, Any]) -> str:
    """The public half of an X25519 key file (stored in clear beside the encrypted private half)."""
    if "public_key_file" not in aggregator:
        raise SpecFileError("[aggregator] needs `public_key` (hex) or `public_key_file`")
    key_path = spec_path.parent / str(aggregator["public_key_file"])
    try:
        return str(json.loads(key_path.read_text())["public_key"])
    except (OSError, ValueError, KeyError) as exc:
        raise SpecFileError(f"cannot read the aggregator's public key from {key_path}: {exc}") from exc


def load_spec_file(path: Path) -> SpecFile:
    """Parse and check a spec file: every value typed, the aggregator key valid, the validation set readable
    and matching the data schema."""
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SpecFileError(f"cannot read spec file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecFileError(f"{path} is not valid TOML: {exc}") from exc
    _check_keys(document, "top level", SECTIONS)
    task, model, data = _section(document, "task"), _section(document, "model"), _section(document, "data")
    aggregator = _section(document, "aggregator")
    _check_keys(task, "task", {
        "name", "description", "reward", "token", "stake", "rounds", "min_data_owners", "max_data_owners",
        "join_period", "round_duration", "aggregation_period", "dispute_window", "aggregator_bond", "model_seed",
        "scale_bits", "arbiter", "challenge_bond", "arbitration_period",
    })  # fmt: skip
    _check_keys(model, "model", {"kind", "hidden"})
    _check_keys(data, "data", {"num_features", "num_classes", "feature_names", "validation"})
    _check_keys(aggregator, "aggregator", {"address", "public_key", "public_key_file"})
    try:
        schema = DataSchema(
            int(_required(data, "data", "num_features")), int(_required(data, "data", "num_classes")),
            tuple(data.get("feature_names", ())),
        )  # fmt: skip
        kind = str(model.get("kind", "mlp"))
        hidden = tuple(model.get("hidden", (32,) if kind == "mlp" else ()))
        model_spec = ModelSpec(kind, schema.num_features, schema.num_classes, hidden)
    except (TypeError, ValueError) as exc:
        raise SpecFileError(f"{path}: {exc}") from exc

    validation_path = (path.parent / str(_required(data, "data", "validation"))).resolve()
    validation = load_data_file(validation_path, schema)  # readable, and matching the schema

    address = str(_required(aggregator, "aggregator", "address"))
    if not is_address(address):
        raise SpecFileError(f"[aggregator] address {address!r} is not an Ethereum address")
    public_key = str(aggregator.get("public_key") or _public_key_from_file(path, aggregator))
    try:
        key_from_hex(public_key)
    except FedmarketError as exc:
        raise SpecFileError(f"[aggregator] public_key is not an X25519 key: {exc}",
                            hint="the aggregator prints it with `fedmarket account x25519-new`") from None  # fmt: skip

    token = str(task.get("token", "ETH"))
    if token.upper() == "ETH":
        token = ETH
    elif not is_address(token):
        raise SpecFileError(f"[task] token {token!r} is neither ETH nor an ERC-20 address")
    rounds = int(_required(task, "task", "rounds"))
    max_owners = int(_required(task, "task", "max_data_owners"))
    min_owners = int(task.get("min_data_owners", 1))
    if rounds < 1 or not 1 <= min_owners <= max_owners:
        raise SpecFileError("[task] needs rounds >= 1 and 1 <= min_data_owners <= max_data_owners")
    reward = parse_amount(_required(task, "task", "reward"), "[task] reward")
    if reward < rounds:
        raise SpecFileError("[task] reward must be at least one wei per round")
    round_duration = parse_duration(task.get("round_duration", "1h"), "[task] round_duration")
    dispute_window = parse_duration(task.get("dispute_window", 0), "[task] dispute_window")
    rules_table = _section(document, "rules", required=False)
    terms = TaskTerms(
        reward=reward,
        stake=parse_amount(task.get("stake", 0), "[task] stake"),
        rounds=rounds,
        round_duration=round_duration,
        aggregator=to_checksum_address(address),
        max_participants=max_owners,
        min_participants=min_owners,
        token=to_checksum_address(token),
        aggregator_bond=parse_amount(task.get("aggregator_bond", 0), "[task] aggregator_bond"),
        join_period=parse_duration(task.get("join_period", "7d"), "[task] join_period"),
        aggregation_period=parse_duration(task.get("aggregation_period", round_duration), "[task] aggregation_period"),
        dispute_window=dispute_window,
        rules=_rules(rules_table),
        **_disputes(task, dispute_window),
    )
    scale_bits = int(task.get("scale_bits", 16))
    protocol = _protocol(_section(document, "protocol", required=False), terms, model_spec)
    stated = sorted({"alpha", "beta", "clip_norm"} & set(rules_table))
    if protocol is not None and stated:
        raise SpecFileError(f"[rules] {', '.join(stated)}: a task with [protocol] sets alpha, beta and gamma there",
                            hint="keep slash and payout in [rules]; the chain records [protocol]'s values")  # fmt: skip
    terms = replace(terms, rules=recorded_rules(terms.rules, protocol, scale_bits))
    return SpecFile(
        path=path,
        name=str(_required(task, "task", "name")),
        description=str(task.get("description", "")),
        model=model_spec,
        schema=schema,
        validation=validation,
        validation_path=validation_path,
        aggregator_public_key=public_key,
        terms=terms,
        training=_training(_section(document, "training", required=False)),
        aggregation=dict(_section(document, "aggregation", required=False)),
        scale_bits=scale_bits,
        model_seed=int(task.get("model_seed", 0)),
        protocol=protocol,
    )
