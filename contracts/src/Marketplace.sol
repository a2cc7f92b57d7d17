// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IMarketplaceTypes} from "./interfaces/IMarketplaceTypes.sol";
import {TokenVault} from "./TokenVault.sol";
import {PayoutMath} from "./PayoutMath.sol";
import {RoundProofs} from "./RoundProofs.sol";

/// @title fedmarket Marketplace
/// @notice Runs federated-learning tasks: escrows the owner's reward (ETH or an ERC-20), takes data owners'
///         stakes and the aggregator's bond, records each round's submissions (sealed update CID, content hash,
///         Pedersen point, Poseidon element), accepts the aggregator's round only if the task's verifier agrees,
///         keeps each round open to disputes for a window, then credits rewards in proportion to the posted
///         contributions and slashes removed data owners. Money leaves only through `withdraw` (pull payments).
/// @dev Disputes are settled by a named arbiter for now. Because every input of a round (submission digests,
///      weights, contributions digest, removals) is on chain, the arbiter can be replaced by a contract that
///      re-executes the contribution computation (or verifies a ZK proof of it) and calls `resolveDispute`
///      itself: the Marketplace only trusts the arbiter address, not how it decides.
contract Marketplace is IMarketplaceTypes, TokenVault, ReentrancyGuardTransient {
    using PayoutMath for uint256;

    /// @notice Most data owners per task: removals travel as one 256-bit mask.
    uint16 public constant MAX_DATA_OWNERS = 256;
    /// @notice Denominator of `Rules.slashBps`.
    uint16 public constant BPS = 10_000;

    /// @notice Number of tasks created so far; task ids run from 1 to taskCount.
    uint256 public taskCount;

    mapping(uint256 taskId => TaskTerms) private _terms;
    mapping(uint256 taskId => TaskState) private _tasks;
    mapping(uint256 taskId => address[]) private _members;
    mapping(uint256 taskId => mapping(address account => Member)) private _memberOf;
    mapping(uint256 taskId => mapping(uint32 round => RoundState)) private _rounds;
    mapping(uint256 taskId => mapping(uint32 round => mapping(uint256 index => bytes32 digest))) private _submissions;
    mapping(uint256 taskId => mapping(address account => uint256 amount)) private _challengeCredit;

    modifier existing(uint256 taskId) {
        _requireExisting(taskId);
        _;
    }

    // ------------------------------------------------------------------ set-up

    /// @notice Publishes a task and escrows its reward (send ETH, or approve the ERC-20 first).
    /// @param terms Money, schedule, roles, verifier and rules of the task.
    /// @param specCid IPFS CID of the task spec (model, data schema, validation set, rules, aggregator key).
    /// @param initialModelCid IPFS CID of the round-1 global model.
    /// @return taskId Id of the new task.
    function createTask(TaskTerms calldata terms, string calldata specCid, string calldata initialModelCid)
        external
        payable
        nonReentrant
        returns (uint256 taskId)
    {
        _checkTerms(terms);
        if (bytes(specCid).length == 0 || bytes(initialModelCid).length == 0) revert EmptyCid();

        taskId = ++taskCount;
        _terms[taskId] = terms;
        TaskState storage task = _tasks[taskId];
        task.owner = msg.sender;
        task.status = Status.Open;
        task.joinDeadline = uint64(block.timestamp) + terms.joinPeriod;
        task.specCid = specCid;
        task.modelCid = initialModelCid;
        emit TaskCreated(
            taskId, msg.sender, terms.aggregator, terms, terms.unverified, specCid, initialModelCid, task.joinDeadline
        );
        _collect(terms.token, msg.sender, terms.reward);
    }

    /// @notice The aggregator posts its bond; required before the start when the terms ask for one.
    /// @param taskId Task to serve.
    function postBond(uint256 taskId) external payable nonReentrant existing(taskId) {
        TaskTerms storage terms = _terms[taskId];
        TaskState storage task = _tasks[taskId];
        if (msg.sender != terms.aggregator) revert NotAggregator(msg.sender, terms.aggregator);
        if (task.status != Status.Open) revert WrongStatus(taskId, Status.Open, task.status);
        if (task.bondPosted) revert BondAlreadyPosted(taskId);
        task.bondPosted = true;
        emit BondPosted(taskId, msg.sender, terms.aggregatorBond);
        _collect(terms.token, msg.sender, terms.aggregatorBond);
    }

    /// @notice Joins an open task with the stake (send ETH equal to the stake, or approve the ERC-20 first).
    /// @param taskId Task to join.
    function join(uint256 taskId) external payable nonReentrant existing(taskId) {
        TaskTerms storage terms = _terms[taskId];
        TaskState storage task = _tasks[taskId];
        if (task.status != Status.Open) revert WrongStatus(taskId, Status.Open, task.status);
        if (block.timestamp > task.joinDeadline) revert JoinClosed(task.joinDeadline, block.timestamp);
        if (terms.token == address(0) && msg.value != terms.stake) revert WrongStake(terms.stake, msg.value);
        Member storage member = _memberOf[taskId][msg.sender];
        if (member.joined) revert AlreadyJoined(msg.sender);
        if (task.dataOwners >= terms.maxDataOwners) revert TaskFull(terms.maxDataOwners);

        uint16 index = task.dataOwners;
        member.joined = true;
        member.index = index;
        task.dataOwners = index + 1;
        _members[taskId].push(msg.sender);
        emit Joined(taskId, msg.sender, index, terms.stake);
        _collect(terms.token, msg.sender, terms.stake);
    }

    /// @notice Closes joining and opens round 1. Only the task owner, once enough data owners joined and the
    ///         aggregator's bond is in.
    /// @param taskId Task to start.
    function startTask(uint256 taskId) external existing(taskId) {
        TaskTerms storage terms = _terms[taskId];
        TaskState storage task = _tasks[taskId];
        if (msg.sender != task.owner) revert NotTaskOwner(msg.sender, task.owner);
        if (task.status != Status.Open) revert WrongStatus(taskId, Status.Open, task.status);
        if (task.dataOwners < terms.minDataOwners) revert TooFewDataOwners(terms.minDataOwners, task.dataOwners);
        if (terms.aggregatorBond != 0 && !task.bondPosted) revert BondMissing(taskId);

        task.status = Status.Running;
        task.ownerCredit += terms.reward % terms.rounds; // what an even split per round leaves
        emit TaskStarted(taskId, task.dataOwners);
        _openRound(taskId, task, terms, 1);
    }

    // ------------------------------------------------------------------ rounds

    /// @notice Records the caller's update for the open round. One per data owner per round, before the deadline.
    /// @param taskId Task the update belongs to.
    /// @param round Round number; must be the open round.
    /// @param updateCid IPFS CID of the update sealed to the aggregator's key.
    /// @param contentHash sha256 of the plaintext update; the aggregator checks it after decrypting.
    /// @param commitment Pedersen commitment to the quantized update, a BN254 G1 point (x, y).
    /// @param poseidon Poseidon commitment to the update, a BN254 scalar field element (0 until the circuit uses it).
    function submitUpdate(
        uint256 taskId,
        uint32 round,
        string calldata updateCid,
        bytes32 contentHash,
        uint256[2] calldata commitment,
        uint256 poseidon
    ) external existing(taskId) {
        TaskState storage task = _tasks[taskId];
        if (task.status != Status.Running) revert WrongStatus(taskId, Status.Running, task.status);
        Member storage member = _memberOf[taskId][msg.sender];
        if (!member.joined) revert NotParticipant(msg.sender);
        uint16 index = member.index;
        if (task.removedMask.has(index)) revert Removed(msg.sender);
        if (round != task.currentRound) revert WrongRound(task.currentRound, round);
        RoundState storage state = _rounds[taskId][round];
        if (block.timestamp > state.submitDeadline) revert SubmissionClosed(state.submitDeadline, block.timestamp);
        if (bytes(updateCid).length == 0) revert EmptyCid();
        if (!RoundProofs.wellFormed(commitment, poseidon)) revert InvalidCommitment(msg.sender);
        mapping(uint256 => bytes32) storage digests = _submissions[taskId][round];
        if (digests[index] != bytes32(0)) revert AlreadySubmitted(msg.sender, round);

        digests[index] = RoundProofs.digest(commitment, poseidon);
        state.submitted += 1;
        emit UpdateSubmitted(taskId, round, msg.sender, index, updateCid, contentHash, commitment, poseidon);
    }

    /// @notice Closes the open round with the new global model and its numbers. Only the aggregator, once every
    ///         active data owner submitted or the submission deadline passed, and before the aggregation deadline.
    /// @dev Each submission's point and Poseidon element must match its stored digest; non-submitters get
    ///      (0, 0), 0, weight 0 and contribution 0. Unless the task is unverified, the verifier must accept.
    ///      Money moves later, in `settleRound`, after the dispute window.
    /// @param taskId Task to finalize.
    /// @param round Round number; must be the open round.
    /// @param report New model CID and commitment, per-owner commitments, weights, reputations, contributions,
    ///        removals and proof.
    function finalizeRound(uint256 taskId, uint32 round, RoundReport calldata report) external existing(taskId) {
        TaskTerms storage terms = _terms[taskId];
        TaskState storage task = _tasks[taskId];
        if (msg.sender != terms.aggregator) revert NotAggregator(msg.sender, terms.aggregator);
        if (task.status != Status.Running) revert WrongStatus(taskId, Status.Running, task.status);
        if (round != task.currentRound) revert WrongRound(task.currentRound, round);
        if (bytes(report.modelCid).length == 0) revert EmptyCid();
        RoundState storage state = _rounds[taskId][round];
        if (block.timestamp > state.aggregateDeadline) {
            revert AggregationClosed(state.aggregateDeadline, block.timestamp);
        }
        uint16 active = task.dataOwners - task.removedCount;
        if (state.submitted < active && block.timestamp <= state.submitDeadline) {
            revert RoundStillOpen(state.submitDeadline, state.submitted, active);
        }
        _checkReport(taskId, round, task, report, round == terms.rounds);
        if (!terms.unverified) {
            bool valid = RoundProofs.verify(
                terms.verifier, report.commitments, report.weights, report.modelCommitment, report.proof
            );
            if (!valid) revert ProofRejected(taskId, round);
        }

        uint64 disputeDeadline = uint64(block.timestamp) + terms.disputeWindow;
        state.status = RoundStatus.Finalized;
        state.disputeDeadline = disputeDeadline;
        state.removals = report.removals;
        state.contributionsDigest = keccak256(abi.encode(report.contributions));
        if (report.removals != 0) {
            task.removedMask |= report.removals;
            task.removedCount += uint16(report.removals.popcount());
        }
        task.unsettledRounds += 1;
        task.modelCid = report.modelCid;
        _emitFinalized(taskId, round, report, disputeDeadline);
        if (round == terms.rounds) {
            task.status = Status.Finished;
            emit TaskFinished(taskId, report.modelCid);
        } else {
            _openRound(taskId, task, terms, round + 1);
        }
    }

    /// @notice Credits a finalized round once its dispute window is over: rewards to data owners by the posted
    ///         contributions, slashes of removed data owners into the pool, dust to the owner. Anyone may call.
    /// @dev An open dispute blocks settlement until the arbiter rules or its time runs out; a lapsed dispute
    ///      refunds the challenger and the round settles as posted.
    /// @param taskId Task of the round.
    /// @param round Round to settle.
    /// @param contributions The contributions posted at finalize (checked against their digest).
    function settleRound(uint256 taskId, uint32 round, int128[] calldata contributions)
        external
        nonReentrant
        existing(taskId)
    {
        RoundState storage state = _rounds[taskId][round];
        if (state.status != RoundStatus.Finalized) {
            revert WrongRoundStatus(taskId, round, RoundStatus.Finalized, state.status);
        }
        if (block.timestamp < state.disputeDeadline) revert DisputeWindowOpen(state.disputeDeadline, block.timestamp);
        TaskTerms storage terms = _terms[taskId];
        address challenger = state.challenger;
        if (challenger != address(0)) {
            if (block.timestamp <= state.challengeDeadline) revert DisputeOpen(state.challengeDeadline);
            state.challenger = address(0);
            _challengeCredit[taskId][challenger] += terms.challengeBond;
            emit DisputeLapsed(taskId, round, challenger, terms.challengeBond);
        }
        if (keccak256(abi.encode(contributions)) != state.contributionsDigest) {
            revert ContributionsMismatch(taskId, round);
        }

        TaskState storage task = _tasks[taskId];
        state.status = RoundStatus.Settled;
        task.unsettledRounds -= 1;
        uint256 pool = terms.reward / terms.rounds + state.extraPool + _slash(taskId, round, task, terms, state.removals);
        uint256 credited = _distribute(
            taskId, round, contributions, state.removals, pool, terms.rules.payoutPolicy == PayoutPolicy.Equal
        );
        task.ownerCredit += uint128(pool - credited);
        emit RoundSettled(taskId, round, false, pool, credited, pool - credited);
    }

    // ------------------------------------------------------------------ disputes and liveness

    /// @notice Disputes a finalized round's numbers during its window, posting the challenge bond.
    /// @param taskId Task of the round.
    /// @param round Round to challenge.
    /// @param evidenceCid IPFS CID of the challenger's evidence (e.g. a recomputation of the contributions).
    function challengeRound(uint256 taskId, uint32 round, string calldata evidenceCid)
        external
        payable
        nonReentrant
        existing(taskId)
    {
        TaskTerms storage terms = _terms[taskId];
        if (terms.disputeWindow == 0) revert DisputesDisabled(taskId);
        RoundState storage state = _rounds[taskId][round];
        if (state.status != RoundStatus.Finalized) {
            revert WrongRoundStatus(taskId, round, RoundStatus.Finalized, state.status);
        }
        if (block.timestamp >= state.disputeDeadline) {
            revert DisputeWindowClosed(state.disputeDeadline, block.timestamp);
        }
        if (state.challenger != address(0)) revert DisputeAlreadyOpen(state.challenger);

        uint64 resolveDeadline = uint64(block.timestamp) + terms.arbitrationPeriod;
        state.challenger = msg.sender;
        state.challengeDeadline = resolveDeadline;
        emit RoundChallenged(taskId, round, msg.sender, terms.challengeBond, evidenceCid, resolveDeadline);
        _collect(terms.token, msg.sender, terms.challengeBond);
    }

    /// @notice The task's arbiter rules on an open dispute before its deadline. Upheld: the round is voided (its
    ///         reward goes back to the owner, its removals are undone) and the challenger is owed its bond plus
    ///         the aggregator's bond share (bond / rounds). Rejected: the challenge bond joins the round's pool
    ///         for its data owners, and the window stays open to other challengers.
    /// @param taskId Task of the round.
    /// @param round Disputed round.
    /// @param upheld True if the posted numbers are wrong.
    function resolveDispute(uint256 taskId, uint32 round, bool upheld) external nonReentrant existing(taskId) {
        TaskTerms storage terms = _terms[taskId];
        if (msg.sender != terms.arbiter) revert NotArbiter(msg.sender, terms.arbiter);
        RoundState storage state = _rounds[taskId][round];
        address challenger = state.challenger;
        if (state.status != RoundStatus.Finalized || challenger == address(0)) revert NoDispute(taskId, round);
        if (block.timestamp > state.challengeDeadline) {
            revert DisputeExpired(state.challengeDeadline, block.timestamp);
        }

        TaskState storage task = _tasks[taskId];
        if (upheld) {
            uint256 bond = task.bondPosted ? terms.aggregatorBond : 0;
            uint256 share = bond / terms.rounds;
            uint256 left = bond - task.bondForfeited;
            if (share > left) share = left;
            task.bondForfeited += uint128(share);
            uint256 credit = terms.challengeBond + share;
            _challengeCredit[taskId][challenger] += credit;
            emit DisputeResolved(taskId, round, challenger, true, credit, 0);
            _void(taskId, round, task, terms, state);
        } else {
            state.challenger = address(0);
            state.challengeDeadline = 0;
            state.extraPool += terms.challengeBond;
            emit DisputeResolved(taskId, round, challenger, false, 0, terms.challengeBond);
        }
    }

    /// @notice Stops a task. Before the start: the owner at any time, anyone after the join deadline; everyone
    ///         gets their deposit back. While running: anyone, once the aggregator missed the open round's
    ///         aggregation deadline; data owners keep what settled rounds earned plus their stakes and share the
    ///         aggregator's bond, the owner gets back the rounds that never ran.
    /// @param taskId Task to cancel.
    function cancelTask(uint256 taskId) external existing(taskId) {
        TaskTerms storage terms = _terms[taskId];
        TaskState storage task = _tasks[taskId];
        uint256 toOwner = 0;
        if (task.status == Status.Open) {
            if (msg.sender != task.owner && block.timestamp <= task.joinDeadline) {
                revert CannotCancelYet(taskId, task.joinDeadline);
            }
            toOwner = terms.reward;
        } else if (task.status == Status.Running) {
            uint64 deadline = _rounds[taskId][task.currentRound].aggregateDeadline;
            if (block.timestamp <= deadline) revert CannotCancelYet(taskId, deadline);
            task.aggregatorFault = true;
            toOwner = uint256(terms.reward / terms.rounds) * (terms.rounds - task.currentRound + 1);
        } else {
            revert WrongStatus(taskId, Status.Running, task.status);
        }
        task.status = Status.Cancelled;
        task.ownerCredit += uint128(toOwner);
        emit TaskCancelled(taskId, msg.sender, task.aggregatorFault, task.currentRound, toOwner);
    }

    // ------------------------------------------------------------------ money out

    /// @notice Pays the caller everything the task owes it, in the task's token. Challenge credits are payable at
    ///         once; rewards, stakes, bonds and the owner's refund once the task is over and every round settled.
    /// @param taskId Task to withdraw from.
    function withdraw(uint256 taskId) external nonReentrant existing(taskId) {
        (Payout memory payout, bool closed) = _payout(taskId, msg.sender);
        TaskState storage task = _tasks[taskId];
        uint256 amount = payout.challengeCredit;
        if (amount != 0) _challengeCredit[taskId][msg.sender] = 0;
        if (closed) {
            amount = payout.total;
            Member storage member = _memberOf[taskId][msg.sender];
            if (member.joined) member.withdrawn = true;
            if (msg.sender == task.owner) task.ownerPaid = true;
            if (msg.sender == _terms[taskId].aggregator) task.aggregatorPaid = true;
        }
        if (amount == 0) {
            if (closed) revert NothingToWithdraw(msg.sender);
            revert NotClosed(taskId);
        }
        address token = _terms[taskId].token;
        emit Withdrawn(taskId, msg.sender, token, amount);
        _pay(token, msg.sender, amount);
    }

    // ------------------------------------------------------------------ views

    /// @notice The terms a task was published with.
    /// @param taskId Task to read.
    /// @return The terms.
    function getTerms(uint256 taskId) external view existing(taskId) returns (TaskTerms memory) {
        return _terms[taskId];
    }

    /// @notice A task's progress.
    /// @param taskId Task to read.
    /// @return The task state.
    function getTask(uint256 taskId) external view existing(taskId) returns (TaskState memory) {
        return _tasks[taskId];
    }

    /// @notice One round of a task (all zero if it never opened).
    /// @param taskId Task to read.
    /// @param round Round number.
    /// @return The round state.
    function getRound(uint256 taskId, uint32 round) external view existing(taskId) returns (RoundState memory) {
        return _rounds[taskId][round];
    }

    /// @notice Data owners of a task, in join order (the order of every per-owner array).
    /// @param taskId Task to read.
    /// @return The data owners' addresses.
    function getParticipants(uint256 taskId) external view existing(taskId) returns (address[] memory) {
        return _members[taskId];
    }

    /// @notice What the contract holds for one data owner of a task.
    /// @param taskId Task to read.
    /// @param account Data owner.
    /// @return The member record (all zero if it never joined).
    function getParticipant(uint256 taskId, address account) external view returns (Member memory) {
        return _memberOf[taskId][account];
    }

    /// @notice keccak256(abi.encode(x, y, poseidon)) of a submission, zero if none.
    /// @param taskId Task to read.
    /// @param round Round number.
    /// @param index Data owner's join index.
    /// @return The submission digest.
    function submissionDigest(uint256 taskId, uint32 round, uint256 index) external view returns (bytes32) {
        return _submissions[taskId][round][index];
    }

    /// @notice What `account` could withdraw from a task now (`closed`) or, if not yet closed, once it is.
    /// @param taskId Task to read.
    /// @param account Any account.
    /// @return payout The amounts by source and their total.
    /// @return closed True once the task is over and every finalized round is settled.
    function payoutOf(uint256 taskId, address account)
        external
        view
        existing(taskId)
        returns (Payout memory payout, bool closed)
    {
        return _payout(taskId, account);
    }

    // ------------------------------------------------------------------ internals

    function _requireExisting(uint256 taskId) private view {
        if (_tasks[taskId].status == Status.None) revert TaskNotFound(taskId);
    }

    function _checkTerms(TaskTerms calldata terms) private view {
        if (terms.reward == 0) revert InvalidTerms("reward must be positive");
        if (terms.rounds == 0) revert InvalidTerms("rounds must be positive");
        if (terms.aggregator == address(0)) revert InvalidTerms("aggregator is the zero address");
        if (terms.maxDataOwners == 0 || terms.maxDataOwners > MAX_DATA_OWNERS) {
            revert InvalidTerms("maxDataOwners out of range");
        }
        if (terms.minDataOwners == 0 || terms.minDataOwners > terms.maxDataOwners) {
            revert InvalidTerms("minDataOwners out of range");
        }
        if (terms.joinPeriod == 0 || terms.submissionPeriod == 0 || terms.aggregationPeriod == 0) {
            revert InvalidTerms("periods must be positive");
        }
        if (terms.rules.slashBps > BPS) revert InvalidTerms("slashBps above 10000");
        if (terms.unverified) {
            if (terms.verifier != address(0)) revert InvalidTerms("unverified task names a verifier");
        } else if (terms.verifier.code.length == 0) {
            revert InvalidTerms("verifier is not a contract");
        }
        if (terms.disputeWindow != 0) {
            if (terms.arbiter == address(0)) revert InvalidTerms("disputes need an arbiter");
            if (terms.arbitrationPeriod == 0) revert InvalidTerms("disputes need an arbitration period");
            if (terms.challengeBond == 0) revert InvalidTerms("disputes need a challenge bond");
        }
        if (terms.token != address(0) && terms.token.code.length == 0) revert InvalidTerms("token is not a contract");
    }

    /// @dev Every per-owner array matches the data owners; each submission matches its digest; data owners
    ///      that did not submit carry nothing; removals name active data owners only. Before the last round a
    ///      removal names an owner the round gave no weight: one the rules remove while its update still
    ///      counts is paid for that round and removed in the next, where it has no weight. The last round has
    ///      no next one, so there such an owner is removed (and slashed, and not paid) at once.
    function _checkReport(
        uint256 taskId,
        uint32 round,
        TaskState storage task,
        RoundReport calldata report,
        bool lastRound
    ) private view {
        uint256 n = task.dataOwners;
        _checkLength(n, report.commitments.length);
        _checkLength(n, report.poseidons.length);
        _checkLength(n, report.weights.length);
        _checkLength(n, report.reputations.length);
        _checkLength(n, report.contributions.length);
        uint256 removals = report.removals;
        if ((n < 256 && removals >> n != 0) || removals & task.removedMask != 0) revert InvalidRemovals(removals);
        uint256 unweighted = lastRound ? 0 : removals; // removals that must carry weight 0
        mapping(uint256 => bytes32) storage digests = _submissions[taskId][round];
        for (uint256 i; i < n; ++i) {
            bytes32 stored = digests[i];
            if (stored == bytes32(0)) {
                uint256[2] calldata point = report.commitments[i];
                if (report.weights[i] != 0 || report.contributions[i] != 0) revert NotSubmitted(i);
                if (point[0] != 0 || point[1] != 0 || report.poseidons[i] != 0) revert SubmissionMismatch(i);
            } else {
                if (RoundProofs.digest(report.commitments[i], report.poseidons[i]) != stored) {
                    revert SubmissionMismatch(i);
                }
                if (unweighted.has(i) && report.weights[i] != 0) revert InvalidRemovals(removals);
            }
        }
    }

    function _emitFinalized(uint256 taskId, uint32 round, RoundReport calldata report, uint64 disputeDeadline)
        private
    {
        emit RoundFinalized(
            taskId,
            round,
            report.modelCid,
            report.modelCommitment,
            report.weights,
            report.reputations,
            report.contributions,
            report.removals,
            disputeDeadline
        );
    }

    function _checkLength(uint256 expected, uint256 given) private pure {
        if (given != expected) revert LengthMismatch(expected, given);
    }

    function _openRound(uint256 taskId, TaskState storage task, TaskTerms storage terms, uint32 round) private {
        uint64 submitDeadline = uint64(block.timestamp) + terms.submissionPeriod;
        uint64 aggregateDeadline = submitDeadline + terms.aggregationPeriod;
        RoundState storage state = _rounds[taskId][round];
        state.submitDeadline = submitDeadline;
        state.aggregateDeadline = aggregateDeadline;
        state.status = RoundStatus.Open;
        task.currentRound = round;
        emit RoundOpened(taskId, round, task.modelCid, submitDeadline, aggregateDeadline);
    }

    /// @dev Marks the round's removed data owners slashed; returns what their stakes add to the round's pool.
    function _slash(uint256 taskId, uint32 round, TaskState storage task, TaskTerms storage terms, uint256 removals)
        private
        returns (uint256 slashed)
    {
        if (removals == 0) return 0;
        uint256 each = uint256(terms.stake) * terms.rules.slashBps / BPS;
        address[] storage members = _members[taskId];
        task.slashedMask |= removals;
        task.slashedCount += uint16(removals.popcount());
        for (uint256 i; removals >> i != 0; ++i) {
            if (!removals.has(i)) continue;
            slashed += each;
            emit Slashed(taskId, round, members[i], each);
        }
    }

    /// @dev Credits each non-removed data owner its share of `pool`, rounding down; returns the total credited.
    function _distribute(
        uint256 taskId,
        uint32 round,
        int128[] calldata contributions,
        uint256 removals,
        uint256 pool,
        bool equal
    ) private returns (uint256 credited) {
        uint256 total = 0;
        for (uint256 i; i < contributions.length; ++i) {
            total += PayoutMath.weight(contributions[i], removals, i, equal);
        }
        if (total == 0) return 0;
        for (uint256 i; i < contributions.length; ++i) {
            uint256 amount = pool * PayoutMath.weight(contributions[i], removals, i, equal) / total;
            if (amount != 0) credited += _credit(taskId, round, i, contributions[i], amount);
        }
    }

    function _credit(uint256 taskId, uint32 round, uint256 index, int128 contribution, uint256 amount)
        private
        returns (uint256)
    {
        address account = _members[taskId][index];
        _memberOf[taskId][account].earned += uint128(amount);
        emit RewardCredited(taskId, round, account, contribution, amount);
        return amount;
    }

    /// @dev Throws a round's numbers away after an upheld dispute.
    function _void(
        uint256 taskId,
        uint32 round,
        TaskState storage task,
        TaskTerms storage terms,
        RoundState storage state
    ) private {
        uint256 toOwner = terms.reward / terms.rounds + state.extraPool;
        uint256 removals = state.removals;
        state.status = RoundStatus.Voided;
        task.unsettledRounds -= 1;
        task.ownerCredit += uint128(toOwner);
        if (removals != 0) {
            task.removedMask &= ~removals;
            task.removedCount -= uint16(removals.popcount());
        }
        emit RoundSettled(taskId, round, true, toOwner, 0, toOwner);
    }

    /// @dev Storage is read only where a role needs it, so that a plain withdrawal stays cheap.
    function _payout(uint256 taskId, address account) private view returns (Payout memory p, bool closed) {
        TaskState storage task = _tasks[taskId];
        TaskTerms storage terms = _terms[taskId];
        closed = (task.status == Status.Finished || task.status == Status.Cancelled) && task.unsettledRounds == 0;
        p.challengeCredit = _challengeCredit[taskId][account];
        bool fault = task.aggregatorFault;
        uint256 eligible = task.dataOwners - task.slashedCount;
        Member storage member = _memberOf[taskId][account];
        if (member.joined && !member.withdrawn) {
            bool slashed = task.slashedCount != 0 && task.slashedMask.has(member.index);
            p.earned = member.earned;
            p.stake = terms.stake - (slashed ? uint256(terms.stake) * terms.rules.slashBps / BPS : 0);
            if (fault && !slashed) p.bondShare = _bondLeft(task, terms) / eligible;
        }
        if (account == task.owner && !task.ownerPaid) {
            p.ownerRefund = task.ownerCredit;
            if (fault) {
                uint256 bondLeft = _bondLeft(task, terms);
                p.ownerRefund += eligible == 0 ? bondLeft : bondLeft % eligible;
            }
        }
        if (account == terms.aggregator && !task.aggregatorPaid && !fault) p.aggregatorBond = _bondLeft(task, terms);
        p.total = p.earned + p.stake + p.bondShare + p.ownerRefund + p.aggregatorBond + p.challengeCredit;
    }

    function _bondLeft(TaskState storage task, TaskTerms storage terms) private view returns (uint256) {
        return task.bondPosted ? terms.aggregatorBond - task.bondForfeited : 0;
    }
}
