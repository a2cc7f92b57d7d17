// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @title Token vault
/// @notice Moves money in and out for the Marketplace: ETH (token address(0)) or any ERC-20 through SafeERC20.
///         Keeps one number per token, `held`, that must always equal what the contract owes in that token.
/// @dev Deposits check the balance delta so that fee-on-transfer and other deflationary tokens are refused with
///      a clear error instead of leaving the escrow short. Rebasing tokens are not supported.
abstract contract TokenVault {
    using SafeERC20 for IERC20;

    /// @notice Total the contract owes, per token (address(0) = ETH), across all tasks.
    mapping(address token => uint256 amount) public held;

    /// @notice `msg.value` did not match the amount due (ETH tasks), or ETH was sent to an ERC-20 task.
    error WrongValue(uint256 expected, uint256 sent);
    /// @notice The token delivered less than was transferred: fee-on-transfer tokens are not supported.
    error FeeOnTransferToken(address token, uint256 expected, uint256 received);

    /// @dev Takes `amount` of `token` from `from`. Call last (after effects): it calls out to the token.
    function _collect(address token, address from, uint256 amount) internal {
        held[token] += amount;
        if (token == address(0)) {
            if (msg.value != amount) revert WrongValue(amount, msg.value);
            return;
        }
        if (msg.value != 0) revert WrongValue(0, msg.value);
        if (amount == 0) return;
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(from, address(this), amount);
        uint256 received = IERC20(token).balanceOf(address(this)) - before;
        if (received != amount) revert FeeOnTransferToken(token, amount, received);
    }

    /// @dev Pays `amount` of `token` to `to`. Call last (after effects): it calls out to the receiver or token.
    function _pay(address token, address to, uint256 amount) internal {
        held[token] -= amount;
        if (token == address(0)) {
            Address.sendValue(payable(to), amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }
}
