// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

/// @title Marketplace types, errors and events
/// @notice Everything an off-chain client or indexer needs to speak to the Marketplace, in one place.
/// @dev Amounts are in the task's token (address(0) = ETH) and bounded by uint96 in the terms, so that every
///      sum the contract forms (reward + stakes + bonds of at most 256 data owners) fits in uint128.
interface IMarketplaceTypes {
    /// @notice Life cycle of a task. Open: joining; Running: rounds; Finished: last round finalized;
    ///         Cancelled: stopped early (owner before the start, or anyone after a missed deadline).
    enum Status {
        None,
        Open,
        Running,
        Finished,
        Cancelled
    }

    /// @notice Life cycle of a round. Open: taking submissions; Finalized: in its dispute window;
    ///         Settled: rewards and slashes credited; Voided: an upheld dispute threw its numbers away.
    enum RoundStatus {
        None,
        Open,
        Finalized,
        Settled,
        Voided
    }

    /// @notice How a round's pool splits. Proportional: by max(contribution, 0); Equal: the same to every
    ///         non-removed data owner with a positive contribution.
    enum PayoutPolicy {
        Proportional,
        Equal
    }

    /// @notice The task's published aggregation rules (fixed point, parts per million), recorded for auditors.
    struct Rules {
        uint64 clipNorm; // clip norm Gamma, in the task's fixed-point scale
        uint32 alphaPpm; // RFFL reputation decay alpha, parts per million
        uint32 betaPpm; // RFFL removal threshold beta, parts per million
        uint16 slashBps; // share of a removed data owner's stake given to the honest ones, basis points
        PayoutPolicy payoutPolicy;
    }

    /// @notice What the task owner fixes when publishing a task.
    struct TaskTerms {
        address token; // address(0) = ETH, else an ERC-20 without transfer fees
        uint96 reward; // escrowed by the owner, split evenly across rounds
        address aggregator; // the only account that may finalize rounds
        uint96 stake; // each data owner's deposit
        address arbiter; // resolves disputes (a multisig, or a contract that re-executes)
        uint96 aggregatorBond; // posted by the aggregator before the start
        address verifier; // IRoundVerifier checked at every finalize; address(0) only with `unverified`
        uint96 challengeBond; // posted by whoever disputes a round
        bool unverified; // explicit opt-out of proof checking
        uint32 rounds;
        uint16 minDataOwners;
        uint16 maxDataOwners; // at most 256: removals travel as a 256-bit mask
        uint32 joinPeriod; // seconds from publication during which data owners may join
        uint32 submissionPeriod; // seconds each round takes submissions
        uint32 aggregationPeriod; // seconds after the submission deadline the aggregator has to finalize
        uint32 disputeWindow; // seconds after a finalize during which the round may be challenged
        uint32 arbitrationPeriod; // seconds the arbiter has to resolve a challenge
        Rules rules;
    }

    /// @notice A task's progress. ownerCredit collects what goes back to the owner: rounding dust, pools nobody
    ///         earned, voided and never-run rounds.
    struct TaskState {
        address owner;
        Status status;
        uint32 currentRound;
        uint32 unsettledRounds;
        uint16 dataOwners;
        bool bondPosted;
        uint64 joinDeadline;
        uint16 removedCount;
        uint16 slashedCount;
        bool ownerPaid;
        bool aggregatorPaid;
        bool aggregatorFault;
        uint128 ownerCredit;
        uint128 bondForfeited;
        uint256 removedMask;
        uint256 slashedMask;
        string specCid;
        string modelCid;
    }

    /// @notice One round. A challenger is set while a dispute is open.
    struct RoundState {
        uint64 submitDeadline;
        uint64 aggregateDeadline;
        uint64 disputeDeadline;
        uint16 submitted;
        RoundStatus status;
        address challenger;
        uint64 challengeDeadline;
        uint128 extraPool;
        uint256 removals;
        bytes32 contributionsDigest;
    }

    /// @notice One data owner in one task.
    struct Member {
        bool joined;
        bool withdrawn;
        uint16 index;
        uint128 earned;
    }

    /// @notice What the aggregator posts to close a round. Arrays run over data owners in join order.
    struct RoundReport {
        string modelCid;
        uint256[2] modelCommitment;
        uint256[2][] commitments; // as submitted; (0, 0) for data owners that did not submit
        uint256[] poseidons; // as submitted; 0 for data owners that did not submit
        uint256[] weights; // integer aggregation weights, 0 = left out
        uint256[] reputations; // RFFL reputations after the round, fixed point 2^20 = 1 (the rules proof's scale)
        int128[] contributions; // round contribution values; payouts follow max(value, 0)
        uint256 removals; // bit i set: data owner i is removed from now on and slashed
        bytes proof;
    }

    /// @notice What one account may take out of a task, by source.
    struct Payout {
        uint256 earned;
        uint256 stake;
        uint256 bondShare;
        uint256 ownerRefund;
        uint256 aggregatorBond;
        uint256 challengeCredit;
        uint256 total;
    }

