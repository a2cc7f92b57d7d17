"""What to do next after each contract error, so a revert never ends a command without advice."""

from __future__ import annotations

from marketplace.errors import ContractRevert, FedmarketError

REVERT_HINTS: dict[str, str] = {
    "TaskNotFound": "list tasks with `fedmarket task list`; check --marketplace",
    "InvalidTerms": "fix the task terms in the spec file (reward, rounds, periods, participants)",
    "EmptyCid": "the upload to IPFS returned nothing; check --ipfs-api",
    "WrongStatus": "the task is in another phase; see `fedmarket task status ID`",
    "WrongRoundStatus": "the round is in another phase; see `fedmarket task status ID`",
    "NotTaskOwner": "sign with the account that published the task (--account)",
    "NotAggregator": "sign with the task's aggregator account (--account)",
    "NotArbiter": "only the task's arbiter may resolve disputes",
    "WrongStake": "the stake is fixed by the task; see `fedmarket task show ID`",
    "BondAlreadyPosted": "nothing to do: the bond is in",
    "BondMissing": "the aggregator must post its bond before the task can start",
    "AlreadyJoined": "nothing to do: this account is in the task; train with `fedmarket run ID --data FILE`",
    "TaskFull": "the task has all the data owners it takes; pick another from `fedmarket task list`",
    "JoinClosed": "joining is over for this task; pick another from `fedmarket task list`",
    "TooFewDataOwners": "wait for more data owners to join, then start again",
    "NotParticipant": "join the task first with `fedmarket join ID`",
    "Removed": "this account was removed from the task by the aggregation rules",
    "WrongRound": "another round is open; see `fedmarket task status ID`",
    "SubmissionClosed": "the round's submission deadline passed; submit in the next round",
    "AlreadySubmitted": "nothing to do: this round has your update; wait for the next round",
    "InvalidCommitment": "the update commitment is malformed; update fedmarket",
    "RoundStillOpen": "wait until every data owner submitted or the deadline passed",
    "AggregationClosed": "the aggregation deadline passed; anyone may now cancel the task",
    "ProofRejected": "the verifier refused the round's proof; the aggregator must recompute it",
    "CannotCancelYet": "wait until the deadline shown, then cancel again",
    "NotClosed": "the task is not over (or a round is unsettled); see `fedmarket task status ID`",
    "NothingToWithdraw": "nothing is owed to this account on this task; see `fedmarket earnings ID`",
    "DisputeWindowOpen": "wait for the dispute window to close, then settle",
}


def explain(exc: FedmarketError) -> str:
    """One line: the error, and what to do next."""
    if isinstance(exc, ContractRevert):
        hint = REVERT_HINTS.get(exc.error_name, "")
        detail = ", ".join(f"{k}={v}" for k, v in exc.error_args.items())
        text = f"the contract refused: {exc.error_name}({detail})"
        return f"{text}; {hint}" if hint else text
    return str(exc)
