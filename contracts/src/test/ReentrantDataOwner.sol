// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

/// @dev The Marketplace calls this contract uses.
interface IMarketplaceCalls {
    function join(uint256 taskId) external payable;
    function submitUpdate(
        uint256 taskId,
        uint32 round,
        string calldata updateCid,
        bytes32 contentHash,
        uint256[2] calldata commitment,
        uint256 poseidon
    ) external;
    function withdraw(uint256 taskId) external;
}

/// @title Re-entering data owner
/// @notice A data owner contract that, when paid, tries to withdraw again from inside the payment. Tests only.
contract ReentrantDataOwner {
    IMarketplaceCalls public immutable market;
    /// @notice Times the receive hook tried to re-enter, and the revert data of the last try.
    uint256 public attempts;
    bool public reentered;
    bytes public lastError;
    /// @notice When true, every payment to this contract reverts.
    bool public refuse;
    uint256 private _taskId;

    constructor(IMarketplaceCalls market_) {
        market = market_;
    }

    /// @notice Joins `taskId`, forwarding the stake.
    function join(uint256 taskId) external payable {
        market.join{value: msg.value}(taskId);
    }

    /// @notice Submits an update with a placeholder commitment (the point at infinity).
    function submit(uint256 taskId, uint32 round, string calldata updateCid) external {
        market.submitUpdate(taskId, round, updateCid, keccak256(bytes(updateCid)), [uint256(0), uint256(0)], 0);
    }

    /// @notice Withdraws; the payment's receive hook then tries to withdraw once more.
    function withdraw(uint256 taskId) external {
        _taskId = taskId;
        market.withdraw(taskId);
    }

    /// @notice Makes payments to this contract fail, or succeed again.
    function setRefuse(bool value) external {
        refuse = value;
    }

    receive() external payable {
        if (refuse) revert();
        if (attempts != 0) return;
        attempts += 1;
        try market.withdraw(_taskId) {
            reentered = true;
        } catch (bytes memory reason) {
            lastError = reason;
        }
    }
}