    error TaskNotFound(uint256 taskId);
    error InvalidTerms(string reason);
    error EmptyCid();
    error WrongStatus(uint256 taskId, Status expected, Status actual);
    error WrongRoundStatus(uint256 taskId, uint32 round, RoundStatus expected, RoundStatus actual);
    error NotTaskOwner(address caller, address owner);
    error NotAggregator(address caller, address aggregator);
    error NotArbiter(address caller, address arbiter);
    error WrongStake(uint256 expected, uint256 sent);
    error BondAlreadyPosted(uint256 taskId);
    error BondMissing(uint256 taskId);
    error AlreadyJoined(address account);
    error TaskFull(uint16 maxDataOwners);
    error JoinClosed(uint64 deadline, uint256 timestamp);
    error TooFewDataOwners(uint16 minimum, uint16 joined);
    error NotParticipant(address account);
    error Removed(address account);
    error WrongRound(uint32 expected, uint32 given);
    error SubmissionClosed(uint64 deadline, uint256 timestamp);
    error AlreadySubmitted(address account, uint32 round);
    error InvalidCommitment(address account);
    error RoundStillOpen(uint64 deadline, uint16 submitted, uint16 active);
    error AggregationClosed(uint64 deadline, uint256 timestamp);
    error LengthMismatch(uint256 expected, uint256 given);
    error InvalidRemovals(uint256 removals);
    error SubmissionMismatch(uint256 index);
    error NotSubmitted(uint256 index);
    error ProofRejected(uint256 taskId, uint32 round);
    error CannotCancelYet(uint256 taskId, uint64 allowedAfter);
    error DisputeWindowClosed(uint64 deadline, uint256 timestamp);
    error DisputeWindowOpen(uint64 deadline, uint256 timestamp);
    error DisputeAlreadyOpen(address challenger);
    error NoDispute(uint256 taskId, uint32 round);
    error DisputeOpen(uint64 resolveDeadline);
    error DisputeExpired(uint64 resolveDeadline, uint256 timestamp);
    error DisputesDisabled(uint256 taskId);
    error ContributionsMismatch(uint256 taskId, uint32 round);
    error NotClosed(uint256 taskId);
    error NothingToWithdraw(address account);

    /// @notice A task was published and its reward escrowed. `unverified` flags a task that skips proofs.
    event TaskCreated(
        uint256 indexed taskId,
        address indexed owner,
        address indexed aggregator,
        TaskTerms terms,
        bool unverified,
        string specCid,
        string initialModelCid,
        uint64 joinDeadline
    );
    /// @notice The aggregator posted its bond.
    event BondPosted(uint256 indexed taskId, address indexed aggregator, uint256 amount);
    /// @notice A data owner joined and posted its stake.
    event Joined(uint256 indexed taskId, address indexed dataOwner, uint16 index, uint256 stake);
    /// @notice Joining closed; training starts.
    event TaskStarted(uint256 indexed taskId, uint16 dataOwners);
    /// @notice A round opened for submissions against the given global model.
    event RoundOpened(
        uint256 indexed taskId, uint32 indexed round, string globalModelCid, uint64 submitDeadline, uint64 aggregateDeadline
    );
    /// @notice A data owner recorded its sealed update and its commitments.
    event UpdateSubmitted(
        uint256 indexed taskId,
        uint32 indexed round,
        address indexed dataOwner,
        uint16 index,
        string updateCid,
        bytes32 contentHash,
        uint256[2] commitment,
        uint256 poseidon
    );
    /// @notice The aggregator closed a round; its numbers can be challenged until `disputeDeadline`.
    event RoundFinalized(
        uint256 indexed taskId,
        uint32 indexed round,
        string modelCid,
        uint256[2] modelCommitment,
        uint256[] weights,
        uint256[] reputations,
        int128[] contributions,
        uint256 removals,
        uint64 disputeDeadline
    );
    /// @notice Someone disputed a round's numbers and posted a bond.
    event RoundChallenged(
        uint256 indexed taskId,
        uint32 indexed round,
        address indexed challenger,
        uint256 bond,
        string evidenceCid,
        uint64 resolveDeadline
    );
    /// @notice The arbiter ruled. Upheld: the round is voided, the challenger is owed `challengerCredit`
    ///         (bond + aggregator bond share). Rejected: the bond joins the round's pool (`toPool`).
    event DisputeResolved(
        uint256 indexed taskId,
        uint32 indexed round,
        address indexed challenger,
        bool upheld,
        uint256 challengerCredit,
        uint256 toPool
    );
    /// @notice The arbiter did not rule in time; the challenger gets its bond back and the round stands.
    event DisputeLapsed(uint256 indexed taskId, uint32 indexed round, address indexed challenger, uint256 refunded);
    /// @notice A data owner's share of a settled round was credited.
    event RewardCredited(
        uint256 indexed taskId, uint32 indexed round, address indexed dataOwner, int128 contribution, uint256 amount
    );
    /// @notice A removed data owner lost part of its stake to the round's pool.
    event Slashed(uint256 indexed taskId, uint32 indexed round, address indexed dataOwner, uint256 amount);
    /// @notice A round's money moved: `pool` = round reward + slashes + rejected bonds; `toOwner` = dust or unearned.
    event RoundSettled(
        uint256 indexed taskId, uint32 indexed round, bool voided, uint256 pool, uint256 credited, uint256 toOwner
    );
    /// @notice The last round was finalized.
    event TaskFinished(uint256 indexed taskId, string finalModelCid);
    /// @notice The task stopped early. `aggregatorFault`: the aggregator missed `round`'s deadline.
    event TaskCancelled(uint256 indexed taskId, address indexed caller, bool aggregatorFault, uint32 round, uint256 toOwner);
    /// @notice Money left the contract.
    event Withdrawn(uint256 indexed taskId, address indexed account, address indexed token, uint256 amount);
}
