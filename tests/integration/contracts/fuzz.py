"""A hypothesis state machine that drives random sequences of every Marketplace call on a real Anvil chain.

After every step it checks that money is conserved per token (deposited - withdrawn == balance == `held`), that
for every task the amounts still owed never exceed what the task holds (and equal it once the task is closed),
that each withdrawal pays exactly what the contract said the caller was owed, that each settled round credits
what the payout rule says, and that a stranger's transaction to a restricted call is mined, fails and changes
nothing. The CI test and `benchmarks/contracts_soak.py` run it with different step budgets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from eth_account.signers.local import LocalAccount
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from web3 import Web3
from web3.exceptions import ContractLogicError

from marketplace.chain.artifacts import load_artifact
from marketplace.chain.erc20 import Erc20
from marketplace.chain.events import (
    BondPosted,
    ChainEvent,
    DisputeLapsed,
    DisputeResolved,
    Joined,
    RewardCredited,
    RoundChallenged,
    RoundFinalized,
    RoundSettled,
    TaskCancelled,
    TaskCreated,
    TaskFinished,
    TaskStarted,
    Withdrawn,
    events_in_receipt,
)
from marketplace.chain.marketplace_contract import (
    ETH,
    ZERO_POINT,
    MarketplaceContract,
    PayoutPolicy,
    RoundReport,
    Rules,
    TaskTerms,
)
from marketplace.chain.revert import decode_revert
from marketplace.chain.session import ChainSession
from marketplace.errors import ContractRevert

OWNERS = (0, 7)
AGGREGATOR, ARBITER, STRANGER = 1, 2, 3
DATA_OWNERS = (4, 5, 6, 8)
OUTSIDER = 9  # holds no role and never challenges: every restricted call it makes must fail
ACTORS = (*OWNERS, AGGREGATOR, ARBITER, STRANGER, *DATA_OWNERS, OUTSIDER)
GAS = 6_000_000
UNIT = 10**15
TIME_JUMPS = (1, 10, 30, 60, 120, 201, 301, 700, 4000)


@dataclass
class FuzzStats:
    """Counts across all examples of one run, for the CI assertion and the soak report."""

    steps: int = 0
    examples: int = 0
    calls: int = 0
    reverts: dict[str, int] = field(default_factory=dict)
    successes: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)


@dataclass
class World:
    """What lives across examples: the chain, the deployed contracts, and a snapshot to return to."""

    w3: Web3
    accounts: list[LocalAccount]
    market: MarketplaceContract
    token: Erc20
    verifier: str
    snapshot: str = ""
    nonces: dict[str, int] = field(default_factory=dict)
    stats: FuzzStats = field(default_factory=FuzzStats)

    @classmethod
    def build(cls, w3: Web3, accounts: list[LocalAccount]) -> World:
        deployer = ChainSession(w3, accounts[0])
        market, _ = MarketplaceContract.deploy(deployer)
        token = Erc20.deploy(deployer)
        artifact = load_artifact("WeightSumVerifier")
        verifier, _ = deployer.deploy(artifact["abi"], artifact["bytecode"])
        for i in ACTORS:
            session = ChainSession(w3, accounts[i])
            token.mint(session.address, 10**30)
            token.with_session(session).approve(market.address, 2**256 - 1)
        world = cls(w3, accounts, market, token, verifier)
        world.take_snapshot()
        return world

    def take_snapshot(self) -> None:
        self.snapshot = self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        self.nonces = {a.address: self.w3.eth.get_transaction_count(a.address) for a in self.accounts}

    def reset(self) -> None:
        """Back to the freshly deployed state (Anvil consumes a snapshot on revert: take a new one)."""
        assert self.w3.provider.make_request("evm_revert", [self.snapshot])["result"]  # type: ignore[arg-type]
        self.take_snapshot()


@dataclass
class TaskModel:
    """What the test knows of one task from the calls it made."""

    task_id: int
    owner: int
    terms: TaskTerms
    members: list[int] = field(default_factory=list)
    deposited: int = 0
    withdrawn: int = 0
    contributions: dict[int, tuple[int, ...]] = field(default_factory=dict)
    removals: dict[int, int] = field(default_factory=dict)
    phase: str = "open"  # open, running, over (from the events the test saw)

    @property
    def token(self) -> str:
        return self.terms.token


def expected_credits(pool: int, contributions: tuple[int, ...], removals: int, policy: PayoutPolicy) -> list[int]:
    """The payout rule, written again in Python: shares of `pool` by max(c, 0) of non-removed owners."""
    weights = [
        0 if c <= 0 or (removals >> i) & 1 else (1 if policy is PayoutPolicy.EQUAL else c)
        for i, c in enumerate(contributions)
    ]
    total = sum(weights)
    return [pool * w // total if total else 0 for w in weights]


class MarketMachine(RuleBasedStateMachine):
    """One example: a fresh chain state, then random calls by every role, with the invariants after each."""

    world: World  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        self.world.reset()
        self.world.stats.examples += 1
        self.tasks: dict[int, TaskModel] = {}
        self.deposited: dict[str, int] = {ETH: 0, self.world.token.address: 0}
        self.withdrawn: dict[str, int] = {ETH: 0, self.world.token.address: 0}
        self.touched: int | None = None
        self.open_disputes: set[tuple[int, int]] = set()

    # --- plumbing ------------------------------------------------------------------------------

    @property
    def market(self) -> Any:
        return self.world.market.contract

    def address(self, i: int) -> str:
        return str(self.world.accounts[i].address)

    def send(self, i: int, name: str, *args: Any, value: int = 0) -> list[ChainEvent] | None:
        """Sign and mine one call without simulating it first; returns its events, or None if it reverted
        (then the revert must be one of the contract's custom errors, never a panic or unknown data)."""
        world, account = self.world, self.world.accounts[i]
        call = getattr(self.market.functions, name)(*args)
        tx = call.build_transaction({
            "from": account.address, "value": value, "gas": GAS, "nonce": world.nonces[account.address],
            "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 0, "chainId": 31337,
        })  # fmt: skip
        world.nonces[account.address] += 1
        tx_hash = world.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = world.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
        world.stats.calls += 1
        if receipt["status"] == 1:
            world.stats.successes[name] = world.stats.successes.get(name, 0) + 1
            events = events_in_receipt(world.market.contract, receipt)
            for event in events:
                if isinstance(event, RoundChallenged):
                    self.open_disputes.add((event.task_id, event.round))
                elif isinstance(event, DisputeResolved | DisputeLapsed):
                    self.open_disputes.discard((event.task_id, event.round))
                phase = {TaskStarted: "running", TaskFinished: "over", TaskCancelled: "over"}.get(type(event))
                if phase and event.task_id in self.tasks:  # type: ignore[attr-defined]
                    self.tasks[event.task_id].phase = phase  # type: ignore[attr-defined]
            return events
        error = self._replay(call, account.address, value, receipt["blockNumber"] - 1)
        assert error.error_name not in ("Panic", "Unknown", "Error"), f"{name} failed without a custom error: {error}"
        world.stats.reverts[error.error_name] = world.stats.reverts.get(error.error_name, 0) + 1
        return None

    def _replay(self, call: Any, sender: str, value: int, block: int) -> ContractRevert:
        try:
            call.call({"from": sender, "value": value, "gas": GAS}, block)
        except ContractLogicError as exc:
            data = exc.data if isinstance(exc.data, str) else "0x"
            return decode_revert(bytes.fromhex(data[2:]), self.market.abi)
        raise AssertionError("a failed transaction succeeds when replayed")

    def account_events(self, events: list[ChainEvent] | None) -> None:
        """Book every deposit and withdrawal the events show, per token and per task."""
        for event in events or []:
            amount = 0
            if isinstance(event, TaskCreated):
                continue  # booked by create_task, which knows the terms
            if isinstance(event, Joined):
                amount = event.stake
            elif isinstance(event, BondPosted | RoundChallenged):
                amount = event.amount if isinstance(event, BondPosted) else event.bond
            elif isinstance(event, Withdrawn):
                task = self.tasks[event.task_id]
                task.withdrawn += event.amount
                self.withdrawn[task.token] += event.amount
                continue
            else:
                continue
            task = self.tasks[event.task_id]  # type: ignore[attr-defined]
            task.deposited += amount
            self.deposited[task.token] += amount

    def value_for(self, task: TaskModel, amount: int) -> int:
        return amount if task.token == ETH else 0

    def task(self, data: st.DataObject, with_rounds: bool = False, running: bool = False) -> TaskModel | None:
        ids = sorted(t.task_id for t in self.tasks.values() if t.contributions or not with_rounds)
        live = [i for i in ids if self.tasks[i].phase == "running"]
        if running and live and data.draw(st.integers(0, 4), label="prefer running"):
            ids = live
        if not ids:
            return None
        task = self.tasks[data.draw(st.sampled_from(ids), label="task")]
        self.touched = task.task_id
        return task

    def step(self) -> None:
        self.world.stats.steps += 1

    # --- rules ---------------------------------------------------------------------------------

    @initialize(
        erc20=st.booleans(),
        rounds=st.integers(1, 3),
        joiners=st.sampled_from((0, 1, 2, 3, 3, 4, 4)),
        bond=st.sampled_from((0, 3 * UNIT)),
        window=st.sampled_from((0, 200)),
        policy=st.sampled_from(PayoutPolicy),
        start=st.sampled_from((True, True, True, False)),
    )
    def warm_start(
        self, erc20: bool, rounds: int, joiners: int, bond: int, window: int, policy: PayoutPolicy, start: bool
    ) -> None:
        """Most examples begin from a published (often running) task, so that short runs reach deep states."""
        self.create_task(OWNERS[0], erc20, rounds, 4, bond, window, policy, 5_000, False, 10**18 + 3, 0, False)
        self._populate(self.tasks[self.touched or 0], joiners, start)

    @precondition(lambda self: len(self.tasks) < 4)
    @rule(
        owner=st.sampled_from(OWNERS),
        erc20=st.booleans(),
        rounds=st.integers(1, 3),
        max_owners=st.integers(1, 4),
        bond=st.sampled_from((0, 3 * UNIT)),
        window=st.sampled_from((0, 200)),
        policy=st.sampled_from(PayoutPolicy),
        slash_bps=st.sampled_from((0, 3_333, 10_000)),
        unverified=st.booleans(),
        reward=st.integers(1, 10**18),
        joiners=st.integers(0, 4),
        start=st.booleans(),
    )
    def create_task(
        self, owner: int, erc20: bool, rounds: int, max_owners: int, bond: int, window: int,
        policy: PayoutPolicy, slash_bps: int, unverified: bool, reward: int, joiners: int, start: bool,
    ) -> None:  # fmt: skip
        self.step()
        terms = TaskTerms(
            token=self.world.token.address if erc20 else ETH, reward=reward, aggregator=self.address(AGGREGATOR),
            stake=UNIT + 7, arbiter=self.address(ARBITER), aggregator_bond=bond,
            verifier="0x" + "00" * 20 if unverified else self.world.verifier, challenge_bond=2 * UNIT + 1,
            unverified=unverified, rounds=rounds, min_data_owners=1, max_data_owners=max_owners, join_period=600,
            submission_period=300, aggregation_period=300, dispute_window=window, arbitration_period=400,
            rules=Rules(slash_bps=slash_bps, payout_policy=policy),
        )  # fmt: skip
        model = TaskModel(0, owner, terms)
        value = self.value_for(model, reward)
        events = self.send(owner, "createTask", terms.to_abi(), "bafyspec", "bafymodel0", value=value)
        assert events is not None, "valid terms must be accepted"
        created = next(e for e in events if isinstance(e, TaskCreated))
        model.task_id = created.task_id
        model.deposited = reward
        self.deposited[terms.token] += reward
        self.tasks[created.task_id] = model
        self.touched = created.task_id
        self._populate(model, joiners, start)

    def _populate(self, task: TaskModel, joiners: int, start: bool) -> None:
        for who in DATA_OWNERS[: min(joiners, task.terms.max_data_owners)]:
            self.account_events(self.send(who, "join", task.task_id, value=self.value_for(task, task.terms.stake)))
            task.members.append(who)
        if task.terms.aggregator_bond:
            bond = self.value_for(task, task.terms.aggregator_bond)
            self.account_events(self.send(AGGREGATOR, "postBond", task.task_id, value=bond))
        if start and task.members:
            assert self.send(task.owner, "startTask", task.task_id) is not None

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), who=st.sampled_from(DATA_OWNERS), wrong_value=st.booleans())
    def join(self, data: st.DataObject, who: int, wrong_value: bool) -> None:
        self.step()
        if (task := self.task(data)) is None:
            return
        value = self.value_for(task, task.terms.stake) + (1 if wrong_value else 0)
        events = self.send(who, "join", task.task_id, value=value)
        if events is not None:
            task.members.append(who)
        self.account_events(events)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def post_bond(self, data: st.DataObject) -> None:
        self.step()
        if (task := self.task(data)) is None:
            return
        self.account_events(self.send(AGGREGATOR, "postBond", task.task_id,
                                      value=self.value_for(task, task.terms.aggregator_bond)))

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def start_task(self, data: st.DataObject) -> None:
        self.step()
        if (task := self.task(data)) is not None:
            self.send(task.owner, "startTask", task.task_id)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), poseidon=st.integers(0, 2**64), infinity=st.booleans())
    def submit(self, data: st.DataObject, poseidon: int, infinity: bool) -> None:
        self.step()
        if (task := self.task(data, running=True)) is None:
            return
        who = data.draw(st.sampled_from(task.members or list(DATA_OWNERS)) | st.sampled_from(DATA_OWNERS), label="who")
        round_ = self.world.market.get_task(task.task_id).current_round
        point = [0, 0] if infinity else [1, 2]
        self.send(who, "submitUpdate", task.task_id, round_, "bafyupdate", b"\x11" * 32, point, poseidon)

    @precondition(lambda self: self.tasks)
    @rule(
        data=st.data(),
        contributions=st.lists(st.integers(-(2**20), 2**20), min_size=4, max_size=4),
        removal_bits=st.integers(0, 15),
        tamper=st.sampled_from(("none", "none", "none", "proof", "point", "length")),
    )
    def finalize(self, data: st.DataObject, contributions: list[int], removal_bits: int, tamper: str) -> None:
        self.step()
        if (task := self.task(data)) is None:
            return
        info = self.world.market.get_task(task.task_id)
        n, round_ = info.data_owners, info.current_round
        subs = self.world.market.submissions(task.task_id, round_) if round_ else {}
        removals = removal_bits & ((1 << n) - 1) & ~info.removed_mask
        values = tuple(contributions[i] if i in subs else 0 for i in range(n))
        weights = tuple(1 if i in subs and not (removals >> i) & 1 else 0 for i in range(n))
        report = RoundReport(
            model_cid=f"bafymodel{round_}",
            commitments=tuple(subs[i].commitment if i in subs else ZERO_POINT for i in range(n)),
            poseidons=tuple(subs[i].poseidon if i in subs else 0 for i in range(n)),
            weights=weights, reputations=(1,) * n, contributions=values, removals=removals,
            model_commitment=(1, 2), proof=sum(weights).to_bytes(32, "big"),
        )  # fmt: skip
        if tamper == "proof":
            report = replace(report, proof=(sum(weights) + 1).to_bytes(32, "big"))
        elif tamper == "point":
            report = replace(report, poseidons=tuple(p + 1 for p in report.poseidons))
        elif tamper == "length":
            report = replace(report, weights=(*weights, 0))
        events = self.send(AGGREGATOR, "finalizeRound", task.task_id, round_, report.to_abi())
        if events is not None:
            assert tamper == "none" or (tamper == "proof" and task.terms.unverified)
            finalized = next(e for e in events if isinstance(e, RoundFinalized))
            task.contributions[round_] = finalized.contributions
            task.removals[round_] = finalized.removals

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), contributions=st.lists(st.integers(-5, 2**40), min_size=4, max_size=4))
    def honest_round(self, data: st.DataObject, contributions: list[int]) -> None:
        """Every active member submits, then the aggregator posts a valid report: the path most tasks take."""
        self.step()
        if (task := self.task(data, running=True)) is None:
            return
        info = self.world.market.get_task(task.task_id)
        if info.current_round == 0:
            return
        for index, who in enumerate(task.members):
            if not (info.removed_mask >> index) & 1:
                self.send(who, "submitUpdate", task.task_id, info.current_round, "bafyu", b"\x22" * 32, [1, 2], index)
        self.finalize(data, contributions, data.draw(st.sampled_from((0, 0, 0, 1, 2, 4)), label="removals"), "none")
        self.world.stats.steps -= 1  # finalize counted itself

    @precondition(lambda self: any(t.contributions for t in self.tasks.values()))
    @rule(data=st.data())
    def close_out(self, data: st.DataObject) -> None:
        """Let every window and arbitration period run out, settle every finalized round, and let everyone withdraw."""
        self.step()
        if (task := self.task(data, with_rounds=True)) is None:
            return
        self.time_passes(task.terms.dispute_window + task.terms.arbitration_period + 1)
        self.world.stats.steps -= 1
        for round_, values in sorted(task.contributions.items()):
            if self.world.market.get_round(task.task_id, round_).status == 2:  # finalized, not yet settled
                self.account_events(self.send(STRANGER, "settleRound", task.task_id, round_, list(values)))
        for who in ACTORS:
            (owed, closed) = self.world.market.payout_of(task.task_id, self.address(who))
            if (owed.total if closed else owed.challenge_credit) == 0:
                continue
            events = self.send(who, "withdraw", task.task_id)
            assert events is not None
            self.account_events(events)
            assert sum(e.amount for e in events if isinstance(e, Withdrawn)) == (
                owed.total if closed else owed.challenge_credit
            )

    @precondition(lambda self: any(t.contributions for t in self.tasks.values()))
    @rule(data=st.data(), wrong=st.booleans())
    def settle(self, data: st.DataObject, wrong: bool) -> None:
        self.step()
        if (task := self.task(data, with_rounds=True)) is None:
            return
        round_ = data.draw(st.sampled_from(sorted(task.contributions)), label="round")
        values = task.contributions[round_]
        if wrong:
            values = (*values[:-1], values[-1] + 1) if values else (1,)
        events = self.send(STRANGER, "settleRound", task.task_id, round_, list(values))
        self.account_events(events)
        if events is None:
            return
        assert not wrong
        settled = next(e for e in events if isinstance(e, RoundSettled))
        credited = {e.data_owner: e.amount for e in events if isinstance(e, RewardCredited)}
        members = self.world.market.get_participants(task.task_id)
        expected = expected_credits(settled.pool, values, task.removals[round_], task.terms.rules.payout_policy)
        assert {members[i]: a for i, a in enumerate(expected) if a} == credited
        assert settled.credited == sum(expected) and settled.to_owner == settled.pool - settled.credited

    @precondition(lambda self: any(t.contributions for t in self.tasks.values()))
    @rule(data=st.data(), who=st.sampled_from((STRANGER, *DATA_OWNERS, *OWNERS)))
    def challenge(self, data: st.DataObject, who: int) -> None:
        self.step()
        if (task := self.task(data, with_rounds=True)) is None:
            return
        round_ = data.draw(st.sampled_from(sorted(task.contributions)), label="round")
        value = self.value_for(task, task.terms.challenge_bond)
        self.account_events(self.send(who, "challengeRound", task.task_id, round_, "bafyevidence", value=value))

    @precondition(lambda self: any(t.contributions for t in self.tasks.values()))
    @rule(data=st.data(), upheld=st.booleans())
    def resolve(self, data: st.DataObject, upheld: bool) -> None:
        self.step()
        if self.open_disputes and data.draw(st.integers(0, 4), label="an open dispute"):
            task_id, round_ = data.draw(st.sampled_from(sorted(self.open_disputes)), label="dispute")
            self.touched = task_id
            self.send(ARBITER, "resolveDispute", task_id, round_, upheld)
            return
        if (task := self.task(data, with_rounds=True)) is None:
            return
        round_ = data.draw(st.sampled_from(sorted(task.contributions)), label="round")
        self.send(ARBITER, "resolveDispute", task.task_id, round_, upheld)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), who=st.sampled_from((STRANGER, STRANGER, *DATA_OWNERS, AGGREGATOR, OWNERS[0])))
    def cancel(self, data: st.DataObject, who: int) -> None:
        self.step()
        if (task := self.task(data)) is not None:
            self.send(who, "cancelTask", task.task_id)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), who=st.sampled_from(ACTORS))
    def withdraw(self, data: st.DataObject, who: int) -> None:
        self.step()
        if (task := self.task(data)) is None:
            return
        (owed, closed) = self.world.market.payout_of(task.task_id, self.address(who))
        events = self.send(who, "withdraw", task.task_id)
        self.account_events(events)
        paid = sum(e.amount for e in events or [] if isinstance(e, Withdrawn))
        if events is None:
            assert (owed.total if closed else owed.challenge_credit) == 0
        else:  # exactly what the contract said the caller was owed, no more
            assert paid == (owed.total if closed else owed.challenge_credit) > 0

    @rule(seconds=st.sampled_from(TIME_JUMPS))
    def time_passes(self, seconds: int) -> None:
        self.step()
        self.world.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), call=st.sampled_from(("start", "bond", "finalize", "resolve", "submit", "withdraw")))
    def stranger_call(self, data: st.DataObject, call: str) -> None:
        """A stranger's transaction to a restricted call is mined, fails, and changes nothing."""
        self.step()
        if (task := self.task(data)) is None:
            return
        before = self.fingerprint(task)
        tid = task.task_id
        empty = RoundReport.empty("bafyx", len(task.members)).to_abi()
        args: dict[str, tuple[str, tuple[Any, ...], int]] = {
            "start": ("startTask", (tid,), 0),
            "bond": ("postBond", (tid,), self.value_for(task, task.terms.aggregator_bond)),
            "finalize": ("finalizeRound", (tid, 1, empty), 0),
            "resolve": ("resolveDispute", (tid, 1, True), 0),
            "submit": ("submitUpdate", (tid, 1, "bafyx", b"\x00" * 32, [0, 0], 0), 0),
            "withdraw": ("withdraw", (tid,), 0),
        }
        name, call_args, value = args[call]
        assert self.send(OUTSIDER, name, *call_args, value=value) is None
        assert self.fingerprint(task) == before

    def fingerprint(self, task: TaskModel) -> tuple[Any, ...]:
        market = self.world.market
        info = market.get_task(task.task_id)
        round_ = market.get_round(task.task_id, max(info.current_round, 1))
        return (info, round_, market.held(ETH), market.held(self.world.token.address),
                market.payout_of(task.task_id, self.address(OUTSIDER)))  # fmt: skip

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def money_is_conserved(self) -> None:
        world, market = self.world, self.market
        token = world.token.contract
        with world.w3.batch_requests() as batch:
            batch.add(world.w3.eth.get_balance(world.market.address))
            batch.add(token.functions.balanceOf(world.market.address))
            batch.add(market.functions.held(ETH))
            batch.add(market.functions.held(world.token.address))
            eth_balance, token_balance, eth_held, token_held = batch.execute()
        for name, balance, held in (
            (ETH, eth_balance, eth_held),
            (world.token.address, token_balance, token_held),
        ):
            assert self.deposited[name] - self.withdrawn[name] == balance == held, name

    @invariant()
    def every_task_owes_what_it_holds(self) -> None:
        if self.touched is None:
            return
        task = self.tasks[self.touched]
        market = self.market
        with self.world.w3.batch_requests() as batch:
            batch.add(market.functions.getTask(task.task_id))
            for i in ACTORS:
                batch.add(market.functions.payoutOf(task.task_id, self.address(i)))
            state, *payouts = batch.execute()
        owed = sum(p[0][6] for p in payouts)
        balance = task.deposited - task.withdrawn
        closed = state[1] in (3, 4) and state[3] == 0
        if closed:
            assert owed == balance, (owed, balance)
        else:
            assert owed <= balance, (owed, balance)
