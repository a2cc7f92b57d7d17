// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title fedmarket Marketplace
/// @notice Escrows a training reward for a federated-learning task, takes data owners' stakes,
///         records each round's update submissions, lets the task's aggregator finalize a round
///         with per-owner contribution numbers, and credits rewards in proportion to them.
///         Money only moves out through pull payments (`withdraw`, `refund`).
/// @dev Update CIDs and commitments are kept in events; storage keeps one digest per submission,
///      which binds the event data and keeps `submitUpdate` cheap.
contract Marketplace is ReentrancyGuard {
    /// @notice Life cycle of a task.
    enum Status {
        None,
        Open,
        Running,
        Finished
    }

    /// @notice Terms and progress of one task.
    struct Task {
        address owner;
        address aggregator;
        uint128 reward;
        uint128 credited;
        uint128 stake;
        uint32 rounds;
        uint32 currentRound;
        uint32 roundDuration;
        uint32 maxParticipants;
        uint64 roundDeadline;
        Status status;
        bool refunded;
        string specCid;
        string modelCid;
    }

    /// @notice What the contract knows of one data owner in one task.
    struct Participant {
        bool joined;
        bool withdrawn;
        uint32 index;
        uint128 earned;
    }

    /// @notice Upper bound on data owners per task, so that finalizing a round stays within a block.
    uint32 public constant MAX_PARTICIPANTS = 256;

    /// @notice Number of tasks created so far; task ids run from 1 to taskCount.
    uint256 public taskCount;

    mapping(uint256 taskId => Task) private _tasks;
    mapping(uint256 taskId => address[]) private _participants;
    mapping(uint256 taskId => mapping(address account => Participant)) private _participantInfo;
    mapping(uint256 taskId => mapping(uint256 round => mapping(address account => bytes32 digest)))
        private _submissions;
    mapping(uint256 taskId => mapping(uint256 round => uint256 count)) private _submissionCount;

    error TaskNotFound(uint256 taskId);
    error InvalidTerms(string reason);
    error WrongStatus(uint256 taskId, Status expected, Status actual);
    error NotTaskOwner(address caller, address owner);
    error NotAggregator(address caller, address aggregator);
    error WrongStake(uint256 expected, uint256 sent);
    error AlreadyJoined(address account);
    error TaskFull(uint32 maxParticipants);
    error NoParticipants(uint256 taskId);
    error NotParticipant(address account);
    error WrongRound(uint256 expected, uint256 given);
    error SubmissionClosed(uint64 deadline, uint256 timestamp);
    error AlreadySubmitted(address account, uint256 round);
    error EmptyCid();
    error RoundStillOpen(uint64 deadline, uint256 submitted, uint256 participants);
    error ContributionsLengthMismatch(uint256 expected, uint256 given);
    error ContributionWithoutSubmission(address account, uint256 contribution);
    error AlreadyWithdrawn(address account);
    error AlreadyRefunded(uint256 taskId);

    /// @notice A task was published and its reward escrowed.
    event TaskCreated(
        uint256 indexed taskId,
        address indexed owner,
        address indexed aggregator,
        string specCid,
        string initialModelCid,
        uint256 reward,
        uint256 stake,
        uint32 rounds,
        uint32 roundDuration,
        uint32 maxParticipants
    );
    /// @notice A data owner joined and posted its stake.
    event Joined(uint256 indexed taskId, address indexed dataOwner, uint32 index, uint256 stake);
    /// @notice Joining closed; training starts.
    event TaskStarted(uint256 indexed taskId, uint256 participants);
    /// @notice A round opened for submissions against the given global model.
    event RoundOpened(uint256 indexed taskId, uint32 indexed round, string globalModelCid, uint64 deadline);
    /// @notice A data owner recorded its encrypted update's CID and its commitment.
    event UpdateSubmitted(
        uint256 indexed taskId, uint32 indexed round, address indexed dataOwner, string updateCid, bytes commitment
    );
    /// @notice The aggregator closed a round with a new global model.
    event RoundFinalized(
        uint256 indexed taskId, uint32 indexed round, string modelCid, uint256 roundReward, uint256 credited
    );
    /// @notice A data owner was credited its share of a round's reward.
    event RewardCredited(
        uint256 indexed taskId, uint32 indexed round, address indexed dataOwner, uint256 contribution, uint256 amount
    );
    /// @notice The last round was finalized; withdrawals and the refund are open.
    event TaskFinished(uint256 indexed taskId, string finalModelCid, uint256 credited);
    /// @notice A data owner took out its earned reward and its stake.
    event Withdrawn(uint256 indexed taskId, address indexed dataOwner, uint256 reward, uint256 stake);
    /// @notice The owner took back the part of the escrow that was not credited.
    event Refunded(uint256 indexed taskId, address indexed owner, uint256 amount);

    modifier existing(uint256 taskId) {
        if (_tasks[taskId].status == Status.None) revert TaskNotFound(taskId);
        _;
    }

    /// @notice Publishes a task and escrows `msg.value` as its reward.
    /// @param specCid IPFS CID of the task spec (model, data schema, validation set, rules, aggregator key).
    /// @param initialModelCid IPFS CID of the round-1 global model.
    /// @param stake Wei each data owner must post to join; returned after the task unless slashed.
    /// @param rounds Number of training rounds; the reward splits evenly across them.
    /// @param roundDuration Seconds each round stays open for submissions.
    /// @param aggregator Account allowed to finalize rounds.
    /// @param maxParticipants Most data owners that may join (at most MAX_PARTICIPANTS).
    /// @return taskId Id of the new task.
    function createTask(
        string calldata specCid,
        string calldata initialModelCid,
        uint128 stake,
        uint32 rounds,
        uint32 roundDuration,
        address aggregator,
        uint32 maxParticipants
    ) external payable returns (uint256 taskId) {
        if (bytes(specCid).length == 0 || bytes(initialModelCid).length == 0) revert EmptyCid();
        if (msg.value == 0) revert InvalidTerms("reward must be positive");
        if (msg.value > type(uint128).max) revert InvalidTerms("reward too large");
        if (rounds == 0) revert InvalidTerms("rounds must be positive");
        if (roundDuration == 0) revert InvalidTerms("round duration must be positive");
        if (aggregator == address(0)) revert InvalidTerms("aggregator is the zero address");
        if (maxParticipants == 0 || maxParticipants > MAX_PARTICIPANTS) {
            revert InvalidTerms("maxParticipants out of range");
        }

        taskId = ++taskCount;
        Task storage task = _tasks[taskId];
        task.owner = msg.sender;
        task.aggregator = aggregator;
        task.reward = uint128(msg.value);
        task.stake = stake;
        task.rounds = rounds;
        task.roundDuration = roundDuration;
        task.maxParticipants = maxParticipants;
        task.status = Status.Open;
        task.specCid = specCid;
        task.modelCid = initialModelCid;

        emit TaskCreated(
            taskId,
            msg.sender,
            aggregator,
            specCid,
            initialModelCid,
            msg.value,
            stake,
            rounds,
            roundDuration,
            maxParticipants
        );
    }

    /// @notice Joins an open task; `msg.value` must equal the task's stake.
    /// @param taskId Task to join.
    function join(uint256 taskId) external payable existing(taskId) {
        Task storage task = _tasks[taskId];
        if (task.status != Status.Open) revert WrongStatus(taskId, Status.Open, task.status);
        if (msg.value != task.stake) revert WrongStake(task.stake, msg.value);
        Participant storage info = _participantInfo[taskId][msg.sender];
        if (info.joined) revert AlreadyJoined(msg.sender);
        address[] storage members = _participants[taskId];
        if (members.length >= task.maxParticipants) revert TaskFull(task.maxParticipants);

        info.joined = true;
        info.index = uint32(members.length);
        members.push(msg.sender);
        emit Joined(taskId, msg.sender, info.index, msg.value);
    }

    /// @notice Closes joining and opens round 1. Only the task owner.
    /// @param taskId Task to start.
    function startTask(uint256 taskId) external existing(taskId) {
        Task storage task = _tasks[taskId];
        if (msg.sender != task.owner) revert NotTaskOwner(msg.sender, task.owner);
        if (task.status != Status.Open) revert WrongStatus(taskId, Status.Open, task.status);
        uint256 members = _participants[taskId].length;
        if (members == 0) revert NoParticipants(taskId);

        task.status = Status.Running;
        emit TaskStarted(taskId, members);
        _openRound(taskId, task, 1);
    }

    /// @notice Records the caller's update for the current round.
    /// @param taskId Task the update belongs to.
    /// @param round Round number; must be the open round.
    /// @param updateCid IPFS CID of the encrypted update.
    /// @param commitment Commitment to the plaintext update, checked by the aggregator and auditors.
    function submitUpdate(uint256 taskId, uint32 round, string calldata updateCid, bytes calldata commitment)
        external
        existing(taskId)
    {
        Task storage task = _tasks[taskId];
        if (task.status != Status.Running) revert WrongStatus(taskId, Status.Running, task.status);
        if (!_participantInfo[taskId][msg.sender].joined) revert NotParticipant(msg.sender);
        if (round != task.currentRound) revert WrongRound(task.currentRound, round);
        if (block.timestamp > task.roundDeadline) revert SubmissionClosed(task.roundDeadline, block.timestamp);
        if (bytes(updateCid).length == 0) revert EmptyCid();
        mapping(address => bytes32) storage roundSubmissions = _submissions[taskId][round];
        if (roundSubmissions[msg.sender] != bytes32(0)) revert AlreadySubmitted(msg.sender, round);

        roundSubmissions[msg.sender] = keccak256(abi.encode(updateCid, commitment));
        _submissionCount[taskId][round] += 1;
        emit UpdateSubmitted(taskId, round, msg.sender, updateCid, commitment);
    }

    /// @notice Closes the open round with a new global model and credits rewards. Only the aggregator.
    /// @dev Allowed once every participant submitted, or after the round's deadline. The round's reward
    ///      (reward / rounds) splits in proportion to `contributions`; what integer division leaves,
    ///      and a round where all contributions are zero, stays in escrow for the owner's refund.
    /// @param taskId Task to finalize.
    /// @param round Round number; must be the open round.
    /// @param modelCid IPFS CID of the new global model.
    /// @param contributions One non-negative number per participant, in join order; zero for non-submitters.
    function finalizeRound(uint256 taskId, uint32 round, string calldata modelCid, uint256[] calldata contributions)
        external
        existing(taskId)
    {
        Task storage task = _tasks[taskId];
        if (msg.sender != task.aggregator) revert NotAggregator(msg.sender, task.aggregator);
        if (task.status != Status.Running) revert WrongStatus(taskId, Status.Running, task.status);
        if (round != task.currentRound) revert WrongRound(task.currentRound, round);
        if (bytes(modelCid).length == 0) revert EmptyCid();
        address[] storage members = _participants[taskId];
        uint256 submitted = _submissionCount[taskId][round];
        if (submitted < members.length && block.timestamp <= task.roundDeadline) {
            revert RoundStillOpen(task.roundDeadline, submitted, members.length);
        }
        if (contributions.length != members.length) {
            revert ContributionsLengthMismatch(members.length, contributions.length);
        }

        uint256 total = _checkedTotal(taskId, round, members, contributions);
        uint256 roundReward = task.reward / task.rounds;
        uint256 credited = total == 0 ? 0 : _credit(taskId, round, members, contributions, total, roundReward);
        task.credited += uint128(credited);
        task.modelCid = modelCid;
        emit RoundFinalized(taskId, round, modelCid, roundReward, credited);

        if (round == task.rounds) {
            task.status = Status.Finished;
            emit TaskFinished(taskId, modelCid, task.credited);
        } else {
            _openRound(taskId, task, round + 1);
        }
    }

    /// @notice Pays the caller its earned reward plus its stake, once the task has finished.
    /// @param taskId Task to withdraw from.
    function withdraw(uint256 taskId) external nonReentrant existing(taskId) {
        Task storage task = _tasks[taskId];
        if (task.status != Status.Finished) revert WrongStatus(taskId, Status.Finished, task.status);
        Participant storage info = _participantInfo[taskId][msg.sender];
        if (!info.joined) revert NotParticipant(msg.sender);
        if (info.withdrawn) revert AlreadyWithdrawn(msg.sender);

        uint256 reward = info.earned;
        uint256 stake = task.stake;
        info.withdrawn = true;
        emit Withdrawn(taskId, msg.sender, reward, stake);
        Address.sendValue(payable(msg.sender), reward + stake);
    }

    /// @notice Returns the part of the escrow no data owner earned to the task owner, once finished.
    /// @param taskId Task to refund.
    function refund(uint256 taskId) external nonReentrant existing(taskId) {
        Task storage task = _tasks[taskId];
        if (msg.sender != task.owner) revert NotTaskOwner(msg.sender, task.owner);
        if (task.status != Status.Finished) revert WrongStatus(taskId, Status.Finished, task.status);
        if (task.refunded) revert AlreadyRefunded(taskId);

        uint256 amount = task.reward - task.credited;
        task.refunded = true;
        emit Refunded(taskId, msg.sender, amount);
        if (amount != 0) Address.sendValue(payable(msg.sender), amount);
    }

    /// @notice Terms and progress of a task.
    /// @param taskId Task to read.
    /// @return The task record.
    function getTask(uint256 taskId) external view existing(taskId) returns (Task memory) {
        return _tasks[taskId];
    }

    /// @notice Data owners of a task, in join order (the order of `contributions`).
    /// @param taskId Task to read.
    /// @return The participants' addresses.
    function getParticipants(uint256 taskId) external view existing(taskId) returns (address[] memory) {
        return _participants[taskId];
    }

    /// @notice What the contract holds for one data owner of a task.
    /// @param taskId Task to read.
    /// @param account Data owner.
    /// @return The participant record (all zero if it never joined).
    function getParticipant(uint256 taskId, address account) external view returns (Participant memory) {
        return _participantInfo[taskId][account];
    }

    /// @notice keccak256(abi.encode(updateCid, commitment)) of a submission, zero if none.
    /// @param taskId Task to read.
    /// @param round Round number.
    /// @param account Data owner.
    /// @return The submission digest.
    function submissionDigest(uint256 taskId, uint32 round, address account) external view returns (bytes32) {
        return _submissions[taskId][round][account];
    }

    /// @notice Number of submissions recorded for a round.
    /// @param taskId Task to read.
    /// @param round Round number.
    /// @return The count.
    function submissionCount(uint256 taskId, uint32 round) external view returns (uint256) {
        return _submissionCount[taskId][round];
    }

    /// @dev Sum of the contributions, rejecting any credited to an account that did not submit.
    function _checkedTotal(uint256 taskId, uint32 round, address[] storage members, uint256[] calldata contributions)
        private
        view
        returns (uint256 total)
    {
        mapping(address => bytes32) storage roundSubmissions = _submissions[taskId][round];
        for (uint256 i; i < contributions.length; ++i) {
            if (contributions[i] != 0 && roundSubmissions[members[i]] == bytes32(0)) {
                revert ContributionWithoutSubmission(members[i], contributions[i]);
            }
            total += contributions[i];
        }
    }

    /// @dev Credits each member roundReward * contribution / total, rounding down; returns the sum credited.
    function _credit(
        uint256 taskId,
        uint32 round,
        address[] storage members,
        uint256[] calldata contributions,
        uint256 total,
        uint256 roundReward
    ) private returns (uint256 credited) {
        for (uint256 i; i < contributions.length; ++i) {
            if (contributions[i] == 0) continue;
            uint256 amount = Math.mulDiv(roundReward, contributions[i], total);
            if (amount == 0) continue;
            _participantInfo[taskId][members[i]].earned += uint128(amount);
            credited += amount;
            emit RewardCredited(taskId, round, members[i], contributions[i], amount);
        }
    }

    function _openRound(uint256 taskId, Task storage task, uint32 round) private {
        uint64 deadline = uint64(block.timestamp) + task.roundDuration;
        task.currentRound = round;
        task.roundDeadline = deadline;
        emit RoundOpened(taskId, round, task.modelCid, deadline);
    }
}
